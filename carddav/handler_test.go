package carddav_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-webdav"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/carddav/carddavtest"
)

const propfindType = `<propfind xmlns="DAV:"><prop><resourcetype/><current-user-principal/></prop></propfind>`

func TestTrailingSlash(t *testing.T) {
	f := newFixture(t)
	f.put(t, book+"a.vcf", card("a", "A"))
	for _, tc := range []struct{ path, href string }{
		{"/", "/"},
		{"/alice@example.com", principal},
		{"/alice@example.com/", principal},
		{"/alice%40example.com/", "/alice%40example.com/"}, // as the client wrote it
		{"/alice%40example.com/contacts/default/a%2Evcf", "/alice%40example.com/contacts/default/a%2Evcf"},
		{"/alice@example.com/contacts", home},
		{"/alice@example.com/contacts/", home},
		{"/alice@example.com/contacts/default", book},
		{"/alice@example.com/contacts/default/", book},
		{"/alice@example.com/contacts/default/a.vcf", book + "a.vcf"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.rec(t, req{method: "PROPFIND", path: tc.path, header: map[string]string{"Depth": "0"}, body: propfindType})
			ms := carddavtest.ParseMultistatus(t, resp, body)
			if len(ms.Responses) != 1 || ms.Responses[0].Href != tc.href {
				t.Fatalf("hrefs = %v, want %s", ms.Hrefs(), tc.href)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	var failErr error
	f.auth.Fail = func(string) error { return failErr }
	for _, tc := range []struct {
		name       string
		rq         req
		fail       error
		status     int
		header     string
		headerWant string
	}{
		{"no credentials", req{method: "PROPFIND", path: principal, noAuth: true}, nil, 401, "WWW-Authenticate", `Basic realm="contactsdav", charset="UTF-8"`},
		{"wrong password", req{method: "PROPFIND", path: principal, header: map[string]string{"Authorization": "Basic " + basic(alice, "nope")}}, nil, 401, "WWW-Authenticate", `Basic realm="contactsdav", charset="UTF-8"`},
		{"unknown user", req{method: "GET", path: "/", header: map[string]string{"Authorization": "Basic " + basic("mallory", "x")}}, nil, 401, "WWW-Authenticate", `Basic realm="contactsdav", charset="UTF-8"`},
		{"rate limited", req{method: "PROPFIND", path: principal}, &carddav.RateLimitError{RetryAfter: 1500 * time.Millisecond}, 429, "Retry-After", "2"},
		{"accounts unavailable", req{method: "PROPFIND", path: principal}, &carddav.UnavailableError{Err: errors.New("db down")}, 503, "Retry-After", "1"},
		{"another user's principal", req{method: "PROPFIND", path: "/bob/"}, nil, 403, "", ""},
		{"another user's card", req{method: "GET", path: "/bob/contacts/default/x.vcf"}, nil, 403, "", ""},
		{"OPTIONS needs no credentials", req{method: "OPTIONS", path: book, noAuth: true}, nil, 200, "DAV", "1, 3, addressbook, extended-mkcol"},
		{"outside the layout", req{method: "PROPFIND", path: principal + "calendars/"}, nil, 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failErr = tc.fail
			resp, _ := f.rec(t, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.header != "" && resp.Header.Get(tc.header) != tc.headerWant {
				t.Errorf("%s = %q, want %q", tc.header, resp.Header.Get(tc.header), tc.headerWant)
			}
		})
	}
}

func basic(user, pass string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestWellKnown(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name     string
		rq       req
		status   int
		location string
	}{
		{"GET anonymous", req{method: "GET", path: "/.well-known/carddav", noAuth: true}, 301, "/"},
		{"PROPFIND anonymous", req{method: "PROPFIND", path: "/.well-known/carddav", noAuth: true}, 301, "/"},
		{"trailing slash", req{method: "PROPFIND", path: "/.well-known/carddav/", noAuth: true}, 301, "/"},
		{"authenticated", req{method: "PROPFIND", path: "/.well-known/carddav"}, 301, principal},
		{"OPTIONS", req{method: "OPTIONS", path: "/.well-known/carddav", noAuth: true}, 200, ""},
		{"caldav", req{method: "PROPFIND", path: "/.well-known/caldav", noAuth: true}, 404, ""},
		{"bad credentials", req{method: "GET", path: "/.well-known/carddav", header: map[string]string{"Authorization": "Basic " + basic(alice, "x")}}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := f.rec(t, tc.rq)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("= %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
			}
		})
	}
}

func propertyUpdate(set, remove string) string {
	s := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/" xmlns:A="http://apple.com/ns/ical/">`
	if set != "" {
		s += "<D:set><D:prop>" + set + "</D:prop></D:set>"
	}
	if remove != "" {
		s += "<D:remove><D:prop>" + remove + "</D:prop></D:remove>"
	}
	return s + "</D:propertyupdate>"
}

func TestPropPatch(t *testing.T) {
	f := newFixture(t)
	type want struct {
		ns, local string
		status    int
	}
	for _, tc := range []struct {
		name        string
		path, body  string
		status      int
		props       []want
		displayName string // the book's name afterwards
	}{
		{"rename", book, propertyUpdate("<D:displayname>Private</D:displayname>", ""), 207,
			[]want{{nsDAV, "displayname", 200}}, "Private"},
		{"description", book, propertyUpdate("<C:addressbook-description>mine</C:addressbook-description>", ""), 207,
			[]want{{nsCard, "addressbook-description", 200}}, "Private"},
		{"atomic failure", book, propertyUpdate("<D:displayname>Nope</D:displayname><A:calendar-color>#f00</A:calendar-color>", ""), 207,
			[]want{{nsDAV, "displayname", 424}, {"http://apple.com/ns/ical/", "calendar-color", 403}}, "Private"},
		{"protected", book, propertyUpdate("<D:sync-token>x</D:sync-token>", ""), 207,
			[]want{{nsDAV, "sync-token", 403}}, "Private"},
		{"me-card on home", home, propertyUpdate(`<CS:me-card><D:href>`+book+`a.vcf</D:href></CS:me-card>`, ""), 207,
			[]want{{nsCS, "me-card", 200}}, "Private"},
		{"remove me-card", home, propertyUpdate("", "<CS:me-card/>"), 207,
			[]want{{nsCS, "me-card", 200}}, "Private"},
		{"displayname on home", home, propertyUpdate("<D:displayname>x</D:displayname>", ""), 207,
			[]want{{nsDAV, "displayname", 403}}, "Private"},
		{"principal", principal, propertyUpdate("<D:displayname>x</D:displayname>", ""), 207,
			[]want{{nsDAV, "displayname", 403}}, "Private"},
		{"missing book", home + "nope/", propertyUpdate("<D:displayname>x</D:displayname>", ""), 404, nil, "Private"},
		{"malformed", book, "<D:propertyupdate xmlns:D=\"DAV:\">", 400, nil, "Private"},
		{"wrong root", book, `<D:propfind xmlns:D="DAV:"/>`, 400, nil, "Private"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rec(t, req{method: "PROPPATCH", path: tc.path, body: tc.body})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 207 {
				ms := carddavtest.ParseMultistatus(t, resp, body)
				if len(ms.Responses) != 1 || ms.Responses[0].Status != "" {
					t.Fatalf("malformed 207: %s", body)
				}
				n := 0
				for _, ps := range ms.Responses[0].Propstats {
					for _, p := range ps.Prop.Props {
						n++
						if p.Inner != "" {
							t.Errorf("property %s echoes a value: %q", p.XMLName.Local, p.Inner)
						}
					}
				}
				if n != len(tc.props) {
					t.Errorf("%d properties answered, want %d: %s", n, len(tc.props), body)
				}
				for _, w := range tc.props {
					st, _ := ms.Responses[0].Prop(w.ns, w.local)
					if want := fmt.Sprintf("HTTP/1.1 %d %s", w.status, http.StatusText(w.status)); st != want {
						t.Errorf("%s: %q, want %q", w.local, st, want)
					}
				}
			}
			ab, err := f.be.AddressBook(context.Background(), carddavtest.DefaultBook)
			if err != nil || ab.DisplayName != tc.displayName {
				t.Errorf("book name = %q, want %q", ab.DisplayName, tc.displayName)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name         string
		err          error
		rq           req
		op           string
		status       int
		contentType  string
		body         string
		retryAfter   string
		bodyExcludes string
	}{
		{"not found", webdav.NewHTTPError(404, errors.New("folder xyz")), req{method: "PROPFIND", path: book}, "AddressBook",
			404, "text/plain; charset=utf-8", "Not Found", "", "xyz"},
		{"wrapped conflict", fmt.Errorf("graph: %w", webdav.NewHTTPError(409, nil)), req{method: "GET", path: book + "x.vcf"}, "GetObjects",
			409, "text/plain; charset=utf-8", "Conflict", "", ""},
		{"uid conflict", &carddav.PreconditionError{Status: 409, Condition: carddav.NoUIDConflict},
			req{method: "PUT", path: book + "x.vcf", body: card("x", "X")}, "PutObject",
			409, "application/xml; charset=utf-8", `<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><C:no-uid-conflict/></D:error>`, "", ""},
		{"bad card", &carddav.PreconditionError{Status: 400, Condition: carddav.ValidAddressData, Err: errors.New("line 3: secret")},
			req{method: "PUT", path: book + "x.vcf", body: card("x", "X")}, "PutObject",
			400, "application/xml; charset=utf-8", `<C:valid-address-data/>`, "", "secret"},
		{"read only", &carddav.PreconditionError{Status: 403, Condition: carddav.NeedPrivileges},
			req{method: "DELETE", path: book + "x.vcf"}, "DeleteObject",
			403, "application/xml; charset=utf-8", `<D:error xmlns:D="DAV:"><D:need-privileges/></D:error>`, "", ""},
		{"no status", &carddav.PreconditionError{Condition: carddav.MaxResourceSize},
			req{method: "PUT", path: book + "x.vcf", body: card("x", "X")}, "PutObject",
			403, "application/xml; charset=utf-8", `<C:max-resource-size/>`, "", ""},
		{"throttled", &carddav.UnavailableError{RetryAfter: 2500 * time.Millisecond, Err: errors.New("429")},
			req{method: "PROPFIND", path: home, header: map[string]string{"Depth": "1"}}, "ListAddressBooks",
			503, "text/plain; charset=utf-8", "unavailable", "3", ""},
		{"member listing fails", &carddav.UnavailableError{Err: errors.New("graph down")},
			req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "1"}}, "ListObjects",
			503, "text/plain; charset=utf-8", "", "1", "graph"},
		{"outage", &carddav.UnavailableError{Err: errors.New("graph down")},
			req{method: "REPORT", path: book, body: `<sync-collection xmlns="DAV:"><sync-token/><prop/></sync-collection>`}, "SyncChanges",
			503, "text/plain; charset=utf-8", "", "1", "graph"},
		{"invalid token", fmt.Errorf("decode: %w", carddav.ErrInvalidSyncToken),
			req{method: "REPORT", path: book, body: `<sync-collection xmlns="DAV:"><sync-token>x</sync-token><prop/></sync-collection>`}, "SyncChanges",
			403, "application/xml; charset=utf-8", `<D:valid-sync-token/>`, "", ""},
		{"invalid token, Thunderbird", carddav.ErrInvalidSyncToken,
			req{method: "REPORT", path: book, header: map[string]string{"User-Agent": uaTB}, body: `<sync-collection xmlns="DAV:"><sync-token>x</sync-token><prop/></sync-collection>`}, "SyncChanges",
			400, "application/xml; charset=utf-8", `<D:valid-sync-token/>`, "", ""},
		{"unexpected", errors.New("token for tenant 42 expired: secret"), req{method: "PROPFIND", path: book}, "AddressBook",
			500, "text/plain; charset=utf-8", "Internal Server Error", "", "secret"},
		{"lost password", carddav.ErrUnauthorized, req{method: "PROPFIND", path: book}, "AddressBook",
			401, "text/plain; charset=utf-8", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.be.Fail = func(op string) error {
				if op == tc.op {
					return tc.err
				}
				return nil
			}
			defer func() { f.be.Fail = nil }()
			resp, body := f.rec(t, tc.rq)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.contentType {
				t.Fatalf("= %d %q, want %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType, body)
			}
			if !strings.Contains(body, tc.body) {
				t.Errorf("body %q lacks %q", body, tc.body)
			}
			if tc.bodyExcludes != "" && strings.Contains(body, tc.bodyExcludes) {
				t.Errorf("body %q leaks %q", body, tc.bodyExcludes)
			}
			if resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", resp.Header.Get("Retry-After"), tc.retryAfter)
			}
			if tc.contentType == "application/xml; charset=utf-8" {
				if err := xml.Unmarshal([]byte(body), new(struct{})); err != nil {
					t.Errorf("error body is not XML: %v", err)
				}
			}
		})
	}
}

// TestMultistatusContentType checks every 207 carries its Content-Type
// (go-webdav loses it by setting it after WriteHeader).
func TestMultistatusContentType(t *testing.T) {
	f := newFixture(t)
	f.put(t, book+"a.vcf", card("a", "A"))
	for _, rq := range []req{
		{method: "PROPFIND", path: "/"},
		{method: "PROPFIND", path: home, header: map[string]string{"Depth": "1"}},
		{method: "PROPFIND", path: book, body: propfindType},
		{method: "PROPPATCH", path: book, body: propertyUpdate("<D:displayname>x</D:displayname>", "")},
		{method: "REPORT", path: book, body: `<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop><D:href>` + book + `a.vcf</D:href></C:addressbook-multiget>`},
		{method: "REPORT", path: book, body: `<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop></C:addressbook-query>`},
		{method: "REPORT", path: book, body: `<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:prop><D:getetag/></D:prop></D:sync-collection>`},
	} {
		t.Run(rq.method+" "+rq.path, func(t *testing.T) {
			resp, body := f.do(t, rq) // over the network: the header must really arrive
			carddavtest.ParseMultistatus(t, resp, body)
			if !strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`) ||
				!strings.Contains(body, `<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/">`) {
				t.Errorf("prologue: %.200s", body)
			}
		})
	}
}

func TestPropfindModes(t *testing.T) {
	f := newFixture(t)
	f.put(t, book+"a.vcf", card("a", "A"))
	for _, tc := range []struct {
		name      string
		rq        req
		status    int
		hrefs     int
		has, lack []string
	}{
		{"empty body is allprop", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "0", "Content-Type": "application/xml"}},
			207, 1, []string{"<D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>", "<D:displayname>Contacts</D:displayname>"}, []string{"sync-token", "404"}},
		{"allprop with include", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "0"},
			body: `<propfind xmlns="DAV:"><allprop/><include><sync-token/></include></propfind>`},
			207, 1, []string{"<D:sync-token>", "<D:displayname>"}, nil},
		{"propname", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "0"}, body: `<propfind xmlns="DAV:"><propname/></propfind>`},
			207, 1, []string{"<CS:getctag/>", "<D:sync-token/>", "<C:supported-address-data/>"}, []string{"contactsdav.test"}},
		{"object allprop", req{method: "PROPFIND", path: book + "a.vcf", header: map[string]string{"Depth": "0"}},
			207, 1, []string{`<D:getetag>"`, "<D:getcontenttype>text/vcard; charset=utf-8</D:getcontenttype>", "<D:getlastmodified>", "<D:resourcetype/>"}, []string{"address-data"}},
		{"object address-data", req{method: "PROPFIND", path: book + "a.vcf", header: map[string]string{"Depth": "0"},
			body: `<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><prop><C:address-data/><getcontentlength/></prop></propfind>`},
			207, 1, []string{"BEGIN:VCARD", "<D:getcontentlength>"}, nil},
		{"missing Depth lists members", req{method: "PROPFIND", path: book, body: propfindType}, 207, 2, nil, nil},
		{"Depth infinity is 1", req{method: "PROPFIND", path: home, header: map[string]string{"Depth": "infinity"}, body: propfindType}, 207, 2, nil, []string{"a.vcf"}},
		{"Prefer minimal drops 404s", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "0", "Prefer": "return=minimal"},
			body: `<propfind xmlns="DAV:"><prop><displayname/><quota-used-bytes/></prop></propfind>`},
			207, 1, []string{"<D:displayname>"}, []string{"404", "quota"}},
		{"Brief keeps a response of 404s only", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "0", "Brief": "t"},
			body: `<propfind xmlns="DAV:"><prop><quota-used-bytes/></prop></propfind>`},
			207, 1, []string{"404"}, nil},
		{"Depth 1 on the root", req{method: "PROPFIND", path: "/", header: map[string]string{"Depth": "1"}, body: propfindType}, 207, 2, nil, nil},
		{"Depth 1 on the principal", req{method: "PROPFIND", path: principal, header: map[string]string{"Depth": "1"}, body: propfindType}, 207, 2, nil, nil},
		{"bad Depth", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "2"}, body: propfindType}, 400, 0, nil, nil},
		{"malformed XML", req{method: "PROPFIND", path: book, body: "<propfind xmlns='DAV:'><prop>"}, 400, 0, nil, nil},
		{"wrong root", req{method: "PROPFIND", path: book, body: `<prop xmlns="DAV:"/>`}, 400, 0, nil, nil},
		{"missing book", req{method: "PROPFIND", path: home + "nope/", body: propfindType}, 404, 0, nil, nil},
		{"missing object", req{method: "PROPFIND", path: book + "nope.vcf", body: propfindType}, 404, 0, nil, nil},
		{"unsupported address-data version", req{method: "PROPFIND", path: book + "a.vcf",
			body: `<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><prop><C:address-data version="2.1"/></prop></propfind>`},
			403, 0, []string{"supported-address-data-conversion"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rec(t, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 207 {
				if ms := carddavtest.ParseMultistatus(t, resp, body); len(ms.Responses) != tc.hrefs {
					t.Errorf("hrefs = %v, want %d", ms.Hrefs(), tc.hrefs)
				}
			}
			mustContain(t, body, tc.has...)
			mustNotContain(t, body, tc.lack...)
		})
	}
}

func TestPut(t *testing.T) {
	f := newFixture(t)
	big := card("big", "Big") + strings.Repeat("X", carddav.DefaultMaxResourceSize)
	for _, tc := range []struct {
		name, path, body, contentType string
		header                        map[string]string
		status                        int
		has                           string
	}{
		{"vcard with charset", book + "a.vcf", card("a", "A"), "text/vcard; charset=utf-8", nil, 201, ""},
		{"update", book + "a.vcf", card("a", "A2"), "text/vcard", nil, 204, ""},
		{"x-vcard", book + "b.vcf", card("b", "B"), "text/x-vcard", nil, 201, ""},
		{"no content type", book + "c.vcf", card("c", "C"), "", nil, 201, ""},
		{"json", book + "d.vcf", card("d", "D"), "application/json", nil, 415, "<C:supported-address-data/>"},
		{"too large", book + "e.vcf", big, "text/vcard", nil, 413, "<C:max-resource-size/>"},
		{"not a vcard", book + "f.vcf", "hello", "text/vcard", nil, 403, "<C:valid-address-data/>"},
		{"uid taken", book + "g.vcf", card("a", "A"), "text/vcard", nil, 409, "<C:no-uid-conflict/>"},
		{"missing book", home + "nope/a.vcf", card("z", "Z"), "text/vcard", nil, 409, ""},
		{"on a book", book, card("h", "H"), "text/vcard", nil, 405, ""},
		{"If-Match on a new card", book + "i.vcf", card("i", "I"), "text/vcard", map[string]string{"If-Match": `"x"`}, 412, ""},
		{"name with space and unicode", book + "J%C3%B6hn%20Doe.vcf", card("j", "J"), "text/vcard", nil, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.contentType != "" {
				h["Content-Type"] = tc.contentType
			}
			for k, v := range tc.header {
				h[k] = v
			}
			resp, body := f.rec(t, req{method: "PUT", path: tc.path, body: tc.body, header: h})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if tc.status < 300 && !strings.HasPrefix(resp.Header.Get("ETag"), `"`) {
				t.Errorf("ETag = %q", resp.Header.Get("ETag"))
			}
			mustContain(t, body, tc.has)
		})
	}
	if got := f.put(t, book+"k.vcf", card("k", "K")); got == "" {
		t.Error("no ETag")
	}
	// Members are listed under the request URL as the client encoded it.
	resp, body := f.rec(t, req{method: "PROPFIND", path: "/alice%40example.com/contacts/default", header: map[string]string{"Depth": "1"}, body: propfindType})
	mustContain(t, body, "<D:href>/alice%40example.com/contacts/default/</D:href>", "<D:href>/alice%40example.com/contacts/default/k.vcf</D:href>")
	carddavtest.ParseMultistatus(t, resp, body)
	// The unicode name is listed percent-encoded and fetched by that href.
	resp, body = f.rec(t, req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "1"}, body: propfindType})
	mustContain(t, body, "<D:href>"+book+"J%C3%B6hn%20Doe.vcf</D:href>")
	carddavtest.ParseMultistatus(t, resp, body)
	resp, body = f.rec(t, req{method: "GET", path: book + "J%C3%B6hn%20Doe.vcf"})
	if resp.StatusCode != 200 || !strings.Contains(body, "UID:j") {
		t.Errorf("GET = %d %q", resp.StatusCode, body)
	}
}

func TestGet(t *testing.T) {
	f := newFixture(t)
	etag := f.put(t, book+"a.vcf", card("a", "A"))
	for _, tc := range []struct {
		name    string
		rq      req
		status  int
		version string
	}{
		{"default 3.0", req{method: "GET", path: book + "a.vcf"}, 200, "VERSION:3.0"},
		{"Accept 4.0", req{method: "GET", path: book + "a.vcf", header: map[string]string{"Accept": "text/vcard; version=4.0, text/vcard;q=0.5"}}, 200, "VERSION:4.0"},
		{"Accept 3.0", req{method: "GET", path: book + "a.vcf", header: map[string]string{"Accept": "text/vcard;version=3.0"}}, 200, "VERSION:3.0"},
		{"HEAD", req{method: "HEAD", path: book + "a.vcf"}, 200, ""},
		{"not modified", req{method: "GET", path: book + "a.vcf", header: map[string]string{"If-None-Match": etag}}, 304, ""},
		{"missing", req{method: "GET", path: book + "b.vcf"}, 404, ""},
		{"collection", req{method: "GET", path: book}, 200, ""},
		{"missing collection", req{method: "GET", path: home + "nope/"}, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rec(t, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.version != "" {
				mustContain(t, body, tc.version)
				if resp.Header.Get("Content-Type") != "text/vcard; charset=utf-8" || resp.Header.Get("ETag") != etag || resp.Header.Get("Last-Modified") == "" {
					t.Errorf("headers = %v", resp.Header)
				}
			}
			if tc.rq.method == "HEAD" && (body != "" || resp.Header.Get("ETag") != etag) {
				t.Errorf("HEAD = %q %v", body, resp.Header)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		rq     req
		status int
		has    string
	}{
		{"MKCOL plain", req{method: "MKCOL", path: home + "plain/"}, 201, ""},
		{"MKCOL existing", req{method: "MKCOL", path: book}, 405, ""},
		{"MKCOL on the home set", req{method: "MKCOL", path: home}, 405, ""},
		{"MKCOL too deep", req{method: "MKCOL", path: book + "sub/"}, 403, ""},
		{"MKCOL calendar", req{method: "MKCOL", path: home + "cal/", body: `<mkcol xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><set><prop><resourcetype><collection/><C:calendar/></resourcetype></prop></set></mkcol>`}, 403, `<D:error xmlns:D="DAV:"><D:valid-resourcetype/></D:error>`},
		{"MKCOL bad body", req{method: "MKCOL", path: home + "x/", body: `<foo/>`}, 415, ""},
		{"DELETE home", req{method: "DELETE", path: home}, 403, ""},
		{"DELETE missing card", req{method: "DELETE", path: book + "nope.vcf"}, 404, ""},
		{"DELETE book", req{method: "DELETE", path: home + "plain/"}, 204, ""},
		{"COPY", req{method: "COPY", path: book}, 405, ""},
		{"POST", req{method: "POST", path: book}, 405, ""},
		{"unknown REPORT", req{method: "REPORT", path: book, body: `<x:foo xmlns:x="urn:x"/>`}, 403, "<D:supported-report/>"},
		{"empty REPORT", req{method: "REPORT", path: book}, 400, ""},
		{"sync outside a book", req{method: "REPORT", path: home, body: `<sync-collection xmlns="DAV:"><sync-token/><prop/></sync-collection>`}, 403, ""},
		{"bad sync-level", req{method: "REPORT", path: book, body: `<sync-collection xmlns="DAV:"><sync-token/><sync-level>2</sync-level><prop/></sync-collection>`}, 400, ""},
		{"bad nresults", req{method: "REPORT", path: book, body: `<sync-collection xmlns="DAV:"><sync-token/><limit><nresults>x</nresults></limit><prop/></sync-collection>`}, 400, ""},
		{"infinite sync-level", req{method: "REPORT", path: book, body: `<sync-collection xmlns="DAV:"><sync-token/><sync-level>infinite</sync-level><prop/></sync-collection>`}, 207, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rec(t, tc.rq)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			mustContain(t, body, tc.has)
		})
	}
}

func TestAddressbookQuery(t *testing.T) {
	f := newFixture(t)
	f.put(t, book+"ann.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Smith\r\nEMAIL;TYPE=WORK:ann@work.example\r\nEMAIL;TYPE=HOME:ann@home.example\r\nEND:VCARD\r\n")
	f.put(t, book+"bob.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob\r\nFN:Bob Jones\r\nEND:VCARD\r\n")
	f.put(t, book+"cat.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:cat\r\nFN:Cat Smithers\r\nEMAIL:cat@home.example\r\nEND:VCARD\r\n")
	query := func(filter, extra string) string {
		return `<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data><C:prop name="FN"/></C:address-data></D:prop>` +
			filter + extra + `</C:addressbook-query>`
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       []string
	}{
		{"no filter", query("", ""), 207, []string{"ann", "bob", "cat"}},
		{"contains, case-insensitive", query(`<C:filter><C:prop-filter name="FN"><C:text-match>SMITH</C:text-match></C:prop-filter></C:filter>`, ""), 207, []string{"ann", "cat"}},
		{"octet collation", query(`<C:filter><C:prop-filter name="FN"><C:text-match collation="i;octet">SMITH</C:text-match></C:prop-filter></C:filter>`, ""), 207, nil},
		{"equals", query(`<C:filter><C:prop-filter name="FN"><C:text-match match-type="equals">bob jones</C:text-match></C:prop-filter></C:filter>`, ""), 207, []string{"bob"}},
		{"negate", query(`<C:filter><C:prop-filter name="FN"><C:text-match negate-condition="yes">smith</C:text-match></C:prop-filter></C:filter>`, ""), 207, []string{"bob"}},
		{"second instance", query(`<C:filter><C:prop-filter name="EMAIL"><C:text-match match-type="ends-with">@home.example</C:text-match></C:prop-filter></C:filter>`, ""), 207, []string{"ann", "cat"}},
		{"param-filter", query(`<C:filter><C:prop-filter name="EMAIL"><C:param-filter name="TYPE"><C:text-match match-type="equals">work</C:text-match></C:param-filter></C:prop-filter></C:filter>`, ""), 207, []string{"ann"}},
		{"is-not-defined", query(`<C:filter><C:prop-filter name="EMAIL"><C:is-not-defined/></C:prop-filter></C:filter>`, ""), 207, []string{"bob"}},
		{"allof", query(`<C:filter test="allof"><C:prop-filter name="FN"><C:text-match>smith</C:text-match></C:prop-filter><C:prop-filter name="EMAIL"><C:text-match>work</C:text-match></C:prop-filter></C:filter>`, ""), 207, []string{"ann"}},
		{"anyof", query(`<C:filter test="anyof"><C:prop-filter name="FN"><C:text-match>bob</C:text-match></C:prop-filter><C:prop-filter name="EMAIL"><C:text-match>cat@</C:text-match></C:prop-filter></C:filter>`, ""), 207, []string{"bob", "cat"}},
		{"limit", query("", `<C:limit><C:nresults>2</C:nresults></C:limit>`), 207, []string{"ann", "bob", "507"}},
		{"bad match-type", query(`<C:filter><C:prop-filter name="FN"><C:text-match match-type="regex">x</C:text-match></C:prop-filter></C:filter>`, ""), 400, nil},
		{"bad collation", query(`<C:filter><C:prop-filter name="FN"><C:text-match collation="i;klingon">x</C:text-match></C:prop-filter></C:filter>`, ""), 403, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.rec(t, req{method: "REPORT", path: book, header: map[string]string{"Depth": "1"}, body: tc.body})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 207 {
				return
			}
			var got []string
			for _, r := range carddavtest.ParseMultistatus(t, resp, body).Responses {
				if r.Href == book {
					got = append(got, r.Status[9:12])
					continue
				}
				got = append(got, strings.TrimSuffix(strings.TrimPrefix(r.Href, book), ".vcf"))
				data := r.OK(t, nsCard, "address-data").Text
				if strings.Contains(data, "EMAIL") || !strings.Contains(data, "FN:") {
					t.Errorf("address-data not reduced to FN: %q", data)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMultigetEdgeCases(t *testing.T) {
	f := newFixture(t)
	f.put(t, book+"a.vcf", card("a", "A"))
	body := `<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop>` +
		`<D:href>` + f.srv.URL + book + `a.vcf</D:href>` + // absolute URL
		`<D:href>/alice%40example.com/contacts/default/a.vcf</D:href>` + // other escaping
		`<D:href>/bob/contacts/default/a.vcf</D:href>` + // another user
		`<D:href>` + home + `gone/a.vcf</D:href>` + // missing book
		`<D:href>` + book + `</D:href>` + // not an object
		`<D:href>%zz</D:href>` + // not a URL
		`</C:addressbook-multiget>`
	resp, raw := f.rec(t, req{method: "REPORT", path: book, body: body})
	ms := carddavtest.ParseMultistatus(t, resp, raw)
	want := []string{"200", "200", "404", "404", "404", "404"}
	if len(ms.Responses) != len(want) {
		t.Fatalf("responses = %v", ms.Hrefs())
	}
	for i, r := range ms.Responses {
		st := r.Status
		if st == "" {
			st = r.Propstats[0].Status
		}
		if !strings.Contains(st, want[i]) {
			t.Errorf("%s: %q, want %s", r.Href, st, want[i])
		}
	}
	if ms.Responses[0].Href != f.srv.URL+book+"a.vcf" {
		t.Errorf("href not echoed: %q", ms.Responses[0].Href)
	}
}

func TestLogAndMetrics(t *testing.T) {
	var logs bytes.Buffer
	auth := &carddavtest.Authenticator{}
	auth.AddUser(alice, alicePwd)
	reg := prometheus.NewRegistry()
	opts := carddav.Options{Auth: auth, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registry: reg, Realm: `My "Realm"`}
	h := carddav.NewHandler(opts)
	carddav.NewHandler(opts) // a second handler on the same registry must not panic
	r := httptest.NewRequest("PROPFIND", principal, strings.NewReader(propfindType))
	r.SetBasicAuth(alice, alicePwd)
	h.ServeHTTP(httptest.NewRecorder(), r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="My \"Realm\"", charset="UTF-8"` {
		t.Errorf("challenge = %q", got)
	}
	mustContain(t, logs.String(), `"method":"PROPFIND"`, `"path":"/alice@example.com/"`, `"status":207`, `"user":"alice@example.com"`, `"duration"`, `"status":401`)
	mustNotContain(t, logs.String(), alicePwd)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "contactsdav_carddav_requests_total" {
			if n := len(mf.GetMetric()); n != 2 {
				t.Errorf("%d request series, want 2", n)
			}
		}
	}
	mustContain(t, strings.Join(names, " "), "contactsdav_carddav_requests_total", "contactsdav_carddav_request_duration_seconds")
}

// TestDeletedBeforeFetch deletes a member between the listing (or change
// log) and the fetch of its card: a Depth 1 PROPFIND leaves it out, a
// sync-collection reports it as gone.
func TestDeletedBeforeFetch(t *testing.T) {
	f := newFixture(t)
	f.put(t, book+"a.vcf", card("a", "A"))
	f.put(t, book+"b.vcf", card("b", "B"))
	const addressData = `<D:prop><D:getetag/><C:address-data/></D:prop>`
	for _, tc := range []struct {
		name string
		rq   req
		want map[string]string // href → status of a response without propstat; "" for a found card
	}{
		{"PROPFIND Depth 1", req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "1"},
			body: `<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">` + addressData + `</D:propfind>`},
			map[string]string{book: "", book + "a.vcf": ""}},
		{"sync-collection", req{method: "REPORT", path: book,
			body: `<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:sync-token/>` + addressData + `</D:sync-collection>`},
			map[string]string{book + "a.vcf": "", book + "b.vcf": "HTTP/1.1 404 Not Found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.put(t, book+"b.vcf", card("b", "B"))
			f.be.Fail = func(op string) error {
				if op == "GetObjects" {
					f.be.Fail = nil
					if err := f.be.DeleteObject(t.Context(), carddavtest.DefaultBook, "b.vcf", ""); err != nil {
						t.Error(err)
					}
				}
				return nil
			}
			defer func() { f.be.Fail = nil }()
			resp, body := f.rec(t, tc.rq)
			ms := carddavtest.ParseMultistatus(t, resp, body)
			if len(ms.Responses) != len(tc.want) {
				t.Fatalf("hrefs = %v, want %v", ms.Hrefs(), tc.want)
			}
			for href, status := range tc.want {
				if r := ms.Response(t, href); r.Status != status {
					t.Errorf("%s: status %q, want %q", href, r.Status, status)
				}
			}
		})
	}
}

// TestMaxResourceSize checks the advertised CARDDAV:max-resource-size is
// the handler's limit, or the backend's when that is smaller.
func TestMaxResourceSize(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		backend int64
		want    string
	}{
		{0, fmt.Sprint(carddav.DefaultMaxResourceSize)},
		{1000, "1000"},
		{carddav.DefaultMaxResourceSize + 1, fmt.Sprint(carddav.DefaultMaxResourceSize)},
	} {
		f.be.MaxResourceSize = tc.backend
		resp, body := f.rec(t, req{method: "PROPFIND", path: book, header: map[string]string{"Depth": "0"},
			body: `<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><C:max-resource-size/></D:prop></D:propfind>`})
		r := carddavtest.ParseMultistatus(t, resp, body).Response(t, book)
		if got := r.OK(t, nsCard, "max-resource-size").Text; got != tc.want {
			t.Errorf("backend %d: max-resource-size = %q, want %q", tc.backend, got, tc.want)
		}
	}
}
