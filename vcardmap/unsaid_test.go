package vcardmap

import (
	"slices"
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
