// Package storetest is the contract every store.Store implementation passes:
// slugs, members, the change log (last entry per name wins, limits, expired
// and foreign positions, retention) and book deletion.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/contactsdav/contactsdav/backend/store"
)

// Run runs the contract against stores made by open. Each subtest gets a
// fresh store; open may use t.TempDir and t.Cleanup. Stores under test must
// keep at most 3 tombstones per book (store.Retention(3)) so retention is
// exercised cheaply.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Slugs", testSlugs},
		{"EmptyBook", testEmptyBook},
		{"ApplyAndMembers", testApplyAndMembers},
		{"LastEntryPerNameWins", testLastEntryWins},
		{"UnchangedPutNotLogged", testUnchangedPut},
		{"DeleteThenPutSameName", testDeleteThenPut},
		{"Limit", testLimit},
		{"InvalidPositions", testInvalidPositions},
		{"Retention", testRetention},
		{"DeleteBook", testDeleteBook},
		{"Books", testBooks},
		{"UsersAndBooksIsolated", testIsolation},
		{"ConcurrentApply", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

// RunReopen checks that state survives closing and reopening a persistent
// store: open must return a store on the same backing file each time.
func RunReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	must(t, s.SetSlug(ctx, "alice", "work", "F1"))
	link := "https://graph/delta?$deltatoken=1"
	b1, err := s.Apply(ctx, "alice", "bk", store.Update{
		Put:       []store.Member{member("a.vcf", "1"), member("b.vcf", "1")},
		DeltaLink: &link,
	})
	must(t, err)
	_, err = s.Apply(ctx, "alice", "bk", store.Update{Delete: []string{"a.vcf"}})
	must(t, err)
	must(t, s.Close())

	s = open(t)
	defer s.Close()
	slugs, err := s.Slugs(ctx, "alice")
	must(t, err)
	if slugs["work"] != "F1" {
		t.Errorf("slugs after reopen = %v", slugs)
	}
	b2, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	if b2.Epoch != b1.Epoch || b2.Seq != 3 || b2.DeltaLink != link {
		t.Errorf("book after reopen = %+v, want epoch %d seq 3 link %q", b2, b1.Epoch, link)
	}
	got, err := s.Changes(ctx, "alice", "bk", b1.Epoch, b1.Seq, 0)
	must(t, err)
	if want := []store.Change{{Seq: 3, Name: "a.vcf", Deleted: true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("changes after reopen = %+v, want %+v", got, want)
	}
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if len(mem) != 1 || mem[0] != member("b.vcf", "1") {
		t.Errorf("members after reopen = %+v", mem)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func member(name, version string) store.Member {
	return store.Member{Name: name, ID: "id-" + name, ETag: `"` + name + "-" + version + `"`, ChangeKey: "ck" + version}
}

func testSlugs(t *testing.T, s store.Store) {
	ctx := context.Background()
	got, err := s.Slugs(ctx, "alice")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("new store slugs = %v", got)
	}
	must(t, s.SetSlug(ctx, "alice", "work", "F1"))
	must(t, s.SetSlug(ctx, "alice", "home", "F2"))
	must(t, s.SetSlug(ctx, "alice", "work", "F3"))
	must(t, s.DeleteSlug(ctx, "alice", "home"))
	must(t, s.DeleteSlug(ctx, "alice", "absent"))
	got, err = s.Slugs(ctx, "alice")
	must(t, err)
	if want := map[string]string{"work": "F3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("slugs = %v, want %v", got, want)
	}
}

func testEmptyBook(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	if b.Epoch == 0 || b.Seq != 0 || b.DeltaLink != "" {
		t.Fatalf("new book = %+v", b)
	}
	again, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	if again != b {
		t.Errorf("book changed on second read: %+v vs %+v", again, b)
	}
	ch, err := s.Changes(ctx, "alice", "bk", b.Epoch, 0, 0)
	must(t, err)
	if len(ch) != 0 {
		t.Errorf("changes of empty book = %v", ch)
	}
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if len(mem) != 0 {
		t.Errorf("members of empty book = %v", mem)
	}
}

func names(ms []store.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

func testApplyAndMembers(t *testing.T, s store.Store) {
	ctx := context.Background()
	b0, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	link := "L1"
	b, err := s.Apply(ctx, "alice", "bk", store.Update{
		Put:       []store.Member{member("a.vcf", "1"), member("b.vcf", "1"), member("c.vcf", "1")},
		Delete:    []string{"unknown.vcf"},
		DeltaLink: &link,
	})
	must(t, err)
	if b.Epoch != b0.Epoch || b.Seq != 3 || b.DeltaLink != "L1" {
		t.Fatalf("after apply = %+v", b)
	}
	b, err = s.Apply(ctx, "alice", "bk", store.Update{Delete: []string{"b.vcf"}})
	must(t, err)
	if b.Seq != 4 || b.DeltaLink != "L1" {
		t.Fatalf("after delete = %+v (link must be kept when nil)", b)
	}
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if got, want := names(mem), []string{"a.vcf", "c.vcf"}; !reflect.DeepEqual(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	ch, err := s.Changes(ctx, "alice", "bk", b.Epoch, 0, 0)
	must(t, err)
	want := []store.Change{
		{Seq: 1, Name: "a.vcf", ETag: member("a.vcf", "1").ETag},
		{Seq: 3, Name: "c.vcf", ETag: member("c.vcf", "1").ETag},
		{Seq: 4, Name: "b.vcf", Deleted: true},
	}
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("changes = %+v, want %+v", ch, want)
	}
}

func testLastEntryWins(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", "1"), member("b.vcf", "1")}})
	must(t, err)
	mid := b.Seq
	for i := 2; i <= 5; i++ {
		b, err = s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", fmt.Sprint(i))}})
		must(t, err)
	}
	b, err = s.Apply(ctx, "alice", "bk", store.Update{Delete: []string{"b.vcf"}})
	must(t, err)
	b, err = s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("b.vcf", "2")}})
	must(t, err)
	ch, err := s.Changes(ctx, "alice", "bk", b.Epoch, mid, 0)
	must(t, err)
	want := []store.Change{
		{Seq: 6, Name: "a.vcf", ETag: member("a.vcf", "5").ETag},
		{Seq: 8, Name: "b.vcf", ETag: member("b.vcf", "2").ETag},
	}
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("changes = %+v, want %+v", ch, want)
	}
	ch, err = s.Changes(ctx, "alice", "bk", b.Epoch, b.Seq, 0)
	must(t, err)
	if len(ch) != 0 {
		t.Errorf("changes from the end = %+v", ch)
	}
}

func testUnchangedPut(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", "1")}})
	must(t, err)
	m := member("a.vcf", "1")
	m.ChangeKey = "other" // same ETag and id: an echo, not a change
	b2, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{m}})
	must(t, err)
	if b2.Seq != b.Seq {
		t.Errorf("seq moved on an unchanged put: %d → %d", b.Seq, b2.Seq)
	}
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if len(mem) != 1 || mem[0].ChangeKey != "other" {
		t.Errorf("member not refreshed: %+v", mem)
	}
}

func testDeleteThenPut(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", "1")}})
	must(t, err)
	next := member("a.vcf", "2")
	next.ID = "another-id" // the name passes to another contact
	b2, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{next}, Delete: []string{"a.vcf"}})
	must(t, err)
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if len(mem) != 1 || mem[0] != next {
		t.Errorf("members = %+v, want the new holder %+v", mem, next)
	}
	ch, err := s.Changes(ctx, "alice", "bk", b2.Epoch, b.Seq, 0)
	must(t, err)
	if len(ch) != 1 || ch[0].Name != "a.vcf" || ch[0].Deleted || ch[0].ETag != next.ETag {
		t.Errorf("changes = %+v, want one change of a.vcf to %s", ch, next.ETag)
	}
}

func testLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	var put []store.Member
	for i := range 7 {
		put = append(put, member(fmt.Sprintf("%d.vcf", i), "1"))
	}
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: put})
	must(t, err)
	var got []string
	seq := uint64(0)
	for range 10 { // bounded: 7 entries in pages of 3
		ch, err := s.Changes(ctx, "alice", "bk", b.Epoch, seq, 3)
		must(t, err)
		if len(ch) > 3 {
			t.Fatalf("page of %d over limit 3", len(ch))
		}
		if len(ch) == 0 {
			break
		}
		for _, c := range ch {
			got = append(got, c.Name)
		}
		seq = ch[len(ch)-1].Seq
	}
	if len(got) != 7 {
		t.Errorf("paged changes = %v, want 7 names", got)
	}
}

func testInvalidPositions(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", "1")}})
	must(t, err)
	tests := []struct {
		name       string
		book       string
		epoch, seq uint64
	}{
		{"foreign epoch", "bk", b.Epoch + 1, 0},
		{"beyond end", "bk", b.Epoch, b.Seq + 1},
		{"unknown book", "nobook", b.Epoch, 0},
	}
	for _, tt := range tests {
		if _, err := s.Changes(ctx, "alice", tt.book, tt.epoch, tt.seq, 0); !errors.Is(err, store.ErrExpired) {
			t.Errorf("%s: err = %v, want ErrExpired", tt.name, err)
		}
	}
}

func testRetention(t *testing.T, s store.Store) {
	ctx := context.Background()
	var put []store.Member
	for i := range 6 {
		put = append(put, member(fmt.Sprintf("%d.vcf", i), "1"))
	}
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: put})
	must(t, err)
	early := b.Seq
	for i := range 5 {
		b, err = s.Apply(ctx, "alice", "bk", store.Update{Delete: []string{fmt.Sprintf("%d.vcf", i)}})
		must(t, err)
	}
	// Five tombstones, three kept: positions before the third survivor expire.
	if _, err := s.Changes(ctx, "alice", "bk", b.Epoch, early, 0); !errors.Is(err, store.ErrExpired) {
		t.Errorf("position before dropped tombstones: err = %v, want ErrExpired", err)
	}
	if b.Floor == 0 {
		t.Fatalf("floor not raised: %+v", b)
	}
	ch, err := s.Changes(ctx, "alice", "bk", b.Epoch, b.Floor, 0)
	must(t, err)
	want := []store.Change{
		{Seq: 9, Name: "2.vcf", Deleted: true},
		{Seq: 10, Name: "3.vcf", Deleted: true},
		{Seq: 11, Name: "4.vcf", Deleted: true},
	}
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("changes from floor = %+v, want %+v", ch, want)
	}
	// Position 0 stays answerable and still holds every live member.
	ch, err = s.Changes(ctx, "alice", "bk", b.Epoch, 0, 0)
	must(t, err)
	if len(ch) != 4 || ch[0].Name != "5.vcf" || ch[0].Deleted {
		t.Errorf("changes from 0 = %+v, want 5.vcf then 3 tombstones", ch)
	}
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if got := names(mem); !reflect.DeepEqual(got, []string{"5.vcf"}) {
		t.Errorf("members = %v", got)
	}
}

func testDeleteBook(t *testing.T, s store.Store) {
	ctx := context.Background()
	link := "L"
	b, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", "1")}, DeltaLink: &link})
	must(t, err)
	must(t, s.DeleteBook(ctx, "alice", "bk"))
	must(t, s.DeleteBook(ctx, "alice", "absent"))
	if _, err := s.Changes(ctx, "alice", "bk", b.Epoch, 0, 0); !errors.Is(err, store.ErrExpired) {
		t.Errorf("old position after DeleteBook: err = %v, want ErrExpired", err)
	}
	nb, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	if nb.Epoch == b.Epoch || nb.Seq != 0 || nb.DeltaLink != "" {
		t.Errorf("recreated book = %+v (old epoch %d)", nb, b.Epoch)
	}
	mem, err := s.Members(ctx, "alice", "bk")
	must(t, err)
	if len(mem) != 0 {
		t.Errorf("members after DeleteBook = %v", mem)
	}
}

// testBooks: Books lists the user's stored books, sorted, and only theirs;
// a deleted book is no longer listed.
func testBooks(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.Books(ctx, "alice"); err != nil || len(got) != 0 {
		t.Fatalf("Books of a new user = %v, %v", got, err)
	}
	for _, bk := range []string{"kb", "ka", "kc"} {
		_, err := s.Apply(ctx, "alice", bk, store.Update{Put: []store.Member{member("a.vcf", "1")}})
		must(t, err)
	}
	_, err := s.Book(ctx, "bob", "kz")
	must(t, err)
	must(t, s.DeleteBook(ctx, "alice", "kc"))
	got, err := s.Books(ctx, "alice")
	must(t, err)
	if strings.Join(got, ",") != "ka,kb" {
		t.Fatalf("Books(alice) = %v, want [ka kb]", got)
	}
}

func testIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member("a.vcf", "1")}})
	must(t, err)
	_, err = s.Apply(ctx, "bob", "bk", store.Update{Put: []store.Member{member("b.vcf", "1")}})
	must(t, err)
	_, err = s.Apply(ctx, "alice", "other", store.Update{Put: []store.Member{member("c.vcf", "1")}})
	must(t, err)
	must(t, s.SetSlug(ctx, "bob", "x", "F"))
	for _, c := range []struct{ user, book, want string }{
		{"alice", "bk", "a.vcf"}, {"bob", "bk", "b.vcf"}, {"alice", "other", "c.vcf"},
	} {
		mem, err := s.Members(ctx, c.user, c.book)
		must(t, err)
		if got := names(mem); !reflect.DeepEqual(got, []string{c.want}) {
			t.Errorf("%s/%s members = %v, want [%s]", c.user, c.book, got, c.want)
		}
	}
	slugs, err := s.Slugs(ctx, "alice")
	must(t, err)
	if len(slugs) != 0 {
		t.Errorf("alice sees bob's slugs: %v", slugs)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const writers, each = 4, 25
	b0, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*each) // an Apply and a Changes error per step
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.Apply(ctx, "alice", "bk", store.Update{Put: []store.Member{member(fmt.Sprintf("w%d-%d.vcf", w, i), "1")}})
				errs <- err
				if _, err := s.Changes(ctx, "alice", "bk", b0.Epoch, 0, 0); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	b, err := s.Book(ctx, "alice", "bk")
	must(t, err)
	ch, err := s.Changes(ctx, "alice", "bk", b.Epoch, 0, 0)
	must(t, err)
	if b.Seq != writers*each || len(ch) != writers*each {
		t.Errorf("seq %d, %d changes, want %d", b.Seq, len(ch), writers*each)
	}
	for i := 1; i < len(ch); i++ {
		if ch[i].Seq <= ch[i-1].Seq {
			t.Fatalf("changes out of order at %d: %d after %d", i, ch[i].Seq, ch[i-1].Seq)
		}
	}
}
