package graph

import (
	"slices"
	"strings"
)

// NewPatch returns the smallest PATCH body that turns old into new:
//
//   - a string property that differs is sent with its new value, or JSON
//     null when new clears it;
//   - a collection that differs is sent whole (PATCH replaces collections),
//     [] when new clears it;
//   - an address that differs is sent whole with all five fields, an
//     emptied one as "" (a cleared address is all five set to ""). Sending
//     every field makes the result the same whether Graph replaces the
//     address or merges its fields, which the documentation leaves open;
//   - displayName is always sent, because Graph regenerates it from the
//     name parts when they change without it;
//   - a single-value extended property of new whose value differs from
//     old's (or that old lacks) is sent. One that new lacks is left alone:
//     Graph documents no way to delete an extended property, so to empty
//     one put it in new with an empty value.
//
// Read-only properties (id, changeKey, timestamps, parentFolderId) are
// never included. A nil old is taken as an empty contact.
func NewPatch(old, new *Contact) Patch {
	if old == nil {
		old = &Contact{}
	}
	if new == nil {
		new = &Contact{}
	}
	p := Patch{}
	str := func(name, a, b string) {
		if a != b {
			if b == "" {
				p[name] = nil
			} else {
				p[name] = b
			}
		}
	}
	strs := func(name string, a, b []string) {
		if !slices.Equal(a, b) {
			p[name] = nonNil(b)
		}
	}
	addr := func(name string, a, b *PhysicalAddress) {
		if a.IsZero() && b.IsZero() {
			return
		}
		if a != nil && b != nil && *a == *b {
			return
		}
		var v PhysicalAddress
		if b != nil {
			v = *b
		}
		p[name] = map[string]any{
			"street":          v.Street,
			"city":            v.City,
			"state":           v.State,
			"postalCode":      v.PostalCode,
			"countryOrRegion": v.CountryOrRegion,
		}
	}

	if new.DisplayName == "" {
		p["displayName"] = nil
	} else {
		p["displayName"] = new.DisplayName
	}
	str("givenName", old.GivenName, new.GivenName)
	str("middleName", old.MiddleName, new.MiddleName)
	str("surname", old.Surname, new.Surname)
	str("title", old.Title, new.Title)
	str("generation", old.Generation, new.Generation)
	str("initials", old.Initials, new.Initials)
	str("nickName", old.NickName, new.NickName)
	str("fileAs", old.FileAs, new.FileAs)
	str("yomiGivenName", old.YomiGivenName, new.YomiGivenName)
	str("yomiSurname", old.YomiSurname, new.YomiSurname)
	str("yomiCompanyName", old.YomiCompanyName, new.YomiCompanyName)

	if !slices.Equal(old.EmailAddresses, new.EmailAddresses) {
		if new.EmailAddresses == nil {
			p["emailAddresses"] = []EmailAddress{}
		} else {
			p["emailAddresses"] = new.EmailAddresses
		}
	}
	strs("businessPhones", old.BusinessPhones, new.BusinessPhones)
	strs("homePhones", old.HomePhones, new.HomePhones)
	str("mobilePhone", old.MobilePhone, new.MobilePhone)
	strs("imAddresses", old.IMAddresses, new.IMAddresses)

	addr("homeAddress", old.HomeAddress, new.HomeAddress)
	addr("businessAddress", old.BusinessAddress, new.BusinessAddress)
	addr("otherAddress", old.OtherAddress, new.OtherAddress)

	str("companyName", old.CompanyName, new.CompanyName)
	str("department", old.Department, new.Department)
	str("jobTitle", old.JobTitle, new.JobTitle)
	str("officeLocation", old.OfficeLocation, new.OfficeLocation)
	str("profession", old.Profession, new.Profession)
	str("manager", old.Manager, new.Manager)
	str("assistantName", old.AssistantName, new.AssistantName)
	str("businessHomePage", old.BusinessHomePage, new.BusinessHomePage)

	str("birthday", old.Birthday, new.Birthday)
	str("spouseName", old.SpouseName, new.SpouseName)
	strs("children", old.Children, new.Children)
	str("personalNotes", old.PersonalNotes, new.PersonalNotes)
	strs("categories", old.Categories, new.Categories)

	var props []ExtendedProperty
	for _, np := range new.SingleValueExtendedProperties {
		if ov, ok := old.ExtendedPropertyValue(np.ID); !ok || ov != np.Value {
			props = append(props, np)
		}
	}
	if len(props) > 0 {
		p["singleValueExtendedProperties"] = props
	}
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Keys returns the patch's property names, sorted, for logs and tests.
func (p Patch) Keys() []string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}
