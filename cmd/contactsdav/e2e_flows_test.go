package main

import (
	"context"
	"encoding/xml"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/carddav/carddavtest"
)

// Issue 4: the request flows of iOS/macOS Contacts, Thunderbird and DAVx5,
// as /work/shared/research/clients.md §1–§3 records them, replayed through
// the whole gateway: CardDAV handler → backend → Graph client → emulator.
// The request bodies are the carddav package's fixtures
// (carddav/testdata, provenance in its README); cards written by a client
// are checked in Graph through outlookClient, and Outlook edits the mailbox
// behind the gateway's back to check what incremental syncs report.

const (
	flowPrincipal = "/demo/"
	flowHome      = "/demo/contacts/"
	flowBook      = "/demo/contacts/default/"

	flowNsDAV  = "DAV:"
	flowNsCard = "urn:ietf:params:xml:ns:carddav"
	flowNsCS   = "http://calendarserver.org/ns/"

	flowOK       = carddavtest.StatusOK
	flowNotFound = "HTTP/1.1 404 Not Found"
)

// The three clients: what sets their requests apart (clients.md §1–§3).
var (
	flowApple = flowClient{ua: "macOS/14.4 (23E214) AddressBookCore/2452", name: "apple",
		xmlType: "text/xml; charset=utf-8", cardType: "text/vcard", syncDepth: "0", multigetDepth: "1", version: "3.0"}
	flowThunderbird = flowClient{ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0", name: "tb",
		xmlType: "text/xml; charset=utf-8", cardType: "text/vcard", syncDepth: "1", multigetDepth: "1", version: "3.0"}
	// DAVx5 multigets at most 10 hrefs at a time.
	flowDAVx5 = flowClient{ua: "DAVx5/4.4.3-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/14", name: "davx5",
		xmlType: "application/xml; charset=utf-8", cardType: "text/vcard;version=4.0", accept: "text/vcard;version=4.0",
		syncDepth: "0", multigetDepth: "0", version: "4.0", batch: 10}
)

// flowFixture reads a request body from carddav/testdata and fills its
// placeholders ({{TOKEN}}, {{HREFS}}, {{HREF}}, {{LIMIT}}).
func flowFixture(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "carddav", "testdata", name))
	must(t, err)
	return strings.NewReplacer(repl...).Replace(string(b))
}

// flowClient is one CardDAV client on the gateway's URL: its User-Agent,
// what sets its requests apart from the other clients', and the sync token
// it holds.
type flowClient struct {
	e    *flowEnv
	base string
	ua   string
	// name prefixes its request bodies in carddav/testdata: "apple", "tb"
	// or "davx5" (apple-sync-collection.xml, tb-multiget.xml, …).
	name string
	// xmlType is the Content-Type of its XML bodies, cardType that of its
	// PUTs, and accept the Accept header of the GETs that read a card
	// ("" for none).
	xmlType, cardType, accept string
	// syncDepth and multigetDepth are the Depth headers of its REPORTs.
	syncDepth, multigetDepth string
	// version is the vCard version its multiget asks for.
	version string
	// batch is the most hrefs one multiget of it names; 0 for no limit.
	batch int
	// token is the sync token of its last sync.
	token string
}

// flowReq is one request; it carries the demo credentials unless noAuth.
type flowReq struct {
	method, path string
	header       map[string]string
	body         string
	noAuth       bool
}

// do sends a request without following redirects and returns the answer
// with its body read.
func (c *flowClient) do(t *testing.T, r flowReq) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, c.base+r.path, strings.NewReader(r.body))
	must(t, err)
	if !r.noAuth {
		req.SetBasicAuth("demo", "secret-pw")
	}
	req.Header.Set("User-Agent", c.ua)
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp, string(b)
}

// ms sends a request that must answer 207 and decodes the multistatus.
func (c *flowClient) ms(t *testing.T, r flowReq) (*carddavtest.Multistatus, string) {
	t.Helper()
	resp, body := c.do(t, r)
	return carddavtest.ParseMultistatus(t, resp, body), body
}

// xmlHeader is the client's header for an XML body, with a Depth unless
// depth is "".
func (c *flowClient) xmlHeader(depth string) map[string]string {
	h := map[string]string{"Content-Type": c.xmlType}
	if depth != "" {
		h["Depth"] = depth
	}
	return h
}

// fixture reads the client's request body of a kind ("sync-collection.xml"
// reads davx5-sync-collection.xml for DAVx5).
func (c *flowClient) fixture(t *testing.T, kind string, repl ...string) string {
	t.Helper()
	return flowFixture(t, c.name+"-"+kind, repl...)
}

// flowETag returns a member's getetag, which must be strong and quoted.
func flowETag(t *testing.T, r *carddavtest.Response) string {
	t.Helper()
	e := strings.TrimSpace(r.OK(t, flowNsDAV, "getetag").Text)
	if len(e) < 3 || !strings.HasPrefix(e, `"`) || !strings.HasSuffix(e, `"`) {
		t.Fatalf("%s: getetag %q is not a strong quoted ETag", r.Href, e)
	}
	return e
}

// firstStatuses returns, per response href, the text of the first
// <status> element inside it, scanned in document order: Thunderbird
// accepts a book only when that is exactly "HTTP/1.1 200 OK".
func firstStatuses(t *testing.T, body string) map[string]string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(body))
	out := map[string]string{}
	var href string
	var inResp, inHref, inStatus, got bool
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		must(t, err)
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Space != flowNsDAV {
				continue
			}
			switch e.Name.Local {
			case "response":
				inResp, got, href = true, false, ""
			case "href":
				if inResp && href == "" {
					inHref = true
					text.Reset()
				}
			case "status":
				if inResp && !got {
					inStatus = true
					text.Reset()
				}
			}
		case xml.CharData:
			if inHref || inStatus {
				text.Write(e)
			}
		case xml.EndElement:
			if e.Name.Space != flowNsDAV {
				continue
			}
			switch e.Name.Local {
			case "href":
				if inHref {
					href, inHref = strings.TrimSpace(text.String()), false
				}
			case "status":
				if inStatus {
					out[href], inStatus, got = text.String(), false, true
				}
			case "response":
				inResp = false
			}
		}
	}
}

// hrefElems renders hrefs for a multiget body.
func hrefElems(hrefs []string) string {
	var b strings.Builder
	for _, h := range hrefs {
		b.WriteString(`<href xmlns="DAV:">` + h + `</href>`)
	}
	return b.String()
}

// cardValue returns the value of the first line of a vCard whose property
// name (group and parameters aside) is prop.
func cardValue(card, prop string) string {
	for _, line := range strings.Split(strings.ReplaceAll(card, "\r\n ", ""), "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ";")
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		if strings.EqualFold(name, prop) {
			return value
		}
	}
	return ""
}

// sameCard checks that the card served after a PUT that answered an ETag
// is the card sent: DAVx5 and Apple then keep their own copy and never
// refetch it (clients.md §3.3, §6), so the two must carry the same lines.
// Line order, PRODID (the server's) and REV (Graph's last change) aside.
func sameCard(t *testing.T, sent, served string) {
	t.Helper()
	lines := func(card string) []string {
		card = strings.ReplaceAll(strings.ReplaceAll(card, "\r\n", "\n"), "\n ", "")
		var out []string
		for _, l := range strings.Split(card, "\n") {
			if l != "" && !strings.HasPrefix(l, "PRODID:") && !strings.HasPrefix(l, "REV:") {
				out = append(out, l)
			}
		}
		sort.Strings(out)
		return out
	}
	if a, b := lines(sent), lines(served); !slices.Equal(a, b) {
		t.Errorf("the PUT answered an ETag, so the client keeps its copy, but the card served differs:\nsent:\n%s\nserved:\n%s", sent, served)
	}
}

// flowEnv is one gateway on a seeded emulator mailbox and the Outlook that
// edits that mailbox.
type flowEnv struct {
	base    string
	outlook *graph.Client
	ctx     context.Context
}

func newFlowEnv(t *testing.T, seed int) *flowEnv {
	t.Helper()
	srv, base, _ := startTestServer(t, serveConfig{seedContacts: seed})
	return &flowEnv{base: base, outlook: outlookClient(t, srv), ctx: context.Background()}
}

// outlookWrote waits out the gateway's refresh interval (1ms in tests)
// after an edit in Outlook: within it, the gateway serves the state it
// last fetched, by design, and the next sync would not see the edit yet.
func (e *flowEnv) outlookWrote() { time.Sleep(5 * time.Millisecond) }

// client is the client c (flowApple, …) on this gateway, with a token of its own.
func (e *flowEnv) client(c flowClient) *flowClient {
	c.e, c.base = e, e.base
	return &c
}

// graphDefault lists the contacts Graph has in the default folder.
func (e *flowEnv) graphDefault(t *testing.T) []graph.Contact {
	t.Helper()
	cs, err := e.outlook.ListContacts(e.ctx, graph.DefaultFolderID, graph.Query{PageSize: 100})
	must(t, err)
	return cs
}

// graphBookNames are the display names of every Graph contact folder,
// the default one included.
func (e *flowEnv) graphBookNames(t *testing.T) []string {
	t.Helper()
	def, err := e.outlook.DefaultFolder(e.ctx)
	must(t, err)
	fs, err := e.outlook.ListFolders(e.ctx)
	must(t, err)
	names := []string{def.DisplayName}
	for _, f := range fs {
		names = append(names, f.DisplayName)
	}
	sort.Strings(names)
	return names
}

// graphContactNamed finds the one default-folder contact of a display name.
func (e *flowEnv) graphContactNamed(t *testing.T, name string) graph.Contact {
	t.Helper()
	var found []graph.Contact
	for _, c := range e.graphDefault(t) {
		if c.DisplayName == name {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d contacts named %q in Graph's default folder, want 1", len(found), name)
	}
	return found[0]
}

// uniqueSeeded returns n seeded contacts whose display names are unique
// in the default folder, so that a card's FN names one contact.
func (e *flowEnv) uniqueSeeded(t *testing.T, n int) []graph.Contact {
	t.Helper()
	cs := e.graphDefault(t)
	count := map[string]int{}
	for _, c := range cs {
		count[c.DisplayName]++
	}
	var out []graph.Contact
	for _, c := range cs {
		if count[c.DisplayName] == 1 && len(out) < n {
			out = append(out, c)
		}
	}
	if len(out) < n {
		t.Fatalf("only %d uniquely named contacts in Graph", len(out))
	}
	return out
}

// hrefByFN maps each card's FN to its href; cards is href → vCard.
func hrefByFN(cards map[string]string) map[string]string {
	out := map[string]string{}
	for h, c := range cards {
		out[cardValue(c, "FN")] = h
	}
	return out
}

// step runs one step of a flow; later steps need its state, so a failed
// step ends the flow.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

// homeListing checks a home-set Depth 1 answer: every Graph folder is an
// address book with a display name and write privileges, default first.
func (e *flowEnv) homeListing(t *testing.T, m *carddavtest.Multistatus) []string {
	t.Helper()
	var names, books []string
	for _, r := range m.Responses {
		if r.Href == flowHome {
			continue
		}
		if !strings.HasPrefix(r.Href, flowHome) || !strings.HasSuffix(r.Href, "/") {
			t.Errorf("book href %q is not a collection below the home set", r.Href)
		}
		if !r.OK(t, flowNsDAV, "resourcetype").Has(flowNsCard, "addressbook") {
			t.Errorf("%s is not an address book", r.Href)
		}
		dn := strings.TrimSpace(r.OK(t, flowNsDAV, "displayname").Text)
		if dn == "" {
			t.Errorf("%s has an empty displayname", r.Href)
		}
		privs := r.OK(t, flowNsDAV, "current-user-privilege-set")
		if !privs.Has(flowNsDAV, "read") || !(privs.Has(flowNsDAV, "write") || privs.Has(flowNsDAV, "write-content")) {
			t.Errorf("%s privileges lack read or write", r.Href)
		}
		// A nested folder is named with its parents ("Family / Cousins").
		if i := strings.LastIndex(dn, " / "); i >= 0 {
			dn = dn[i+len(" / "):]
		}
		names = append(names, dn)
		books = append(books, r.Href)
	}
	if len(books) == 0 || books[0] != flowBook {
		t.Errorf("books %v: the default book must come first", books)
	}
	sort.Strings(names)
	if want := e.graphBookNames(t); !slices.Equal(names, want) {
		t.Errorf("home set lists books %q; Graph has folders %q", names, want)
	}
	return books
}

// multiget fetches hrefs and returns href → card and href → ETag, checking
// each card's version and ETag and that each missing href is a per-href 404.
func (c *flowClient) multiget(t *testing.T, hrefs, missing []string) (map[string]string, map[string]string) {
	t.Helper()
	body := c.fixture(t, "multiget.xml", "{{HREFS}}", hrefElems(append(slices.Clone(hrefs), missing...)))
	m, _ := c.ms(t, flowReq{method: "REPORT", path: flowBook, header: c.xmlHeader(c.multigetDepth), body: body})
	cards, etags := map[string]string{}, map[string]string{}
	for _, h := range hrefs {
		r := m.Response(t, h)
		etags[h] = flowETag(t, r)
		card := r.OK(t, flowNsCard, "address-data").Text
		if v := cardValue(card, "VERSION"); v != c.version {
			t.Errorf("%s: VERSION %q, want %s", h, v, c.version)
		}
		if cardValue(card, "UID") == "" || cardValue(card, "FN") == "" {
			t.Errorf("%s: card without UID or FN:\n%s", h, card)
		}
		cards[h] = card
		// A multiget that asks for getcontenttype (DAVx5's) must get it.
		if st, p := r.Prop(flowNsDAV, "getcontenttype"); (st != "" || strings.Contains(body, "getcontenttype")) &&
			(st != flowOK || !strings.HasPrefix(p.Text, "text/vcard")) {
			t.Errorf("%s: getcontenttype %q (status %q)", h, p.Text, st)
		}
	}
	for _, h := range missing {
		if r := m.Response(t, h); r.Status != flowNotFound {
			t.Errorf("missing %s: status %q, want %q", h, r.Status, flowNotFound)
		}
	}
	if len(m.Responses) != len(hrefs)+len(missing) {
		t.Errorf("multiget of %d hrefs answered %d responses", len(hrefs)+len(missing), len(m.Responses))
	}
	return cards, etags
}

// fetchCards multigets every href of known (href → ETag) in the client's
// batches, asking for missing too in the last one, and checks each ETag
// is the one source (the sync or listing that named the href) gave.
// It returns href → card.
func (c *flowClient) fetchCards(t *testing.T, known map[string]string, source, missing string) map[string]string {
	t.Helper()
	hrefs := slices.Sorted(maps.Keys(known))
	batch := c.batch
	if batch == 0 {
		batch = len(hrefs)
	}
	cards := map[string]string{}
	for i := 0; i < len(hrefs); i += batch {
		var miss []string
		if i+batch >= len(hrefs) {
			miss = []string{missing}
		}
		got, etags := c.multiget(t, hrefs[i:min(i+batch, len(hrefs))], miss)
		for h, et := range etags {
			if known[h] != et {
				t.Errorf("%s: multiget ETag %s, %s ETag %s", h, et, source, known[h])
			}
			cards[h] = got[h]
		}
	}
	if len(cards) != len(hrefs) {
		t.Errorf("fetched %d of %d cards", len(cards), len(hrefs))
	}
	return cards
}

// syncResult is a sync-collection answer: changed members with their
// ETags, deleted members, the new token.
type syncResult struct {
	changed map[string]string
	deleted []string
	token   string
	ms      *carddavtest.Multistatus
}

// sync sends the client's sync-collection from token. A changed member
// carries a card of the client's version when the client asks for
// address-data (Thunderbird), and none when it asks for getetag only.
func (c *flowClient) sync(t *testing.T, token string) syncResult {
	t.Helper()
	body := c.fixture(t, "sync-collection.xml", "{{TOKEN}}", token, "{{LIMIT}}", "")
	m, raw := c.ms(t, flowReq{method: "REPORT", path: flowBook, header: c.xmlHeader(c.syncDepth), body: body})
	if m.SyncToken == nil || strings.TrimSpace(*m.SyncToken) == "" {
		t.Fatalf("sync-collection answer without a sync-token:\n%s", raw)
	}
	res := syncResult{changed: map[string]string{}, token: strings.TrimSpace(*m.SyncToken), ms: m}
	wantData := strings.Contains(body, "address-data")
	for i := range m.Responses {
		r := &m.Responses[i]
		switch {
		case r.Href == flowBook:
			t.Errorf("sync answered a status for the book itself (%q): no paging asked for", r.Status)
		case r.Status == flowNotFound:
			res.deleted = append(res.deleted, r.Href)
		case r.Status != "":
			t.Errorf("%s: response status %q", r.Href, r.Status)
		default:
			res.changed[r.Href] = flowETag(t, r)
			if !wantData {
				if st, _ := r.Prop(flowNsCard, "address-data"); st != "" {
					t.Errorf("%s: address-data though only getetag was asked for", r.Href)
				}
			} else if cd := r.OK(t, flowNsCard, "address-data").Text; cardValue(cd, "VERSION") != c.version || cardValue(cd, "UID") == "" {
				t.Errorf("%s: sync address-data:\n%s", r.Href, cd)
			}
		}
	}
	sort.Strings(res.deleted)
	return res
}

// expect checks a sync names exactly these changed and deleted hrefs.
func (s syncResult) expect(t *testing.T, what string, changed, deleted []string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(s.changed))
	changed = slices.Sorted(slices.Values(changed))
	deleted = slices.Sorted(slices.Values(deleted))
	if !slices.Equal(got, changed) || !slices.Equal(s.deleted, deleted) {
		t.Errorf("%s: sync reports changed %v deleted %v; want changed %v deleted %v", what, got, s.deleted, changed, deleted)
	}
}

// syncExpect syncs from the client's token, checks the sync names exactly
// these changed and deleted hrefs, and keeps the new token.
func (c *flowClient) syncExpect(t *testing.T, what string, changed, deleted []string) syncResult {
	t.Helper()
	s := c.sync(t, c.token)
	s.expect(t, what, changed, deleted)
	c.token = s.token
	return s
}

// fullSync syncs without a token, as a new client or one whose token was
// refused does: every contact of Graph's default folder is reported, none
// deleted. It keeps the new token.
func (c *flowClient) fullSync(t *testing.T, what string) syncResult {
	t.Helper()
	s := c.sync(t, "")
	if n := len(c.e.graphDefault(t)); len(s.deleted) != 0 || len(s.changed) != n {
		t.Fatalf("%s: %d changed, %d deleted; Graph has %d", what, len(s.changed), len(s.deleted), n)
	}
	c.token = s.token
	return s
}

// initialSync is Apple's and DAVx5's first sync: without a token, it
// reports every member, and the token the book's PROPFIND gave
// (bookToken). It returns href → ETag.
func (c *flowClient) initialSync(t *testing.T, bookToken string) map[string]string {
	t.Helper()
	s := c.fullSync(t, "initial sync")
	if s.token != bookToken {
		t.Errorf("initial sync token %q, book sync-token %q", s.token, bookToken)
	}
	return s.changed
}

// ownWrite checks the sync after the client's own write of path reports
// exactly that card, with the ETag the client holds for it (if any).
func (c *flowClient) ownWrite(t *testing.T, what, path, etag string) syncResult {
	t.Helper()
	s := c.syncExpect(t, what, []string{path}, nil)
	if etag != "" && s.changed[path] != etag {
		t.Errorf("%s: sync ETag %s, the client holds %s from its write: it would refetch", what, s.changed[path], etag)
	}
	return s
}

// bookState reads getctag and sync-token (Apple's book PROPFIND); they
// must be equal and non-empty.
func (c *flowClient) bookState(t *testing.T, fixture string) (string, *carddavtest.Response) {
	t.Helper()
	m, _ := c.ms(t, flowReq{method: "PROPFIND", path: flowBook, header: c.xmlHeader("0"), body: flowFixture(t, fixture)})
	r := m.Response(t, flowBook)
	tok := strings.TrimSpace(r.OK(t, flowNsDAV, "sync-token").Text)
	if ctag := strings.TrimSpace(r.OK(t, flowNsCS, "getctag").Text); ctag != tok || tok == "" {
		t.Fatalf("getctag %q, sync-token %q: want equal and non-empty", ctag, tok)
	}
	return tok, r
}

// listing is a Depth 1 PROPFIND of the book (Thunderbird's, or the
// getetag listing Apple and DAVx5 fall back to): every member with a
// strong ETag, as many as Graph has contacts in the default folder.
func (c *flowClient) listing(t *testing.T, body string) map[string]string {
	t.Helper()
	m, _ := c.ms(t, flowReq{method: "PROPFIND", path: flowBook, header: c.xmlHeader("1"), body: body})
	m.Response(t, flowBook)
	etags := map[string]string{}
	for _, r := range m.Members(flowBook) {
		if !strings.HasSuffix(r.Href, ".vcf") {
			t.Errorf("member href %q", r.Href)
		}
		etags[r.Href] = flowETag(t, r)
	}
	if got, want := len(etags), len(c.e.graphDefault(t)); got != want || want == 0 {
		t.Fatalf("Depth 1 listing has %d members; Graph has %d contacts in the default folder", got, want)
	}
	return etags
}

// getCard GETs a card: status, body and ETag.
func (c *flowClient) getCard(t *testing.T, path, accept string) (int, string, string) {
	t.Helper()
	h := map[string]string{}
	if accept != "" {
		h["Accept"] = accept
	}
	resp, body := c.do(t, flowReq{method: "GET", path: path, header: h})
	return resp.StatusCode, body, resp.Header.Get("ETag")
}

// put PUTs a card as the client's card type with the given conditions and
// returns status and ETag.
func (c *flowClient) put(t *testing.T, path, card string, cond map[string]string) (int, string) {
	t.Helper()
	h := map[string]string{"Content-Type": c.cardType}
	maps.Copy(h, cond)
	resp, body := c.do(t, flowReq{method: "PUT", path: path, body: card, header: h})
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusPreconditionFailed {
		t.Logf("PUT %s = %d: %s", path, resp.StatusCode, body)
	}
	return resp.StatusCode, resp.Header.Get("ETag")
}

func (c *flowClient) del(t *testing.T, path, ifMatch string) int {
	t.Helper()
	h := map[string]string{}
	if ifMatch != "" {
		h["If-Match"] = ifMatch
	}
	resp, _ := c.do(t, flowReq{method: "DELETE", path: path, header: h})
	return resp.StatusCode
}

// create PUTs a new card with If-None-Match: * (201), checks a second such
// PUT is refused (412), and GETs the card: the ETag the PUT gave, the
// properties of want (name → value) and, with that ETag, the very card
// sent. It returns the PUT's ETag and the card served.
func (c *flowClient) create(t *testing.T, path, card string, want map[string]string) (string, string) {
	t.Helper()
	st, etag := c.put(t, path, card, map[string]string{"If-None-Match": "*"})
	if st != http.StatusCreated {
		t.Fatalf("create = %d, want 201", st)
	}
	if st, _ := c.put(t, path, card, map[string]string{"If-None-Match": "*"}); st != http.StatusPreconditionFailed {
		t.Fatalf("create again = %d, want 412", st)
	}
	st, got, getETag := c.getCard(t, path, c.accept)
	if st != http.StatusOK {
		t.Fatalf("GET = %d", st)
	}
	if etag != "" && getETag != etag {
		t.Errorf("PUT gave ETag %s, GET gives %s: the client stores the PUT's and does not refetch", etag, getETag)
	}
	for prop, want := range want {
		if v := cardValue(got, prop); v != want {
			t.Errorf("GET %s = %q, want %q\n%s", prop, v, want, got)
		}
	}
	if etag != "" {
		sameCard(t, card, got)
	}
	return etag, got
}

// update PUTs edited over path with If-Match: a stale ETag is refused
// (412), the current one answers 204 and a new ETag, which the GET then
// serves with the edited FN, as Graph's contact of that name now is.
// It returns the new ETag.
func (c *flowClient) update(t *testing.T, path, edited, fn string) string {
	t.Helper()
	if st, _ := c.put(t, path, edited, map[string]string{"If-Match": `"stale-etag"`}); st != http.StatusPreconditionFailed {
		t.Fatalf("update with a stale If-Match = %d, want 412", st)
	}
	_, _, cur := c.getCard(t, path, "")
	st, et := c.put(t, path, edited, map[string]string{"If-Match": cur})
	if st != http.StatusNoContent || et == cur {
		t.Fatalf("update = %d, ETag %s (was %s); want 204 and a new ETag", st, et, cur)
	}
	_, got, getETag := c.getCard(t, path, c.accept)
	if getETag == "" || getETag == cur {
		t.Errorf("GET ETag %q after an update (was %s)", getETag, cur)
	}
	if cardValue(got, "FN") != fn || (et != "" && getETag != et) {
		t.Errorf("after the update: FN %q, GET ETag %s, PUT ETag %s", cardValue(got, "FN"), getETag, et)
	}
	c.e.graphContactNamed(t, fn)
	return getETag
}

// deleteCard DELETEs path (with ifMatch, after checking a stale If-Match
// is refused; without, unconditionally), checks a GET then answers 404
// and that the next sync reports exactly that delete.
func (c *flowClient) deleteCard(t *testing.T, path, ifMatch string) {
	t.Helper()
	if ifMatch != "" {
		if st := c.del(t, path, `"stale-etag"`); st != http.StatusPreconditionFailed {
			t.Fatalf("DELETE with a stale If-Match = %d, want 412", st)
		}
	}
	if st := c.del(t, path, ifMatch); st != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", st)
	}
	if st, _, _ := c.getCard(t, path, ""); st != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", st)
	}
	c.syncExpect(t, "after own delete", nil, []string{path})
}

// outlookEdit is an edit and a delete made in Outlook, behind the
// gateway's back, of two uniquely named seeded contacts.
type outlookEdit struct {
	patch graph.Patch
	// syncEach syncs after the edit and again after the delete; without,
	// one sync must report both.
	syncEach bool
	// check checks the client's view of the edited card pathA (and of
	// the deleted pathB) after the sync s that reported the edit.
	check func(t *testing.T, s syncResult, pathA, pathB string)
}

// outlookEdits makes o in Outlook and checks the client's syncs report
// the edit (with a new ETag, against before: href → ETag) and the delete;
// cards (href → card) find the contacts' hrefs.
func (c *flowClient) outlookEdits(t *testing.T, cards, before map[string]string, o outlookEdit) {
	t.Helper()
	e := c.e
	seeded := e.uniqueSeeded(t, 2)
	byFN := hrefByFN(cards)
	a, b := seeded[0], seeded[1]
	pathA, pathB := byFN[a.DisplayName], byFN[b.DisplayName]
	if pathA == "" || pathB == "" {
		t.Fatalf("no card for %q or %q", a.DisplayName, b.DisplayName)
	}
	edited := func(s syncResult) {
		t.Helper()
		if s.changed[pathA] == before[pathA] {
			t.Errorf("Outlook edit kept the ETag %s", before[pathA])
		}
		o.check(t, s, pathA, pathB)
	}
	_, err := e.outlook.UpdateContact(e.ctx, graph.DefaultFolderID, a.ID, o.patch, "")
	must(t, err)
	e.outlookWrote()
	if o.syncEach {
		edited(c.syncExpect(t, "after an Outlook edit", []string{pathA}, nil))
	}
	must(t, e.outlook.DeleteContact(e.ctx, graph.DefaultFolderID, b.ID, ""))
	e.outlookWrote()
	if o.syncEach {
		c.syncExpect(t, "after an Outlook delete", nil, []string{pathB})
	} else {
		edited(c.syncExpect(t, "after Outlook's edit and delete", []string{pathA}, []string{pathB}))
	}
}

// invalidToken sends a sync with a token the server never issued and
// checks the answer: an XML DAV:error naming valid-sync-token, with the
// status this client recovers from.
func (c *flowClient) invalidToken(t *testing.T, token string, status int) {
	t.Helper()
	resp, body := c.do(t, flowReq{method: "REPORT", path: flowBook, header: c.xmlHeader(c.syncDepth),
		body: c.fixture(t, "sync-collection.xml", "{{TOKEN}}", token, "{{LIMIT}}", "")})
	if resp.StatusCode != status {
		t.Fatalf("sync with an unknown token = %d, want %d:\n%s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		t.Errorf("invalid-token error Content-Type %q, want application/xml", ct)
	}
	var derr struct {
		XMLName xml.Name              `xml:"DAV: error"`
		Conds   []carddavtest.Element `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(body), &derr); err != nil {
		t.Fatalf("invalid-token body is not a DAV:error: %v\n%s", err, body)
	}
	found := false
	for _, c := range derr.Conds {
		found = found || (c.XMLName.Space == flowNsDAV && c.XMLName.Local == "valid-sync-token")
	}
	if !found {
		t.Errorf("DAV:error does not name DAV:valid-sync-token:\n%s", body)
	}
}

// The discovery every client starts with, past the first request: the
// principal answers current-user-principal, principal-URL and a principal
// resourcetype, and OPTIONS advertises CardDAV.
func checkPrincipal(t *testing.T, c *flowClient, fixture string) {
	t.Helper()
	m, _ := c.ms(t, flowReq{method: "PROPFIND", path: flowPrincipal, header: map[string]string{"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
		body: flowFixture(t, fixture)})
	r := m.Response(t, flowPrincipal)
	if _, p := r.Prop(flowNsDAV, "current-user-principal"); p.XMLName.Local != "" && !slices.Contains(p.Hrefs(), flowPrincipal) {
		t.Errorf("current-user-principal %v", p.Hrefs())
	}
	if rt := r.OK(t, flowNsDAV, "resourcetype"); !rt.Has(flowNsDAV, "principal") {
		t.Errorf("principal resourcetype lacks DAV:principal")
	}
}

// TestFullStackAppleFlow replays iOS/macOS Contacts (clients.md §1).
func TestFullStackAppleFlow(t *testing.T) {
	e := newFlowEnv(t, 12)
	c := e.client(flowApple)
	cardPath := flowBook + "E7213AAA-1DF0-4D9A-93E2-0BD8B4B9E4A1-ABSPlugin.vcf"
	apple := flowFixture(t, "apple-card.vcf")
	var t0, etag string
	var initial map[string]string
	var cards map[string]string

	step(t, "discovery", func(t *testing.T) {
		// The first requests carry no credentials: the well-known URL
		// redirects to the root, which answers 401 with a realm.
		resp, _ := c.do(t, flowReq{method: "PROPFIND", path: "/.well-known/carddav", noAuth: true, header: c.xmlHeader("0"), body: flowFixture(t, "apple-entry-propfind.xml")})
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/" {
			t.Fatalf("well-known without credentials = %d to %q, want 301 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = c.do(t, flowReq{method: "PROPFIND", path: "/", noAuth: true, header: c.xmlHeader("0"), body: flowFixture(t, "apple-entry-propfind.xml")})
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Basic realm="`) {
			t.Fatalf("unauthenticated PROPFIND / = %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		resp, _ = c.do(t, flowReq{method: "PROPFIND", path: "/.well-known/carddav", header: c.xmlHeader("0"), body: flowFixture(t, "apple-entry-propfind.xml")})
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != flowPrincipal {
			t.Fatalf("well-known = %d to %q, want 301 to %s", resp.StatusCode, resp.Header.Get("Location"), flowPrincipal)
		}
		// The entered path (/) must answer current-user-principal, principal-URL and resourcetype.
		m, _ := c.ms(t, flowReq{method: "PROPFIND", path: "/", header: c.xmlHeader("0"), body: flowFixture(t, "apple-entry-propfind.xml")})
		if got := m.Response(t, "/").OK(t, flowNsDAV, "current-user-principal").Hrefs(); !slices.Equal(got, []string{flowPrincipal}) {
			t.Errorf("current-user-principal on / = %v", got)
		}
		m, _ = c.ms(t, flowReq{method: "PROPFIND", path: flowPrincipal, header: c.xmlHeader("0"), body: flowFixture(t, "apple-entry-propfind.xml")})
		r := m.Response(t, flowPrincipal)
		for _, p := range []string{"current-user-principal", "principal-URL"} {
			if got := r.OK(t, flowNsDAV, p).Hrefs(); !slices.Equal(got, []string{flowPrincipal}) {
				t.Errorf("%s = %v", p, got)
			}
		}
		if rt := r.OK(t, flowNsDAV, "resourcetype"); !rt.Has(flowNsDAV, "principal") {
			t.Error("principal resourcetype lacks DAV:principal")
		}
		// OPTIONS, then the principal PROPFIND.
		resp, _ = c.do(t, flowReq{method: "OPTIONS", path: flowPrincipal})
		if resp.StatusCode/100 != 2 || !strings.Contains(resp.Header.Get("DAV"), "addressbook") {
			t.Errorf("OPTIONS = %d, DAV %q", resp.StatusCode, resp.Header.Get("DAV"))
		}
		m, _ = c.ms(t, flowReq{method: "PROPFIND", path: flowPrincipal, header: c.xmlHeader("0"), body: flowFixture(t, "apple-principal-propfind.xml")})
		r = m.Response(t, flowPrincipal)
		if got := r.OK(t, flowNsCard, "addressbook-home-set").Hrefs(); !slices.Equal(got, []string{flowHome}) {
			t.Errorf("addressbook-home-set = %v", got)
		}
		r.OK(t, flowNsDAV, "displayname")
		if got := r.OK(t, flowNsDAV, "principal-URL").Hrefs(); !slices.Equal(got, []string{flowPrincipal}) {
			t.Errorf("principal-URL = %v", got)
		}
	})

	step(t, "home set Depth 1", func(t *testing.T) {
		m, _ := c.ms(t, flowReq{method: "PROPFIND", path: flowHome, header: c.xmlHeader("1"), body: flowFixture(t, "apple-home-propfind.xml")})
		e.homeListing(t, m)
		b := m.Response(t, flowBook)
		if rs := b.OK(t, flowNsDAV, "supported-report-set"); !rs.Has(flowNsDAV, "sync-collection") || !rs.Has(flowNsCard, "addressbook-multiget") {
			t.Error("supported-report-set lacks sync-collection or addressbook-multiget")
		}
		b.OK(t, flowNsDAV, "sync-token")
		// Apple must not be offered POST (add-member) or bulk requests.
		for _, p := range [][2]string{{flowNsDAV, "add-member"}, {"http://me.com/_namespace/", "bulk-requests"}} {
			if st, _ := b.Prop(p[0], p[1]); st == flowOK {
				t.Errorf("book advertises %s", p[1])
			}
		}
	})

	step(t, "book getctag and sync-token", func(t *testing.T) {
		t0, _ = c.bookState(t, "apple-book-propfind.xml")
	})

	step(t, "initial sync-collection and multiget", func(t *testing.T) {
		initial = c.initialSync(t, t0)
		cards = c.fetchCards(t, initial, "sync", flowBook+"no-such-card.vcf")
	})

	step(t, "create with If-None-Match", func(t *testing.T) {
		var got string
		etag, got = c.create(t, cardPath, apple, map[string]string{"VERSION": "3.0", "UID": "E7213AAA-1DF0-4D9A-93E2-0BD8B4B9E4A1", "FN": "Johnny Appleseed",
			"N": "Appleseed;Johnny;;;", "NOTE": `semi\; colon\, comma`, "CATEGORIES": "friends,work", "X-ABLabel": "_$!<Other>!$_"})
		if !strings.Contains(got, "johnny@example.com") || !strings.Contains(got, "+1 555 0100") || !strings.Contains(got, "Apple Inc.") {
			t.Errorf("GET lost the e-mail, phone or organisation:\n%s", got)
		}
		g := e.graphContactNamed(t, "Johnny Appleseed")
		if g.GivenName != "Johnny" || g.Surname != "Appleseed" || g.CompanyName != "Apple Inc." || g.MobilePhone != "+1 555 0100" ||
			len(g.EmailAddresses) != 1 || g.EmailAddresses[0].Address != "johnny@example.com" ||
			g.PersonalNotes != "semi; colon, comma" || strings.Join(g.Categories, "|") != "friends|work" {
			t.Errorf("contact in Graph: %+v", g)
		}
	})

	step(t, "incremental sync after own create", func(t *testing.T) {
		tok, _ := c.bookState(t, "apple-book-propfind.xml")
		if tok == t0 {
			t.Error("getctag unchanged after a create")
		}
		c.ownWrite(t, "after own create", cardPath, etag)
		// Apple multigets what changed: getetag + address-data, vCard 3.0.
		got, _ := c.multiget(t, []string{cardPath}, nil)
		if cardValue(got[cardPath], "UID") != "E7213AAA-1DF0-4D9A-93E2-0BD8B4B9E4A1" {
			t.Errorf("multiget UID %q", cardValue(got[cardPath], "UID"))
		}
		c.syncExpect(t, "idle", nil, nil)
	})

	step(t, "update with If-Match", func(t *testing.T) {
		etag = c.update(t, cardPath, strings.Replace(apple, "FN:Johnny Appleseed", "FN:John Appleseed", 1), "John Appleseed")
		c.ownWrite(t, "after own update", cardPath, etag)
	})

	step(t, "Make this my card", func(t *testing.T) {
		m, _ := c.ms(t, flowReq{method: "PROPPATCH", path: flowHome, header: map[string]string{"Content-Type": "text/xml; charset=utf-8"},
			body: flowFixture(t, "apple-me-card-proppatch.xml", "{{HREF}}", cardPath)})
		r := m.Response(t, flowHome)
		r.OK(t, flowNsCS, "me-card")
		if r.Status != "" {
			t.Errorf("PROPPATCH response carries a status %q beside its propstat", r.Status)
		}
		for _, ps := range r.Propstats {
			if ps.Status != flowOK {
				t.Errorf("PROPPATCH propstat %q", ps.Status)
			}
		}
		m, _ = c.ms(t, flowReq{method: "PROPFIND", path: flowHome, header: c.xmlHeader("0"), body: flowFixture(t, "apple-home-propfind.xml")})
		if got := m.Response(t, flowHome).OK(t, flowNsCS, "me-card").Hrefs(); !slices.Equal(got, []string{cardPath}) {
			t.Errorf("me-card = %v", got)
		}
	})

	step(t, "Outlook edits and deletes", func(t *testing.T) {
		c.outlookEdits(t, cards, initial, outlookEdit{patch: graph.Patch{"jobTitle": "Orchard Keeper"}, syncEach: true,
			check: func(t *testing.T, _ syncResult, pathA, _ string) {
				got, _ := c.multiget(t, []string{pathA}, nil)
				if cardValue(got[pathA], "TITLE") != "Orchard Keeper" {
					t.Errorf("edited card:\n%s", got[pathA])
				}
			}})
	})

	step(t, "DELETE with If-Match", func(t *testing.T) {
		c.deleteCard(t, cardPath, etag)
		for _, g := range e.graphDefault(t) {
			if g.DisplayName == "John Appleseed" {
				t.Error("deleted card is still in Graph")
			}
		}
	})

	step(t, "invalid sync token", func(t *testing.T) {
		c.invalidToken(t, "http://contactsdav.invalid/ns/sync/elsewhere/42", http.StatusForbidden)
		c.fullSync(t, "resync")
	})
}

// TestFullStackThunderbirdFlow replays Thunderbird 128 (clients.md §2).
func TestFullStackThunderbirdFlow(t *testing.T) {
	e := newFlowEnv(t, 12)
	c := e.client(flowThunderbird)
	tbPath := flowBook + "0c8f3a5e-tb-4f2b-9b1e-7d1b2a3c4d5e.vcf"
	tbCard := flowFixture(t, "tb-card.vcf")
	var listed map[string]string
	var cards map[string]string
	var tbETag string

	// fetchAllFromServer: the Depth 1 listing, one multiget of every href,
	// then the token PROPFIND.
	fetchAll := func(t *testing.T) {
		t.Helper()
		listed = c.listing(t, flowFixture(t, "tb-book-listing.xml"))
		cards = c.fetchCards(t, listed, "listing", flowBook+"gone.vcf")
		var r *carddavtest.Response
		c.token, r = c.bookState(t, "tb-synctoken-propfind.xml")
		r.OK(t, flowNsDAV, "displayname")
	}

	step(t, "discovery", func(t *testing.T) {
		// Thunderbird starts at the well-known URL without credentials.
		resp, _ := c.do(t, flowReq{method: "PROPFIND", path: "/.well-known/carddav", noAuth: true, header: c.xmlHeader("0"), body: flowFixture(t, "tb-wellknown-propfind.xml")})
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") == "" {
			t.Fatalf("well-known without credentials = %d to %q, want 301", resp.StatusCode, resp.Header.Get("Location"))
		}
		next := resp.Header.Get("Location")
		resp, _ = c.do(t, flowReq{method: "PROPFIND", path: next, noAuth: true, header: c.xmlHeader("0"), body: flowFixture(t, "tb-wellknown-propfind.xml")})
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Basic realm="`) {
			t.Fatalf("unauthenticated PROPFIND %s = %d, WWW-Authenticate %q: Thunderbird needs a 401 with a realm", next, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		// The challenge answered: the same PROPFIND with credentials.
		m, _ := c.ms(t, flowReq{method: "PROPFIND", path: next, header: c.xmlHeader("0"), body: flowFixture(t, "tb-wellknown-propfind.xml")})
		if got := m.Response(t, next).OK(t, flowNsDAV, "current-user-principal").Hrefs(); !slices.Equal(got, []string{flowPrincipal}) {
			t.Fatalf("current-user-principal = %v", got)
		}
		m, _ = c.ms(t, flowReq{method: "PROPFIND", path: flowPrincipal, header: c.xmlHeader("0"), body: flowFixture(t, "tb-principal-propfind.xml")})
		if got := m.Response(t, flowPrincipal).OK(t, flowNsCard, "addressbook-home-set").Hrefs(); !slices.Equal(got, []string{flowHome}) {
			t.Fatalf("addressbook-home-set = %v", got)
		}
	})

	step(t, "home set Depth 1", func(t *testing.T) {
		m, body := c.ms(t, flowReq{method: "PROPFIND", path: flowHome, header: c.xmlHeader("1"), body: flowFixture(t, "tb-home-propfind.xml")})
		books := e.homeListing(t, m)
		first := firstStatuses(t, body)
		for _, b := range books {
			if first[b] != flowOK {
				t.Errorf("%s: first <status> is %q; Thunderbird skips a book unless it is exactly %q", b, first[b], flowOK)
			}
		}
	})

	step(t, "fetchAllFromServer", fetchAll)

	step(t, "PUT without conditions", func(t *testing.T) {
		// Thunderbird writes <UID>.vcf relative to the book href, with
		// neither If-Match nor If-None-Match, then multigets the href.
		st, _ := c.put(t, tbPath, tbCard, nil)
		if st != http.StatusCreated {
			t.Fatalf("PUT = %d, want 201", st)
		}
		got, etags := c.multiget(t, []string{tbPath}, nil)
		card := got[tbPath]
		tbETag = etags[tbPath]
		for prop, want := range map[string]string{"UID": "0c8f3a5e-tb-4f2b-9b1e-7d1b2a3c4d5e", "FN": "Tess Bird", "N": "Bird;Tess;;;"} {
			if v := cardValue(card, prop); v != want {
				t.Errorf("%s = %q, want %q\n%s", prop, v, want, card)
			}
		}
		if !strings.Contains(card, "tess@example.org") || !strings.Contains(card, "+49 30 1234") || !strings.Contains(card, "03-15") {
			t.Errorf("e-mail, phone or birthday lost:\n%s", card)
		}
		g := e.graphContactNamed(t, "Tess Bird")
		if g.GivenName != "Tess" || g.Surname != "Bird" || g.MobilePhone != "+49 30 1234" || len(g.EmailAddresses) != 1 ||
			g.EmailAddresses[0].Address != "tess@example.org" || !strings.Contains(g.Birthday, "-03-15") {
			t.Errorf("contact in Graph: %+v", g)
		}
		// The same PUT again (last writer wins): an update, not a 412.
		if st, _ := c.put(t, tbPath, tbCard, nil); st != http.StatusNoContent {
			t.Errorf("unconditional PUT of an existing card = %d, want 204", st)
		}
		_, etags = c.multiget(t, []string{tbPath}, nil)
		tbETag = etags[tbPath]
	})

	step(t, "sync V2 after own writes", func(t *testing.T) {
		// tbETag is the one the multiget after the PUT gave.
		c.ownWrite(t, "after own create", tbPath, tbETag)
		c.syncExpect(t, "idle", nil, nil)
	})

	step(t, "update without conditions", func(t *testing.T) {
		edited := strings.Replace(tbCard, "FN:Tess Bird\r\n", "FN:Tess Bird\r\nTITLE:Ornithologist\r\n", 1)
		if st, _ := c.put(t, tbPath, edited, nil); st != http.StatusNoContent {
			t.Fatalf("update = %d, want 204", st)
		}
		got, etags := c.multiget(t, []string{tbPath}, nil)
		if cardValue(got[tbPath], "TITLE") != "Ornithologist" || etags[tbPath] == tbETag {
			t.Errorf("after the update: ETag %s (was %s)\n%s", etags[tbPath], tbETag, got[tbPath])
		}
		if g := e.graphContactNamed(t, "Tess Bird"); g.JobTitle != "Ornithologist" {
			t.Errorf("Graph jobTitle %q", g.JobTitle)
		}
		c.ownWrite(t, "after own update", tbPath, etags[tbPath])
	})

	step(t, "Outlook edits and deletes", func(t *testing.T) {
		// Thunderbird's sync carries the cards: the edit is read there.
		c.outlookEdits(t, cards, listed, outlookEdit{patch: graph.Patch{"nickName": "Birdie"}, syncEach: true,
			check: func(t *testing.T, s syncResult, pathA, _ string) {
				if cd := s.ms.Response(t, pathA).OK(t, flowNsCard, "address-data").Text; cardValue(cd, "NICKNAME") != "Birdie" {
					t.Errorf("edited card in the sync:\n%s", cd)
				}
			}})
	})

	step(t, "DELETE without If-Match", func(t *testing.T) {
		c.deleteCard(t, tbPath, "")
	})

	step(t, "invalid sync token", func(t *testing.T) {
		// 400 is the only status Thunderbird recovers from: it then
		// runs fetchAllFromServer and continues with the new token.
		c.invalidToken(t, "bogus-token", http.StatusBadRequest)
		fetchAll(t)
		c.syncExpect(t, "after recovery", nil, nil)
	})
}

// TestFullStackDAVx5Flow replays DAVx5 4.4 (clients.md §3).
func TestFullStackDAVx5Flow(t *testing.T) {
	e := newFlowEnv(t, 23) // 23 members: multiget batches of 10, 10 and 3
	c := e.client(flowDAVx5)
	dvPath := flowBook + "8d6a2c1e-5b7f-4a3e-9c2d-1f0e9d8c7b6a.vcf"
	dv := flowFixture(t, "davx5-card.vcf")
	newBook := flowHome + "3f1c5b8e-2a4d-4e6f-9b0a-1c2d3e4f5a6b/"
	var token, etag string
	var initial, cards map[string]string

	step(t, "discovery", func(t *testing.T) {
		// Preemptive Basic credentials; the well-known URL redirects to the principal.
		resp, _ := c.do(t, flowReq{method: "PROPFIND", path: "/.well-known/carddav", header: c.xmlHeader("0"), body: flowFixture(t, "davx5-entry-propfind.xml")})
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != flowPrincipal {
			t.Fatalf("well-known = %d to %q, want 301 to %s", resp.StatusCode, resp.Header.Get("Location"), flowPrincipal)
		}
		m, _ := c.ms(t, flowReq{method: "PROPFIND", path: flowPrincipal, header: c.xmlHeader("0"), body: flowFixture(t, "davx5-entry-propfind.xml")})
		r := m.Response(t, flowPrincipal)
		if !r.OK(t, flowNsDAV, "resourcetype").Has(flowNsDAV, "principal") {
			t.Error("principal resourcetype lacks DAV:principal")
		}
		if got := r.OK(t, flowNsDAV, "current-user-principal").Hrefs(); !slices.Equal(got, []string{flowPrincipal}) {
			t.Errorf("current-user-principal = %v", got)
		}
		if got := r.OK(t, flowNsCard, "addressbook-home-set").Hrefs(); !slices.Equal(got, []string{flowHome}) {
			t.Errorf("addressbook-home-set = %v", got)
		}
		// Every principal candidate is checked with OPTIONS.
		resp, _ = c.do(t, flowReq{method: "OPTIONS", path: flowPrincipal})
		if resp.StatusCode/100 != 2 || !strings.Contains(resp.Header.Get("DAV"), "addressbook") {
			t.Fatalf("OPTIONS = %d, DAV %q: DAVx5 rejects the principal", resp.StatusCode, resp.Header.Get("DAV"))
		}
		checkPrincipal(t, c, "davx5-principal-propfind.xml")
	})

	step(t, "home set Depth 1", func(t *testing.T) {
		// DAVx5 may hold the home set without its trailing slash.
		m, _ := c.ms(t, flowReq{method: "PROPFIND", path: strings.TrimSuffix(flowHome, "/"), header: c.xmlHeader("1"), body: flowFixture(t, "davx5-home-propfind.xml")})
		if !m.Response(t, flowHome).OK(t, flowNsDAV, "current-user-privilege-set").Has(flowNsDAV, "bind") {
			t.Error("home set privileges lack bind: no \"create address book\"")
		}
		e.homeListing(t, m)
	})

	step(t, "capabilities and listing", func(t *testing.T) {
		tok, r := c.bookState(t, "davx5-book-capabilities.xml")
		token = tok
		if !r.OK(t, flowNsDAV, "supported-report-set").Has(flowNsDAV, "sync-collection") {
			t.Error("supported-report-set lacks sync-collection: DAVx5 would never use it")
		}
		v4 := false
		for _, at := range r.OK(t, flowNsCard, "supported-address-data").Children {
			ct, ver := "", ""
			for _, a := range at.Attrs {
				switch a.Name.Local {
				case "content-type":
					ct = a.Value
				case "version":
					ver = a.Value
				}
			}
			v4 = v4 || (ct == "text/vcard" && ver == "4.0")
		}
		if !v4 {
			t.Error("supported-address-data lacks text/vcard 4.0")
		}
		// The listing DAVx5 falls back to without sync-collection
		// (resourcetype + getetag; §3.2).
		c.listing(t, `<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns="DAV:"><prop><resourcetype /><getetag /></prop></propfind>`)
	})

	step(t, "initial sync and multiget in batches of 10", func(t *testing.T) {
		initial = c.initialSync(t, token)
		cards = c.fetchCards(t, initial, "sync", flowBook+"deleted-meanwhile.vcf")
	})

	step(t, "create with If-None-Match", func(t *testing.T) {
		etag, _ = c.create(t, dvPath, dv, map[string]string{"VERSION": "4.0", "UID": "8d6a2c1e-5b7f-4a3e-9c2d-1f0e9d8c7b6a", "FN": "Dana Vix",
			"N": "Vix;Dana;;;", "X-ABLabel": "mobile", "TEL": "+33 1 23 45 67 89"})
		g := e.graphContactNamed(t, "Dana Vix")
		if g.GivenName != "Dana" || g.Surname != "Vix" || g.MobilePhone != "+33 1 23 45 67 89" {
			t.Errorf("contact in Graph: %+v", g)
		}
		c.ownWrite(t, "after own create", dvPath, etag)
	})

	step(t, "update with If-Match", func(t *testing.T) {
		etag = c.update(t, dvPath, strings.Replace(dv, "FN:Dana Vix", "FN:Dana V.", 1), "Dana V.")
		c.ownWrite(t, "after own update", dvPath, etag)
	})

	step(t, "Outlook edits and deletes", func(t *testing.T) {
		// DAVx5 syncs once, after both, and multigets the edited card
		// with the deleted one.
		c.outlookEdits(t, cards, initial, outlookEdit{patch: graph.Patch{"officeLocation": "Building 7"},
			check: func(t *testing.T, s syncResult, pathA, pathB string) {
				got, etags := c.multiget(t, []string{pathA}, []string{pathB})
				if etags[pathA] != s.changed[pathA] || !strings.Contains(got[pathA], "Building 7") {
					t.Errorf("edited card (ETag %s, sync %s):\n%s", etags[pathA], s.changed[pathA], got[pathA])
				}
			}})
	})

	step(t, "DELETE with If-Match", func(t *testing.T) {
		c.deleteCard(t, dvPath, etag)
	})

	step(t, "invalid sync token", func(t *testing.T) {
		c.invalidToken(t, "urn:not-a-token-of-ours", http.StatusForbidden)
		c.fullSync(t, "resync")
	})

	step(t, "create and delete an address book", func(t *testing.T) {
		before, err := e.outlook.ListFolders(e.ctx)
		must(t, err)
		// The fixture names the new book "Work", and the seeded mailbox
		// already has a "Work" folder: Graph refuses two sibling folders
		// of one name, so the book is made at DAVx5's URL on a folder
		// named "Work (2)" rather than refused.
		if !slices.ContainsFunc(before, func(f graph.ContactFolder) bool { return f.DisplayName == "Work" }) {
			t.Fatal("the seeded mailbox has no Work folder")
		}
		resp, body := c.do(t, flowReq{method: "MKCOL", path: newBook, header: c.xmlHeader(""), body: flowFixture(t, "davx5-mkcol.xml")})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("MKCOL = %d, want 201:\n%s", resp.StatusCode, body)
		}
		if resp, _ := c.do(t, flowReq{method: "MKCOL", path: newBook, header: c.xmlHeader(""), body: flowFixture(t, "davx5-mkcol.xml")}); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("MKCOL of an existing book = %d, want 405", resp.StatusCode)
		}
		after, err := e.outlook.ListFolders(e.ctx)
		must(t, err)
		if len(after) != len(before)+1 || !slices.ContainsFunc(after, func(f graph.ContactFolder) bool { return f.DisplayName == "Work (2)" }) {
			t.Fatalf("Graph has folders %+v after MKCOL; %d before", after, len(before))
		}
		m, _ := c.ms(t, flowReq{method: "PROPFIND", path: flowHome, header: c.xmlHeader("1"), body: flowFixture(t, "davx5-home-propfind.xml")})
		e.homeListing(t, m)
		nb := m.Response(t, newBook)
		if dn := nb.OK(t, flowNsDAV, "displayname").Text; dn != "Work (2)" {
			t.Errorf("new book displayname %q", dn)
		}
		// Graph folders have no description: the backend does not keep it
		// and answers 404 for the property, which DAVx5 reads as none.
		if st, _ := nb.Prop(flowNsCard, "addressbook-description"); st != flowOK && st != flowNotFound {
			t.Errorf("new book addressbook-description status %q", st)
		}
		// The new book is empty and syncs.
		m, _ = c.ms(t, flowReq{method: "REPORT", path: newBook, header: c.xmlHeader("0"),
			body: flowFixture(t, "davx5-sync-collection.xml", "{{TOKEN}}", "", "{{LIMIT}}", "")})
		if len(m.Responses) != 0 || m.SyncToken == nil {
			t.Errorf("new book's initial sync: %v", m.Hrefs())
		}

		if st := c.del(t, newBook, ""); st != http.StatusNoContent {
			t.Fatalf("DELETE of the new book = %d, want 204", st)
		}
		gone, err := e.outlook.ListFolders(e.ctx)
		must(t, err)
		if len(gone) != len(before) || slices.ContainsFunc(gone, func(f graph.ContactFolder) bool { return f.DisplayName == "Work (2)" }) {
			t.Errorf("Graph has folders %+v after the book's DELETE; want the %d from before", gone, len(before))
		}
		m, _ = c.ms(t, flowReq{method: "PROPFIND", path: flowHome, header: c.xmlHeader("1"), body: flowFixture(t, "davx5-home-propfind.xml")})
		if m.Find(newBook) != nil {
			t.Error("deleted book still listed in the home set")
		}
		if st := c.del(t, flowBook, ""); st != http.StatusForbidden {
			t.Errorf("DELETE of the default book = %d, want 403", st)
		}
		if n := len(e.graphDefault(t)); n == 0 {
			t.Error("default folder emptied")
		}
	})
}
