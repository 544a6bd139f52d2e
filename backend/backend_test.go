package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/vcardmap"
)

// env is a Backend over a fakeAPI. The refresh interval is long, so Graph is
// asked for changes only when a test calls stale.
type env struct {
	t   *testing.T
	ctx context.Context
	api *fakeAPI
	st  store.Store
	b   *Backend
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), api: newFakeAPI(), st: store.NewMemory()}
	e.b = e.newBackend()
	return e
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e *env) newBackend() *Backend {
	e.t.Helper()
	b, err := New(Options{User: "alice", API: e.api, Store: e.st, RefreshInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// stale ends every book's refresh interval, so the next read runs a delta
// round.
func (e *env) stale() {
	for k := range e.b.cache.Items() {
		if strings.Contains(k, "\x00fresh\x00") || strings.HasSuffix(k, "\x00books") {
			e.b.cache.Delete(k)
		}
	}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func vcard(uid, fn, email string) []byte {
	return []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + fn + ";;;;\r\n" +
		"EMAIL;TYPE=INTERNET:" + email + "\r\nEND:VCARD\r\n")
}

func (e *env) list(book string) map[string]string {
	e.t.Helper()
	objs, err := e.b.ListObjects(e.ctx, book)
	e.must(err)
	out := map[string]string{}
	for _, o := range objs {
		out[o.Name] = o.ETag
	}
	return out
}

func (e *env) get(book, name string) carddav.Object {
	e.t.Helper()
	objs, err := e.b.GetObjects(e.ctx, book, []string{name}, "3.0")
	e.must(err)
	if len(objs) != 1 {
		e.t.Fatalf("GetObjects(%s) = %d objects", name, len(objs))
	}
	return objs[0]
}

func (e *env) put(book, name string, card []byte, cond carddav.Conditions) *carddav.PutResult {
	e.t.Helper()
	r, err := e.b.PutObject(e.ctx, book, name, card, cond)
	e.must(err)
	return r
}

func (e *env) sync(book, token string, limit int) *carddav.Changes {
	e.t.Helper()
	ch, err := e.b.SyncChanges(e.ctx, book, token, limit)
	e.must(err)
	return ch
}

func status(err error) int {
	var pe *carddav.PreconditionError
	if errors.As(err, &pe) {
		return pe.Status
	}
	var ue *carddav.UnavailableError
	if errors.As(err, &ue) {
		return http.StatusServiceUnavailable
	}
	// go-webdav's HTTPError is internal: find it by type, read its Code.
	for x := err; x != nil; x = errors.Unwrap(x) {
		if reflect.TypeOf(x) == reflect.TypeOf(webdav.NewHTTPError(http.StatusTeapot, nil)) {
			return int(reflect.ValueOf(x).Elem().FieldByName("Code").Int())
		}
	}
	if err == nil {
		return 0
	}
	return -1
}

func changedNames(ch *carddav.Changes) []string {
	var out []string
	for _, c := range ch.Changed {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}

func TestAddressBooks(t *testing.T) {
	e := newEnv(t)
	work := e.api.addFolder(e.api.defID, "Work")
	e.api.addFolder(work, "Clients")
	e.api.addFolder(e.api.defID, "Family")
	books, err := e.b.ListAddressBooks(e.ctx)
	e.must(err)
	var got []string
	for _, b := range books {
		got = append(got, b.DisplayName)
		if !strings.HasPrefix(b.SyncToken, tokenPrefix) || b.MaxResourceSize == 0 {
			t.Errorf("book %+v lacks a token or size", b)
		}
	}
	if want := []string{"Contacts", "Family", "Work", "Work / Clients"}; !reflect.DeepEqual(got, want) {
		t.Errorf("books = %v, want %v", got, want)
	}
	if books[0].Name != DefaultSlug {
		t.Errorf("first book %q, want default", books[0].Name)
	}
	// Slugs are stable: a second Backend derives the same ones.
	again, err := e.newBackend().ListAddressBooks(e.ctx)
	e.must(err)
	for i := range books {
		if again[i].Name != books[i].Name || again[i].SyncToken != books[i].SyncToken {
			t.Errorf("book %d changed across backends: %+v vs %+v", i, again[i], books[i])
		}
	}
	if _, err := e.b.AddressBook(e.ctx, "nope"); status(err) != http.StatusNotFound {
		t.Errorf("unknown book: %v, want 404", err)
	}
}

func TestBookLifecycle(t *testing.T) {
	e := newEnv(t)
	name := "Side project"
	ab, err := e.b.CreateAddressBook(e.ctx, "6f1c-uuid", carddav.BookProps{DisplayName: &name})
	e.must(err)
	if ab.Name != "6f1c-uuid" || ab.DisplayName != name {
		t.Errorf("created %+v", ab)
	}
	if e.api.count("CreateFolder") != 1 {
		t.Errorf("CreateFolder calls = %d", e.api.count("CreateFolder"))
	}
	if _, err := e.b.CreateAddressBook(e.ctx, "6f1c-uuid", carddav.BookProps{}); status(err) != http.StatusMethodNotAllowed {
		t.Errorf("MKCOL on an existing book: %v, want 405", err)
	}
	if _, err := e.b.CreateAddressBook(e.ctx, "default", carddav.BookProps{}); status(err) != http.StatusMethodNotAllowed {
		t.Errorf("MKCOL default: %v, want 405", err)
	}
	// The client's slug survives a restart.
	e.b = e.newBackend()
	got, err := e.b.AddressBook(e.ctx, "6f1c-uuid")
	e.must(err)
	if got.DisplayName != name {
		t.Errorf("after restart: %+v", got)
	}
	renamed := "Renamed"
	e.must(e.b.UpdateAddressBook(e.ctx, "6f1c-uuid", carddav.BookProps{DisplayName: &renamed}))
	got, err = e.b.AddressBook(e.ctx, "6f1c-uuid")
	e.must(err)
	if got.DisplayName != renamed {
		t.Errorf("after rename: %+v", got)
	}
	if err := e.b.UpdateAddressBook(e.ctx, "default", carddav.BookProps{DisplayName: &renamed}); status(err) != http.StatusForbidden {
		t.Errorf("rename default: %v, want 403", err)
	}
	if err := e.b.DeleteAddressBook(e.ctx, "default"); status(err) != http.StatusForbidden {
		t.Errorf("delete default: %v, want 403", err)
	}
	e.must(e.b.DeleteAddressBook(e.ctx, "6f1c-uuid"))
	if _, err := e.b.AddressBook(e.ctx, "6f1c-uuid"); status(err) != http.StatusNotFound {
		t.Errorf("deleted book: %v, want 404", err)
	}
	if len(e.api.folders) != 0 {
		t.Errorf("folders left: %v", e.api.folders)
	}
}

func TestListAndGetOutlookContacts(t *testing.T) {
	e := newEnv(t)
	id1 := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Ada Lovelace", GivenName: "Ada", Surname: "Lovelace",
		EmailAddresses: []graph.EmailAddress{{Address: "ada@example.com"}}})
	e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Alan Turing"})
	list := e.list("default")
	if len(list) != 2 {
		t.Fatalf("ListObjects = %v", list)
	}
	name := derivedName(id1)
	etag, ok := list[name]
	if !ok || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Fatalf("derived name %s missing or ETag %q not strong", name, etag)
	}
	// The first load is a delta round plus one listing; nothing per contact.
	if n := e.api.count(""); n != 4 { // DefaultFolder, ListFolders, ContactsDelta, ListContacts
		t.Errorf("first load made %d Graph calls: %v", n, e.api.calls)
	}
	e.api.resetCounts()
	obj := e.get("default", name)
	if obj.ETag != etag {
		t.Errorf("GetObjects ETag %s, ListObjects %s", obj.ETag, etag)
	}
	card := string(obj.Card)
	for _, want := range []string{"FN:Ada Lovelace", "ada@example.com", "UID:" + uidFor(&graph.Contact{ID: id1}, name)} {
		if !strings.Contains(card, want) {
			t.Errorf("card lacks %q:\n%s", want, card)
		}
	}
	if n := e.api.count(""); n != 0 {
		t.Errorf("rendering a listed contact made %d Graph calls: %v", n, e.api.calls)
	}
	// Unknown names are left out, not errors.
	objs, err := e.b.GetObjects(e.ctx, "default", []string{"nope.vcf", name}, "4.0")
	e.must(err)
	if len(objs) != 1 || !strings.Contains(string(objs[0].Card), "VERSION:4.0") {
		t.Errorf("GetObjects 4.0 = %+v", objs)
	}
}

func TestNoGraphCallWithinRefreshInterval(t *testing.T) {
	e := newEnv(t)
	e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Ada"})
	e.list("default")
	e.sync("default", "", 0)
	e.api.resetCounts()
	for range 5 {
		e.list("default")
		_, err := e.b.ListAddressBooks(e.ctx)
		e.must(err)
		e.sync("default", "", 0)
	}
	if n := e.api.count(""); n != 0 {
		t.Errorf("reads within the refresh interval made %d Graph calls: %v", n, e.api.calls)
	}
	e.stale()
	e.list("default")
	if n := e.api.count("ContactsDelta"); n != 1 {
		t.Errorf("after the interval: %d delta rounds, want 1", n)
	}
	if n := e.api.count("GetContacts"); n != 0 {
		t.Errorf("an idle delta round fetched contacts: %v", e.api.calls)
	}
}

func TestConcurrentRefreshCoalesced(t *testing.T) {
	e := newEnv(t)
	e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Ada"})
	e.list("default")
	e.stale()
	_, err := e.b.books(e.ctx) // folders are not what this test counts
	e.must(err)
	e.api.resetCounts()
	gate := make(chan struct{})
	e.api.mu.Lock()
	e.api.deltaGate = gate
	e.api.mu.Unlock()
	// Half the readers use a second Backend of the same user, store and
	// cache, as a server building one per request would.
	e.b.cache.Flush()
	other, err := New(Options{User: "alice", API: e.api, Store: e.st, Cache: e.b.cache, RefreshInterval: time.Hour, Logger: quietLogger()})
	e.must(err)
	const n = 16
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	errs := make(chan error, n)
	for i := range n {
		be := e.b
		if i%2 == 1 {
			be = other
		}
		go func() {
			defer done.Done()
			started.Done()
			_, err := be.ListObjects(e.ctx, "default")
			errs <- err
		}()
	}
	started.Wait()
	close(gate)
	done.Wait()
	close(errs)
	for err := range errs {
		e.must(err)
	}
	if got := e.api.count("ContactsDelta"); got != 1 {
		t.Errorf("%d concurrent reads ran %d delta rounds, want 1", n, got)
	}
}

func TestPutCreateAndUpdate(t *testing.T) {
	e := newEnv(t)
	start := e.sync("default", "", 0)
	name := "0A1B-client.vcf"
	r := e.put("default", name, vcard("client-uid-1", "Grace Hopper", "grace@example.com"), carddav.Conditions{IfNoneMatch: "*"})
	if !r.Created || r.ETag == "" {
		t.Fatalf("create = %+v", r)
	}
	if got := e.list("default")[name]; got != r.ETag {
		t.Errorf("listed ETag %s, PUT returned %s", got, r.ETag)
	}
	obj := e.get("default", name)
	if obj.ETag != r.ETag || !strings.Contains(string(obj.Card), "UID:client-uid-1") || !strings.Contains(string(obj.Card), "Grace Hopper") {
		t.Errorf("served %s:\n%s", obj.ETag, obj.Card)
	}
	// The href and UID live on the Graph contact.
	var id string
	for cid := range e.api.contacts {
		id = cid
	}
	props := e.api.props(id)
	if props[strings.ToLower(propHref)] != name || props[strings.ToLower(propUID)] != "client-uid-1" {
		t.Errorf("extended properties = %v", props)
	}
	// If-None-Match: * on an existing name.
	if _, err := e.b.PutObject(e.ctx, "default", name, vcard("client-uid-1", "X", "x@example.com"), carddav.Conditions{IfNoneMatch: "*"}); status(err) != http.StatusPreconditionFailed {
		t.Errorf("If-None-Match * on existing: %v, want 412", err)
	}
	// Stale If-Match.
	if _, err := e.b.PutObject(e.ctx, "default", name, vcard("client-uid-1", "X", "x@example.com"), carddav.Conditions{IfMatch: `"stale"`}); status(err) != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %v, want 412", err)
	}
	// If-Match on a missing name.
	if _, err := e.b.PutObject(e.ctx, "default", "missing.vcf", vcard("u", "X", "x@example.com"), carddav.Conditions{IfMatch: "*"}); status(err) != http.StatusPreconditionFailed {
		t.Errorf("If-Match on missing: %v, want 412", err)
	}
	e.api.resetCounts()
	r2 := e.put("default", name, vcard("client-uid-1", "Grace B. Hopper", "grace@example.com"), carddav.Conditions{IfMatch: webdav.ConditionalMatch(r.ETag)})
	if r2.Created || r2.ETag == r.ETag || r2.ETag == "" {
		t.Errorf("update = %+v (old ETag %s)", r2, r.ETag)
	}
	if e.api.count("UpdateContact") != 1 || e.api.count("CreateContact") != 0 {
		t.Errorf("update calls: %v", e.api.calls)
	}
	obj = e.get("default", name)
	if obj.ETag != r2.ETag || !strings.Contains(string(obj.Card), "Grace B. Hopper") {
		t.Errorf("after update served %s:\n%s", obj.ETag, obj.Card)
	}
	ch := e.sync("default", start.Token, 0)
	if got := changedNames(ch); !reflect.DeepEqual(got, []string{name}) || ch.Changed[0].ETag != r2.ETag {
		t.Errorf("sync after writes = %+v", ch)
	}
	// An invalid card is a valid-address-data precondition.
	_, err := e.b.PutObject(e.ctx, "default", "bad.vcf", []byte("not a vcard"), carddav.Conditions{})
	var pe *carddav.PreconditionError
	if !errors.As(err, &pe) || pe.Condition != carddav.ValidAddressData || pe.Status != http.StatusForbidden {
		t.Errorf("bad card: %v, want 403 valid-address-data", err)
	}
}

func TestNoUIDConflict(t *testing.T) {
	e := newEnv(t)
	outlookID := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "O"})
	e.put("default", "a.vcf", vcard("shared-uid", "A", "a@example.com"), carddav.Conditions{})
	tests := []struct {
		name, uid string
		want      int
	}{
		{"b.vcf", "shared-uid", http.StatusConflict},                               // another name, same UID
		{"c.vcf", uidFor(&graph.Contact{ID: outlookID}, "x"), http.StatusConflict}, // an Outlook contact's derived UID
		{"a.vcf", "shared-uid", 0},                                                 // the holder itself
		{"d.vcf", "fresh-uid", 0},
	}
	for _, tt := range tests {
		_, err := e.b.PutObject(e.ctx, "default", tt.name, vcard(tt.uid, "X", "x@example.com"), carddav.Conditions{})
		if got := status(err); got != tt.want {
			t.Errorf("PUT %s uid %s: %v, want status %d", tt.name, tt.uid, err, tt.want)
		}
		var pe *carddav.PreconditionError
		if tt.want == http.StatusConflict && (!errors.As(err, &pe) || pe.Condition != carddav.NoUIDConflict) {
			t.Errorf("PUT %s: %v, want no-uid-conflict", tt.name, err)
		}
	}
}

func TestPutConflictWithOutlookEdit(t *testing.T) {
	e := newEnv(t)
	r := e.put("default", "a.vcf", vcard("ua", "A", "a@example.com"), carddav.Conditions{})
	id := e.b.mustID(t, "default", "a.vcf")
	// Outlook edits; our snapshot has not seen it, so our own check passes
	// and Graph's If-Match refuses.
	e.api.outlookEdit(id, func(c *graph.Contact) { c.JobTitle = "Admiral" })
	_, err := e.b.PutObject(e.ctx, "default", "a.vcf", vcard("ua", "A2", "a@example.com"), carddav.Conditions{IfMatch: webdav.ConditionalMatch(r.ETag)})
	if status(err) != http.StatusPreconditionFailed {
		t.Fatalf("PUT over an unseen Outlook edit: %v, want 412", err)
	}
	// The 412 made the book stale: the next read sees Outlook's version.
	outlookETag := e.list("default")["a.vcf"]
	if outlookETag == r.ETag {
		t.Errorf("ETag unchanged after Outlook edit: %s", outlookETag)
	}
	// Without If-Match the client means to overwrite: last writer wins,
	// even over an Outlook edit our snapshot has not seen.
	e.api.outlookEdit(id, func(c *graph.Contact) { c.JobTitle = "Rear Admiral" })
	r3, err := e.b.PutObject(e.ctx, "default", "a.vcf", vcard("ua", "A3", "a@example.com"), carddav.Conditions{})
	if err != nil {
		t.Fatalf("unconditional PUT over an unseen Outlook edit: %v", err)
	}
	if obj := e.get("default", "a.vcf"); obj.ETag != r3.ETag || !strings.Contains(string(obj.Card), "A3") {
		t.Errorf("served %s (PUT said %s):\n%s", obj.ETag, r3.ETag, obj.Card)
	}
}

func TestPutOverOutlookDelete(t *testing.T) {
	e := newEnv(t)
	r := e.put("default", "a.vcf", vcard("ua", "A", "a@example.com"), carddav.Conditions{})
	e.put("default", "b.vcf", vcard("ub", "B", "b@example.com"), carddav.Conditions{})
	tok := e.sync("default", "", 0).Token
	e.api.outlookDelete(e.b.mustID(t, "default", "a.vcf"))
	e.api.outlookDelete(e.b.mustID(t, "default", "b.vcf"))
	// Our snapshot has not seen the deletes yet.
	if _, err := e.b.PutObject(e.ctx, "default", "a.vcf", vcard("ua", "A2", "a@example.com"), carddav.Conditions{IfMatch: webdav.ConditionalMatch(r.ETag)}); status(err) != http.StatusPreconditionFailed {
		t.Errorf("conditional PUT over an Outlook delete: %v, want 412", err)
	}
	r2 := e.put("default", "b.vcf", vcard("ub", "B2", "b@example.com"), carddav.Conditions{})
	if !r2.Created {
		t.Errorf("unconditional PUT over an Outlook delete did not recreate: %+v", r2)
	}
	ch := e.sync("default", tok, 0)
	if got := changedNames(ch); !reflect.DeepEqual(got, []string{"b.vcf"}) || !reflect.DeepEqual(ch.Deleted, []string{"a.vcf"}) {
		t.Errorf("sync = %+v", ch)
	}
}

func TestTransient412Retried(t *testing.T) {
	e := newEnv(t)
	r := e.put("default", "a.vcf", vcard("ua", "A", "a@example.com"), carddav.Conditions{})
	e.api.setFailOnce("UpdateContact", fmt.Errorf("fake: %w", graph.ErrPreconditionFailed))
	e.api.resetCounts()
	r2, err := e.b.PutObject(e.ctx, "default", "a.vcf", vcard("ua", "A2", "a@example.com"), carddav.Conditions{IfMatch: webdav.ConditionalMatch(r.ETag)})
	if err != nil {
		t.Fatalf("PUT over a transient 412: %v", err)
	}
	if e.api.count("UpdateContact") != 2 || r2.ETag == r.ETag {
		t.Errorf("calls %v, ETag %s → %s", e.api.calls, r.ETag, r2.ETag)
	}
	e.api.setFailOnce("DeleteContact", fmt.Errorf("fake: %w", graph.ErrPreconditionFailed))
	e.must(e.b.DeleteObject(e.ctx, "default", "a.vcf", webdav.ConditionalMatch(r2.ETag)))
	if len(e.api.contacts) != 0 {
		t.Errorf("contact not deleted after a transient 412")
	}
}

// mustID returns the Graph id of a member.
func (b *Backend) mustID(t *testing.T, slug, name string) string {
	t.Helper()
	bk, err := b.book(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := b.snapshot(context.Background(), bk)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := snap.byName[name]
	if !ok {
		t.Fatalf("no member %s", name)
	}
	return m.ID
}

func TestPhotoETag(t *testing.T) {
	e := newEnv(t)
	photo := "PHOTO;ENCODING=b;TYPE=JPEG:" + "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQ=="
	card := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:p1\r\nFN:Pic\r\nN:Pic;;;;\r\n" + photo + "\r\nEND:VCARD\r\n")
	r := e.put("default", "p.vcf", card, carddav.Conditions{})
	if e.api.count("PutPhoto") != 1 {
		t.Fatalf("PutPhoto calls = %d", e.api.count("PutPhoto"))
	}
	obj := e.get("default", "p.vcf")
	if obj.ETag != r.ETag || !strings.Contains(string(obj.Card), "PHOTO") {
		t.Errorf("served %s (PUT said %s):\n%s", obj.ETag, r.ETag, obj.Card)
	}
	// An edit that keeps the photo does not upload it again.
	e.api.resetCounts()
	card2 := []byte(strings.Replace(string(card), "FN:Pic", "FN:Pic Two", 1))
	r2 := e.put("default", "p.vcf", card2, carddav.Conditions{IfMatch: webdav.ConditionalMatch(r.ETag)})
	if e.api.count("PutPhoto") != 0 {
		t.Errorf("unchanged photo uploaded again: %v", e.api.calls)
	}
	// Removing the photo changes the ETag, and the served one matches.
	r3 := e.put("default", "p.vcf", vcard("p1", "Pic Two", "p@example.com"), carddav.Conditions{IfMatch: webdav.ConditionalMatch(r2.ETag)})
	if e.api.count("PutPhoto") != 1 {
		t.Errorf("photo removal: %v", e.api.calls)
	}
	if obj := e.get("default", "p.vcf"); obj.ETag != r3.ETag || strings.Contains(string(obj.Card), "PHOTO") {
		t.Errorf("after removal served %s (PUT said %s):\n%s", obj.ETag, r3.ETag, obj.Card)
	}
	// A restart (cold cache) serves the same ETags.
	e.b = e.newBackend()
	if got := e.list("default")["p.vcf"]; got != r3.ETag {
		t.Errorf("after restart ETag %s, want %s", got, r3.ETag)
	}
}

func TestLargeExtrasChunked(t *testing.T) {
	e := newEnv(t)
	var sb strings.Builder
	sb.WriteString("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:big\r\nFN:Big\r\nN:Big;;;;\r\n")
	for i := range 400 { // ~40 KB Graph has no field for: three chunks
		fmt.Fprintf(&sb, "X-CUSTOM-%d:%s\r\n", i, strings.Repeat("é", 45))
	}
	sb.WriteString("END:VCARD\r\n")
	r := e.put("default", "big.vcf", []byte(sb.String()), carddav.Conditions{})
	id := e.b.mustID(t, "default", "big.vcf")
	props := e.api.props(id)
	if props[strings.ToLower(extraProps[2])] == "" || props[strings.ToLower(extraProps[3])] != "" {
		t.Errorf("extras not in three chunks: %d, %d, %d, %d bytes", len(props[strings.ToLower(extraProps[0])]),
			len(props[strings.ToLower(extraProps[1])]), len(props[strings.ToLower(extraProps[2])]), len(props[strings.ToLower(extraProps[3])]))
	}
	e.b = e.newBackend() // cold cache: the card comes back from Graph
	obj := e.get("default", "big.vcf")
	if obj.ETag != r.ETag || !strings.Contains(string(obj.Card), "X-CUSTOM-399:") || !strings.Contains(string(obj.Card), "X-CUSTOM-0:") {
		t.Errorf("extras lost on the way back (%d bytes)", len(obj.Card))
	}
	// Shrinking clears the chunks no longer needed.
	e.put("default", "big.vcf", vcard("big", "Big", "big@example.com"), carddav.Conditions{})
	props = e.api.props(id)
	for _, p := range extraProps[1:] {
		if props[strings.ToLower(p)] != "" {
			t.Errorf("%s still holds %d bytes", p, len(props[strings.ToLower(p)]))
		}
	}
	// More than the chunks can hold is refused, not truncated.
	sb.Reset()
	sb.WriteString("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:huge\r\nFN:Huge\r\nN:Huge;;;;\r\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "X-CUSTOM-%d:%s\r\n", i, strings.Repeat("x", 70))
	}
	sb.WriteString("END:VCARD\r\n")
	_, err := e.b.PutObject(e.ctx, "default", "huge.vcf", []byte(sb.String()), carddav.Conditions{})
	var pe *carddav.PreconditionError
	if !errors.As(err, &pe) || pe.Condition != carddav.MaxResourceSize {
		t.Errorf("80 KB of extras: %v, want max-resource-size", err)
	}
}

func TestPhotosBatchedWhenTheAPICan(t *testing.T) {
	jpeg := []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0}
	for _, batching := range []bool{false, true} {
		t.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			e := newEnv(t)
			if batching {
				b, err := New(Options{User: "alice", API: batchingFake{e.api}, Store: e.st, RefreshInterval: time.Hour, Logger: quietLogger()})
				e.must(err)
				e.b = b
			}
			var names []string
			for i := range 6 {
				id := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: fmt.Sprintf("P%d", i)})
				if i%2 == 0 {
					e.api.outlookSetPhoto(id, jpeg)
				}
				names = append(names, derivedName(id))
			}
			e.list("default")
			e.api.resetCounts()
			objs, err := e.b.GetObjects(e.ctx, "default", names, "3.0")
			e.must(err)
			withPhoto := 0
			for _, o := range objs {
				if strings.Contains(string(o.Card), "PHOTO") {
					withPhoto++
				}
			}
			if len(objs) != 6 || withPhoto != 3 {
				t.Errorf("%d cards, %d with a photo; want 6, 3", len(objs), withPhoto)
			}
			wantSingle, wantBatch := 3, 0
			if batching {
				wantSingle, wantBatch = 0, 1
			}
			if e.api.count("GetPhoto") != wantSingle || e.api.count("GetPhotos") != wantBatch {
				t.Errorf("photo calls %v, want %d single, %d batch", e.api.calls, wantSingle, wantBatch)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	r := e.put("default", "d.vcf", vcard("ud", "D", "d@example.com"), carddav.Conditions{})
	tok := e.sync("default", "", 0).Token
	if err := e.b.DeleteObject(e.ctx, "default", "d.vcf", `"stale"`); status(err) != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %v, want 412", err)
	}
	e.must(e.b.DeleteObject(e.ctx, "default", "d.vcf", webdav.ConditionalMatch(r.ETag)))
	if len(e.api.contacts) != 0 {
		t.Errorf("contact still in Graph")
	}
	if err := e.b.DeleteObject(e.ctx, "default", "d.vcf", ""); status(err) != http.StatusNotFound {
		t.Errorf("second delete: %v, want 404", err)
	}
	ch := e.sync("default", tok, 0)
	if len(ch.Changed) != 0 || !reflect.DeepEqual(ch.Deleted, []string{"d.vcf"}) {
		t.Errorf("sync after delete = %+v", ch)
	}
}

func TestSyncCollection(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: fmt.Sprintf("C%d", i)}))
	}
	initial := e.sync("default", "", 0)
	if len(initial.Changed) != 5 || len(initial.Deleted) != 0 || initial.Truncated {
		t.Fatalf("initial sync = %+v", initial)
	}
	book, err := e.b.AddressBook(e.ctx, "default")
	e.must(err)
	if book.SyncToken != initial.Token {
		t.Errorf("getctag %s != sync token %s", book.SyncToken, initial.Token)
	}
	if again := e.sync("default", initial.Token, 0); len(again.Changed)+len(again.Deleted) != 0 || again.Token != initial.Token {
		t.Errorf("idle incremental = %+v", again)
	}
	// Outlook: edit one, delete one, add one.
	e.api.outlookEdit(ids[0], func(c *graph.Contact) { c.JobTitle = "Boss" })
	e.api.outlookDelete(ids[1])
	newID := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "New"})
	e.stale()
	ch := e.sync("default", initial.Token, 0)
	want := []string{derivedName(ids[0]), derivedName(newID)}
	sort.Strings(want)
	if got := changedNames(ch); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(ch.Deleted, []string{derivedName(ids[1])}) {
		t.Errorf("incremental = %+v, want changed %v deleted %s", ch, want, derivedName(ids[1]))
	}
	if e.api.count("GetContacts") != 1 {
		t.Errorf("changed contacts fetched in %d batches, want 1", e.api.count("GetContacts"))
	}
	book, err = e.b.AddressBook(e.ctx, "default")
	e.must(err)
	if book.SyncToken != ch.Token || ch.Token == initial.Token {
		t.Errorf("getctag %s, sync token %s (initial %s)", book.SyncToken, ch.Token, initial.Token)
	}

	// Limit: pages of 2 resume to the same end state.
	seen := map[string]bool{}
	tok := ""
	for range 10 { // bounded
		page := e.sync("default", tok, 2)
		if len(page.Changed)+len(page.Deleted) > 2 {
			t.Fatalf("page over limit: %+v", page)
		}
		for _, c := range page.Changed {
			seen[c.Name] = true
		}
		tok = page.Token
		if !page.Truncated {
			break
		}
	}
	if len(seen) != 5 || tok != ch.Token {
		t.Errorf("paged initial sync saw %d members, ended at %s (want 5, %s)", len(seen), tok, ch.Token)
	}

	// Invalid tokens.
	other := e.api.addFolder(e.api.defID, "Other")
	e.stale()
	otherBook, err := e.b.AddressBook(e.ctx, folderKey(other))
	e.must(err)
	key, epoch, seq, err := parseToken(ch.Token)
	e.must(err)
	for _, tok := range []string{
		"garbage",
		"http://example.com/sync/1",
		tokenPrefix + key + ":zz:1",
		otherBook.SyncToken,                          // foreign book
		formatToken(key, epoch+1, seq),               // another epoch
		formatToken(key, epoch, seq+100),             // from the future
		strings.Replace(ch.Token, key, "nokey", 1),   // unknown book
		tokenPrefix + key + ":" + "1:2:3",            // malformed
		formatToken(key, epoch, seq) + "/extra-path", // malformed
	} {
		if _, err := e.b.SyncChanges(e.ctx, "default", tok, 0); !errors.Is(err, carddav.ErrInvalidSyncToken) {
			t.Errorf("token %q: %v, want ErrInvalidSyncToken", tok, err)
		}
	}
}

func TestBulkOutlookChangeReadByListing(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: fmt.Sprintf("Old%d", i)})
	}
	tok := e.sync("default", "", 0).Token
	for i := range 60 { // an import: 3 batches, or 1 page of a listing
		e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: fmt.Sprintf("New%d", i)})
	}
	e.api.resetCounts()
	e.stale()
	ch := e.sync("default", tok, 0)
	if len(ch.Changed) != 60 || len(ch.Deleted) != 0 {
		t.Errorf("bulk change: %d changed, %d deleted, want 60, 0", len(ch.Changed), len(ch.Deleted))
	}
	if e.api.count("ListContacts") != 1 || e.api.count("GetContacts") != 0 {
		t.Errorf("bulk change calls: %v, want one listing, no batches", e.api.calls)
	}
}

func TestEchoOfOwnWriteNotLogged(t *testing.T) {
	e := newEnv(t)
	e.put("default", "a.vcf", vcard("ua", "A", "a@example.com"), carddav.Conditions{})
	after := e.sync("default", "", 0).Token
	e.api.resetCounts()
	e.stale()
	ch := e.sync("default", after, 0)
	if len(ch.Changed)+len(ch.Deleted) != 0 || ch.Token != after {
		t.Errorf("delta echo of our own write was logged: %+v", ch)
	}
	if e.api.count("ContactsDelta") != 1 || e.api.count("GetContacts") != 0 {
		t.Errorf("echo round calls: %v (want one delta, no fetch)", e.api.calls)
	}
}

func TestExpiredDeltaTokenKeepsClientTokens(t *testing.T) {
	e := newEnv(t)
	a := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "A"})
	b := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "B"})
	e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "C"})
	tok := e.sync("default", "", 0).Token
	e.api.outlookEdit(a, func(c *graph.Contact) { c.JobTitle = "x" })
	e.api.outlookDelete(b)
	d := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "D"})
	e.api.expireDeltaLinks()
	e.api.resetCounts()
	e.stale()
	ch := e.sync("default", tok, 0)
	want := []string{derivedName(a), derivedName(d)}
	sort.Strings(want)
	if got := changedNames(ch); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(ch.Deleted, []string{derivedName(b)}) {
		t.Errorf("after 410: %+v, want changed %v deleted %s", ch, want, derivedName(b))
	}
	if e.api.count("ListContacts") != 1 {
		t.Errorf("410 recovery calls: %v", e.api.calls)
	}
	// The new delta link works: an idle round afterwards changes nothing.
	e.api.resetCounts()
	e.stale()
	if again := e.sync("default", ch.Token, 0); len(again.Changed)+len(again.Deleted) != 0 {
		t.Errorf("after recovery: %+v", again)
	}
	if e.api.count("ListContacts") != 0 {
		t.Errorf("re-listed again: %v", e.api.calls)
	}
}

func TestRestartKeepsTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync.db")
	st, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), api: newFakeAPI(), st: st}
	e.b = e.newBackend()
	a := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "A"})
	e.put("default", "mine.vcf", vcard("um", "Mine", "m@example.com"), carddav.Conditions{})
	tok := e.sync("default", "", 0).Token
	e.must(st.Close())

	st, err = store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e.st = st
	e.b = e.newBackend()
	e.api.outlookEdit(a, func(c *graph.Contact) { c.Surname = "Changed" })
	e.api.resetCounts()
	ch := e.sync("default", tok, 0)
	if got := changedNames(ch); !reflect.DeepEqual(got, []string{derivedName(a)}) || len(ch.Deleted) != 0 {
		t.Errorf("after restart: %+v, want only %s", ch, derivedName(a))
	}
	if e.api.count("ListContacts") != 0 {
		t.Errorf("restart re-listed the folder: %v", e.api.calls)
	}
	// The client's names survive too.
	if _, ok := e.list("default")["mine.vcf"]; !ok {
		t.Errorf("mine.vcf lost across restart")
	}
}

func TestColdCacheMultigetListsOnce(t *testing.T) {
	e := newEnv(t)
	for i := range 60 {
		e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: fmt.Sprintf("C%d", i)})
	}
	e.list("default")
	e.b = e.newBackend() // restart: store kept, cache cold
	names := make([]string, 0, 60)
	for name := range e.list("default") {
		names = append(names, name)
	}
	sort.Strings(names)
	e.api.resetCounts()
	for i := 0; i < len(names); i += 25 { // multigets of 25
		objs, err := e.b.GetObjects(e.ctx, "default", names[i:min(i+25, len(names))], "3.0")
		e.must(err)
		if len(objs) != min(25, len(names)-i) {
			t.Fatalf("multiget %d: %d objects", i, len(objs))
		}
	}
	if e.api.count("ListContacts") != 1 || e.api.count("GetContacts") != 0 {
		t.Errorf("cold multigets: %v, want one listing", e.api.calls)
	}
}

// A cold listing that fails must not count as done: the next multiget
// lists again rather than falling back to a $batch per 20 contacts.
func TestColdCacheFailedListingRetried(t *testing.T) {
	e := newEnv(t)
	for i := range 60 {
		e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: fmt.Sprintf("C%d", i)})
	}
	e.list("default")
	e.b = e.newBackend() // restart: store kept, cache cold
	names := make([]string, 0, 60)
	for name := range e.list("default") {
		names = append(names, name)
	}
	e.api.resetCounts()
	e.api.setFailOnce("ListContacts", fmt.Errorf("fake: %w", graph.ErrUnavailable))
	if _, err := e.b.GetObjects(e.ctx, "default", names, "3.0"); err == nil {
		t.Fatal("multiget with a failing listing succeeded")
	}
	objs, err := e.b.GetObjects(e.ctx, "default", names, "3.0")
	e.must(err)
	if len(objs) != len(names) {
		t.Fatalf("multiget: %d objects, want %d", len(objs), len(names))
	}
	if e.api.count("ListContacts") != 2 || e.api.count("GetContacts") != 0 {
		t.Errorf("multigets after a failed listing: %v, want the listing again", e.api.calls)
	}
}

func TestOutlookCopyGetsItsOwnName(t *testing.T) {
	e := newEnv(t)
	e.put("default", "orig.vcf", vcard("uo", "Orig", "o@example.com"), carddav.Conditions{})
	id := e.b.mustID(t, "default", "orig.vcf")
	cp := e.api.outlookCopy(id)
	e.stale()
	list := e.list("default")
	if _, ok := list[derivedName(cp)]; !ok || len(list) != 2 {
		t.Fatalf("copy not listed under its derived name: %v", list)
	}
	orig, dup := e.get("default", "orig.vcf"), e.get("default", derivedName(cp))
	if !strings.Contains(string(orig.Card), "UID:uo") || strings.Contains(string(dup.Card), "UID:uo") {
		t.Errorf("UIDs: orig\n%s\ncopy\n%s", orig.Card, dup.Card)
	}
}

func TestNamePassesToCopyWhenOriginalLeaves(t *testing.T) {
	// Outlook's "move" done as copy + delete, seen in one round: the copy
	// carries our href, and takes the name over.
	e := newEnv(t)
	e.put("default", "a.vcf", vcard("ua", "A", "a@example.com"), carddav.Conditions{})
	tok := e.sync("default", "", 0).Token
	id := e.b.mustID(t, "default", "a.vcf")
	cp := e.api.outlookCopy(id)
	e.api.outlookDelete(id)
	e.stale()
	ch := e.sync("default", tok, 0)
	if got := changedNames(ch); !reflect.DeepEqual(got, []string{"a.vcf"}) || len(ch.Deleted) != 0 {
		t.Errorf("sync = %+v, want a.vcf changed", ch)
	}
	if got := e.b.mustID(t, "default", "a.vcf"); got != cp {
		t.Errorf("a.vcf is %s, want the copy %s", got, cp)
	}
	if obj := e.get("default", "a.vcf"); !strings.Contains(string(obj.Card), "UID:ua") {
		t.Errorf("the copy lost the UID:\n%s", obj.Card)
	}
}

func TestMoveBetweenBooksKeepsName(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprintf("laggingDelta=%v", quiet), func(t *testing.T) {
			e := newEnv(t)
			work := e.api.addFolder(e.api.defID, "Work")
			e.put("default", "m.vcf", vcard("um", "M", "m@example.com"), carddav.Conditions{})
			workSlug := folderKey(work)
			defTok := e.sync("default", "", 0).Token
			workTok := e.sync(workSlug, "", 0).Token
			id := e.b.mustID(t, "default", "m.vcf")
			e.api.outlookEdit(id, func(c *graph.Contact) { c.JobTitle = "Moved" })
			e.api.outlookMove(id, work, quiet)
			e.stale()
			if ch := e.sync("default", defTok, 0); len(ch.Changed) != 0 || !reflect.DeepEqual(ch.Deleted, []string{"m.vcf"}) {
				t.Errorf("source book sync = %+v, want m.vcf deleted", ch)
			}
			if ch := e.sync(workSlug, workTok, 0); !reflect.DeepEqual(changedNames(ch), []string{"m.vcf"}) {
				t.Errorf("target book sync = %+v, want m.vcf", ch)
			}
		})
	}
}

func TestBadContactDoesNotFailListing(t *testing.T) {
	e := newEnv(t)
	good := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Good"})
	bad := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Bad"})
	e.list("default")
	e.b.render = func(m *vcardmap.Mapped, v string) ([]byte, error) {
		if m.Contact.DisplayName == "Bad" {
			return nil, errors.New("cannot render")
		}
		return vcardmap.Render(m, v)
	}
	objs, err := e.b.GetObjects(e.ctx, "default", []string{derivedName(good), derivedName(bad)}, "3.0")
	e.must(err)
	if len(objs) != 1 || objs[0].Name != derivedName(good) {
		t.Errorf("GetObjects = %+v, want only the good one", objs)
	}
}

func TestGraphErrorsMapped(t *testing.T) {
	e := newEnv(t)
	throttled := &graph.Error{Status: 429, Code: "TooManyRequests", RetryAfter: 7 * time.Second}
	e.api.setFail("ListFolders", fmt.Errorf("%w: %w", graph.ErrThrottled, throttled))
	_, err := e.b.ListAddressBooks(e.ctx)
	var ue *carddav.UnavailableError
	if !errors.As(err, &ue) || ue.RetryAfter != 7*time.Second {
		t.Errorf("throttled: %v, want UnavailableError with Retry-After 7s", err)
	}
	e.api.setFail("ListFolders", nil)
	// A book never loaded cannot be served while Graph is down…
	e.api.setFail("ContactsDelta", fmt.Errorf("%w", graph.ErrUnavailable))
	if _, err := e.b.ListObjects(e.ctx, "default"); status(err) != http.StatusServiceUnavailable {
		t.Errorf("first load while down: %v, want 503", err)
	}
	// …a loaded one is served from what we have.
	e.api.setFail("ContactsDelta", nil)
	e.list("default")
	e.stale()
	e.api.setFail("ContactsDelta", fmt.Errorf("%w", graph.ErrUnavailable))
	if _, err := e.b.ListObjects(e.ctx, "default"); err != nil {
		t.Errorf("loaded book while down: %v, want served", err)
	}
	e.api.setFail("CreateContact", fmt.Errorf("%w", graph.ErrThrottled))
	if _, err := e.b.PutObject(e.ctx, "default", "x.vcf", vcard("ux", "X", "x@example.com"), carddav.Conditions{}); status(err) != http.StatusServiceUnavailable {
		t.Errorf("throttled write: %v, want 503", err)
	}
}

// Once the refresh interval has passed, a sync of one book asks Graph for
// that book's changes only: walking the folder tree (a request per folder)
// waits for a listing of the home set, which still sees new folders.
func TestIdleBookSyncDoesNotWalkFolderTree(t *testing.T) {
	e := newEnv(t)
	e.api.addFolder(e.api.defID, "Work")
	e.api.addFolder(e.api.defID, "Family")
	e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Ada"})
	first := e.sync("default", "", 0)
	intervalPassed := func() { // the refresh interval ends; the folder tree stays cached
		for k := range e.b.cache.Items() {
			if strings.Contains(k, "\x00fresh\x00") || strings.HasSuffix(k, "\x00books-fresh") {
				e.b.cache.Delete(k)
			}
		}
	}
	intervalPassed()
	e.api.resetCounts()
	e.sync("default", first.Token, 0)
	if n := e.api.count("ListFolders"); n != 0 {
		t.Errorf("an idle sync of one book walked the folder tree %d times: %v", n, e.api.calls)
	}
	if n := e.api.count("ContactsDelta"); n != 1 {
		t.Errorf("an idle sync of one book ran %d delta rounds, want 1", n)
	}

	e.api.addFolder(e.api.defID, "Made in Outlook")
	intervalPassed()
	books, err := e.b.ListAddressBooks(e.ctx)
	e.must(err)
	if n := e.api.count("ListFolders"); n != 1 {
		t.Errorf("listing the home set after the interval walked the tree %d times, want 1", n)
	}
	found := false
	for _, bk := range books {
		found = found || bk.DisplayName == "Made in Outlook"
	}
	if !found {
		t.Errorf("a folder made in Outlook is missing from the listing: %+v", books)
	}
}

// A client that drops properties it does not know (here X-MS-OFFICE,
// X-MS-INITIALS, X-MS-FILEAS) edits a contact made in Outlook: its edit
// lands, and the Outlook fields only those properties carry are kept.
func TestPutKeepsFieldsTheClientCannotSay(t *testing.T) {
	e := newEnv(t)
	id := e.api.outlookCreate(e.api.defID, graph.Contact{DisplayName: "Ada Lovelace", GivenName: "Ada", Surname: "Lovelace",
		OfficeLocation: "Room 12", Initials: "A.L.", FileAs: "Lovelace, Ada", JobTitle: "Analyst"})
	var name string
	for n := range e.list("default") {
		name = n
	}
	served := string(e.get("default", name).Card)
	for _, want := range []string{"X-MS-OFFICE:Room 12", "X-MS-INITIALS:A.L.", "X-MS-FILEAS:Lovelace\\, Ada"} {
		if !strings.Contains(served, want) {
			t.Fatalf("served card lacks %s:\n%s", want, served)
		}
	}
	var kept []string // the card as a client that knows no X-MS-* saves it, edited
	for _, line := range strings.Split(served, "\r\n") {
		if !strings.HasPrefix(line, "X-MS-") {
			kept = append(kept, strings.Replace(line, "TITLE:Analyst", "TITLE:Engineer", 1))
		}
	}
	e.put("default", name, []byte(strings.Join(kept, "\r\n")), carddav.Conditions{})
	got, err := e.api.GetContact(e.ctx, e.api.defID, id, graph.Query{})
	e.must(err)
	if got.JobTitle != "Engineer" {
		t.Errorf("the client's edit was lost: job title %q", got.JobTitle)
	}
	if got.OfficeLocation != "Room 12" || got.Initials != "A.L." || got.FileAs != "Lovelace, Ada" {
		t.Errorf("Outlook fields cleared by a client that cannot say them: office %q, initials %q, fileAs %q",
			got.OfficeLocation, got.Initials, got.FileAs)
	}
}

// MKCOL with the name of an existing Outlook folder makes a book at the
// client's URL anyway, on a folder named "Name (2)": Graph refuses two
// sibling folders of one name, and a refused MKCOL is a hard error in DAVx5.
func TestMkcolNameClash(t *testing.T) {
	e := newEnv(t)
	e.api.addFolder(e.api.defID, "Work")
	name := "Work"
	ab, err := e.b.CreateAddressBook(e.ctx, "3b2a-uuid", carddav.BookProps{DisplayName: &name})
	e.must(err)
	if ab.Name != "3b2a-uuid" || ab.DisplayName != "Work (2)" {
		t.Fatalf("created %+v, want slug 3b2a-uuid named Work (2)", ab)
	}
	books, err := e.b.ListAddressBooks(e.ctx)
	e.must(err)
	names := map[string]string{}
	for _, bk := range books {
		names[bk.Name] = bk.DisplayName
	}
	if names["3b2a-uuid"] != "Work (2)" || len(books) != 3 {
		t.Fatalf("books after the clash: %v", names)
	}
}

// A folder deleted in Outlook leaves nothing behind in the store: once the
// folder tree is refreshed, its members, change log and delta link go too
// (folders made in Outlook have no remembered slug to trigger that).
func TestOutlookDeletedFolderForgotten(t *testing.T) {
	e := newEnv(t)
	fid := e.api.addFolder(e.api.defID, "Work")
	e.api.outlookCreate(fid, graph.Contact{DisplayName: "Ada"})
	books, err := e.b.ListAddressBooks(e.ctx)
	e.must(err)
	var slug string
	for _, bk := range books {
		if bk.DisplayName == "Work" {
			slug = bk.Name
		}
	}
	if ch := e.sync(slug, "", 0); len(ch.Changed) != 1 {
		t.Fatalf("initial sync of Work: %+v", ch)
	}
	stored := func() []string {
		keys, err := e.st.Books(e.ctx, "alice")
		e.must(err)
		return keys
	}
	if !slices.Contains(stored(), folderKey(fid)) {
		t.Fatalf("the synced book is not stored: %v", stored())
	}
	e.must(e.api.DeleteFolder(e.ctx, fid))
	e.stale()
	_, err = e.b.ListAddressBooks(e.ctx)
	e.must(err)
	if keys := stored(); slices.Contains(keys, folderKey(fid)) || !slices.Contains(keys, folderKey(e.api.defID)) {
		t.Fatalf("stored books after Outlook deleted Work: %v", keys)
	}
}
