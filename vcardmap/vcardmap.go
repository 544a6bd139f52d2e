package vcardmap

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// Mapped is a vCard split into what Graph holds and what it does not.
type Mapped struct {
	Contact graph.Contact // Graph fields only: no id, changeKey or extended properties
	UID     string        // the card's UID, verbatim ("" when the card has none)
	Extras  string        // compact record of what Graph cannot hold; "" when nothing
	Photo   *graph.Photo  // nil when the card has no PHOTO

	// Kind is the card's KIND or X-ADDRESSBOOKSERVER-KIND, lower-cased
	// ("group" for a group card), "" when absent. Parse sets it from the
	// card; on Render a non-empty Kind or Members that differs from what
	// Extras records replaces it (so the backend may project membership:
	// set both, since Members then replaces the recorded list whole).
	Kind string
	// Members are the MEMBER / X-ADDRESSBOOKSERVER-MEMBER values verbatim
	// (usually "urn:uuid:<UID>"), in order.
	Members []string
	// Version is the VERSION of the parsed card ("2.1", "3.0" or "4.0");
	// Render ignores it.
	Version string
	// Unsaid lists the Graph properties (JSON names) that only this
	// gateway's X-MS-* properties carry (initials, officeLocation, fileAs)
	// and that the card has no property for. A client that drops properties
	// it does not know loses them without meaning to, so an update should
	// leave them as Graph has them rather than clear them (clients.md §6).
	Unsaid []string
}

// xmsOnly are the slots only an X-MS-* property carries, with the Graph
// property each fills.
var xmsOnly = []struct{ slot, graphName string }{
	{"initials", "initials"}, {"office", "officeLocation"}, {"fileas", "fileAs"},
}

// ErrInvalid wraps every error caused by a malformed card.
var ErrInvalid = errors.New("vcardmap: invalid vCard")

// record is one property of a parsed card as Extras keeps it: either an
// extra (slot "") kept verbatim, or a template for a property whose value
// lives in Graph slot#idx. A template's value is empty and rendered from
// Graph, unless raw is set: then it is the client's exact property, kept
// because the rendering from Graph would not have reproduced it.
type record struct {
	slot   string
	idx    int
	raw    bool
	p      *property
	anchor string // for an extra: the slot it describes (a 3.0 LABEL's address)
}

// family is 3 for vCard 2.1 and 3.0 (whose values share one syntax once 2.1
// is normalised) and 4 for 4.0.
func family(version string) int {
	if version == "4.0" {
		return 4
	}
	return 3
}

// Parse decodes and maps a vCard a client sent. Errors caused by the card
// wrap ErrInvalid.
func Parse(data []byte) (*Mapped, error) {
	c, err := parseCard(data)
	if err != nil {
		return nil, err
	}
	m := &Mapped{Version: c.Version}
	fam := family(c.Version)
	labels := map[string]string{}
	for _, p := range c.Props {
		if p.Group != "" && p.is("X-ABLabel") {
			labels[strings.ToLower(p.Group)] = unescapeText(p.Value)
		}
	}
	var recs []record
	used := map[string]int{}
	uidSeen := false
	for _, p := range c.Props {
		switch {
		case p.is("PRODID"), p.is("REV"):
			continue // rewritten on output
		case p.is("UID") && !uidSeen && p.Group == "" && len(p.Params) == 0:
			m.UID, uidSeen = p.Value, true
			continue
		}
		slot, err := m.assign(p, labels, used)
		if err != nil {
			return nil, err
		}
		if slot == "" {
			// What goes into Extras must read back: refuse the card now
			// (a clear 4xx) rather than store a line Render would drop.
			if err := storable(p); err != nil {
				return nil, err
			}
			recs = append(recs, record{p: p})
			continue
		}
		recs = append(recs, record{slot: slot, idx: used[slot], p: p})
		used[slot]++
	}
	for _, x := range xmsOnly {
		if used[x.slot] == 0 {
			m.Unsaid = append(m.Unsaid, x.graphName)
		}
	}
	// Decide, now that the Graph fields are complete, which templates must
	// keep the client's raw property and which are implied by the defaults.
	fps := map[string]string{}
	fpOnce := func(slot string) { // a slot's fingerprint, once however many records it has
		if _, ok := fps[slot]; !ok {
			fps[slot] = fingerprint(&m.Contact, m.Photo, slot)
		}
	}
	kept := recs[:0]
	for _, r := range recs {
		if r.slot == "" {
			// A 3.0 LABEL is the formatted form of the ADR of its type:
			// anchored to that address, it goes when Outlook edits it.
			if r.p.is("LABEL") && r.p.Group == "" {
				if a := adrSlot(r.p.types(), ""); used[a] > 0 {
					r.anchor = a
					fpOnce(a)
				}
			}
			kept = append(kept, r)
			continue
		}
		t := strip(r.p, r.slot)
		rendered := renderSlot(t, r.slot, r.idx, &m.Contact, m.Photo, fam)
		if r.slot != "photo" && contentLine(rendered) != contentLine(r.p) {
			r.raw = true
		} else {
			r.p = t
			// Only scalar slots may rely on the default rendering: in a list
			// slot a default would move ahead of the slot's other templates
			// and reorder the list.
			if _, list := slotLimit[r.slot]; t.Group == "" && !list {
				def := defaultProps(&m.Contact, m.Photo, r.slot, r.idx, fam, nil)
				// Render renders a default only where defaultCount says so
				// (not for an empty NOTE, say): only then may the template go.
				if len(def) == 1 && r.idx < defaultCount(&m.Contact, m.Photo, r.slot, fam) && contentLine(def[0]) == contentLine(rendered) {
					continue // the default rendering reproduces it: nothing to keep
				}
			}
		}
		fpOnce(r.slot)
		kept = append(kept, r)
	}
	m.Extras = encodeExtras(fam, fps, kept)
	return m, nil
}

// assign maps p onto a Graph slot when it fits one that is still free and
// returns the slot, or "" when p is an extra.
func (m *Mapped) assign(p *property, labels map[string]string, used map[string]int) (string, error) {
	c := &m.Contact
	name := strings.ToUpper(p.Name)
	text := unescapeText(p.Value) // the value as TEXT, for the slots that read it so
	free := func(slot string) bool {
		if lim, ok := slotLimit[slot]; ok {
			return used[slot] < lim
		}
		return used[slot] == 0
	}
	switch name {
	case "N":
		if p.hasParam("PHONETIC") { // RFC 9554 phonetic name: the yomi fields
			if !free("ysur") || !free("ygiven") {
				return "", nil
			}
			comps := append(components(p.Value), "")
			c.YomiSurname, c.YomiGivenName = comps[0], comps[1]
			used["ysur"], used["ygiven"] = 1, 1
			return "yn", nil
		}
		if !free("n") {
			return "", nil
		}
		comps := components(p.Value)
		for len(comps) < 5 {
			comps = append(comps, "")
		}
		c.Surname, c.GivenName, c.MiddleName, c.Title, c.Generation = comps[0], comps[1], comps[2], comps[3], comps[4]
		return "n", nil
	case "ORG":
		if p.hasParam("PHONETIC") {
			if !free("yorg") {
				return "", nil
			}
			c.YomiCompanyName = components(p.Value)[0]
			return "yorg", nil
		}
		if !free("org") {
			return "", nil
		}
		comps := append(components(p.Value), "")
		c.CompanyName, c.Department = comps[0], comps[1]
		return "org", nil
	case "NOTE":
		if !free("note") {
			return "", nil
		}
		v := text
		if strings.EqualFold(first(p.param("X-MS-NEWLINE")), "CRLF") {
			v = strings.ReplaceAll(v, "\n", "\r\n")
		}
		c.PersonalNotes = v
		return "note", nil
	case "EMAIL":
		v := text
		if v == "" || !free("email") {
			return "", nil
		}
		c.EmailAddresses = append(c.EmailAddresses, graph.EmailAddress{Name: first(p.param("X-MS-NAME")), Address: v})
		return "email", nil
	case "TEL":
		return assignTel(c, p, appleLabel(labels[strings.ToLower(p.Group)]), free), nil
	case "ADR":
		return assignAdr(c, p, labels, free), nil
	case "BDAY":
		d, ok := vcardDate(p)
		if !ok || !free("bday") {
			return "", nil
		}
		c.Birthday = graphBirthday(d)
		return "bday", nil
	case "CATEGORIES":
		if !free("cat") {
			return "", nil
		}
		c.Categories = nil
		for _, e := range list(p.Value) {
			if e != "" {
				c.Categories = append(c.Categories, e)
			}
		}
		return "cat", nil
	case "URL":
		t := p.types()
		delete(t, "pref")
		delete(t, "work")
		delete(t, "internet")
		w := appleLabel(labels[strings.ToLower(p.Group)])
		if len(t) > 0 || w == "home" || w == "other" || text == "" || !free("url") {
			return "", nil
		}
		c.BusinessHomePage = text
		return "url", nil
	case "X-ABRELATEDNAMES", "RELATED":
		word := appleLabel(labels[strings.ToLower(p.Group)])
		slot := relatedSlot(word)
		if slot == "" {
			for _, t := range p.param("TYPE") { // in written order: Parse is deterministic
				for _, w := range strings.Split(t, ",") {
					if s := relatedSlot(strings.TrimSpace(w)); s != "" && slot == "" {
						slot = s
					}
				}
			}
		}
		if name == "RELATED" {
			vt := strings.ToLower(first(p.param("VALUE")))
			if vt != "text" && (vt != "" || hasScheme(p.Value)) {
				return "", nil // a URI reference: not a name
			}
		}
		return assignRelated(c, slot, text, free), nil
	case "X-MS-MANAGER", "X-MS-ASSISTANT", "X-MS-SPOUSE", "X-MS-CHILD",
		"X-EVOLUTION-MANAGER", "X-EVOLUTION-ASSISTANT", "X-EVOLUTION-SPOUSE":
		return assignRelated(c, strings.ToLower(name[strings.LastIndexByte(name, '-')+1:]), text, free), nil
	case "PHOTO":
		if !free("photo") {
			return "", nil
		}
		ph, err := decodePhoto(p)
		if err != nil || ph == nil {
			return "", err
		}
		m.Photo = ph
		return "photo", nil
	case "KIND", "X-ADDRESSBOOKSERVER-KIND":
		if m.Kind == "" {
			m.Kind = strings.ToLower(strings.TrimSpace(text))
		}
		return "", nil
	case "MEMBER", "X-ADDRESSBOOKSERVER-MEMBER":
		m.Members = append(m.Members, p.Value)
		return "", nil
	case "X-EVOLUTION-FILE-AS":
		if !free("fileas") {
			return "", nil
		}
		c.FileAs = text
		return "fileas", nil
	}
	if name == "IMPP" || imProps[name] {
		if text == "" || !free("im") {
			return "", nil
		}
		c.IMAddresses = append(c.IMAddresses, text)
		return "im", nil
	}
	for slot, s := range scalarSlots {
		if s.prop != "" && s.prop == name && slot != "mobile" && slot != "url" && slot != "note" {
			if !free(slot) {
				return "", nil
			}
			*s.field(c) = text
			return slot, nil
		}
	}
	return "", nil
}

// escapeURI escapes only what unescapeText would otherwise change in a URI
// value (backslash, newline); commas and semicolons stay literal.
func escapeURI(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "\r\n", `\n`)
	s = strings.ReplaceAll(s, "\r", `\n`)
	return strings.ReplaceAll(s, "\n", `\n`)
}

// stripControls drops C0 controls other than tab, and DEL, which vCard
// cannot carry (newlines are escaped before this): Outlook fields may hold
// a stray vertical tab or form feed, and the card must still parse.
func stripControls(s string) string {
	// Fast path for the usual line, on Render's path for every property:
	// controls are single bytes in UTF-8, and strings.Map would change
	// nothing (it also rewrites invalid UTF-8, hence ValidString).
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = !(s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f)
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// oneLine drops line breaks from a verbatim value handed in by the caller,
// which would otherwise end the content line early.
func oneLine(s string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// telSpecial are TEL types Graph v1.0 has no field for.
var telSpecial = []string{"fax", "pager", "car", "isdn", "modem", "video", "bbs", "textphone", "other", "main", "x-assistant", "assistant", "callback", "radio", "telex", "tty", "ttytdd"}

// assignTel classifies a TEL by its types and, for Apple's item groups, by
// its label (_$!<Mobile>!$_, _$!<HomeFAX>!$_ …).
func assignTel(c *graph.Contact, p *property, label string, free func(string) bool) string {
	v := unescapeText(p.Value)
	if hasScheme(v) {
		if !strings.HasPrefix(strings.ToLower(v), "tel:") {
			return ""
		}
		v = v[4:]
	}
	if v == "" {
		return ""
	}
	t := p.types()
	switch label {
	case "mobile", "iphone":
		t["cell"] = true
	case "home", "work":
		t[label] = true
	case "homefax", "workfax", "otherfax", "pager", "other", "main":
		return ""
	}
	for _, s := range telSpecial {
		if t[s] {
			return ""
		}
	}
	for k := range t {
		if strings.HasPrefix(k, "x-") {
			return "" // X-EVOLUTION-ASSISTANT and the like: Graph has no slot
		}
	}
	switch {
	case t["cell"] || t["iphone"] || t["mobile"]:
		if free("mobile") {
			c.MobilePhone = v
			return "mobile"
		}
	case t["home"] && !t["work"]:
		if free("hphone") {
			c.HomePhones = append(c.HomePhones, v)
			return "hphone"
		}
	default: // work, voice or untyped
		if free("bphone") {
			c.BusinessPhones = append(c.BusinessPhones, v)
			return "bphone"
		}
	}
	return ""
}

// adrSlot is the address slot an ADR (or the 3.0 LABEL formatting it) of
// TYPE values t and Apple label word w maps to.
func adrSlot(t map[string]bool, w string) string {
	switch {
	case t["work"] || w == "work":
		return "adr.work"
	case t["home"] || w == "home":
		return "adr.home"
	}
	return "adr.other"
}

func assignAdr(c *graph.Contact, p *property, labels map[string]string, free func(string) bool) string {
	slot := adrSlot(p.types(), appleLabel(labels[strings.ToLower(p.Group)]))
	if !free(slot) {
		return ""
	}
	raw := splitEscaped(p.Value, ';')
	for len(raw) < 7 {
		raw = append(raw, "")
	}
	a := &graph.PhysicalAddress{
		Street:          strings.Join(list(raw[2]), "\n"),
		City:            unescapeText(raw[3]),
		State:           unescapeText(raw[4]),
		PostalCode:      unescapeText(raw[5]),
		CountryOrRegion: unescapeText(raw[6]),
	}
	if a.IsZero() {
		a = nil
	}
	*addrField(c, slot) = a
	return slot
}

func assignRelated(c *graph.Contact, slot, v string, free func(string) bool) string {
	if slot == "" || v == "" || !free(slot) {
		return ""
	}
	if slot == "child" {
		c.Children = append(c.Children, v)
	} else {
		*scalarSlots[slot].field(c) = v
	}
	return slot
}

// decodePhoto reads an inline PHOTO (3.0 ENCODING=b, 2.1 BASE64, 4.0 data:
// URI); it returns nil for a remote URI, which stays an extra, unfetched.
func decodePhoto(p *property) (*graph.Photo, error) {
	v := strings.TrimSpace(p.Value)
	var data, ct string
	switch {
	case strings.HasPrefix(strings.ToLower(v), "data:"):
		meta, d, ok := strings.Cut(v[5:], ",")
		if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			return nil, nil
		}
		ct, data = meta[:len(meta)-len(";base64")], d
	case strings.EqualFold(first(p.param("ENCODING")), "b"):
		data = v
		ct = first(p.param("MEDIATYPE"))
		if ct == "" {
			if t := first(p.param("TYPE")); t != "" {
				ct = strings.ToLower(t)
				if !strings.Contains(ct, "/") {
					ct = "image/" + ct
				}
			}
		}
	default:
		return nil, nil
	}
	data = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1 // folding leftovers in 2.1 exports
		}
		return r
	}, data)
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(data, "=")); err != nil {
			return nil, invalid("PHOTO: bad base64")
		}
	}
	if len(b) == 0 {
		return nil, nil
	}
	if s := sniffImage(b); s != "" {
		ct = s
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &graph.Photo{ContentType: strings.ToLower(ct), Data: b}, nil
}

// ownedParams are parameters a slot regenerates from Graph on output.
var ownedParams = map[string][]string{
	"email": {"X-MS-NAME"},
	"note":  {"X-MS-NEWLINE"},
	"bday":  {"X-APPLE-OMIT-YEAR"},
	"photo": {"ENCODING", "VALUE", "TYPE", "MEDIATYPE"},
}

// strip returns a copy of p without its value and owned parameters.
func strip(p *property, slot string) *property {
	t := p.clone()
	t.Value = ""
	for _, n := range ownedParams[slot] {
		t.dropParam(n)
	}
	return t
}

// renderSlot fills template t (already stripped) with Graph's value of slot#idx.
func renderSlot(t *property, slot string, idx int, c *graph.Contact, ph *graph.Photo, fam int) *property {
	p := t.clone()
	switch slot {
	case "n":
		p.Value = joinStructured([]string{c.Surname, c.GivenName, c.MiddleName, c.Title, c.Generation}, 5)
	case "org":
		p.Value = joinStructured([]string{c.CompanyName, c.Department}, 1)
	case "yn":
		p.Value = joinStructured([]string{c.YomiSurname, c.YomiGivenName, "", "", ""}, 5)
	case "nick":
		p.Value = joinList(strings.Split(c.NickName, ","))
	case "url":
		p.Value = escapeURI(c.BusinessHomePage)
	case "note":
		notes := c.PersonalNotes
		p.Value = escapeText(notes)
		// Every line break a CRLF: say so, for Parse to restore them.
		if n := strings.Count(notes, "\r\n"); n > 0 && n == strings.Count(notes, "\n") && n == strings.Count(notes, "\r") {
			p.Params = append(p.Params, param{Name: "X-MS-NEWLINE", Values: []string{"CRLF"}})
		}
	case "email":
		if idx < len(c.EmailAddresses) {
			e := c.EmailAddresses[idx]
			p.Value = escapeText(e.Address)
			if e.Name != "" && e.Name != e.Address {
				p.Params = append(p.Params, param{Name: "X-MS-NAME", Values: []string{e.Name}})
			}
		}
	case "mobile", "bphone", "hphone":
		v := c.MobilePhone
		if slot != "mobile" {
			if l := *listField(c, slot); idx < len(l) {
				v = l[idx]
			}
		}
		if strings.EqualFold(first(p.param("VALUE")), "uri") {
			p.Value = "tel:" + v
		} else {
			p.Value = escapeText(v)
		}
	case "im":
		if idx < len(c.IMAddresses) {
			v := c.IMAddresses[idx]
			if p.is("IMPP") {
				p.Value = escapeURI(v)
			} else {
				p.Value = escapeText(v)
			}
		}
	case "child":
		if idx < len(c.Children) {
			p.Value = escapeText(c.Children[idx])
		}
	case "cat":
		p.Value = joinList(c.Categories)
	case "adr.work", "adr.home", "adr.other":
		a := *addrField(c, slot)
		if a == nil {
			a = &graph.PhysicalAddress{}
		}
		p.Value = joinStructured([]string{"", "", a.Street, a.City, a.State, a.PostalCode, a.CountryOrRegion}, 7)
	case "bday":
		d, _ := graphDate(c.Birthday)
		switch {
		case fam == 4 && d.Year == noYear:
			p.Value = fmt.Sprintf("--%02d%02d", d.Month, d.Day)
		case fam == 4:
			p.Value = fmt.Sprintf("%04d%02d%02d", d.Year, d.Month, d.Day)
		default:
			if d.Year == noYear {
				p.Params = append(p.Params, param{Name: "X-APPLE-OMIT-YEAR", Values: []string{fmt.Sprint(noYear)}})
			}
			p.Value = d.String()
		}
	case "photo":
		if ph == nil {
			break
		}
		b64 := base64.StdEncoding.EncodeToString(ph.Data)
		ct := strings.ToLower(ph.ContentType)
		if ct == "" {
			ct = "image/jpeg"
		}
		if fam == 4 {
			p.Value = "data:" + ct + ";base64," + b64
		} else {
			p.Params = append(p.Params,
				param{Name: "ENCODING", Values: []string{"b"}},
				param{Name: "TYPE", Values: []string{strings.ToUpper(mediaSubtype(ct))}})
			p.Value = b64
		}
	default:
		if s, ok := scalarSlots[slot]; ok {
			p.Value = escapeText(*s.field(c))
		}
	}
	return p
}

// defaultProps renders slot#idx with no template. newGroup, when non-nil,
// names the item group a 3.0 related name needs (nil: "item").
func defaultProps(c *graph.Contact, ph *graph.Photo, slot string, idx int, fam int, newGroup func() string) []*property {
	typed := func(name string, t3, t4 string) *property {
		p := &property{Name: name}
		if fam == 4 && name == "TEL" {
			p.Params = append(p.Params, param{Name: "VALUE", Values: []string{"text"}})
		}
		t := t3
		if fam == 4 {
			t = t4
		}
		if t != "" {
			p.Params = append(p.Params, param{Name: "TYPE", Values: strings.Split(t, ",")})
		}
		return p
	}
	var base *property
	switch slot {
	case "n":
		base = &property{Name: "N"}
	case "org":
		base = &property{Name: "ORG"}
	case "cat":
		base = &property{Name: "CATEGORIES"}
	case "bday":
		base = &property{Name: "BDAY"}
	case "photo":
		base = &property{Name: "PHOTO"}
	case "im":
		base = &property{Name: "IMPP"}
	case "email":
		base = typed("EMAIL", "INTERNET", "")
	case "mobile":
		base = typed("TEL", "CELL", "cell")
	case "bphone":
		base = typed("TEL", "WORK,VOICE", "work,voice")
	case "hphone":
		base = typed("TEL", "HOME,VOICE", "home,voice")
	case "adr.work":
		base = typed("ADR", "WORK", "work")
	case "adr.home":
		base = typed("ADR", "HOME", "home")
	case "adr.other":
		base = &property{Name: "ADR"}
	case "url":
		base = typed("URL", "WORK", "work")
	case "manager", "assistant", "spouse", "child":
		if fam == 4 {
			base = &property{Name: "RELATED", Params: []param{
				{Name: "TYPE", Values: []string{related4Types[slot]}},
				{Name: "VALUE", Values: []string{"text"}}}}
			break
		}
		g := "item"
		if newGroup != nil {
			g = newGroup()
		}
		base = &property{Group: g, Name: "X-ABRELATEDNAMES"}
		p := renderSlot(base, slot, idx, c, ph, fam)
		return []*property{p, {Group: g, Name: "X-ABLabel", Value: relatedLabels[slot]}}
	default:
		s, ok := scalarSlots[slot]
		if !ok {
			return nil
		}
		base = &property{Name: s.prop}
	}
	return []*property{renderSlot(base, slot, idx, c, ph, fam)}
}

// Render renders a Graph contact and its extras as a vCard of version "3.0"
// (also for "") or "4.0". Extras that cannot be decoded are ignored: the
// Graph data is still served. Output is CRLF, folded at 75 octets.
func Render(m *Mapped, version string) ([]byte, error) {
	if m == nil {
		return nil, errors.New("vcardmap: Render of nil")
	}
	var fam int
	switch version {
	case "", "3.0":
		fam, version = 3, "3.0"
	case "4.0":
		fam = 4
	default:
		return nil, fmt.Errorf("vcardmap: cannot render vCard version %q", version)
	}
	c := &m.Contact
	ex, err := decodeExtras(m.Extras)
	if err != nil {
		ex = &extras{fam: fam}
	}
	cross := ex.fam != fam

	// A template is stale when Graph's value of its slot changed since the
	// extras were written (Outlook edits win), or when it cannot be carried
	// into another version. Every property in the group (itemN.) of a stale
	// template goes with it, so an email deleted in Outlook takes its
	// X-ABLabel along rather than leaving it on nothing.
	fresh := map[string]bool{}
	for slot, fp := range ex.fps {
		fresh[slot] = fp == fingerprint(c, m.Photo, slot)
	}
	stale := func(r record) bool {
		return !fresh[r.slot] || cross && relatedSlot(r.slot) != ""
	}
	dropped := map[string]bool{}
	for _, r := range ex.recs {
		if r.slot != "" && stale(r) && r.p.Group != "" {
			dropped[strings.ToLower(r.p.Group)] = true
		}
	}

	// Kind and Members win over the extras' only when they differ.
	var exKind string
	var exMembers []string
	for _, r := range ex.recs {
		if r.slot == "" && (r.p.is("KIND") || r.p.is("X-ADDRESSBOOKSERVER-KIND")) && exKind == "" {
			exKind = strings.ToLower(strings.TrimSpace(unescapeText(r.p.Value)))
		}
		if r.slot == "" && (r.p.is("MEMBER") || r.p.is("X-ADDRESSBOOKSERVER-MEMBER")) {
			exMembers = append(exMembers, r.p.Value)
		}
	}
	overrideKind := (m.Kind != "" || len(m.Members) > 0) && (m.Kind != exKind || !slices.Equal(m.Members, exMembers))

	var to4 map[string]*property // Apple item groups served as one 4.0 property
	if cross && fam == 4 {
		to4 = fourForms(ex.recs)
	}
	var body, pending []*property
	covered := map[string]map[int]bool{}
	groups := map[string]bool{}
	for _, r := range ex.recs {
		g := strings.ToLower(r.p.Group)
		if g != "" && dropped[g] {
			continue
		}
		if q, ok := to4[g]; ok && g != "" {
			if q != nil {
				body = append(body, q)
				to4[g] = nil // the label line of the group adds nothing
			}
			continue
		}
		if r.slot == "" {
			if r.anchor != "" && !fresh[r.anchor] {
				continue
			}
			if overrideKind && (r.p.is("KIND") || r.p.is("X-ADDRESSBOOKSERVER-KIND") || r.p.is("MEMBER") || r.p.is("X-ADDRESSBOOKSERVER-MEMBER")) {
				continue
			}
			p := r.p
			if cross {
				if fam == 3 && p.Group == "" && appleForm(p, "item") != nil {
					pending = append(pending, p) // needs an item group: after the others are known
					continue
				}
				p = convert(p, fam)
			}
			body = append(body, p)
			continue
		}
		if stale(r) {
			continue
		}
		var p *property
		switch {
		case r.raw && !cross:
			p = r.p
		case r.raw:
			p = renderSlot(convert(strip(r.p, r.slot), fam), r.slot, r.idx, c, m.Photo, fam)
		case cross:
			p = renderSlot(convert(r.p, fam), r.slot, r.idx, c, m.Photo, fam)
		default:
			p = renderSlot(r.p, r.slot, r.idx, c, m.Photo, fam)
		}
		if covered[r.slot] == nil {
			covered[r.slot] = map[int]bool{}
		}
		covered[r.slot][r.idx] = true
		if r.slot == "yn" { // one phonetic N carries both yomi name fields
			covered["ysur"] = map[int]bool{0: true}
			covered["ygiven"] = map[int]bool{0: true}
		}
		body = append(body, p)
	}
	for _, p := range body {
		if p.Group != "" {
			groups[strings.ToLower(p.Group)] = true
		}
	}
	next := 1
	newGroup := func() string {
		for groups[fmt.Sprintf("item%d", next)] {
			next++
		}
		g := fmt.Sprintf("item%d", next)
		groups[g] = true
		return g
	}
	for _, p := range pending {
		body = append(body, appleForm(p, newGroup())...)
	}
	// Graph's own values rendered by default come before the records, so
	// that when a card also carries an extra of the same kind (a second
	// NOTE, a 4th EMAIL, another cell phone), parsing the served card maps
	// Graph's value first again and never swaps an extra into Graph.
	var head, defaults []*property
	for _, slot := range slotOrder {
		for i := range defaultCount(c, m.Photo, slot, fam) {
			if covered[slot][i] {
				continue
			}
			if slot == "fn" || slot == "n" {
				head = append(head, defaultProps(c, m.Photo, slot, i, fam, newGroup)...)
				continue
			}
			defaults = append(defaults, defaultProps(c, m.Photo, slot, i, fam, newGroup)...)
		}
	}
	body = append(append(head, defaults...), body...)
	if overrideKind {
		kn, mn := "X-ADDRESSBOOKSERVER-KIND", "X-ADDRESSBOOKSERVER-MEMBER"
		if fam == 4 {
			kn, mn = "KIND", "MEMBER"
		}
		if m.Kind != "" {
			body = append(body, &property{Name: kn, Value: escapeText(m.Kind)})
		}
		for _, v := range m.Members {
			body = append(body, &property{Name: mn, Value: oneLine(v)})
		}
	}

	var b bytes.Buffer
	writeFolded(&b, "BEGIN:VCARD")
	writeFolded(&b, "VERSION:"+version)
	writeFolded(&b, "PRODID:-//contactsdav//vcardmap//EN")
	uid := m.UID
	if uid == "" && c.ID != "" {
		uid = UIDFromID(c.ID)
	}
	if uid != "" {
		writeFolded(&b, "UID:"+oneLine(uid))
	}
	for _, p := range body {
		writeFolded(&b, stripControls(contentLine(p)))
	}
	if t, err := time.Parse(time.RFC3339Nano, c.LastModifiedDateTime); err == nil {
		writeFolded(&b, "REV:"+t.UTC().Format("20060102T150405Z"))
	}
	writeFolded(&b, "END:VCARD")
	return b.Bytes(), nil
}

// convert carries a property to the other vCard version: Apple's group
// properties and vCard 4.0's KIND/MEMBER are swapped, TYPE=pref and PREF=1
// likewise, and a 4.0 TEL's VALUE parameter is dropped for 3.0.
func convert(p *property, fam int) *property {
	q := p.clone()
	rename := map[string]string{
		"KIND": "X-ADDRESSBOOKSERVER-KIND", "MEMBER": "X-ADDRESSBOOKSERVER-MEMBER",
	}
	if fam == 4 {
		rename = map[string]string{
			"X-ADDRESSBOOKSERVER-KIND": "KIND", "X-ADDRESSBOOKSERVER-MEMBER": "MEMBER",
		}
	}
	if n, ok := rename[strings.ToUpper(q.Name)]; ok {
		q.Name = n
	}
	if fam == 4 {
		pref := false
		for i := range q.Params {
			pa := &q.Params[i]
			if !strings.EqualFold(pa.Name, "TYPE") {
				continue
			}
			var keep []string
			for _, v := range pa.Values {
				if strings.EqualFold(v, "pref") {
					pref = true
				} else {
					keep = append(keep, v)
				}
			}
			pa.Values = keep
		}
		out := q.Params[:0]
		for _, pa := range q.Params {
			if len(pa.Values) > 0 {
				out = append(out, pa)
			}
		}
		q.Params = out
		if pref && !q.hasParam("PREF") {
			q.Params = append(q.Params, param{Name: "PREF", Values: []string{"1"}})
		}
		return q
	}
	if q.hasParam("PREF") {
		q.dropParam("PREF")
		q.Params = append(q.Params, param{Name: "TYPE", Values: []string{"pref"}})
	}
	if q.is("TEL") {
		q.dropParam("VALUE")
	}
	return q
}

// appleForm returns the 3.0 form Apple and DAVx5 read for a 4.0-only
// extra (clients.md §3.4): ANNIVERSARY becomes X-ABDATE and a text RELATED
// becomes X-ABRELATEDNAMES, each labelled in item group g; nil for others.
func appleForm(p *property, g string) []*property {
	var main *property
	var label string
	switch {
	case p.is("ANNIVERSARY"):
		d, ok := vcardDate(p)
		if !ok {
			return nil
		}
		main = &property{Group: g, Name: "X-ABDATE"}
		if d.Year == 0 {
			d.Year = noYear
			main.Params = []param{{Name: "X-APPLE-OMIT-YEAR", Values: []string{fmt.Sprint(noYear)}}}
		}
		main.Value = d.String()
		label = "_$!<Anniversary>!$_"
	case p.is("RELATED"):
		if vt := strings.ToLower(first(p.param("VALUE"))); vt != "text" && (vt != "" || hasScheme(p.Value)) {
			return nil
		}
		types := p.param("TYPE")
		if len(types) != 1 {
			return nil
		}
		main = &property{Group: g, Name: "X-ABRELATEDNAMES", Value: p.Value}
		word := strings.ToLower(strings.TrimPrefix(strings.ToLower(types[0]), "x-"))
		switch word {
		case "friend", "parent", "partner", "spouse", "child", "manager", "assistant",
			"father", "mother", "brother", "sister":
			label = "_$!<" + strings.ToUpper(word[:1]) + word[1:] + ">!$_"
		default:
			label = escapeText(types[0])
		}
	default:
		return nil
	}
	for _, pa := range p.Params {
		switch strings.ToUpper(pa.Name) {
		case "TYPE", "VALUE", "PREF":
		default:
			main.Params = append(main.Params, pa)
		}
	}
	return []*property{main, {Group: g, Name: "X-ABLabel", Value: label}}
}

// relatedTypes4 are the RFC 6350 RELATED types an Apple label maps to
// unchanged (lower-cased), plus the two x-names this package writes.
var relatedTypes4 = map[string]string{
	"friend": "friend", "parent": "parent", "spouse": "spouse", "child": "child",
	"sibling": "sibling", "manager": "x-manager", "assistant": "x-assistant",
}

// fourForms finds the Apple item groups that are exactly an extra X-ABDATE
// labelled Anniversary or an extra X-ABRELATEDNAMES with a label RFC 6350
// has a RELATED type for, and returns their 4.0 form (ANNIVERSARY, RELATED)
// by lower-cased group name: the inverse of appleForm.
func fourForms(recs []record) map[string]*property {
	members := map[string][]record{}
	for _, r := range recs {
		if r.p.Group != "" {
			g := strings.ToLower(r.p.Group)
			members[g] = append(members[g], r)
		}
	}
	out := map[string]*property{}
	for g, rs := range members {
		if len(rs) != 2 {
			continue
		}
		main, label := rs[0], rs[1]
		if main.p.is("X-ABLabel") {
			main, label = label, main
		}
		if main.slot != "" || !label.p.is("X-ABLabel") || label.slot != "" {
			continue
		}
		word := appleLabel(unescapeText(label.p.Value))
		q := &property{}
		switch {
		case main.p.is("X-ABDATE") && word == "anniversary":
			d, ok := vcardDate(main.p)
			if !ok {
				continue
			}
			q.Name = "ANNIVERSARY"
			if d.Year == 0 {
				q.Value = fmt.Sprintf("--%02d%02d", d.Month, d.Day)
			} else {
				q.Value = fmt.Sprintf("%04d%02d%02d", d.Year, d.Month, d.Day)
			}
		case main.p.is("X-ABRELATEDNAMES") && relatedTypes4[word] != "":
			q.Name, q.Value = "RELATED", main.p.Value
			q.Params = []param{{Name: "TYPE", Values: []string{relatedTypes4[word]}}, {Name: "VALUE", Values: []string{"text"}}}
		default:
			continue
		}
		for _, pa := range convert(main.p, 4).Params {
			switch strings.ToUpper(pa.Name) {
			case "X-APPLE-OMIT-YEAR", "TYPE", "VALUE":
			default:
				q.Params = append(q.Params, pa)
			}
		}
		out[g] = q
	}
	return out
}

// UIDFromID returns a stable UID for a contact created in Outlook: a name-based
// (version 5 style, SHA-1) UUID of its Graph id, so every server instance
// derives the same one.
func UIDFromID(graphID string) string {
	h := sha1.Sum([]byte("contactsdav/graph-id\x00" + graphID))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
