package carddav_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contactsdav/contactsdav/carddav/carddavtest"
)

// The client flows below replay, step by step, what clients.md §1–§3 records
// of iOS/macOS Contacts, Thunderbird and DAVx5, with the request bodies in
// testdata/ (see testdata/README.md for their provenance).

func hrefList(hrefs ...string) string {
	var b strings.Builder
	for _, h := range hrefs {
		b.WriteString("<href xmlns=\"DAV:\">" + h + "</href>")
	}
	return b.String()
}

func readCard(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// syncToken reads a book's sync-token and getctag, which must agree.
func syncToken(t *testing.T, f *fixture, ua string) string {
	t.Helper()
	resp, body := f.do(t, req{method: "PROPFIND", path: book, body: fixtureBody(t, "apple-book-propfind.xml"),
		header: map[string]string{"Depth": "0", "User-Agent": ua}})
	r := carddavtest.ParseMultistatus(t, resp, body).Response(t, book)
	tok := r.OK(t, nsDAV, "sync-token").Text
	if ctag := r.OK(t, nsCS, "getctag").Text; ctag != tok || tok == "" {
		t.Fatalf("getctag %q, sync-token %q", ctag, tok)
	}
	return tok
}

func TestAppleFlow(t *testing.T) {
	f := newFixture(t)
	ua := map[string]string{"User-Agent": uaApple, "Depth": "0"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{"User-Agent": uaApple}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}

	// Discovery: the first request carries no credentials.
	resp, _ := f.do(t, req{method: "PROPFIND", path: "/.well-known/carddav", noAuth: true, header: ua,
		body: fixtureBody(t, "apple-entry-propfind.xml")})
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/" {
		t.Fatalf("well-known without auth = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = f.do(t, req{method: "PROPFIND", path: "/", noAuth: true, header: ua, body: fixtureBody(t, "apple-entry-propfind.xml")})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="contactsdav"`) {
		t.Fatalf("unauthenticated PROPFIND / = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = f.do(t, req{method: "PROPFIND", path: "/.well-known/carddav", header: ua, body: fixtureBody(t, "apple-entry-propfind.xml")})
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != principal {
		t.Fatalf("well-known with auth = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := f.do(t, req{method: "PROPFIND", path: principal, header: ua, body: fixtureBody(t, "apple-entry-propfind.xml")})
	r := carddavtest.ParseMultistatus(t, resp, body).Response(t, principal)
	mustContain(t, r.OK(t, nsDAV, "current-user-principal").Inner, principal)
	mustContain(t, r.OK(t, nsDAV, "principal-URL").Inner, principal)
	mustContain(t, r.OK(t, nsDAV, "resourcetype").Inner, "principal", "collection")

	resp, _ = f.do(t, req{method: "OPTIONS", path: principal, noAuth: true, header: ua})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("DAV"), "addressbook") {
		t.Fatalf("OPTIONS = %d, DAV %q", resp.StatusCode, resp.Header.Get("DAV"))
	}

	resp, body = f.do(t, req{method: "PROPFIND", path: principal, header: ua, body: fixtureBody(t, "apple-principal-propfind.xml")})
	r = carddavtest.ParseMultistatus(t, resp, body).Response(t, principal)
	mustContain(t, r.OK(t, nsCard, "addressbook-home-set").Inner, home)
	if got := r.OK(t, nsDAV, "displayname").Text; got != alice {
		t.Errorf("principal displayname = %q", got)
	}
	r.OK(t, nsDAV, "principal-collection-set")
	for _, missing := range []string{"resource-id", "supported-report-set"} {
		if st, _ := r.Prop(nsDAV, missing); st != "HTTP/1.1 404 Not Found" {
			t.Errorf("%s status %q, want 404", missing, st)
		}
	}

	// Home set, Depth 1: the book with everything Apple needs, and no
	// add-member or bulk-requests (Apple would then not use PUT).
	resp, body = f.do(t, req{method: "PROPFIND", path: home, header: with(map[string]string{"Depth": "1"}),
		body: fixtureBody(t, "apple-home-propfind.xml")})
	ms := carddavtest.ParseMultistatus(t, resp, body)
	if got := ms.Hrefs(); len(got) != 2 || got[0] != home || got[1] != book {
		t.Fatalf("home Depth 1 hrefs = %v", got)
	}
	br := ms.Response(t, book)
	mustContain(t, br.OK(t, nsDAV, "resourcetype").Inner, "addressbook")
	mustContain(t, br.OK(t, nsDAV, "current-user-privilege-set").Inner, "<D:write/>", "<D:write-content/>", "<D:read/>")
	mustContain(t, br.OK(t, nsDAV, "supported-report-set").Inner, "sync-collection", "addressbook-multiget")
	br.OK(t, nsDAV, "sync-token")
	br.OK(t, nsCard, "max-resource-size")
	for _, p := range [][2]string{{nsDAV, "add-member"}, {"http://me.com/_namespace/", "bulk-requests"}} {
		if st, _ := br.Prop(p[0], p[1]); st != "HTTP/1.1 404 Not Found" {
			t.Errorf("%s status %q, want 404", p[1], st)
		}
	}

	// Sync: initial, then a create with If-None-Match: *.
	t0 := syncToken(t, f, uaApple)
	resp, body = f.do(t, req{method: "REPORT", path: book, header: ua, body: fixtureBody(t, "apple-sync-collection.xml", "{{TOKEN}}", "")})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	if len(ms.Responses) != 0 || ms.SyncToken == nil || *ms.SyncToken != t0 {
		t.Fatalf("initial sync = %+v", ms)
	}
	cardPath := book + "E7213AAA-1DF0-4D9A-93E2-0BD8B4B9E4A1-ABSPlugin.vcf"
	apple := readCard(t, "apple-card.vcf")
	resp, _ = f.do(t, req{method: "PUT", path: cardPath, body: apple,
		header: with(map[string]string{"Content-Type": "text/vcard", "If-None-Match": "*"})})
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("create = %d, ETag %q", resp.StatusCode, etag)
	}
	resp, _ = f.do(t, req{method: "PUT", path: cardPath, body: apple,
		header: with(map[string]string{"Content-Type": "text/vcard", "If-None-Match": "*"})})
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("second create = %d, want 412", resp.StatusCode)
	}
	t1 := syncToken(t, f, uaApple)
	if t1 == t0 {
		t.Fatal("getctag did not change on create")
	}
	resp, body = f.do(t, req{method: "REPORT", path: book, header: ua, body: fixtureBody(t, "apple-sync-collection.xml", "{{TOKEN}}", t0)})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	if len(ms.Responses) != 1 || *ms.SyncToken != t1 {
		t.Fatalf("incremental sync = %+v", ms)
	}
	if got := ms.Response(t, cardPath).OK(t, nsDAV, "getetag").Text; got != etag {
		t.Errorf("sync getetag = %q, want %q", got, etag)
	}
	if st, _ := ms.Responses[0].Prop(nsCard, "address-data"); st != "" {
		t.Error("address-data sent though not asked for")
	}

	// Multiget serves the card byte for byte, as vCard 3.0.
	resp, body = f.do(t, req{method: "REPORT", path: book, header: with(map[string]string{"Depth": "1"}),
		body: fixtureBody(t, "apple-multiget.xml", "{{HREFS}}", hrefList(cardPath))})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	if got := ms.Response(t, cardPath).OK(t, nsCard, "address-data").Text; got != apple {
		t.Errorf("multiget card = %q\nwant %q", got, apple)
	}

	// Updates carry If-Match; a stale one is a 412.
	edited := strings.Replace(apple, "FN:Johnny Appleseed", "FN:John Appleseed", 1)
	resp, _ = f.do(t, req{method: "PUT", path: cardPath, body: edited,
		header: with(map[string]string{"Content-Type": "text/vcard", "If-Match": `"stale"`})})
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale update = %d, want 412", resp.StatusCode)
	}
	resp, _ = f.do(t, req{method: "PUT", path: cardPath, body: edited,
		header: with(map[string]string{"Content-Type": "text/vcard", "If-Match": etag})})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("ETag") == etag {
		t.Fatalf("update = %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	etag = resp.Header.Get("ETag")

	// "Make this my card": PROPPATCH CS:me-card on the home set.
	resp, body = f.do(t, req{method: "PROPPATCH", path: home, header: with(nil),
		body: fixtureBody(t, "apple-me-card-proppatch.xml", "{{HREF}}", cardPath)})
	carddavtest.ParseMultistatus(t, resp, body).Response(t, home).OK(t, nsCS, "me-card")
	resp, body = f.do(t, req{method: "PROPFIND", path: home, header: ua, body: fixtureBody(t, "apple-home-propfind.xml")})
	mustContain(t, carddavtest.ParseMultistatus(t, resp, body).Response(t, home).OK(t, nsCS, "me-card").Inner, cardPath)

	// DELETE, then the sync reports the href as 404.
	resp, _ = f.do(t, req{method: "DELETE", path: cardPath, header: with(map[string]string{"If-Match": etag})})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	resp, body = f.do(t, req{method: "REPORT", path: book, header: ua, body: fixtureBody(t, "apple-sync-collection.xml", "{{TOKEN}}", t1)})
	if r := carddavtest.ParseMultistatus(t, resp, body).Response(t, cardPath); r.Status != "HTTP/1.1 404 Not Found" {
		t.Errorf("deleted member status %q", r.Status)
	}

	// A token the server never issued: 403 + DAV:valid-sync-token.
	resp, body = f.do(t, req{method: "REPORT", path: book, header: ua,
		body: fixtureBody(t, "apple-sync-collection.xml", "{{TOKEN}}", "http://contactsdav.test/ns/sync/999/1")})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/xml; charset=utf-8" {
		t.Fatalf("invalid token = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mustContain(t, body, `<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>`)
}

func TestThunderbirdFlow(t *testing.T) {
	f := newFixture(t)
	h := func(depth string) map[string]string {
		return map[string]string{"User-Agent": uaTB, "Depth": depth, "Content-Type": "text/xml"}
	}

	// Discovery from a bare host: well-known → / → 401 → / with credentials.
	resp, _ := f.do(t, req{method: "PROPFIND", path: "/.well-known/carddav", noAuth: true, header: h("0"),
		body: fixtureBody(t, "tb-wellknown-propfind.xml")})
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/" {
		t.Fatalf("well-known = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = f.do(t, req{method: "PROPFIND", path: "/", noAuth: true, header: h("0"), body: fixtureBody(t, "tb-wellknown-propfind.xml")})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="contactsdav", charset="UTF-8"` {
		t.Fatalf("challenge = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, body := f.do(t, req{method: "PROPFIND", path: "/", header: h("0"), body: fixtureBody(t, "tb-wellknown-propfind.xml")})
	mustContain(t, carddavtest.ParseMultistatus(t, resp, body).Response(t, "/").OK(t, nsDAV, "current-user-principal").Inner, principal)
	resp, body = f.do(t, req{method: "PROPFIND", path: principal, header: h("0"), body: fixtureBody(t, "tb-principal-propfind.xml")})
	mustContain(t, carddavtest.ParseMultistatus(t, resp, body).Response(t, principal).OK(t, nsCard, "addressbook-home-set").Inner, home)

	// Home set: the book's first <status> must be exactly "HTTP/1.1 200 OK".
	resp, body = f.do(t, req{method: "PROPFIND", path: home, header: h("1"), body: fixtureBody(t, "tb-home-propfind.xml")})
	ms := carddavtest.ParseMultistatus(t, resp, body)
	mustContain(t, ms.Response(t, book).OK(t, nsDAV, "resourcetype").Inner, "addressbook")
	afterHref := body[strings.Index(body, "<D:href>"+book+"</D:href>"):]
	if st := afterHref[strings.Index(afterHref, "<D:status>"):]; !strings.HasPrefix(st, "<D:status>HTTP/1.1 200 OK</D:status>") {
		t.Errorf("first status of the book is %.40s", st)
	}

	// Cards written by Thunderbird: no conditions, text/vcard, <UID>.vcf.
	tbCard := readCard(t, "tb-card.vcf")
	tbPath := book + "0c8f3a5e-tb-4f2b-9b1e-7d1b2a3c4d5e.vcf"
	resp, _ = f.do(t, req{method: "PUT", path: tbPath, body: tbCard, header: map[string]string{"User-Agent": uaTB, "Content-Type": "text/vcard"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	other := book + "other.vcf"
	f.put(t, other, card("other", "Other Person"))

	// fetchAllFromServer: listing, one multiget, then the token.
	resp, body = f.do(t, req{method: "PROPFIND", path: book, header: h("1"), body: fixtureBody(t, "tb-book-listing.xml")})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	ms.Response(t, book).OK(t, nsCS, "getctag")
	for _, p := range []string{tbPath, other} {
		if etag := ms.Response(t, p).OK(t, nsDAV, "getetag").Text; !strings.HasPrefix(etag, `"`) {
			t.Errorf("%s getetag %q", p, etag)
		}
	}
	missing := book + "gone.vcf"
	resp, body = f.do(t, req{method: "REPORT", path: book, header: h("1"),
		body: fixtureBody(t, "tb-multiget.xml", "{{HREFS}}", hrefList(tbPath, other, missing))})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	if got := ms.Response(t, tbPath).OK(t, nsCard, "address-data").Text; !strings.Contains(got, "VERSION:3.0") || !strings.Contains(got, "FN:Tess Bird") {
		t.Errorf("multiget card = %q (want 3.0: no version asked)", got)
	}
	if r := ms.Response(t, missing); r.Status != "HTTP/1.1 404 Not Found" {
		t.Errorf("missing href status %q", r.Status)
	}
	resp, body = f.do(t, req{method: "PROPFIND", path: book, header: h("0"), body: fixtureBody(t, "tb-synctoken-propfind.xml")})
	tok := carddavtest.ParseMultistatus(t, resp, body).Response(t, book).OK(t, nsDAV, "sync-token").Text

	// Another client edits a card; sync V2 brings it with address-data.
	f.put(t, other, card("other", "Other Renamed"))
	resp, body = f.do(t, req{method: "REPORT", path: book, header: h("1"), body: fixtureBody(t, "tb-sync-collection.xml", "{{TOKEN}}", tok)})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	if len(ms.Responses) != 1 || ms.SyncToken == nil || *ms.SyncToken == tok {
		t.Fatalf("sync = %+v", ms)
	}
	r := ms.Response(t, other)
	r.OK(t, nsDAV, "getetag")
	mustContain(t, r.OK(t, nsCard, "address-data").Text, "FN:Other Renamed")
	tok = *ms.SyncToken

	// Thunderbird deletes without If-Match.
	resp, _ = f.do(t, req{method: "DELETE", path: tbPath, header: map[string]string{"User-Agent": uaTB}})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	resp, body = f.do(t, req{method: "REPORT", path: book, header: h("1"), body: fixtureBody(t, "tb-sync-collection.xml", "{{TOKEN}}", tok)})
	if r := carddavtest.ParseMultistatus(t, resp, body).Response(t, tbPath); !strings.HasPrefix(r.Status, "HTTP/1.1 404") {
		t.Errorf("deleted status %q", r.Status)
	}

	// An unknown token: 400, the only status Thunderbird recovers from.
	resp, body = f.do(t, req{method: "REPORT", path: book, header: h("1"), body: fixtureBody(t, "tb-sync-collection.xml", "{{TOKEN}}", "bogus")})
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/xml; charset=utf-8" {
		t.Fatalf("invalid token = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mustContain(t, body, "<D:valid-sync-token/>")
}

func TestDAVx5Flow(t *testing.T) {
	f := newFixture(t)
	h := func(depth string) map[string]string {
		return map[string]string{"User-Agent": uaDAVx5, "Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
	}

	// Preemptive credentials: the well-known redirect goes to the principal.
	resp, _ := f.do(t, req{method: "PROPFIND", path: "/.well-known/carddav", header: h("0"), body: fixtureBody(t, "davx5-entry-propfind.xml")})
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != principal {
		t.Fatalf("well-known = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := f.do(t, req{method: "PROPFIND", path: principal, header: h("0"), body: fixtureBody(t, "davx5-entry-propfind.xml")})
	r := carddavtest.ParseMultistatus(t, resp, body).Response(t, principal)
	mustContain(t, r.OK(t, nsDAV, "resourcetype").Inner, "principal")
	mustContain(t, r.OK(t, nsCard, "addressbook-home-set").Inner, home)
	resp, _ = f.do(t, req{method: "OPTIONS", path: principal, header: h("0")})
	if !strings.Contains(resp.Header.Get("DAV"), "addressbook") {
		t.Fatalf("OPTIONS DAV = %q", resp.Header.Get("DAV"))
	}
	resp, body = f.do(t, req{method: "PROPFIND", path: principal, header: h("0"), body: fixtureBody(t, "davx5-principal-propfind.xml")})
	if st, _ := carddavtest.ParseMultistatus(t, resp, body).Response(t, principal).Prop(nsDAV, "group-membership"); st != "HTTP/1.1 404 Not Found" {
		t.Errorf("group-membership status %q", st)
	}

	// DAVx5 stores the home set with a trailing slash, but may be given
	// one without; either works and hrefs end in "/".
	resp, body = f.do(t, req{method: "PROPFIND", path: strings.TrimSuffix(home, "/"), header: h("1"), body: fixtureBody(t, "davx5-home-propfind.xml")})
	ms := carddavtest.ParseMultistatus(t, resp, body)
	mustContain(t, ms.Response(t, home).OK(t, nsDAV, "current-user-privilege-set").Inner, "<D:bind/>")
	mustContain(t, ms.Response(t, book).OK(t, nsDAV, "current-user-privilege-set").Inner, "<D:write-content/>")
	ms.Response(t, book).OK(t, nsDAV, "owner")

	// "Create address book": extended MKCOL at a UUID of its choosing.
	newBook := home + "3f1c5b8e-2a4d-4e6f-9b0a-1c2d3e4f5a6b/"
	resp, _ = f.do(t, req{method: "MKCOL", path: newBook, header: h(""), body: fixtureBody(t, "davx5-mkcol.xml")})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("MKCOL = %d", resp.StatusCode)
	}
	resp, _ = f.do(t, req{method: "MKCOL", path: newBook, header: h(""), body: fixtureBody(t, "davx5-mkcol.xml")})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("second MKCOL = %d, want 405", resp.StatusCode)
	}
	resp, body = f.do(t, req{method: "PROPFIND", path: home, header: h("1"), body: fixtureBody(t, "davx5-home-propfind.xml")})
	nb := carddavtest.ParseMultistatus(t, resp, body).Response(t, newBook)
	if nb.OK(t, nsDAV, "displayname").Text != "Work" || nb.OK(t, nsCard, "addressbook-description").Text != "Work contacts" {
		t.Errorf("new book = %+v", nb)
	}

	// Capabilities check, then sync with an empty token.
	resp, body = f.do(t, req{method: "PROPFIND", path: book, header: h("0"), body: fixtureBody(t, "davx5-book-capabilities.xml")})
	r = carddavtest.ParseMultistatus(t, resp, body).Response(t, book)
	mustContain(t, r.OK(t, nsDAV, "supported-report-set").Inner, "<D:sync-collection/>")
	mustContain(t, r.OK(t, nsCard, "supported-address-data").Inner, `content-type="text/vcard" version="4.0"`)
	if r.OK(t, nsCard, "max-resource-size").Text == "" || r.OK(t, nsCS, "getctag").Text != r.OK(t, nsDAV, "sync-token").Text {
		t.Errorf("capabilities = %+v", r)
	}
	sync := func(token string, limit int) *carddavtest.Multistatus {
		lim := ""
		if limit > 0 {
			lim = fmt.Sprintf("<limit><nresults>%d</nresults></limit>", limit)
		}
		resp, body := f.do(t, req{method: "REPORT", path: book, header: h("0"),
			body: fixtureBody(t, "davx5-sync-collection.xml", "{{TOKEN}}", token, "{{LIMIT}}", lim)})
		ms := carddavtest.ParseMultistatus(t, resp, body)
		if ms.SyncToken == nil {
			t.Fatal("sync without sync-token")
		}
		return ms
	}
	t0 := *sync("", 0).SyncToken

	// Create with If-None-Match: *, vCard 4.0.
	dv := readCard(t, "davx5-card.vcf")
	dvPath := book + "8d6a2c1e-5b7f-4a3e-9c2d-1f0e9d8c7b6a.vcf"
	put := func(hdr map[string]string) *http.Response {
		hh := map[string]string{"User-Agent": uaDAVx5, "Content-Type": "text/vcard;version=4.0"}
		for k, v := range hdr {
			hh[k] = v
		}
		resp, _ := f.do(t, req{method: "PUT", path: dvPath, body: dv, header: hh})
		return resp
	}
	resp = put(map[string]string{"If-None-Match": "*"})
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusCreated || etag == "" {
		t.Fatalf("create = %d %q", resp.StatusCode, etag)
	}
	if resp = put(map[string]string{"If-None-Match": "*"}); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("re-create = %d, want 412", resp.StatusCode)
	}
	for i := range 12 {
		f.put(t, fmt.Sprintf("%sbulk-%02d.vcf", book, i), card(fmt.Sprintf("bulk-%02d", i), fmt.Sprintf("Bulk %d", i)))
	}

	// Paged sync: 507 on the request-URI while more remain.
	seen := map[string]bool{}
	tok := t0
	for round := 0; ; round++ {
		if round == 10 {
			t.Fatal("paging does not end")
		}
		ms := sync(tok, 5)
		tok = *ms.SyncToken
		more := false
		for _, r := range ms.Responses {
			if r.Href == book {
				if r.Status != "HTTP/1.1 507 Insufficient Storage" {
					t.Fatalf("request-URI status %q", r.Status)
				}
				more = true
				continue
			}
			r.OK(t, nsDAV, "getetag")
			seen[r.Href] = true
		}
		if !more {
			break
		}
	}
	if len(seen) != 13 || !seen[dvPath] {
		t.Fatalf("paged sync saw %d members", len(seen))
	}

	// Multiget, 10 per batch, asking for vCard 4.0.
	var batch []string
	for i := range 9 {
		batch = append(batch, fmt.Sprintf("%sbulk-%02d.vcf", book, i))
	}
	batch = append(batch, dvPath)
	resp, body = f.do(t, req{method: "REPORT", path: book, header: h("0"),
		body: fixtureBody(t, "davx5-multiget.xml", "{{HREFS}}", hrefList(batch...))})
	ms = carddavtest.ParseMultistatus(t, resp, body)
	if len(ms.Responses) != 10 {
		t.Fatalf("multiget answered %d hrefs", len(ms.Responses))
	}
	r = ms.Response(t, dvPath)
	mustContain(t, r.OK(t, nsCard, "address-data").Text, "VERSION:4.0", "item1.X-ABLabel:mobile")
	if r.OK(t, nsDAV, "getcontenttype").Text != "text/vcard; charset=utf-8" || r.OK(t, nsDAV, "getetag").Text != etag {
		t.Errorf("multiget props = %+v", r)
	}

	// Update with If-Match, stale and current.
	if resp = put(map[string]string{"If-Match": `"stale"`}); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale update = %d", resp.StatusCode)
	}
	dv = strings.Replace(dv, "FN:Dana Vix", "FN:Dana V.", 1)
	if resp = put(map[string]string{"If-Match": etag}); resp.StatusCode != http.StatusNoContent || resp.Header.Get("ETag") == "" {
		t.Fatalf("update = %d", resp.StatusCode)
	}
	etag = resp.Header.Get("ETag")

	// GET with Accept asking for 4.0.
	resp, body = f.do(t, req{method: "GET", path: dvPath, header: map[string]string{"Accept": "text/vcard;version=4.0"}})
	if resp.Header.Get("Content-Type") != "text/vcard; charset=utf-8" || resp.Header.Get("ETag") != etag || !strings.Contains(body, "VERSION:4.0") {
		t.Errorf("GET = %v %q", resp.Header, body)
	}

	// DELETE with If-Match.
	resp, _ = f.do(t, req{method: "DELETE", path: dvPath, header: map[string]string{"If-Match": `"stale"`}})
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("stale DELETE = %d", resp.StatusCode)
	}
	resp, _ = f.do(t, req{method: "DELETE", path: dvPath, header: map[string]string{"If-Match": etag}})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	if r := sync(tok, 0).Response(t, dvPath); r.Status != "HTTP/1.1 404 Not Found" {
		t.Errorf("deleted status %q", r.Status)
	}

	// An invalid token: the XML body DAVx5 recovers from.
	resp, body = f.do(t, req{method: "REPORT", path: book, header: h("0"),
		body: fixtureBody(t, "davx5-sync-collection.xml", "{{TOKEN}}", "urn:nope", "{{LIMIT}}", "")})
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
		t.Fatalf("invalid token = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mustContain(t, body, "valid-sync-token")

	// Books can be deleted, the default one cannot.
	if resp, _ = f.do(t, req{method: "DELETE", path: newBook}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE book = %d", resp.StatusCode)
	}
	if resp, _ = f.do(t, req{method: "DELETE", path: book}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE default book = %d", resp.StatusCode)
	}
}
