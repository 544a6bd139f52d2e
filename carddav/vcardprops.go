package carddav

import (
	"bytes"
	"strings"
)

// requestedCardProps reads the <C:prop name="…"/> children of an
// address-data request; nil means the whole card.
func requestedCardProps(el *element) []string {
	if el == nil || el.child(cardName("allprop")) != nil {
		return nil
	}
	var names []string
	for i := range el.Children {
		c := &el.Children[i]
		if c.XMLName == cardName("prop") {
			if n := c.attr("name"); n != "" {
				names = append(names, strings.ToUpper(n))
			}
		}
	}
	return names
}

// selectProperties keeps the named properties of a card (RFC 6352 §10.4.2)
// plus BEGIN, END and VERSION, which make it a vCard. It works on the raw
// lines, so the kept ones are returned byte for byte, folding included.
func selectProperties(card []byte, names []string) []byte {
	if len(names) == 0 {
		return card
	}
	keep := map[string]bool{"BEGIN": true, "END": true, "VERSION": true}
	for _, n := range names {
		keep[n] = true
	}
	var out bytes.Buffer
	keeping := false
	for rest := card; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if line[0] != ' ' && line[0] != '\t' { // a new logical line
			keeping = keep[propertyName(line)]
		}
		if keeping {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// propertyName returns a content line's upper-cased property name, without
// its group ("item1.TEL;TYPE=CELL:…" → "TEL").
func propertyName(line []byte) string {
	end := bytes.IndexAny(line, ";:")
	if end < 0 {
		end = len(line)
	}
	name := line[:end]
	if i := bytes.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return strings.ToUpper(strings.TrimSpace(string(name)))
}
