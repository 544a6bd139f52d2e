package vcardmap

// The Extras format, version 1. Plain UTF-8 text, lines separated by "\n",
// never containing a raw newline inside a line (values are escaped):
//
//	vcardmap/1 <family>                      family: 3 (2.1/3.0 source) or 4 (4.0)
//	fp <slot>=<fingerprint> ...              Graph values as written, per slot
//	X <content line>                         an extra property, kept verbatim
//	A <slot> <content line>                  an extra describing a slot (a 3.0
//	                                         LABEL and its ADR), dropped with it
//	T <slot>.<idx> <content line>            a template: group, name and parameters
//	                                         of a mapped property; value from Graph
//	R <slot>.<idx> <content line>            a mapped property kept exactly as the
//	                                         client wrote it (used while Graph's
//	                                         value is unchanged)
//
// Lines appear in the card's property order. A fingerprint is 8 base64url
// characters of SHA-256 over the slot's normalised Graph value. Unknown
// record kinds make the whole Extras unreadable (Render then serves Graph
// only), so a later format must bump the version.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

const extrasMagic = "vcardmap/1"

// extras is a decoded Extras string.
type extras struct {
	fam  int
	fps  map[string]string
	recs []record
}

// encodeExtras writes records and fingerprints; "" when there is nothing.
func encodeExtras(fam int, fps map[string]string, recs []record) string {
	if len(recs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d\n", extrasMagic, fam)
	if len(fps) > 0 {
		slots := make([]string, 0, len(fps))
		for s := range fps {
			slots = append(slots, s)
		}
		sort.Strings(slots)
		b.WriteString("fp")
		for _, s := range slots {
			fmt.Fprintf(&b, " %s=%s", s, fps[s])
		}
		b.WriteByte('\n')
	}
	for _, r := range recs {
		switch {
		case r.slot == "" && r.anchor != "":
			fmt.Fprintf(&b, "A %s ", r.anchor)
		case r.slot == "":
			b.WriteString("X ")
		case r.raw:
			fmt.Fprintf(&b, "R %s.%d ", r.slot, r.idx)
		default:
			fmt.Fprintf(&b, "T %s.%d ", r.slot, r.idx)
		}
		b.WriteString(contentLine(r.p))
		b.WriteByte('\n')
	}
	return b.String()
}

// decodeExtras reads an Extras string; "" decodes to nothing. A damaged
// record costs only itself: the others are still served (an unknown header
// fails the whole, since nothing after it can be trusted).
func decodeExtras(s string) (*extras, error) {
	ex := &extras{fam: 3, fps: map[string]string{}}
	if s == "" {
		return ex, nil
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	head := strings.Fields(lines[0])
	if len(head) != 2 || head[0] != extrasMagic || (head[1] != "3" && head[1] != "4") {
		return nil, fmt.Errorf("vcardmap: unknown extras header %q", truncate(lines[0]))
	}
	ex.fam, _ = strconv.Atoi(head[1])
	for _, l := range lines[1:] {
		kind, rest, _ := strings.Cut(l, " ")
		switch kind {
		case "fp":
			for _, f := range strings.Fields(rest) {
				k, v, _ := strings.Cut(f, "=")
				ex.fps[k] = v
			}
			continue
		case "X", "T", "R", "A":
		default:
			continue // unknown record kind
		}
		r := record{raw: kind == "R"}
		if kind == "A" {
			slot, line, ok := strings.Cut(rest, " ")
			if !ok || !knownSlot(slot) {
				continue // bad anchor
			}
			r.anchor, rest = slot, line
		} else if kind != "X" {
			ref, line, ok := strings.Cut(rest, " ")
			dot := strings.LastIndexByte(ref, '.')
			ok2 := dot > 0
			slot, idx := ref, ""
			if ok2 {
				slot, idx = ref[:dot], ref[dot+1:]
			}
			n, err := strconv.Atoi(idx)
			if !ok || !ok2 || err != nil || n < 0 || !knownSlot(slot) {
				continue // bad template reference
			}
			r.slot, r.idx, rest = slot, n, line
		}
		p, err := parseLine(rest)
		if err == nil {
			err = storable(p)
		}
		if err != nil {
			continue // a line Parse could not have written
		}
		r.p = p
		ex.recs = append(ex.recs, r)
	}
	return ex, nil
}

func knownSlot(s string) bool {
	if s == "yn" { // template-only: never rendered by default
		return true
	}
	for _, o := range slotOrder {
		if o == s {
			return true
		}
	}
	return false
}

// storable checks a stored line is one Parse could have written, so that a
// damaged Extras can never make Render serve a card Parse would refuse.
func storable(p *property) error {
	switch {
	case p.is("BEGIN"), p.is("END"), p.is("VERSION"), p.hasParam("CHARSET"):
		return invalid("%s cannot be stored", p.Name)
	}
	for _, e := range p.param("ENCODING") {
		if strings.EqualFold(e, "QUOTED-PRINTABLE") {
			return invalid("quoted-printable cannot be stored")
		}
	}
	if p.is("PHOTO") {
		if _, err := decodePhoto(p); err != nil {
			return err
		}
	}
	return checkText(p)
}
