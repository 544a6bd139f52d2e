package vcardmap

import (
	"reflect"
	"testing"
)

// TestAdversarialRoundTrip: odd but legal cards still come back equivalent
// and re-map to the same Graph contact.
func TestAdversarialRoundTrip(t *testing.T) {
	for name, lines := range adversarial {
		t.Run(name, func(t *testing.T) {
			in := vcf(lines...)
			m, err := Parse(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Render(m, "3.0")
			if err != nil {
				t.Fatal(err)
			}
			if ok, diff := Equivalent(in, out); !ok {
				t.Errorf("%s\n%s", diff, out)
			}
			m2, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(toGolden(m2), toGolden(m)) {
				t.Errorf("re-maps differently:\n%+v\n%+v", m.Contact, m2.Contact)
			}
		})
	}
}

// adversarial are odd but legal cards (body lines); also fuzz seeds.
var adversarial = map[string][]string{
	"list in N component":      {"N:a,b;c;d,e;;"},
	"six ORG units":            {"ORG:A;B;C;D;E;F"},
	"street as list":           {"ADR;TYPE=home:;;a,b;c;;;"},
	"PO box only":              {"ADR:PO 1;;;;;;"},
	"grouped FN and second FN": {"item1.FN:", "FN:x"},
	"X-MS-NAME equal address":  {"FN:x", "EMAIL;X-MS-NAME=a@b.c:a@b.c"},
	"CRLF marker w/o newline":  {"FN:x", "NOTE;X-MS-NEWLINE=CRLF:ab"},
	"CRLF marker":              {"FN:x", "NOTE;X-MS-NEWLINE=CRLF:a\\nb"},
	"year 1604 without param":  {"FN:x", "BDAY:1604-01-01"},
	"3.0 year-less":            {"FN:x", "BDAY:--0101"},
	"BDAY with time":           {"FN:x", "BDAY:1990-01-01T10:00:00Z"},
	"UID with params":          {"FN:x", "UID;VALUE=text:abc"},
	"two UIDs":                 {"FN:x", "UID:a", "UID:b"},
	"empty mapped values":      {"FN:", "TITLE:", "EMAIL:", "TEL:", "NOTE:", "CATEGORIES:", "ORG:"},
	"tel with sip URI":         {"FN:x", "TEL:sip:a@b"},
	"photo unknown type":       {"FN:x", "PHOTO;ENCODING=b:AAAA"},
	"photo wrong TYPE":         {"FN:x", "PHOTO;ENCODING=b;TYPE=GIF;X-A=1:/9j/4AAA"},
	"second inline photo":      {"FN:x", "PHOTO;ENCODING=b;TYPE=PNG:AAAA", "PHOTO;ENCODING=b;TYPE=PNG:AAAB"},
	"kind with case":           {"FN:x", "X-ADDRESSBOOKSERVER-KIND:Group", "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:1"},
	"quote in param":           {"FN:x", `X-A;P=a"b:v`},
	"related both types":       {"FN:x", "X-ABRELATEDNAMES;TYPE=spouse,child:Z"},
	"backslash in URL":         {"FN:x", `URL:http://a/b\\c`},
	"URL escaped colon":        {"FN:x", `URL:http\://a/b`},
	"IMPP with semicolon":      {"FN:x", "IMPP:skype:a;call"},
	"many children":            {"FN:x", "X-MS-CHILD:a", "X-MS-CHILD:b", "X-MS-CHILD:c"},
	"fourth IM":                {"FN:x", "IMPP:a:1", "IMPP:a:2", "X-AIM:3", "X-AIM:4"},
	"3 work phones":            {"FN:x", "TEL;TYPE=work:1", "TEL;TYPE=work:2", "TEL;TYPE=work:3"},
	"untyped after work":       {"FN:x", "TEL;TYPE=work:1", "TEL:2", "TEL;TYPE=voice:3"},
	"unknown escape":           {"FN:a\\qb", "NOTE:x\\ty"},
	"trailing backslash":       {"FN:ab\\"},
	"param without value":      {"FN:x", "X-A;P=:v"},
	"emoji in param":           {"FN:x", "X-A;X-LABEL=👍:v"},
	"empty NOTE, then another": {"NOTE:", "NOTE:0"}, // fuzz find 56911e1aa3794bdb
}

func TestPhoneticNames(t *testing.T) {
	in := []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:山田太郎\r\nN;ALTID=1;LANGUAGE=ja:山田;太郎;;;\r\n" +
		"N;ALTID=1;PHONETIC=x-kana;LANGUAGE=ja:やまだ;たろう;;;\r\nORG;SORT-AS=Sanpuru:サンプル\r\n" +
		"ORG;PHONETIC=x-kana:さんぷる\r\nEND:VCARD\r\n")
	m, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Contact
	if c.Surname != "山田" || c.YomiSurname != "やまだ" || c.YomiGivenName != "たろう" || c.CompanyName != "サンプル" || c.YomiCompanyName != "さんぷる" {
		t.Fatalf("got %+v", c)
	}
	out, err := Render(m, "4.0")
	if err != nil {
		t.Fatal(err)
	}
	if ok, diff := Equivalent(in, out); !ok {
		t.Errorf("%s\n%s", diff, out)
	}
	m.Contact.YomiSurname = "ヤマダ" // edited in Outlook: served as X-PHONETIC-*
	l := servedLines(t, m, "4.0")
	if !hasLine(l, "X-PHONETIC-LAST-NAME:ヤマダ") || !hasLine(l, "X-PHONETIC-FIRST-NAME:たろう") || anyLine(l, "PHONETIC=x-kana:やまだ") {
		t.Errorf("stale phonetic N: %q", l)
	}
}
