package vcardmap

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func vcf(lines ...string) []byte {
	return []byte("BEGIN:VCARD\r\nVERSION:3.0\r\n" + strings.Join(lines, "\r\n") + "\r\nEND:VCARD\r\n")
}

// servedLines renders m in 3.0 and returns its unfolded content lines.
func servedLines(t *testing.T, m *Mapped, version string) []string {
	t.Helper()
	out, err := Render(m, version)
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, out)
	var lines []string
	for _, l := range unfold(string(out)) {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestGoVcardBugPins pins each go-vcard round-trip defect of clients.md §5:
// this package must not repeat them.
func TestGoVcardBugPins(t *testing.T) {
	tests := []struct {
		name, in, want string
		check          func(m *Mapped) bool
	}{
		{"list value commas are separators, not escaped", "CATEGORIES:a,b", "CATEGORIES:a,b",
			func(m *Mapped) bool { return reflect.DeepEqual(m.Contact.Categories, []string{"a", "b"}) }},
		{"escaped comma inside a list element", `CATEGORIES:Work\, Inc.,Tennis`, `CATEGORIES:Work\, Inc.,Tennis`,
			func(m *Mapped) bool { return reflect.DeepEqual(m.Contact.Categories, []string{"Work, Inc.", "Tennis"}) }},
		{"escaped semicolon is not doubled", `NOTE:semi\; colon\, comma`, `NOTE:semi\; colon\, comma`,
			func(m *Mapped) bool { return m.Contact.PersonalNotes == "semi; colon, comma" }},
		{"literal backslash", `NOTE:C:\\temp\\x`, `NOTE:C:\\temp\\x`,
			func(m *Mapped) bool { return m.Contact.PersonalNotes == `C:\temp\x` }},
		{"nickname list", "NICKNAME:Bob,Rob", "NICKNAME:Bob,Rob",
			func(m *Mapped) bool { return m.Contact.NickName == "Bob,Rob" }},
		{"structured value per component", `ORG:Smith\, Jones & Co;R\;D`, `ORG:Smith\, Jones & Co;R\;D`,
			func(m *Mapped) bool {
				return m.Contact.CompanyName == "Smith, Jones & Co" && m.Contact.Department == "R;D"
			}},
		{"parameter value with colon, semicolon, comma is quoted", `X-FOO;X-LABEL="a:b;c,d":v`, `X-FOO;X-LABEL="a:b;c,d":v`, nil},
		{"4.0 ADR LABEL parameter stays quoted", `ADR;TYPE=home;LABEL="1 Main St\n, Town":;;1 Main St;Town;;;`,
			`ADR;TYPE=home;LABEL="1 Main St\n, Town":;;1 Main St;Town;;;`, nil},
		{"group label case kept", "item1.EMAIL:a@b.c\r\nitem1.X-ABLabel:_$!<Other>!$_", "item1.X-ABLabel:_$!<Other>!$_", nil},
		{"unparseable-looking but valid lines are kept", "X-WEIRD;;X-A=1:v", "X-WEIRD;X-A=1:v", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(vcf("FN:x", tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil && !tc.check(m) {
				t.Errorf("mapped wrongly: %+v", m.Contact)
			}
			lines := servedLines(t, m, "3.0")
			if !hasLine(lines, tc.want) {
				t.Errorf("want line %q in\n%s", tc.want, strings.Join(lines, "\n"))
			}
		})
	}
}

func TestFolding(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("a", 200),
		strings.Repeat("é", 100),            // 2-octet runes
		strings.Repeat("日本語", 40),           // 3-octet runes
		strings.Repeat("👩‍💻🇸🇦", 30),         // 4-octet runes and ZWJ sequences
		"x" + strings.Repeat("€", 74),       // misaligned
		strings.Repeat("ab", 37) + "\u05d0", // boundary exactly at 75
		strings.Repeat(`\n`, 100),           // escapes never split
		"x" + strings.Repeat(`\\`, 100),     // escaped backslashes
	} {
		var b bytes.Buffer
		line := "NOTE:" + s
		writeFolded(&b, line)
		for _, phys := range strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
			if len(phys) > maxLine {
				t.Errorf("physical line of %d octets", len(phys))
			}
			if !utf8.ValidString(phys) {
				t.Errorf("fold split a UTF-8 sequence: %q", phys)
			}
			if n := len(phys) - len(strings.TrimRight(phys, `\`)); n%2 == 1 {
				t.Errorf("fold split an escape: %q", phys)
			}
		}
		if got := unfold(b.String()); len(got) != 2 || got[0] != line {
			t.Errorf("unfold(fold(x)) != x")
		}
	}
}

func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, esc string }{
		{"plain", "plain"},
		{"a,b;c\\d\ne", `a\,b\;c\\d\ne`},
		{"crlf\r\nend", `crlf\nend`},
		{"", ""},
	} {
		if got := escapeText(tc.in); got != tc.esc {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.esc)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{`a\nb\Nc`, "a\nb\nc"},
		{`http\://x`, "http://x"}, // Apple and Google escape colons in URLs
		{`a\qb`, `a\qb`},          // unknown escape: kept, not lost
		{`trailing\`, `trailing\`},
		{`x\\;y`, `x\;y`}, // what go-vcard wrote: a literal backslash, then ';'
	} {
		if got := unescapeText(tc.in); got != tc.want {
			t.Errorf("unescapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestInputTolerance(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(m *Mapped) bool
	}{
		{"bare LF and tab folding", "BEGIN:VCARD\nVERSION:3.0\nFN:Ann\n\tWong\nNOTE:a\n b\nEND:VCARD\n",
			func(m *Mapped) bool { return m.Contact.DisplayName == "AnnWong" && m.Contact.PersonalNotes == "ab" }},
		{"2.1 bare types", "BEGIN:VCARD\r\nVERSION:2.1\r\nTEL;CELL;VOICE:+1\r\nTEL;HOME:+2\r\nTEL;WORK;FAX:+3\r\nEND:VCARD\r\n",
			func(m *Mapped) bool {
				return m.Contact.MobilePhone == "+1" && reflect.DeepEqual(m.Contact.HomePhones, []string{"+2"}) && m.Contact.BusinessPhones == nil
			}},
		{"2.1 quoted-printable soft breaks and CRLF", "BEGIN:VCARD\r\nVERSION:2.1\r\nNOTE;ENCODING=QUOTED-PRINTABLE:one=0D=0Atwo =\r\nthree=3D3\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.PersonalNotes == "one\ntwo three=3" }},
		{"2.1 QP UTF-8", "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.DisplayName == "Jürgen" }},
		{"2.1 latin-1 raw bytes", "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;CHARSET=ISO-8859-1:J\xfcrgen\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.DisplayName == "Jürgen" }},
		{"QUOTED-PRINTABLE as a TYPE value is no soft break (fuzz find)", "BEGIN:VCARD\r\nX-A;TYPE=QUOTED-PRINTABLE;X-P=\"ENCODING=QUOTED-PRINTABLE\":a=\r\nNOTE:b\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.PersonalNotes == "b" }},
		{"BOM and missing VERSION", "\xef\xbb\xbfBEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.DisplayName == "x" && m.Version == "3.0" }},
		{"4.0 tel URI", "BEGIN:VCARD\r\nVERSION:4.0\r\nTEL;VALUE=uri;TYPE=cell:tel:+1-555\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.MobilePhone == "+1-555" }},
		{"4.0 quoted TYPE list", "BEGIN:VCARD\r\nVERSION:4.0\r\nTEL;TYPE=\"home,voice\":+1\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return reflect.DeepEqual(m.Contact.HomePhones, []string{"+1"}) }},
		{"year-less birthdays", "BEGIN:VCARD\r\nVERSION:4.0\r\nBDAY:--0229\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.Birthday == "1604-02-29T11:59:00Z" }},
		{"unparseable BDAY stays an extra", "BEGIN:VCARD\r\nVERSION:4.0\r\nBDAY;VALUE=text:circa 1800\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Contact.Birthday == "" && strings.Contains(m.Extras, "circa 1800") }},
		{"remote photo is not fetched", "BEGIN:VCARD\r\nVERSION:3.0\r\nPHOTO;VALUE=uri:https://p.example/x.jpg\r\nEND:VCARD\r\n",
			func(m *Mapped) bool { return m.Photo == nil && strings.Contains(m.Extras, "https://p.example/x.jpg") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(m) {
				t.Errorf("got %+v", m.Contact)
			}
			out, err := Render(m, servedVersion(m.Version))
			if err != nil {
				t.Fatal(err)
			}
			if ok, diff := Equivalent([]byte(tc.in), out); !ok {
				t.Errorf("not equivalent:\n%s\n%s", diff, out)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	for name, in := range map[string]string{
		"empty":               "",
		"no BEGIN":            "FN:x\r\nEND:VCARD\r\n",
		"no END":              "BEGIN:VCARD\r\nFN:x\r\n",
		"two cards":           "BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:y\r\nEND:VCARD\r\n",
		"nested":              "BEGIN:VCARD\r\nBEGIN:VCARD\r\nEND:VCARD\r\nEND:VCARD\r\n",
		"no colon":            "BEGIN:VCARD\r\nFN x\r\nEND:VCARD\r\n",
		"bad name":            "BEGIN:VCARD\r\nF N:x\r\nEND:VCARD\r\n",
		"bad version":         "BEGIN:VCARD\r\nVERSION:5.0\r\nEND:VCARD\r\n",
		"invalid UTF-8":       "BEGIN:VCARD\r\nFN:\xff\r\nEND:VCARD\r\n",
		"control character":   "BEGIN:VCARD\r\nFN:a\x00b\r\nEND:VCARD\r\n",
		"bad QP":              "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;ENCODING=QUOTED-PRINTABLE:=ZZ\r\nEND:VCARD\r\n",
		"unsupported charset": "BEGIN:VCARD\r\nVERSION:2.1\r\nFN;CHARSET=SHIFT_JIS:x\r\nEND:VCARD\r\n",
		"bad photo":           "BEGIN:VCARD\r\nPHOTO;ENCODING=b;TYPE=JPEG:!!!\r\nEND:VCARD\r\n",
		"unterminated quote":  "BEGIN:VCARD\r\nX-A;P=\"x:y\r\nEND:VCARD\r\n",
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestContentLineRoundTrip(t *testing.T) {
	for _, l := range []string{
		`item1.X-ABLabel:_$!<Other>!$_`,
		`ADR;TYPE=home;LABEL="a:b":;;x`,
		`TEL;TYPE=WORK,VOICE:+1`,
		`X-A;P=:v`,
		`X-A;P=a,"b,c",d:v`,
	} {
		p, err := parseLine(l)
		if err != nil {
			t.Fatal(err)
		}
		q, err := parseLine(contentLine(p))
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Errorf("%q → %q → %+v", l, contentLine(p), q)
		}
	}
}
