package vcardmap

import (
	"os"
	"strings"
	"testing"

	"github.com/contactsdav/contactsdav/backend/graph"
)

func parseFixture(t *testing.T, name string) ([]byte, *Mapped) {
	t.Helper()
	in, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	return in, m
}

func anyLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestStaleExtras: Outlook edits win. When a Graph field changed after the
// extras were written, Graph's value is served and the extras that belonged
// to it (parameters, raw value, item group with its label) are dropped;
// nothing deleted in Outlook comes back, and unrelated extras stay.
func TestStaleExtras(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		edit    func(m *Mapped)
		want    []string // exact lines that must be served
		notWant []string // substrings that must not appear
	}{
		{
			name: "email deleted in Outlook", fixture: "ios17-item-labels.vcf",
			edit: func(m *Mapped) {
				e := m.Contact.EmailAddresses
				m.Contact.EmailAddresses = []graph.EmailAddress{e[0], e[2]}
			},
			want: []string{
				"EMAIL;TYPE=INTERNET:johnny@example.com", "EMAIL;TYPE=INTERNET:johnny.alt@example.org",
				"item4.EMAIL;type=INTERNET:johnny.old@example.net", // the 4th (extra) email is not Graph's
				"item4.X-ABLabel:_$!<Other>!$_",
				"item5.X-ABLabel:Lake house", // other groups untouched
			},
			notWant: []string{"jappleseed@apple.example", "item1.", "item2.", "item3.", "school"},
		},
		{
			name: "address edited in Outlook", fixture: "ios17-item-labels.vcf",
			edit: func(m *Mapped) { m.Contact.HomeAddress.City = "Palo Alto" },
			want: []string{
				"ADR;TYPE=HOME:;;1 Infinite Loop\\nBuilding 2;Palo Alto;CA;95014;United States",
				"item7.X-ABADR:us",
			},
			notWant: []string{"item6."},
		},
		{
			name: "3.0 LABEL goes with its address", fixture: "evolution-3.50.vcf",
			edit:    func(m *Mapped) { m.Contact.BusinessAddress.Street = "Kungsgatan 2" },
			want:    []string{"ADR;TYPE=WORK:;;Kungsgatan 2;Stockholm;;111 51;Sverige"},
			notWant: []string{"LABEL", "Drottninggatan"},
		},
		{
			name: "2.1 LABEL goes with its address", fixture: "outlook2016-export-2.1.vcf",
			edit:    func(m *Mapped) { m.Contact.BusinessAddress = nil },
			notWant: []string{"LABEL", "Hafenstraße"},
			want:    []string{"X-MS-OL-DEFAULT-POSTAL-ADDRESS:2"},
		},
		{
			name: "PO box dropped with its address", fixture: "evolution-3.50.vcf",
			edit:    func(m *Mapped) { m.Contact.OtherAddress.City = "Lund" },
			want:    []string{"ADR:;;;Lund;;751 04;Sverige"},
			notWant: []string{"Box 123"},
		},
		{
			name: "spouse removed in Outlook", fixture: "ios17-item-labels.vcf",
			edit:    func(m *Mapped) { m.Contact.SpouseName = "" },
			want:    []string{"item12.X-ABRELATEDNAMES:Tim"},
			notWant: []string{"Jane Appleseed", "item11.", "_$!<Spouse>!$_"},
		},
		{
			name: "note edited in Outlook replaces a raw note", fixture: "outlook2016-export-2.1.vcf",
			edit:    func(m *Mapped) { m.Contact.PersonalNotes = "new note" },
			want:    []string{"NOTE:new note"},
			notWant: []string{"Erste Zeile"},
		},
		{
			name: "photo removed in Outlook", fixture: "ios17-photo-noyear.vcf",
			edit:    func(m *Mapped) { m.Photo = nil },
			notWant: []string{"PHOTO;", "X-ABCROP-RECTANGLE"},
			want:    []string{"X-IMAGETYPE:PHOTO"},
		},
		{
			name: "photo replaced in Outlook loses the old crop", fixture: "ios17-photo-noyear.vcf",
			edit:    func(m *Mapped) { m.Photo = testPhoto(50) },
			notWant: []string{"X-ABCROP-RECTANGLE"},
		},
		{
			name: "phone added in Outlook", fixture: "google-contacts-export.vcf",
			edit: func(m *Mapped) { m.Contact.BusinessPhones = append(m.Contact.BusinessPhones, "+91 80 1111") },
			want: []string{"TEL;TYPE=WORK,VOICE:+91 80 4000 1234", "TEL;TYPE=WORK,VOICE:+91 80 1111",
				"TEL;TYPE=CELL:+91 98765 43210"},
			notWant: []string{"item2.X-ABLabel:Reception", "item2.TEL"},
		},
		{
			name: "birthday reformatted by Graph is not a change", fixture: "ios17-photo-noyear.vcf",
			edit: func(m *Mapped) { m.Contact.Birthday = "1604-08-20T00:00:00Z" },
			want: []string{"BDAY;X-APPLE-OMIT-YEAR=1604:1604-08-20"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, m := parseFixture(t, tc.fixture)
			tc.edit(m)
			lines := servedLines(t, m, "3.0")
			for _, w := range tc.want {
				if !hasLine(lines, w) {
					t.Errorf("want line %q", w)
				}
			}
			for _, nw := range tc.notWant {
				if anyLine(lines, nw) {
					t.Errorf("stale %q still served", nw)
				}
			}
			if t.Failed() {
				t.Logf("served:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// TestUnchangedGraphKeepsExtras is the other half of the rule: with Graph
// as written, the served card is equivalent to the one PUT.
func TestUnchangedGraphKeepsExtras(t *testing.T) {
	for _, f := range fixtures(t) {
		in, m := parseFixture(t, strings.TrimPrefix(f, "testdata/"))
		// What the backend has on GET: Graph's echo (with ids) and the stored strings.
		got := &Mapped{Contact: m.Contact, UID: m.UID, Extras: m.Extras, Photo: m.Photo}
		got.Contact.ID, got.Contact.ChangeKey = "AAMk-"+f, "CQAAAB"
		got.Contact.LastModifiedDateTime = "2024-05-14T09:12:33Z"
		out, err := Render(got, servedVersion(m.Version))
		if err != nil {
			t.Fatal(err)
		}
		if ok, diff := Equivalent(in, out); !ok {
			t.Errorf("%s: %s", f, diff)
		}
	}
}

// TestCorruptExtras: unreadable extras never block serving Graph's data.
func TestCorruptExtras(t *testing.T) {
	for _, ex := range []string{"garbage", "vcardmap/9 3\n", "vcardmap/1 3\nQ what\n", "vcardmap/1 3\nT nope.0 FN:\n", "vcardmap/1 3\nX no colon\n"} {
		m := &Mapped{Contact: graph.Contact{DisplayName: "Served"}, Extras: ex}
		if l := servedLines(t, m, "3.0"); !hasLine(l, "FN:Served") {
			t.Errorf("extras %q: %q", ex, l)
		}
	}
}

// TestGroups: group cards of each dialect round-trip, expose Kind/Members,
// and are carried into the other version's form.
func TestGroups(t *testing.T) {
	for _, tc := range []struct {
		fixture, kind3, member3, kind4, member4 string
		members                                 int
	}{
		{"macos14-group.vcf", "X-ADDRESSBOOKSERVER-KIND:group", "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:", "KIND:group", "MEMBER:urn:uuid:", 3},
		{"davx5-4.0-group.vcf", "X-ADDRESSBOOKSERVER-KIND:group", "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:", "KIND:group", "MEMBER:urn:uuid:", 2},
		{"davx5-3.0-group.vcf", "X-ADDRESSBOOKSERVER-KIND:group", "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:", "KIND:group", "MEMBER:urn:uuid:", 1},
	} {
		_, m := parseFixture(t, tc.fixture)
		if m.Kind != "group" || len(m.Members) != tc.members || m.Contact.DisplayName == "" {
			t.Errorf("%s: kind %q members %d name %q", tc.fixture, m.Kind, len(m.Members), m.Contact.DisplayName)
		}
		l3, l4 := servedLines(t, m, "3.0"), servedLines(t, m, "4.0")
		// Lines hold no "\n": look for a 4.0 KIND at a line start in the joined card.
		if !hasLine(l3, tc.kind3) || !anyLine(l3, tc.member3) || strings.Contains("\n"+strings.Join(l3, "\n"), "\nKIND") {
			t.Errorf("%s 3.0: %q", tc.fixture, l3)
		}
		if !hasLine(l4, tc.kind4) || !anyLine(l4, tc.member4) || anyLine(l4, "X-ADDRESSBOOKSERVER") {
			t.Errorf("%s 4.0: %q", tc.fixture, l4)
		}
		// The backend may project membership: Members set on Render win.
		m.Members = []string{"urn:uuid:only-one"}
		l := servedLines(t, m, "3.0")
		n := 0
		for _, x := range l {
			if strings.Contains(x, "MEMBER") {
				n++
			}
		}
		if n != 1 || !hasLine(l, "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:only-one") {
			t.Errorf("%s: projected members not served: %q", tc.fixture, l)
		}
	}
}

// TestStaleNeverSwapsExtrasIn: when Graph's value of a slot changed and the
// card also carries extras of the same kind, the served card still maps
// Graph's value (not an extra) back into Graph on the next PUT.
func TestStaleNeverSwapsExtrasIn(t *testing.T) {
	m, err := Parse(vcf("FN:x", "NOTE:first", "NOTE:second",
		"EMAIL:1@x", "EMAIL:2@x", "EMAIL:3@x", "EMAIL:4@x", "TEL;TYPE=cell:1", "TEL;TYPE=cell:2"))
	if err != nil {
		t.Fatal(err)
	}
	m.Contact.PersonalNotes = "edited"
	m.Contact.EmailAddresses = m.Contact.EmailAddresses[1:]
	m.Contact.MobilePhone = "9"
	out, err := Render(m, "3.0")
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	c := back.Contact
	if c.PersonalNotes != "edited" || c.MobilePhone != "9" || len(c.EmailAddresses) != 3 ||
		c.EmailAddresses[0].Address != "2@x" || c.EmailAddresses[2].Address != "4@x" {
		t.Errorf("served card maps back to %+v\n%s", c, out)
	}
}
