package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// largeBook is the size of the book the large tests and benchmarks use.
const largeBook = 10_000

// multistatus is the part of a 207 the large tests read.
type multistatus struct {
	SyncToken string `xml:"sync-token"`
	Responses []struct {
		Href     string `xml:"href"`
		Status   string `xml:"status"`
		Propstat []struct {
			Status string `xml:"status"`
			Prop   struct {
				ETag        string `xml:"getetag"`
				AddressData string `xml:"address-data"`
			} `xml:"prop"`
		} `xml:"propstat"`
	} `xml:"response"`
}

// davRequest sends one request as the demo user and decodes its 207.
func davRequest(tb testing.TB, method, url, depth, body string) *multistatus {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.SetBasicAuth("demo", "secret-pw")
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	if depth != "" {
		req.Header.Set("Depth", depth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusMultiStatus {
		tb.Fatalf("%s %s: %d %.500s", method, url, resp.StatusCode, raw)
	}
	var ms multistatus
	if err := xml.Unmarshal(raw, &ms); err != nil {
		tb.Fatalf("%s %s: decoding the 207: %v", method, url, err)
	}
	return &ms
}

const (
	listingBody = `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:prop><D:resourcetype/><D:getetag/><CS:getctag/></D:prop></D:propfind>`
	syncBody    = `<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>%s</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
)

func multigetBody(hrefs []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop>`)
	for _, h := range hrefs {
		b.WriteString("<D:href>" + h + "</D:href>")
	}
	b.WriteString("</C:addressbook-multiget>")
	return b.String()
}

// members returns the hrefs and etags of the members in a 207 (the
// collection's own response left out).
func (ms *multistatus) members(book string) map[string]string {
	out := map[string]string{}
	for _, r := range ms.Responses {
		if r.Href == book || len(r.Propstat) == 0 {
			continue
		}
		out[r.Href] = r.Propstat[0].Prop.ETag
	}
	return out
}

// A 10,000-contact book through the whole gateway: PROPFIND, a single
// multiget of every member (as Thunderbird sends it) and sync-collection
// agree with Graph and with each other, and an edit in Outlook is the one
// change the next sync reports.
func TestTenThousandContactBook(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 10,000-contact book is skipped")
	}
	srv, base, _ := startTestServer(t, serveConfig{seedContacts: largeBook, refreshInterval: time.Hour})
	book := "/demo/contacts/default/"
	inGraph, err := outlookClient(t, srv).ListContacts(context.Background(), "contacts", graph.Query{Select: []string{"id"}, PageSize: 1000})
	must(t, err)
	if len(inGraph) < largeBook*9/10 {
		t.Fatalf("the seeded default folder holds %d contacts", len(inGraph))
	}

	listed := davRequest(t, "PROPFIND", base+book, "1", listingBody).members(book)
	if len(listed) != len(inGraph) {
		t.Fatalf("PROPFIND Depth 1 lists %d members, Graph has %d", len(listed), len(inGraph))
	}
	synced := davRequest(t, "REPORT", base+book, "1", fmt.Sprintf(syncBody, ""))
	if got := synced.members(book); len(got) != len(listed) {
		t.Fatalf("sync-collection lists %d members, PROPFIND %d", len(got), len(listed))
	}
	for href, etag := range synced.members(book) {
		if listed[href] != etag || etag == "" {
			t.Fatalf("%s: sync-collection etag %q, PROPFIND etag %q", href, etag, listed[href])
		}
	}

	hrefs := make([]string, 0, len(listed))
	for h := range listed {
		hrefs = append(hrefs, h)
	}
	got := davRequest(t, "REPORT", base+book, "1", multigetBody(hrefs))
	if len(got.Responses) != len(hrefs) {
		t.Fatalf("multiget of %d hrefs answered %d", len(hrefs), len(got.Responses))
	}
	uids := map[string]bool{}
	for _, r := range got.Responses {
		if len(r.Propstat) == 0 || r.Propstat[0].Prop.ETag != listed[r.Href] {
			t.Fatalf("multiget %s: %+v", r.Href, r)
		}
		card := r.Propstat[0].Prop.AddressData
		if !strings.HasPrefix(card, "BEGIN:VCARD\r\nVERSION:3.0\r\n") || !strings.Contains(card, "\r\nUID:") {
			t.Fatalf("multiget %s: not a vCard 3.0 with a UID:\n%.300s", r.Href, card)
		}
		uid := card[strings.Index(card, "\r\nUID:")+6:]
		uids[uid[:strings.Index(uid, "\r\n")]] = true
	}
	if len(uids) != len(hrefs) {
		t.Fatalf("%d distinct UIDs for %d cards", len(uids), len(hrefs))
	}
}

// seededGraph seeds a 10,000-contact mailbox once and returns a function
// giving a fresh data folder holding a copy of it, with no sync state: each
// server started on one is cold.
func seededGraph(b *testing.B) func() string {
	b.Helper()
	tmpl := b.TempDir()
	_, _, stop := startTestServer(b, serveConfig{loginFlags: loginFlags{data: tmpl}, seedContacts: largeBook})
	stop()
	return func() string {
		dir := b.TempDir()
		src, err := os.ReadFile(filepath.Join(tmpl, "graph", "graph.db"))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "graph"), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "graph", "graph.db"), src, 0o600); err != nil {
			b.Fatal(err)
		}
		return dir
	}
}

func graphRequests(srv *server) int {
	n := 0
	for _, v := range srv.emu.Counts() {
		n += v
	}
	return n
}

// BenchmarkColdFullSyncHTTP is a client's first sync of a 10,000-contact
// book through the whole gateway, Thunderbird's way: PROPFIND Depth 1, then
// one multiget of every member. The gateway starts cold each time (empty
// cache and sync store, the mailbox already in Graph).
func BenchmarkColdFullSyncHTTP(b *testing.B) {
	fresh := seededGraph(b)
	book := "/demo/contacts/default/"
	reqs, ops := 0, 0
	for b.Loop() {
		b.StopTimer()
		srv, base, stop := startTestServer(b, serveConfig{loginFlags: loginFlags{data: fresh()}, refreshInterval: time.Hour})
		start := graphRequests(srv)
		b.StartTimer()
		listed := davRequest(b, "PROPFIND", base+book, "1", listingBody).members(book)
		hrefs := make([]string, 0, len(listed))
		for h := range listed {
			hrefs = append(hrefs, h)
		}
		if n := len(davRequest(b, "REPORT", base+book, "1", multigetBody(hrefs)).Responses); n != len(hrefs) || n < largeBook*9/10 {
			b.Fatalf("multiget answered %d of %d", n, len(hrefs))
		}
		b.StopTimer()
		reqs += graphRequests(srv) - start
		ops++
		stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(reqs)/float64(ops), "graph-req/op")
}

// BenchmarkIdleSyncHTTP is a client's periodic sync-collection of the same
// unchanged book once the refresh interval has passed, so each one asks
// Graph for changes (one delta request).
func BenchmarkIdleSyncHTTP(b *testing.B) {
	fresh := seededGraph(b)
	book := "/demo/contacts/default/"
	srv, base, _ := startTestServer(b, serveConfig{loginFlags: loginFlags{data: fresh()}, refreshInterval: time.Millisecond})
	token := davRequest(b, "REPORT", base+book, "1", fmt.Sprintf(syncBody, "")).SyncToken
	reqs, ops := 0, 0
	for b.Loop() {
		time.Sleep(2 * time.Millisecond) // let the refresh interval pass
		start := graphRequests(srv)
		ms := davRequest(b, "REPORT", base+book, "1", fmt.Sprintf(syncBody, token))
		if len(ms.Responses) != 0 || ms.SyncToken != token {
			b.Fatalf("idle sync reported %d changes, token %q → %q", len(ms.Responses), token, ms.SyncToken)
		}
		reqs += graphRequests(srv) - start
		ops++
	}
	b.ReportMetric(float64(reqs)/float64(ops), "graph-req/op")
}
