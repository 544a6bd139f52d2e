package vcardmap

import (
	"slices"
	"strings"
	"testing"
)

func TestUnsaid(t *testing.T) {
	for _, tc := range []struct {
		name, card string
		want       []string
	}{
		{"none of them", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nEND:VCARD\r\n", []string{"initials", "officeLocation", "fileAs"}},
		{"office said", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nX-MS-OFFICE:Room 12\r\nEND:VCARD\r\n", []string{"initials", "fileAs"}},
		{"Evolution's file-as", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nX-EVOLUTION-FILE-AS:Lovelace\\, Ada\r\nX-MS-INITIALS:AL\r\nEND:VCARD\r\n", []string{"officeLocation"}},
		{"all said", "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada\r\nX-MS-OFFICE:1\r\nX-MS-INITIALS:AL\r\nX-MS-FILEAS:Ada\r\nEND:VCARD\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.card))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Unsaid, tc.want) {
				t.Errorf("Unsaid = %v, want %v", m.Unsaid, tc.want)
			}
		})
	}
}

// A damaged record in stored Extras costs only itself: the card still gets
// every other extra property (fuzz find 7ce37b77afbae391: an empty CHARSET
// parameter once poisoned the whole Extras and lost the properties before it).
func TestDamagedExtrasRecordCostsOnlyItself(t *testing.T) {
	m, err := Parse([]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nX-KEEP:one\r\nX-EMPTY;CHARSET=:\r\nEND:VCARD\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.Extras, "CHARSET") {
		t.Errorf("an empty CHARSET parameter was stored: %q", m.Extras)
	}
	m.Extras += "X BEGIN:VCARD\nT nosuchslot.0 X-BAD:1\nQ unknown record\nX X-KEEP-TOO:two\n"
	out, err := Render(m, "3.0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"X-KEEP:one\r\n", "X-KEEP-TOO:two\r\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered card lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "X-BAD") || strings.Count(string(out), "BEGIN:VCARD") != 1 {
		t.Errorf("a damaged record was served:\n%s", out)
	}
}
