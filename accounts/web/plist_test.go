package web

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parsePlist decodes Apple property-list XML into Go values:
// map[string]any, []any, string, int64, bool, []byte.
func parsePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("root is <%s>", se.Name.Local)
			}
			v, _, err := plistValue(d)
			return v, err
		}
	}
}

// plistValue reads the next value; end reports a closing tag instead.
func plistValue(d *xml.Decoder) (v any, end bool, err error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, true, fmt.Errorf("unexpected end")
		}
		if err != nil {
			return nil, false, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil, true, nil
		case xml.StartElement:
			switch t.Name.Local {
			case "dict":
				m := map[string]any{}
				for {
					var key string
					ktok, err := nextStart(d)
					if err != nil {
						return nil, false, err
					}
					if ktok == nil {
						return m, false, nil
					}
					if ktok.Name.Local != "key" {
						return nil, false, fmt.Errorf("dict: <%s> where <key> belongs", ktok.Name.Local)
					}
					if err := d.DecodeElement(&key, ktok); err != nil {
						return nil, false, err
					}
					val, end, err := plistValue(d)
					if err != nil || end {
						return nil, false, fmt.Errorf("dict key %q without value: %v", key, err)
					}
					if _, dup := m[key]; dup {
						return nil, false, fmt.Errorf("duplicate key %q", key)
					}
					m[key] = val
				}
			case "array":
				var a []any
				for {
					val, end, err := plistValue(d)
					if err != nil {
						return nil, false, err
					}
					if end {
						return a, false, nil
					}
					a = append(a, val)
				}
			case "string", "integer", "data":
				var s string
				if err := d.DecodeElement(&s, &t); err != nil {
					return nil, false, err
				}
				switch t.Name.Local {
				case "string":
					return s, false, nil
				case "integer":
					n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
					return n, false, err
				default:
					b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
					return b, false, err
				}
			case "true", "false":
				if err := d.Skip(); err != nil {
					return nil, false, err
				}
				return t.Name.Local == "true", false, nil
			default:
				return nil, false, fmt.Errorf("unknown plist element <%s>", t.Name.Local)
			}
		}
	}
}

// nextStart returns the next start element, or nil at the enclosing end.
func nextStart(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		}
	}
}
