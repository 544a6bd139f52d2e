package carddav_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/carddav/carddavtest"
)

// BenchmarkThunderbirdInitialLoad measures Thunderbird's first sync of a
// 1,000-card book: the Depth 1 listing and the one-shot multiget.
func BenchmarkThunderbirdInitialLoad(b *testing.B) {
	f := newFixture(b)
	var hrefs []string
	for i := range 1000 {
		name := fmt.Sprintf("card-%04d.vcf", i)
		body := card(fmt.Sprintf("uid-%04d", i), fmt.Sprintf("Person %d", i))
		body = strings.Replace(body, "END:VCARD", "NOTE:"+strings.Repeat("x", 2000)+"\r\nEND:VCARD", 1)
		if _, err := f.be.PutObject(context.Background(), carddavtest.DefaultBook, name, []byte(body), carddav.Conditions{}); err != nil {
			b.Fatal(err)
		}
		hrefs = append(hrefs, book+name)
	}
	listing := fixtureBody(b, "tb-book-listing.xml")
	multiget := fixtureBody(b, "tb-multiget.xml", "{{HREFS}}", hrefList(hrefs...))
	serve := func(method, body string) {
		r := httptest.NewRequest(method, book, strings.NewReader(body))
		r.SetBasicAuth(alice, alicePwd)
		r.Header.Set("Depth", "1")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusMultiStatus {
			b.Fatalf("%s = %d", method, w.Code)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		serve("PROPFIND", listing)
		serve("REPORT", multiget)
	}
}
