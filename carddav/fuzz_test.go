package carddav_test

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRequestBody throws arbitrary bodies at the XML-reading methods on
// every kind of path: no panic, no 5xx, and every 207 is well-formed XML.
func FuzzRequestBody(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for m := range uint8(4) {
			f.Add(m, uint8(3), string(b))
		}
	}
	f.Add(uint8(1), uint8(3), `<C:addressbook-query xmlns:C="urn:ietf:params:xml:ns:carddav"><C:filter test="allof"><C:prop-filter name="FN"><C:param-filter name="TYPE"><C:text-match negate-condition="yes"/></C:param-filter></C:prop-filter></C:filter><C:limit><C:nresults>1</C:nresults></C:limit></C:addressbook-query>`)
	f.Add(uint8(0), uint8(4), `<propfind xmlns="DAV:"><prop><address-data xmlns="urn:ietf:params:xml:ns:carddav" version="4.0"><prop name="EMAIL"/></address-data></prop></propfind>`)
	f.Add(uint8(2), uint8(2), `<propertyupdate xmlns="DAV:"><set><prop><me-card xmlns="http://calendarserver.org/ns/"><href>x</href></me-card></prop></set><remove><prop/></remove></propertyupdate>`)
	f.Add(uint8(3), uint8(5), `<mkcol xmlns="DAV:"><set><prop><resourcetype/></prop></set></mkcol>`)

	fx := newFixture(f)
	fx.put(f, book+"a.vcf", card("a", "A"))
	methods := []string{"PROPFIND", "REPORT", "PROPPATCH", "MKCOL"}
	paths := []string{"/", principal, home, book, book + "a.vcf", home + "new/"}
	f.Fuzz(func(t *testing.T, method, path uint8, body string) {
		m := methods[int(method)%len(methods)]
		p := paths[int(path)%len(paths)]
		if m == "MKCOL" {
			p = home + "fuzz/"
			defer fx.be.DeleteAddressBook(t.Context(), "fuzz")
		}
		r := httptest.NewRequest(m, p, strings.NewReader(body))
		r.SetBasicAuth(alice, alicePwd)
		r.Header.Set("Depth", "1")
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s = %d for %q", m, p, w.Code, body)
		}
		if w.Code == http.StatusMultiStatus {
			d := xml.NewDecoder(strings.NewReader(w.Body.String()))
			for {
				_, err := d.Token()
				if err != nil {
					if err.Error() != "EOF" {
						t.Fatalf("malformed 207 (%v) for %q:\n%s", err, body, w.Body.String())
					}
					break
				}
			}
		}
	})
}
