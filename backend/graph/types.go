// Package graph is a typed client of the Microsoft Graph v1.0 contacts API:
// contact folders (with childFolders at any depth), contacts, per-folder delta,
// single-value extended properties, contact photos and JSON $batch, with
// OAuth2 bearer auth, @odata.nextLink paging, Retry-After aware retries and at
// most four requests in flight per mailbox.
//
// It knows nothing of vCards: the wire types below are the Graph resources as
// documented at https://learn.microsoft.com/graph/api/resources/contact.
package graph

import "strings"

// Contact is the Graph v1.0 contact resource. Fields tagged omitempty are left
// out of a POST body when empty; updates go through a Patch, which can also
// clear a field (JSON null) and so cannot be expressed with this struct alone.
type Contact struct {
	ODataETag            string `json:"@odata.etag,omitempty"`
	ID                   string `json:"id,omitempty"`
	ChangeKey            string `json:"changeKey,omitempty"`
	CreatedDateTime      string `json:"createdDateTime,omitempty"`
	LastModifiedDateTime string `json:"lastModifiedDateTime,omitempty"`
	ParentFolderID       string `json:"parentFolderId,omitempty"`

	DisplayName     string `json:"displayName,omitempty"`
	GivenName       string `json:"givenName,omitempty"`
	MiddleName      string `json:"middleName,omitempty"`
	Surname         string `json:"surname,omitempty"`
	Title           string `json:"title,omitempty"`      // honorific prefix
	Generation      string `json:"generation,omitempty"` // honorific suffix
	Initials        string `json:"initials,omitempty"`
	NickName        string `json:"nickName,omitempty"`
	FileAs          string `json:"fileAs,omitempty"`
	YomiGivenName   string `json:"yomiGivenName,omitempty"`
	YomiSurname     string `json:"yomiSurname,omitempty"`
	YomiCompanyName string `json:"yomiCompanyName,omitempty"`

	EmailAddresses []EmailAddress `json:"emailAddresses,omitempty"` // at most 3
	BusinessPhones []string       `json:"businessPhones,omitempty"` // at most 2
	HomePhones     []string       `json:"homePhones,omitempty"`     // at most 2
	MobilePhone    string         `json:"mobilePhone,omitempty"`
	IMAddresses    []string       `json:"imAddresses,omitempty"` // at most 3

	HomeAddress     *PhysicalAddress `json:"homeAddress,omitempty"`
	BusinessAddress *PhysicalAddress `json:"businessAddress,omitempty"`
	OtherAddress    *PhysicalAddress `json:"otherAddress,omitempty"`

	CompanyName      string `json:"companyName,omitempty"`
	Department       string `json:"department,omitempty"`
	JobTitle         string `json:"jobTitle,omitempty"`
	OfficeLocation   string `json:"officeLocation,omitempty"`
	Profession       string `json:"profession,omitempty"`
	Manager          string `json:"manager,omitempty"`
	AssistantName    string `json:"assistantName,omitempty"`
	BusinessHomePage string `json:"businessHomePage,omitempty"`

	// Birthday is a DateTimeOffset on the wire ("1974-07-22T11:59:00Z"); the
	// documentation's examples also show a bare date, so it stays a string
	// here and vcardmap owns the date rule.
	Birthday      string   `json:"birthday,omitempty"`
	SpouseName    string   `json:"spouseName,omitempty"`
	Children      []string `json:"children,omitempty"`
	PersonalNotes string   `json:"personalNotes,omitempty"`
	Categories    []string `json:"categories,omitempty"`

	// SingleValueExtendedProperties is only present when asked for with
	// $expand=singleValueExtendedProperties($filter=...).
	SingleValueExtendedProperties []ExtendedProperty `json:"singleValueExtendedProperties,omitempty"`

	// Removed is set on a delta tombstone: {"id":…,"@removed":{"reason":"deleted"}}.
	Removed *Removed `json:"@removed,omitempty"`
}

// EmailAddress is Graph's emailAddress complex type.
type EmailAddress struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
}

// PhysicalAddress is Graph's physicalAddress complex type; an empty one is {}.
type PhysicalAddress struct {
	Street          string `json:"street,omitempty"` // lines separated by "\n"
	City            string `json:"city,omitempty"`
	State           string `json:"state,omitempty"`
	PostalCode      string `json:"postalCode,omitempty"`
	CountryOrRegion string `json:"countryOrRegion,omitempty"`
}

// IsZero reports whether the address has no field set (Graph's {}).
func (a *PhysicalAddress) IsZero() bool {
	return a == nil || *a == PhysicalAddress{}
}

// ExtendedProperty is a single-value extended property such as
// {"id":"String {guid} Name vcard-uid","value":"…"}.
type ExtendedProperty struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Removed is the @removed annotation of a delta tombstone.
type Removed struct {
	Reason string `json:"reason"`
}

// ContactFolder is Graph's contactFolder resource.
type ContactFolder struct {
	ID             string `json:"id,omitempty"`
	DisplayName    string `json:"displayName,omitempty"`
	ParentFolderID string `json:"parentFolderId,omitempty"`
}

// ExtendedPropertyValue returns the value of the single-value extended
// property with the given id. Ids compare case-insensitively: Graph may echo
// the GUID or type in another case than it was written [inf].
func (c *Contact) ExtendedPropertyValue(id string) (string, bool) {
	for _, p := range c.SingleValueExtendedProperties {
		if strings.EqualFold(p.ID, id) {
			return p.Value, true
		}
	}
	return "", false
}
