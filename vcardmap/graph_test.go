package vcardmap

import (
	"bytes"
	"crypto/rand"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// fullContact has every Graph field vcardmap maps, with awkward values.
func fullContact() graph.Contact {
	return graph.Contact{
		DisplayName: "Dr. Zoë O'Brien-Ångström, PhD", GivenName: "Zoë", MiddleName: "Maria, Luisa",
		Surname: "O'Brien-Ångström", Title: "Dr.", Generation: "PhD; Esq.", Initials: "Z.M.O.",
		NickName: "Zo, Zozo", FileAs: "O'Brien-Ångström, Zoë",
		YomiGivenName: "ゾーイ", YomiSurname: "オブライエン", YomiCompanyName: "えいびーしー",
		EmailAddresses: []graph.EmailAddress{
			{Name: "Zoë O'Brien", Address: "zoe@example.com"},
			{Address: "z.obrien@work.example"},
			{Name: "Zoë (old)", Address: "zoe@old.example"},
		},
		BusinessPhones: []string{"+1 555 0100", "+1 555 0101 ext. 7"},
		HomePhones:     []string{"+1 555 0200", "0200, wait 2s"},
		MobilePhone:    "+1 555 0300",
		IMAddresses:    []string{"sip:zoe@example.com", "zoe@jabber.example", "skype:zoe;call"},
		HomeAddress:    &graph.PhysicalAddress{Street: "12 Elm St\nApt 4, rear", City: "Springfield", State: "IL", PostalCode: "62701", CountryOrRegion: "USA"},
		BusinessAddress: &graph.PhysicalAddress{Street: "1 Corp Way", City: "Metropolis", State: "NY",
			PostalCode: "10001", CountryOrRegion: "United States"},
		OtherAddress:     &graph.PhysicalAddress{City: "Αθήνα", CountryOrRegion: "Ελλάδα"},
		CompanyName:      "ABC; Holdings, Inc.",
		Department:       "R&D \\ Labs",
		JobTitle:         "Head of Research",
		OfficeLocation:   "Building 7, Room 12",
		Profession:       "Chemist",
		Manager:          "Alice Manager",
		AssistantName:    "Bob Assistant",
		BusinessHomePage: "https://example.com/a,b;c?x=1&y=2",
		Birthday:         "1980-02-29T11:59:00Z",
		SpouseName:       "Chris O'Brien",
		Children:         []string{"Dana", "Eli, Jr."},
		PersonalNotes:    "Line 1\r\nLine 2 with ; and , and \\\r\n\r\nLine 4 — 日本語 👍",
		Categories:       []string{"Family", "Work, Inc.", "VIP"},
	}
}

func testPhoto(n int) *graph.Photo {
	b := make([]byte, n)
	rand.Read(b)
	copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
	return &graph.Photo{ContentType: "image/jpeg", Data: b}
}

// TestGraphRoundTrip: every Graph field survives Graph → vCard → Graph, in
// both versions, with and without the extras of an earlier PUT.
func TestGraphRoundTrip(t *testing.T) {
	variants := map[string]func(*graph.Contact){
		"full":         func(*graph.Contact) {},
		"no-year":      func(c *graph.Contact) { c.Birthday = "1604-12-24T11:59:00Z" },
		"lf-notes":     func(c *graph.Contact) { c.PersonalNotes = "a\nb\n" },
		"minimal":      func(c *graph.Contact) { *c = graph.Contact{DisplayName: "Only A Name"} },
		"company-only": func(c *graph.Contact) { *c = graph.Contact{CompanyName: "Contoso", DisplayName: "Contoso"} },
	}
	for name, mutate := range variants {
		for _, v := range []string{"3.0", "4.0"} {
			t.Run(name+"/"+v, func(t *testing.T) {
				c := fullContact()
				mutate(&c)
				in := &Mapped{Contact: c, Photo: testPhoto(300)}
				in.Contact.ID = "AAMkAGI2-id"
				in.Contact.LastModifiedDateTime = "2024-05-14T09:12:33Z"
				out, err := Render(in, v)
				if err != nil {
					t.Fatal(err)
				}
				checkWire(t, out)
				back, err := Parse(out)
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if !reflect.DeepEqual(back.Contact, c) {
					t.Errorf("Graph → vCard → Graph changed the contact:\n got %+v\nwant %+v\n%s", back.Contact, c, out)
				}
				if !bytes.Equal(back.Photo.Data, in.Photo.Data) || back.Photo.ContentType != "image/jpeg" {
					t.Errorf("photo changed")
				}
				if back.UID != UIDFromID("AAMkAGI2-id") {
					t.Errorf("UID = %q", back.UID)
				}
				// Serving it again with the extras of that PUT changes nothing.
				back.Contact.ID = "AAMkAGI2-id"
				again, err := Render(back, v)
				if err != nil {
					t.Fatal(err)
				}
				if ok, diff := Equivalent(out, again); !ok {
					t.Errorf("second rendering differs:\n%s", diff)
				}
			})
		}
	}
}

func TestBirthdayRule(t *testing.T) {
	for in, want := range map[string]string{
		"1974-07-22T11:59:00Z":         "1974-07-22",
		"1974-07-22T00:00:00Z":         "1974-07-22",
		"1974-07-21T23:00:00Z":         "1974-07-22", // written from UTC+1 midnight
		"1974-07-22T08:00:00.0000000Z": "1974-07-22",
		"1974-07-22T00:00:00+02:00":    "1974-07-22",
		"1974-07-22":                   "1974-07-22",
	} {
		d, ok := graphDate(in)
		if !ok || d.String() != want {
			t.Errorf("graphDate(%q) = %v, want %s", in, d, want)
		}
	}
	m, err := Parse(vcf("FN:x", "BDAY:1974-07-22"))
	if err != nil || m.Contact.Birthday != "1974-07-22T11:59:00Z" {
		t.Errorf("Parse BDAY = %q, %v", m.Contact.Birthday, err)
	}
	m = &Mapped{Contact: graph.Contact{Birthday: "1604-08-20T11:59:00Z"}}
	if l := servedLines(t, m, "3.0"); !hasLine(l, "BDAY;X-APPLE-OMIT-YEAR=1604:1604-08-20") {
		t.Errorf("3.0 year-less birthday: %q", l)
	}
	if l := servedLines(t, m, "4.0"); !hasLine(l, "BDAY:--0820") {
		t.Errorf("4.0 year-less birthday: %q", l)
	}
}

func TestUIDFromID(t *testing.T) {
	a, b := UIDFromID("AAMkAD1"), UIDFromID("AAMkAD2")
	if a != UIDFromID("AAMkAD1") || a == b {
		t.Fatal("UIDFromID is not a deterministic function of the id")
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("UIDFromID = %q, not UUID-shaped", a)
	}
}

// TestBigPhoto: a 100 KB PHOTO folds to lines of at most 75 octets and
// unfolds to the same bytes, in both versions.
func TestBigPhoto(t *testing.T) {
	ph := testPhoto(100 * 1024)
	for _, v := range []string{"3.0", "4.0"} {
		out, err := Render(&Mapped{Contact: graph.Contact{DisplayName: "P"}, Photo: ph}, v)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, out)
		if n := strings.Count(string(out), "\r\n"); n < 1800 {
			t.Errorf("%s: only %d lines: not folded", v, n)
		}
		m, err := Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.Photo == nil || !bytes.Equal(m.Photo.Data, ph.Data) {
			t.Errorf("%s: photo bytes changed", v)
		}
		if strings.Contains(m.Extras, "/9j") || len(m.Extras) > 200 {
			t.Errorf("%s: photo data leaked into Extras (%d bytes)", v, len(m.Extras))
		}
	}
}

// TestScripts: CJK, Greek, emoji and right-to-left text survive byte-exact.
func TestScripts(t *testing.T) {
	values := []string{
		"山田 太郎", "Αλέξανδρος Παπαδόπουλος", "👩‍💻 🇸🇦 👍🏽", "محمد عبد الله", "דוד כהן",
		"\u200fמימין לשמאל\u200f", "한국어 텍스트", strings.Repeat("長い値", 60),
	}
	for _, s := range values {
		for _, v := range []string{"3.0", "4.0"} {
			c := graph.Contact{DisplayName: s, GivenName: s, PersonalNotes: s + "\n" + s,
				Categories: []string{s}, CompanyName: s, HomeAddress: &graph.PhysicalAddress{Street: s}}
			out, err := Render(&Mapped{Contact: c}, v)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, out)
			m, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Contact, c) {
				t.Errorf("%s %q: got %+v", v, s, m.Contact)
			}
		}
	}
	// And from a client card, byte-exact in the served card.
	in, err := Parse(vcf("FN:"+values[2], "NOTE:"+values[3]+`\n`+values[5], "X-RTL:"+values[4]))
	if err != nil {
		t.Fatal(err)
	}
	lines := servedLines(t, in, "3.0")
	for _, want := range []string{"FN:" + values[2], "NOTE:" + values[3] + `\n` + values[5], "X-RTL:" + values[4]} {
		if !hasLine(lines, want) {
			t.Errorf("missing %q", want)
		}
	}
}

// TestControlCharacters: a control character Outlook left in a field is
// dropped on output instead of producing a card Parse would refuse.
func TestControlCharacters(t *testing.T) {
	m := &Mapped{Contact: graph.Contact{DisplayName: "a\x0bb", PersonalNotes: "x\fy\x00z\x7f", Categories: []string{"c\x01"}}}
	out, err := Render(m, "3.0")
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%q", err, out)
	}
	if c := back.Contact; c.DisplayName != "ab" || c.PersonalNotes != "xyz" || c.Categories[0] != "c" {
		t.Errorf("got %+v", c)
	}
}
