package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-webdav"
	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
)

// emuPrefix mounts the emulator below a path, so links are followed, not
// rebuilt.
const (
	emuPrefix = "/emu/graph"
	emuUser   = "ada@contoso.example"
)

// emuEnv is a Graph emulator on 127.0.0.1 with one mailbox.
type emuEnv struct {
	emu  *graphemu.Emulator
	base string
}

func newEmuEnv(tb testing.TB) *emuEnv { return newEmuEnvLimits(tb, graphemu.Limits{}) }

func newEmuEnvLimits(tb testing.TB, limits graphemu.Limits) *emuEnv {
	tb.Helper()
	emu, err := graphemu.New(graphemu.Options{PathPrefix: emuPrefix, Limits: limits})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	if err := emu.AddMailbox(emuUser); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	tb.Cleanup(srv.Close)
	return &emuEnv{emu: emu, base: srv.URL + emuPrefix + "/v1.0"}
}

// client is a graph.Client on the mailbox: the backend's, or "Outlook".
func (x *emuEnv) client(tb testing.TB) *graph.Client {
	tb.Helper()
	return x.clientWith(tb, graph.Options{})
}

// clientWith is client with retry options set.
func (x *emuEnv) clientWith(tb testing.TB, o graph.Options) *graph.Client {
	tb.Helper()
	o.BaseURL = x.base
	o.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: x.emu.AccessToken(emuUser), Expiry: time.Now().Add(time.Hour)})
	o.Logger = quietLogger()
	c, err := graph.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// requests is the emulator's total request count.
func (x *emuEnv) requests() int {
	n := 0
	for _, v := range x.emu.Counts() {
		n += v
	}
	return n
}

func newEmuBackend(tb testing.TB, x *emuEnv, st store.Store) *Backend {
	tb.Helper()
	return newEmuBackendAPI(tb, x.client(tb), st)
}

func newEmuBackendAPI(tb testing.TB, api ContactsAPI, st store.Store) *Backend {
	tb.Helper()
	b, err := New(Options{User: "ada", API: api, Store: st, RefreshInterval: time.Hour, Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// staleBackend ends the refresh interval of every book of b.
func staleBackend(b *Backend) {
	for k := range b.cache.Items() {
		if strings.Contains(k, "\x00fresh\x00") {
			b.cache.Delete(k)
		}
	}
}

func TestIntegrationOutlookEditsReachSync(t *testing.T) {
	ctx := context.Background()
	x := newEmuEnv(t)
	outlook := x.client(t)
	path := filepath.Join(t.TempDir(), "sync.db")
	st, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st}
	e.b = newEmuBackend(t, x, st)

	mk := func(name string) string {
		c, err := outlook.CreateContact(ctx, "", &graph.Contact{DisplayName: name, GivenName: name})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	edit := func(id, title string) {
		cur, err := outlook.GetContact(ctx, "", id, graph.Query{})
		if err != nil {
			t.Fatal(err)
		}
		next := *cur
		next.JobTitle = title
		if _, err := outlook.UpdateContact(ctx, "", id, graph.NewPatch(cur, &next), ""); err != nil {
			t.Fatal(err)
		}
	}
	del := func(id string) {
		if err := outlook.DeleteContact(ctx, "", id, ""); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(step string, ch *carddav.Changes, changed, deleted []string) {
		t.Helper()
		sort.Strings(changed)
		sort.Strings(deleted)
		got := append([]string(nil), ch.Deleted...)
		sort.Strings(got)
		if !reflect.DeepEqual(changedNames(ch), changed) || !reflect.DeepEqual(got, deleted) {
			t.Errorf("%s: changed %v deleted %v, want changed %v deleted %v", step, changedNames(ch), got, changed, deleted)
		}
	}

	a, b, c := mk("A"), mk("B"), mk("C")
	r := e.put("default", "mine.vcf", vcard("mine-uid", "Mine", "mine@example.com"), carddav.Conditions{IfNoneMatch: "*"})
	initial := e.sync("default", "", 0)
	expect("initial", initial, []string{derivedName(a), derivedName(b), derivedName(c), "mine.vcf"}, nil)
	if obj := e.get("default", "mine.vcf"); obj.ETag != r.ETag || !strings.Contains(string(obj.Card), "UID:mine-uid") {
		t.Errorf("own card served %s (PUT said %s):\n%s", obj.ETag, r.ETag, obj.Card)
	}

	// 1. Outlook edits, creates and deletes; our own write is not echoed.
	edit(a, "Boss")
	del(b)
	d := mk("D")
	r2 := e.put("default", "mine.vcf", vcard("mine-uid", "Mine Two", "mine@example.com"), carddav.Conditions{IfMatch: "*"})
	staleBackend(e.b)
	step1 := e.sync("default", initial.Token, 0)
	expect("outlook edits", step1, []string{derivedName(a), derivedName(d), "mine.vcf"}, []string{derivedName(b)})
	for _, ch := range step1.Changed {
		if ch.Name == "mine.vcf" && ch.ETag != r2.ETag {
			t.Errorf("own write logged with ETag %s, PUT returned %s", ch.ETag, r2.ETag)
		}
	}
	// Our own write is logged at once; its delta echo is neither logged
	// nor fetched.
	r3 := e.put("default", "mine.vcf", vcard("mine-uid", "Mine Two", "mine2@example.com"), carddav.Conditions{IfMatch: webdav.ConditionalMatch(r2.ETag)})
	own := e.sync("default", step1.Token, 0)
	expect("own write", own, []string{"mine.vcf"}, nil)
	if own.Changed[0].ETag != r3.ETag {
		t.Errorf("own write logged with ETag %s, PUT returned %s", own.Changed[0].ETag, r3.ETag)
	}
	staleBackend(e.b)
	batches, deltas := countOf(x.emu.Counts(), "batch"), countOf(x.emu.Counts(), "contacts.delta")
	expect("echo round", e.sync("default", own.Token, 0), nil, nil)
	if n := countOf(x.emu.Counts(), "batch"); n != batches {
		t.Errorf("the echo of our own write was fetched again (%d batch requests)", n-batches)
	}
	if n := countOf(x.emu.Counts(), "contacts.delta"); n != deltas+1 {
		t.Errorf("echo round made %d delta requests, want 1", n-deltas)
	}
	step1 = own

	// 2. Graph forgets its delta tokens: the re-list diff is exact.
	x.emu.ExpireDeltaTokens(emuUser)
	edit(c, "Chief")
	del(d)
	f := mk("F")
	staleBackend(e.b)
	step2 := e.sync("default", step1.Token, 0)
	expect("after 410", step2, []string{derivedName(c), derivedName(f)}, []string{derivedName(d)})

	// 3. Restart on the same store: tokens stay valid, no re-list.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e.st = st
	e.b = newEmuBackend(t, x, st)
	edit(f, "Fixer")
	before := x.emu.Counts()
	step3 := e.sync("default", step2.Token, 0)
	expect("after restart", step3, []string{derivedName(f)}, nil)
	after := x.emu.Counts()
	for k, v := range after {
		if strings.HasPrefix(k, "contacts.list") && v != before[k] {
			t.Errorf("restart re-listed the folder: %s %d → %d", k, before[k], v)
		}
	}
	// Outlook's view of our contact carries the client's href and UID.
	id := e.b.mustID(t, "default", "mine.vcf")
	got, err := outlook.GetContact(ctx, "", id, fullQuery)
	if err != nil {
		t.Fatal(err)
	}
	if hrefOf(got) != "mine.vcf" || uidFor(got, "mine.vcf") != "mine-uid" || got.DisplayName != "Mine Two" {
		t.Errorf("Graph holds href %q uid %q name %q", hrefOf(got), uidFor(got, "mine.vcf"), got.DisplayName)
	}
}

func TestIntegrationSeededFolders(t *testing.T) {
	ctx := context.Background()
	x := newEmuEnv(t)
	if err := x.emu.Seed(emuUser, 30); err != nil {
		t.Fatal(err)
	}
	b := newEmuBackend(t, x, store.NewMemory())
	books, err := b.ListAddressBooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, bk := range books {
		names = append(names, bk.DisplayName)
	}
	if len(names) != 4 || books[0].Name != DefaultSlug || !contains(names, "Family / Cousins") {
		t.Fatalf("books = %v", names)
	}
	infos, err := b.ListObjects(ctx, DefaultSlug)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, o := range infos {
		all = append(all, o.Name)
	}
	objs, err := b.GetObjects(ctx, DefaultSlug, all, "3.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 30 || len(objs) != 30 {
		t.Fatalf("listed %d, rendered %d, want 30", len(infos), len(objs))
	}
	photos := 0
	for i, o := range objs {
		if o.ETag != infos[i].ETag {
			t.Errorf("%s: GetObjects ETag %s, ListObjects %s", o.Name, o.ETag, infos[i].ETag)
		}
		if strings.Contains(string(o.Card), "PHOTO") {
			photos++
		}
	}
	if photos == 0 {
		t.Errorf("no seeded photo rendered")
	}
}

// TestIntegrationUnderFaults runs writes and syncs while the emulator
// throttles, fails and answers spurious 412s at random: every failure the
// backend reports has a DAV meaning (412 or 503, never an untyped error),
// and once the faults stop, the change log agrees with Graph.
func TestIntegrationUnderFaults(t *testing.T) {
	ctx := context.Background()
	x := newEmuEnv(t)
	outlook := x.client(t)
	api := x.clientWith(t, graph.Options{MaxRetries: 1, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	e := &env{t: t, ctx: ctx, st: store.NewMemory()}
	e.b = newEmuBackendAPI(t, api, e.st)
	initial := e.sync("default", "", 0)
	x.emu.SetFaults(graphemu.Faults{ThrottleRate: 0.15, UnavailableRate: 0.05, ConflictRate: 0.1, RetryAfter: time.Millisecond, Seed: 7})
	etags := map[string]string{}
	outcomes := map[int]int{}
	for i := range 40 {
		name := fmt.Sprintf("c%d.vcf", i%8)
		var err error
		switch {
		case i%5 == 4:
			err = e.b.DeleteObject(ctx, "default", name, "")
			if err == nil {
				delete(etags, name)
			}
		default:
			var r *carddav.PutResult
			r, err = e.b.PutObject(ctx, "default", name, vcard("uid-"+name, fmt.Sprintf("N%d", i), "n@example.com"), carddav.Conditions{})
			if err == nil {
				etags[name] = r.ETag
			}
		}
		if i%3 == 0 {
			staleBackend(e.b)
			if _, serr := e.b.SyncChanges(ctx, "default", initial.Token, 0); serr != nil && status(serr) != http.StatusServiceUnavailable {
				t.Errorf("sync under faults: %v", serr)
			}
		}
		st := status(err)
		outcomes[st]++
		if st != 0 {
			t.Logf("op %d on %s: %v", i, name, err)
		}
		if st != 0 && st != http.StatusPreconditionFailed && st != http.StatusServiceUnavailable && st != http.StatusNotFound {
			t.Errorf("op %d on %s: untyped failure %v", i, name, err)
		}
	}
	t.Logf("outcomes by status: %v", outcomes)
	x.emu.SetFaults(graphemu.Faults{})

	// Converged: the log from the initial token lists exactly what Graph holds.
	staleBackend(e.b)
	ch := e.sync("default", initial.Token, 0)
	list, err := outlook.ListContacts(ctx, "", fullQuery)
	if err != nil {
		t.Fatal(err)
	}
	var inGraph []string
	for i := range list {
		inGraph = append(inGraph, hrefOf(&list[i]))
	}
	sort.Strings(inGraph)
	if got := changedNames(ch); !reflect.DeepEqual(got, inGraph) {
		t.Errorf("log after faults lists %v, Graph holds %v", got, inGraph)
	}
	served := e.list("default")
	for name, etag := range served {
		if want, ok := etags[name]; ok && want != etag {
			// A write that failed after Graph applied it may leave a newer
			// version; one that succeeded must be served as returned
			// unless a later write to it failed half-way.
			t.Logf("%s: served %s, last successful PUT returned %s", name, etag, want)
		}
	}
}

// countOf sums the emulator's counts of an operation, whatever the status.
func countOf(counts map[string]int, op string) int {
	n := 0
	for k, v := range counts {
		if strings.HasPrefix(k, op+" ") {
			n += v
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
