package vcardmap

// This file defines the Graph-backed "slots": each names the Graph field (or
// group of fields) one kind of vCard property maps to, how its value is
// fingerprinted, and how it is rendered by default.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// slotOrder lists every slot in the order defaults are rendered.
var slotOrder = []string{
	"fn", "n", "nick", "initials", "fileas", "ygiven", "ysur", "org", "yorg",
	"title", "role", "office", "email", "mobile", "bphone", "hphone", "im",
	"adr.work", "adr.home", "adr.other", "url", "bday",
	"manager", "assistant", "spouse", "child", "note", "cat", "photo",
}

// scalarSlots maps single-string slots to their property name and field.
var scalarSlots = map[string]struct {
	prop  string
	field func(c *graph.Contact) *string
}{
	"fn":        {"FN", func(c *graph.Contact) *string { return &c.DisplayName }},
	"nick":      {"NICKNAME", func(c *graph.Contact) *string { return &c.NickName }},
	"initials":  {"X-MS-INITIALS", func(c *graph.Contact) *string { return &c.Initials }},
	"fileas":    {"X-MS-FILEAS", func(c *graph.Contact) *string { return &c.FileAs }},
	"ygiven":    {"X-PHONETIC-FIRST-NAME", func(c *graph.Contact) *string { return &c.YomiGivenName }},
	"ysur":      {"X-PHONETIC-LAST-NAME", func(c *graph.Contact) *string { return &c.YomiSurname }},
	"yorg":      {"X-PHONETIC-ORG", func(c *graph.Contact) *string { return &c.YomiCompanyName }},
	"title":     {"TITLE", func(c *graph.Contact) *string { return &c.JobTitle }},
	"role":      {"ROLE", func(c *graph.Contact) *string { return &c.Profession }},
	"office":    {"X-MS-OFFICE", func(c *graph.Contact) *string { return &c.OfficeLocation }},
	"mobile":    {"TEL", func(c *graph.Contact) *string { return &c.MobilePhone }},
	"url":       {"URL", func(c *graph.Contact) *string { return &c.BusinessHomePage }},
	"manager":   {"", func(c *graph.Contact) *string { return &c.Manager }},
	"assistant": {"", func(c *graph.Contact) *string { return &c.AssistantName }},
	"spouse":    {"", func(c *graph.Contact) *string { return &c.SpouseName }},
	"note":      {"NOTE", func(c *graph.Contact) *string { return &c.PersonalNotes }},
}

// listField returns the string-list field of a list slot.
func listField(c *graph.Contact, slot string) *[]string {
	switch slot {
	case "bphone":
		return &c.BusinessPhones
	case "hphone":
		return &c.HomePhones
	case "im":
		return &c.IMAddresses
	case "child":
		return &c.Children
	case "cat":
		return &c.Categories
	}
	return nil
}

// addrField returns the address field of an adr.* slot.
func addrField(c *graph.Contact, slot string) **graph.PhysicalAddress {
	switch slot {
	case "adr.work":
		return &c.BusinessAddress
	case "adr.home":
		return &c.HomeAddress
	case "adr.other":
		return &c.OtherAddress
	}
	return nil
}

// slotLimit is how many values Graph holds in a list slot (children: any
// number).
var slotLimit = map[string]int{"email": 3, "bphone": 2, "hphone": 2, "im": 3, "child": math.MaxInt}

// slotCount is how many properties a slot renders to by default.
func slotCount(c *graph.Contact, ph *graph.Photo, slot string) int {
	switch slot {
	case "n":
		if c.Surname+c.GivenName+c.MiddleName+c.Title+c.Generation != "" {
			return 1
		}
		return 0
	case "org":
		if c.CompanyName+c.Department != "" {
			return 1
		}
		return 0
	case "email":
		return len(c.EmailAddresses)
	case "bday":
		if _, ok := graphDate(c.Birthday); ok {
			return 1
		}
		return 0
	case "photo":
		if ph != nil && len(ph.Data) > 0 {
			return 1
		}
		return 0
	case "cat":
		if len(c.Categories) > 0 {
			return 1
		}
		return 0
	}
	if f := listField(c, slot); f != nil {
		return len(*f)
	}
	if a := addrField(c, slot); a != nil {
		if (*a).IsZero() {
			return 0
		}
		return 1
	}
	if s, ok := scalarSlots[slot]; ok && *s.field(c) != "" {
		return 1
	}
	return 0
}

// defaultCount is how many properties Render writes for a slot the extras
// do not cover: slotCount, but FN (and N in 3.0) always, being required.
func defaultCount(c *graph.Contact, ph *graph.Photo, slot string, fam int) int {
	n := slotCount(c, ph, slot)
	if n == 0 && (slot == "fn" || slot == "n" && fam == 3) {
		n = 1
	}
	return n
}

// fingerprint hashes what Graph holds in a slot, normalised so that Graph's
// own reformatting (a birthday's time of day, {} for an empty address) does
// not count as a change. Email display names are left out: Graph may fill
// them in itself.
func fingerprint(c *graph.Contact, ph *graph.Photo, slot string) string {
	var parts []string
	switch slot {
	case "n":
		parts = []string{c.Surname, c.GivenName, c.MiddleName, c.Title, c.Generation}
	case "org":
		parts = []string{c.CompanyName, c.Department}
	case "yn":
		parts = []string{c.YomiSurname, c.YomiGivenName}
	case "email":
		for _, e := range c.EmailAddresses {
			parts = append(parts, e.Address)
		}
	case "bday":
		d, _ := graphDate(c.Birthday)
		parts = []string{d.String()}
	case "photo":
		if ph != nil && len(ph.Data) > 0 {
			sum := sha256.Sum256(ph.Data)
			parts = []string{strings.ToLower(ph.ContentType), hex.EncodeToString(sum[:])}
		}
	default:
		if f := listField(c, slot); f != nil {
			parts = *f
		} else if a := addrField(c, slot); a != nil {
			if !(*a).IsZero() {
				x := *a
				parts = []string{x.Street, x.City, x.State, x.PostalCode, x.CountryOrRegion}
			}
		} else if s, ok := scalarSlots[slot]; ok {
			parts = []string{*s.field(c)}
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x1f") + "\x1e" + fmt.Sprint(len(parts))))
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

// date is a calendar date; Year 0 means "no year".
type date struct{ Year, Month, Day int }

func (d date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// noYear is the year Apple (and Outlook) use for a birthday without one.
const noYear = 1604

// graphDate reads Graph's birthday: a DateTimeOffset whose nearest UTC day is
// the date (add 12h, take the date), or a bare date.
func graphDate(s string) (date, bool) {
	if s == "" {
		return date{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = t.UTC().Add(12 * time.Hour)
		return date{t.Year(), int(t.Month()), t.Day()}, true
	}
	if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		t = t.Add(12 * time.Hour)
		return date{t.Year(), int(t.Month()), t.Day()}, true
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return date{t.Year(), int(t.Month()), t.Day()}, true
	}
	return date{}, false
}

// graphBirthday is how a date is written to Graph: 11:59 UTC, as Evolution
// does, so every time zone shows the same day.
func graphBirthday(d date) string {
	y := d.Year
	if y == 0 {
		y = noYear
	}
	return fmt.Sprintf("%04d-%02d-%02dT11:59:00Z", y, d.Month, d.Day)
}

// vcardDate parses a BDAY value: YYYY-MM-DD, YYYYMMDD, --MMDD, --MM-DD, with
// an optional time part (ignored) and Apple's X-APPLE-OMIT-YEAR.
func vcardDate(p *property) (date, bool) {
	v := strings.TrimSpace(p.Value)
	if i := strings.IndexAny(v, "Tt"); i >= 0 {
		v = v[:i]
	}
	var d date
	var err error
	switch {
	case len(v) == 10 && v[4] == '-' && v[7] == '-':
		_, err = fmt.Sscanf(v, "%4d-%2d-%2d", &d.Year, &d.Month, &d.Day)
	case len(v) == 8 && !strings.HasPrefix(v, "-"):
		_, err = fmt.Sscanf(v, "%4d%2d%2d", &d.Year, &d.Month, &d.Day)
	case len(v) == 6 && strings.HasPrefix(v, "--"):
		_, err = fmt.Sscanf(v, "--%2d%2d", &d.Month, &d.Day)
	case len(v) == 7 && strings.HasPrefix(v, "--") && v[4] == '-':
		_, err = fmt.Sscanf(v, "--%2d-%2d", &d.Month, &d.Day)
	default:
		return date{}, false
	}
	if err != nil || !digitsOnly(v) || d.Year < 0 || strings.HasPrefix(v, "-") && !strings.HasPrefix(v, "--") {
		return date{}, false
	}
	if oy := p.param("X-APPLE-OMIT-YEAR"); len(oy) > 0 && oy[0] == fmt.Sprint(d.Year) {
		d.Year = 0
	}
	if d.Year == noYear {
		d.Year = 0
	}
	y := d.Year
	if y == 0 {
		y = 2000 // a leap year, so --0229 is valid
	}
	t := time.Date(y, time.Month(d.Month), d.Day, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != d.Month || t.Day() != d.Day || d.Year > 9999 {
		return date{}, false
	}
	return d, true
}

func digitsOnly(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// appleLabel returns the inner word of an Apple label such as _$!<Spouse>!$_,
// lower-cased, or "" for a custom label.
func appleLabel(s string) string {
	if strings.HasPrefix(s, "_$!<") && strings.HasSuffix(s, ">!$_") && len(s) >= 8 {
		return strings.ToLower(s[4 : len(s)-4])
	}
	return ""
}

// relatedLabels are the Apple labels of the related-name slots.
var relatedLabels = map[string]string{
	"manager": "_$!<Manager>!$_", "assistant": "_$!<Assistant>!$_",
	"spouse": "_$!<Spouse>!$_", "child": "_$!<Child>!$_",
}

// related4Types are the 4.0 RELATED TYPE values written for the related slots;
// RFC 6350 registers spouse and child, the others are x-names.
var related4Types = map[string]string{
	"manager": "x-manager", "assistant": "x-assistant", "spouse": "spouse", "child": "child",
}

// relatedSlot maps a RELATED TYPE or Apple label word to a slot.
func relatedSlot(word string) string {
	switch strings.ToLower(word) {
	case "manager", "x-manager":
		return "manager"
	case "assistant", "x-assistant":
		return "assistant"
	case "spouse", "x-spouse":
		return "spouse"
	case "child", "x-child":
		return "child"
	}
	return ""
}

// imProps are the pre-IMPP instant-messaging properties mapped to imAddresses.
var imProps = map[string]bool{
	"X-AIM": true, "X-JABBER": true, "X-MSN": true, "X-ICQ": true, "X-SKYPE": true,
	"X-SKYPE-USERNAME": true, "X-YAHOO": true, "X-GADUGADU": true, "X-GOOGLE-TALK": true,
	"X-QQ": true, "X-GROUPWISE": true, "X-MS-IMADDRESS": true, "X-SIP": true,
}

// hasScheme reports whether s starts with a URI scheme ("tel:", "xmpp:").
func hasScheme(s string) bool {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// mediaSubtype returns "jpeg" for "image/jpeg".
func mediaSubtype(ct string) string {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimPrefix(ct, "image/")
}

// sniffImage guesses an image's media type from its magic bytes.
func sniffImage(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "image/jpeg"
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	case len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return "image/gif"
	}
	return ""
}
