package graph

import (
	"encoding/json"
	"testing"
)

func TestNewPatch(t *testing.T) {
	base := func() *Contact {
		return &Contact{
			ID: "X", ChangeKey: "ck", DisplayName: "Ada Lovelace", GivenName: "Ada", Surname: "Lovelace",
			EmailAddresses: []EmailAddress{{Name: "Ada", Address: "ada@example.com"}},
			BusinessPhones: []string{"+44 1"},
			HomeAddress:    &PhysicalAddress{Street: "1 Road", City: "London"},
			Categories:     []string{"Friends"},
			SingleValueExtendedProperties: []ExtendedProperty{
				{ID: "String {11111111-0000-0000-0000-000000000000} Name vcard-uid", Value: "uid-1"},
			},
		}
	}
	tests := []struct {
		name string
		old  *Contact
		edit func(c *Contact)
		want string // JSON of the patch
	}{
		{"unchanged sends displayName only", base(), func(c *Contact) {},
			`{"displayName":"Ada Lovelace"}`},
		{"read-only fields ignored", base(), func(c *Contact) { c.ID, c.ChangeKey, c.ODataETag, c.LastModifiedDateTime = "Y", "ck2", `W/"x"`, "2026" },
			`{"displayName":"Ada Lovelace"}`},
		{"scalar changed", base(), func(c *Contact) { c.JobTitle = "Countess" },
			`{"displayName":"Ada Lovelace","jobTitle":"Countess"}`},
		{"scalar cleared is null", base(), func(c *Contact) { c.Surname = "" },
			`{"displayName":"Ada Lovelace","surname":null}`},
		{"empty displayName is null", base(), func(c *Contact) { c.DisplayName = "" },
			`{"displayName":null}`},
		{"array changed is sent whole", base(), func(c *Contact) {
			c.EmailAddresses = append(c.EmailAddresses, EmailAddress{Address: "a2@example.com"})
		}, `{"displayName":"Ada Lovelace","emailAddresses":[{"name":"Ada","address":"ada@example.com"},{"address":"a2@example.com"}]}`},
		{"array cleared is []", base(), func(c *Contact) { c.EmailAddresses, c.BusinessPhones, c.Categories = nil, nil, []string{} },
			`{"businessPhones":[],"categories":[],"displayName":"Ada Lovelace","emailAddresses":[]}`},
		{"array reordered counts as a change", base(), func(c *Contact) { c.BusinessPhones = []string{"+44 2", "+44 1"} },
			`{"businessPhones":["+44 2","+44 1"],"displayName":"Ada Lovelace"}`},
		{"address changed is sent with every field", base(), func(c *Contact) { c.HomeAddress = &PhysicalAddress{City: "Paris"} },
			`{"displayName":"Ada Lovelace","homeAddress":{"city":"Paris","countryOrRegion":"","postalCode":"","state":"","street":""}}`},
		{"address cleared is all empty fields", base(), func(c *Contact) { c.HomeAddress = nil },
			`{"displayName":"Ada Lovelace","homeAddress":{"city":"","countryOrRegion":"","postalCode":"","state":"","street":""}}`},
		{"empty address equals nil", base(), func(c *Contact) { c.BusinessAddress = &PhysicalAddress{} },
			`{"displayName":"Ada Lovelace"}`},
		{"address added", base(), func(c *Contact) { c.OtherAddress = &PhysicalAddress{Street: "a\nb", PostalCode: "1"} },
			`{"displayName":"Ada Lovelace","otherAddress":{"city":"","countryOrRegion":"","postalCode":"1","state":"","street":"a\nb"}}`},
		{"extended property value changed", base(), func(c *Contact) {
			c.SingleValueExtendedProperties = []ExtendedProperty{{ID: "String {11111111-0000-0000-0000-000000000000} Name vcard-uid", Value: "uid-2"}}
		}, `{"displayName":"Ada Lovelace","singleValueExtendedProperties":[{"id":"String {11111111-0000-0000-0000-000000000000} Name vcard-uid","value":"uid-2"}]}`},
		{"extended property id compared case-insensitively", base(), func(c *Contact) {
			c.SingleValueExtendedProperties = []ExtendedProperty{{ID: "string {11111111-0000-0000-0000-000000000000} Name vcard-uid", Value: "uid-1"}}
		}, `{"displayName":"Ada Lovelace"}`},
		{"extended property added, missing one kept", base(), func(c *Contact) {
			c.SingleValueExtendedProperties = []ExtendedProperty{{ID: PropHasPicture, Value: "true"}}
		}, `{"displayName":"Ada Lovelace","singleValueExtendedProperties":[{"id":"Boolean {00062004-0000-0000-C000-000000000046} Id 0x8015","value":"true"}]}`},
		{"nil old is an empty contact", nil, func(c *Contact) { c.SingleValueExtendedProperties = nil; c.HomeAddress = nil },
			`{"businessPhones":["+44 1"],"categories":["Friends"],"displayName":"Ada Lovelace","emailAddresses":[{"name":"Ada","address":"ada@example.com"}],"givenName":"Ada","surname":"Lovelace"}`},
		{"every scalar", &Contact{}, func(c *Contact) {
			*c = Contact{MiddleName: "m", Title: "t", Generation: "g", Initials: "i", NickName: "n", FileAs: "f",
				YomiGivenName: "yg", YomiSurname: "ys", YomiCompanyName: "yc", MobilePhone: "mp", CompanyName: "c",
				Department: "d", OfficeLocation: "o", Profession: "p", Manager: "mg", AssistantName: "a",
				BusinessHomePage: "http://x", Birthday: "1815-12-10T11:59:00Z", SpouseName: "s", PersonalNotes: "pn",
				HomePhones: []string{"h"}, IMAddresses: []string{"im"}, Children: []string{"ch"}}
		}, `{"assistantName":"a","birthday":"1815-12-10T11:59:00Z","businessHomePage":"http://x","children":["ch"],"companyName":"c","department":"d","displayName":null,"fileAs":"f","generation":"g","homePhones":["h"],"imAddresses":["im"],"initials":"i","manager":"mg","middleName":"m","mobilePhone":"mp","nickName":"n","officeLocation":"o","personalNotes":"pn","profession":"p","spouseName":"s","title":"t","yomiCompanyName":"yc","yomiGivenName":"yg","yomiSurname":"ys"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nw *Contact
			if tc.old != nil {
				cp := *tc.old
				nw = &cp
				if tc.old.HomeAddress != nil {
					a := *tc.old.HomeAddress
					nw.HomeAddress = &a
				}
			} else {
				nw = base()
			}
			tc.edit(nw)
			got, err := json.Marshal(NewPatch(tc.old, nw))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("patch = %s\nwant    %s", got, tc.want)
			}
		})
	}
}
