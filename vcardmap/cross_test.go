package vcardmap

import (
	"strings"
	"testing"
)

// TestCrossVersion pins what is converted when a card is served in the
// other version than it was written in.
func TestCrossVersion(t *testing.T) {
	tests := []struct {
		fixture, version string
		want             []string
		notWant          []string
	}{
		{"davx5-4.0-contact.vcf", "3.0", []string{
			"X-ABDATE:2012-09-01", "X-ABLabel:_$!<Anniversary>!$_",
			"X-ABRELATEDNAMES:Γιώργος", "X-ABLabel:_$!<Friend>!$_",
			"RELATED;TYPE=colleague:urn:uuid:11111111-2222-4333-8444-555555555555", // a URI stays 4.0-only
			"X-ABRELATEDNAMES:Μαρία", "X-ABLabel:_$!<Spouse>!$_",
			"EMAIL;TYPE=work;TYPE=pref:a.papadopoulos@company.example.gr",
			"BDAY:1985-03-15",
		}, []string{"ANNIVERSARY", "PREF=", "data:image"}},
		{"thunderbird115-new-4.0.vcf", "3.0", []string{
			"X-ABDATE;X-APPLE-OMIT-YEAR=1604:1604-03-15",
			"TEL;TYPE=cell:+49 170 0000001", // VALUE=TEXT dropped
		}, []string{"TEL;VALUE"}},
		{"ios17-item-labels.vcf", "4.0", []string{
			"item1.EMAIL;type=INTERNET;type=HOME;PREF=1:johnny@example.com",
			"RELATED;TYPE=spouse;VALUE=text:Jane Appleseed",
			"RELATED;TYPE=x-manager;VALUE=text:Tim",
			"BDAY:19780120",
		}, []string{"type=pref", "_$!<Spouse>!$_", "item11."}},
		{"ios17-item-labels.vcf", "4.0", []string{
			"ANNIVERSARY;PREF=1:20100612",
			"item15.X-ABRELATEDNAMES:Bob", "item15.X-ABLabel:_$!<Brother>!$_", // no RFC type: kept
		}, []string{"X-ABDATE", "_$!<Anniversary>!$_"}},
		{"davx5-3.0-contact.vcf", "4.0", []string{
			"ANNIVERSARY:20150401",
			"item2.X-ABDATE;X-APPLE-OMIT-YEAR=1604:1604-11-03", // custom label: kept
			"item4.X-ABLabel:_$!<Father>!$_",
		}, []string{"_$!<Anniversary>!$_"}},
		{"ios17-photo-noyear.vcf", "4.0", []string{"BDAY:--0820"}, []string{"X-APPLE-OMIT-YEAR=1604:1604-08-20"}},
		{"macos14-group.vcf", "4.0", []string{"KIND:group"}, []string{"X-ADDRESSBOOKSERVER"}},
		{"davx5-4.0-group.vcf", "3.0", []string{"X-ADDRESSBOOKSERVER-KIND:group"}, []string{"\nKIND", "\nMEMBER"}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture+"→"+tc.version, func(t *testing.T) {
			_, m := parseFixture(t, tc.fixture)
			lines := servedLines(t, m, tc.version)
			joined := "\n" + strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !anyLine(lines, w) {
					t.Errorf("want %q", w)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(joined, nw) {
					t.Errorf("do not want %q", nw)
				}
			}
			if t.Failed() {
				t.Log(joined)
			}
		})
	}
}
