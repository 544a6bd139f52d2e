package backend

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/store"
)

// benchContacts is the size of the benchmarked folder.
const benchContacts = 10_000

// newBenchEmu seeds a 10,000-contact default folder (every seventh with a
// photo) in an emulator whose request budget does not throttle a benchmark.
func newBenchEmu(b *testing.B) *emuEnv {
	b.Helper()
	x := newEmuEnvLimits(b, graphemu.Limits{RequestsPerWindow: 1 << 30})
	if err := x.emu.Seed(emuUser, benchContacts); err != nil {
		b.Fatal(err)
	}
	return x
}

// BenchmarkColdFullSync is a client's first sync of a 10,000-contact book
// on a backend with empty store and cache: ListObjects, then GetObjects in
// multigets of 100 names, as DAVx5 does.
func BenchmarkColdFullSync(b *testing.B) {
	benchFullSync(b, false)
}

// BenchmarkRestartFullSync is the same full sync after a restart: the sync
// store is kept (no re-listing, tokens valid), the cache is cold.
func BenchmarkRestartFullSync(b *testing.B) {
	benchFullSync(b, true)
}

// roundTrips counts the HTTP requests a client sends. Graph counts each item
// of a $batch against its limits, so the emulator's count (graph-req/op) is
// the throttling cost and this one (http-req/op) the latency cost.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// benchBackend is a Backend on x whose round trips are counted.
func benchBackend(b *testing.B, x *emuEnv, st store.Store, rt *roundTrips) *Backend {
	b.Helper()
	return newEmuBackendAPI(b, x.clientWith(b, graph.Options{HTTPClient: &http.Client{Transport: rt}}), st)
}

func benchFullSync(b *testing.B, keepStore bool) {
	ctx := context.Background()
	x := newBenchEmu(b)
	rt := &roundTrips{}
	st := store.NewMemory()
	if keepStore {
		if _, err := benchBackend(b, x, st, rt).ListObjects(ctx, DefaultSlug); err != nil {
			b.Fatal(err)
		}
	}
	reqs, trips, ops := 0, int64(0), 0
	for b.Loop() {
		if !keepStore {
			st = store.NewMemory()
		}
		be := benchBackend(b, x, st, rt)
		start, startTrips := x.requests(), rt.n.Load()
		infos, err := be.ListObjects(ctx, DefaultSlug)
		if err != nil {
			b.Fatal(err)
		}
		names := make([]string, len(infos))
		for i, o := range infos {
			names[i] = o.Name
		}
		got := 0
		for i := 0; i < len(names); i += 100 {
			objs, err := be.GetObjects(ctx, DefaultSlug, names[i:min(i+100, len(names))], "3.0")
			if err != nil {
				b.Fatal(err)
			}
			got += len(objs)
		}
		if len(infos) != benchContacts || got != benchContacts {
			b.Fatalf("listed %d, rendered %d, want %d", len(infos), got, benchContacts)
		}
		reqs += x.requests() - start
		trips += rt.n.Load() - startTrips
		ops++
	}
	b.ReportMetric(float64(reqs)/float64(ops), "graph-req/op")
	b.ReportMetric(float64(trips)/float64(ops), "http-req/op")
}

// BenchmarkIdleIncrementalSync is a client's periodic sync-collection of an
// unchanged 10,000-contact book once the refresh interval has passed: one
// delta round that reports nothing.
func BenchmarkIdleIncrementalSync(b *testing.B) {
	benchIdleSync(b, true)
}

// BenchmarkIdleSyncWithinInterval is the same sync within the refresh
// interval: answered from the store alone.
func BenchmarkIdleSyncWithinInterval(b *testing.B) {
	benchIdleSync(b, false)
}

func benchIdleSync(b *testing.B, stale bool) {
	ctx := context.Background()
	x := newBenchEmu(b)
	be := newEmuBackend(b, x, store.NewMemory())
	first, err := be.SyncChanges(ctx, DefaultSlug, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	reqs, ops := 0, 0
	for b.Loop() {
		if stale {
			staleBackend(be)
		}
		start := x.requests()
		ch, err := be.SyncChanges(ctx, DefaultSlug, first.Token, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(ch.Changed)+len(ch.Deleted) != 0 {
			b.Fatalf("idle sync reported changes: %+v", ch)
		}
		reqs += x.requests() - start
		ops++
	}
	b.ReportMetric(float64(reqs)/float64(ops), "graph-req/op")
}
