package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/backend/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(store.Retention(3))
	})
}

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenBolt(filepath.Join(t.TempDir(), "sync.db"), store.Retention(3))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync.db")
	storetest.RunReopen(t, func(t *testing.T) store.Store {
		s, err := store.OpenBolt(path, store.Retention(3))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// seedBolt opens a Bolt store holding one book of n members.
func seedBolt(b *testing.B, n int) (*store.BoltStore, store.Book) {
	s, err := store.OpenBolt(filepath.Join(b.TempDir(), "sync.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	put := make([]store.Member, n)
	for i := range put {
		put[i] = store.Member{Name: fmt.Sprintf("%d.vcf", i), ID: fmt.Sprintf("id%d", i), ETag: `"e"`, ChangeKey: "ck"}
	}
	bk, err := s.Apply(context.Background(), "alice", "bk", store.Update{Put: put})
	if err != nil {
		b.Fatal(err)
	}
	return s, bk
}

// BenchmarkBoltApplyOne is the store's share of one PUT: one member changed
// in a 10,000-member book, fsynced.
func BenchmarkBoltApplyOne(b *testing.B) {
	s, _ := seedBolt(b, 10_000)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		m := store.Member{Name: fmt.Sprintf("%d.vcf", i%10_000), ID: fmt.Sprintf("id%d", i%10_000), ETag: fmt.Sprintf(`"e%d"`, i)}
		if _, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{m}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoltChangesIdle is the store's share of an idle incremental sync.
func BenchmarkBoltChangesIdle(b *testing.B) {
	s, bk := seedBolt(b, 10_000)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Changes(ctx, "alice", "bk", bk.Epoch, bk.Seq, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoltMembers is the load of a 10,000-member snapshot after a
// restart.
func BenchmarkBoltMembers(b *testing.B) {
	s, _ := seedBolt(b, 10_000)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Members(ctx, "alice", "bk"); err != nil {
			b.Fatal(err)
		}
	}
}
