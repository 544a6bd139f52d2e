package graphemu

import (
	"encoding/json"
	"testing"
)

func TestFilter(t *testing.T) {
	c := &contact{ID: "AAkALgAA", RegID: "AAMkAD", Folder: "F1", Props: map[string]json.RawMessage{
		"givenName":      mustJSON("Seán"),
		"surname":        mustJSON("O'Brien"),
		"emailAddresses": mustJSON([]emailOut{{Address: ptr("sob@x.example")}}),
	}, Ext: map[string]extProp{
		"string 0x10f3": {ID: "String 0x10F3", Value: "card.vcf"},
	}}
	tests := []struct {
		filter string
		want   bool
		status int // parse error status, 0 = parses
	}{
		{"givenName eq 'Seán'", true, 0},
		{"givenname eq 'seán'", true, 0},
		{"surname eq 'O''Brien'", true, 0},
		{"surname ne 'O''Brien'", false, 0},
		{"givenName eq 'Sean' or surname eq 'O''Brien'", true, 0},
		{"givenName eq 'Sean' and surname eq 'O''Brien'", false, 0},
		{"not (givenName eq 'Sean')", true, 0},
		{"middleName eq null", true, 0},
		{"parentFolderId eq 'F1'", true, 0},
		{"id eq 'AAMkAD'", true, 0},
		{"emailAddresses/any(a:a/address eq 'sob@x.example')", true, 0},
		{"emailAddresses/any(a: a/address eq 'other@x.example')", false, 0},
		{"singleValueExtendedProperties/Any(ep: ep/id eq 'String 0x10f3' and ep/value eq 'card.vcf')", true, 0},
		{"singleValueExtendedProperties/Any(ep: ep/id eq 'String 0x10f3' and ep/value eq 'other.vcf')", false, 0},
		{"startswith(givenName, 'S')", false, 501},
		{"givenName gt 'A'", false, 501},
		{"emailAddresses eq 'x'", false, 501},
		{"givenName eq 'unterminated", false, 400},
		{"givenName eq", false, 400},
		{"(givenName eq 'x'", false, 400},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, aerr := parseFilter(tt.filter, true)
			if tt.status != 0 {
				if aerr == nil || aerr.status != tt.status {
					t.Fatalf("error %v, want status %d", aerr, tt.status)
				}
				return
			}
			if aerr != nil {
				t.Fatal(aerr)
			}
			if got := f.eval(&filterEnv{c: c}); got != tt.want {
				t.Errorf("eval = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExpandParse(t *testing.T) {
	ep := extProp{ID: "String {00020329-0000-0000-C000-000000000046} Name vcard-uid", Value: "u"}
	tests := []struct {
		expand string
		ok     bool
		match  bool
		status int
	}{
		{"singleValueExtendedProperties($filter=id eq 'String {00020329-0000-0000-C000-000000000046} Name vcard-uid')", true, true, 0},
		{"singleValueExtendedProperties($filter=id eq 'String 0x3A24' or id eq 'String {00020329-0000-0000-c000-000000000046} Name vcard-uid')", true, true, 0},
		{"singleValueExtendedProperties($filter=id eq 'String 0x3A24')", true, false, 0},
		{"singleValueExtendedProperties", true, true, 0},
		{"photo", false, false, 501},
		{"singleValueExtendedProperties($select=id)", false, false, 501},
	}
	for _, tt := range tests {
		ok, f, aerr := parseExpand(tt.expand)
		if tt.status != 0 {
			if aerr == nil || aerr.status != tt.status {
				t.Errorf("%s: error %v, want %d", tt.expand, aerr, tt.status)
			}
			continue
		}
		if aerr != nil || ok != tt.ok {
			t.Errorf("%s: %v %v", tt.expand, ok, aerr)
			continue
		}
		if got := f == nil || f.eval(&filterEnv{ep: &ep}); got != tt.match {
			t.Errorf("%s: match %v, want %v", tt.expand, got, tt.match)
		}
	}
}
