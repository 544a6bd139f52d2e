package vcardmap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Equivalent reports whether two vCards are equivalent in the sense of the
// package documentation (same properties, parameters, groups and values;
// order, folding, escaping style, PRODID, REV and VERSION aside) and, when
// they are not, describes the first differences.
func Equivalent(a, b []byte) (bool, string) {
	ka, err := cardKeys(a)
	if err != nil {
		return false, "first card: " + err.Error()
	}
	kb, err := cardKeys(b)
	if err != nil {
		return false, "second card: " + err.Error()
	}
	// A UID the server adds to a card that had none is not a difference.
	if hasUID(ka) != hasUID(kb) {
		ka, kb = dropUID(ka), dropUID(kb)
	}
	var diffs []string
	i, j := 0, 0
	for i < len(ka) || j < len(kb) {
		switch {
		case j == len(kb) || i < len(ka) && ka[i] < kb[j]:
			diffs = append(diffs, "only in first: "+ka[i])
			i++
		case i == len(ka) || kb[j] < ka[i]:
			diffs = append(diffs, "only in second: "+kb[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(diffs) == 0 {
		return true, ""
	}
	if len(diffs) > 6 {
		diffs = append(diffs[:6], fmt.Sprintf("… %d more", len(diffs)-6))
	}
	return false, strings.Join(diffs, "\n")
}

// cardKeys returns the sorted normalised keys of a card's properties.
func cardKeys(data []byte) ([]string, error) {
	c, err := parseCard(data)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, p := range c.Props {
		if k, ok := propKey(p); ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// propKey normalises one property for Equivalent; ok is false for
// properties that do not count (PRODID, REV, empty values).
func propKey(p *property) (string, bool) {
	name := strings.ToUpper(p.Name)
	switch name {
	case "PRODID", "REV":
		return "", false
	case "X-ADDRESSBOOKSERVER-KIND":
		name = "KIND"
	case "X-ADDRESSBOOKSERVER-MEMBER":
		name = "MEMBER"
	}
	skip := map[string]bool{"CHARSET": true}
	var value string
	switch name {
	case "N", "ADR", "ORG":
		comps := components(p.Value)
		for len(comps) > 0 && comps[len(comps)-1] == "" {
			comps = comps[:len(comps)-1]
		}
		value = strings.Join(comps, "\x1f")
	case "CATEGORIES", "NICKNAME":
		elems := list(p.Value)
		if len(elems) == 1 && elems[0] == "" {
			elems = nil
		}
		value = strings.Join(elems, "\x1f")
	case "PHOTO":
		if ph, err := decodePhoto(p); err == nil && ph != nil {
			sum := sha256.Sum256(ph.Data)
			value = ph.ContentType + " " + hex.EncodeToString(sum[:])
			for _, n := range ownedParams["photo"] {
				skip[n] = true
			}
		} else {
			value = unescapeText(p.Value)
		}
	case "BDAY":
		if d, ok := vcardDate(p); ok {
			value = d.String()
			skip["X-APPLE-OMIT-YEAR"] = true
			skip["VALUE"] = true
		} else {
			value = unescapeText(p.Value)
		}
	default:
		value = unescapeText(p.Value)
	}
	if strings.Trim(value, "\x1f") == "" {
		return "", false
	}
	params := map[string]map[string]bool{}
	for _, pa := range p.Params {
		n := strings.ToUpper(pa.Name)
		if skip[n] {
			continue
		}
		vals := pa.Values
		if n == "PREF" {
			n, vals = "TYPE", []string{"pref"}
		}
		if params[n] == nil {
			params[n] = map[string]bool{}
		}
		for _, v := range vals {
			for _, s := range strings.Split(v, ",") {
				// A '"' can only be written as RFC 6868's ^' inside quotes.
				s = strings.ReplaceAll(strings.TrimSpace(s), `"`, "^'")
				params[n][strings.ToLower(s)] = true
			}
		}
	}
	var ps []string
	for n, vs := range params {
		var l []string
		for v := range vs {
			l = append(l, v)
		}
		sort.Strings(l)
		ps = append(ps, n+"="+strings.Join(l, ","))
	}
	sort.Strings(ps)
	g := strings.ToLower(p.Group)
	if g != "" {
		g += "."
	}
	return fmt.Sprintf("%s%s;%s:%q", g, name, strings.Join(ps, ";"), value), true
}

func hasUID(keys []string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, "UID;") {
			return true
		}
	}
	return false
}

func dropUID(keys []string) []string {
	var out []string
	for _, k := range keys {
		if !strings.HasPrefix(k, "UID;") {
			out = append(out, k)
		}
	}
	return out
}
