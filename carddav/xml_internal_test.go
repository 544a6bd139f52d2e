package carddav

import (
	"encoding/xml"
	"testing"
)

func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"BEGIN:VCARD\r\nNOTE:a<b & c>\"d\"\r\n", "BEGIN:VCARD&#xD;\nNOTE:a&lt;b &amp; c&gt;\"d\"&#xD;\n"},
		{"bell\x07 tab\t", "bell\uFFFD tab\t"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"ünïcode ☎", "ünïcode ☎"},
	} {
		got := escapeText(tc.in)
		if got != tc.want {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		var back struct {
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal([]byte("<a>"+got+"</a>"), &back); err != nil {
			t.Errorf("%q does not parse: %v", got, err)
		}
	}
	// CRLF survives a parser's newline normalisation.
	var back struct {
		Text string `xml:",chardata"`
	}
	if err := xml.Unmarshal([]byte("<a>"+escapeText("x\r\ny")+"</a>"), &back); err != nil || back.Text != "x\r\ny" {
		t.Errorf("round trip = %q, %v", back.Text, err)
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want target
	}{
		{"/", target{kind: kindRoot}},
		{"/a@b.c", target{kind: kindPrincipal, user: "a@b.c", base: "/a@b.c/"}},
		{"/a%40b.c/contacts/", target{kind: kindHome, user: "a@b.c", base: "/a%40b.c/contacts/"}},
		{"/u/contacts/my%20book", target{kind: kindBook, user: "u", book: "my book", base: "/u/contacts/my%20book/"}},
		{"/u/contacts/b/J%C3%B6%2Fx.vcf", target{}}, // an encoded slash
		{"/u/contacts/b/x.vcf/", target{kind: kindObject, user: "u", book: "b", name: "x.vcf", base: "/u/contacts/b/x.vcf"}},
		{"/u/calendars/b/", target{}},
		{"/u/contacts/b/x/y", target{}},
		{"/u//contacts", target{}},
		{"/u/contacts/..", target{}},
		{"/u/contacts/%zz", target{}},
		{"relative", target{}},
	} {
		if got := parsePath(tc.in); got != tc.want {
			t.Errorf("parsePath(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
