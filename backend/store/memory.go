package store

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Memory is a Store held in memory: for tests and for running without a data
// folder. Its epochs are new on every start, so a restart invalidates client
// tokens cleanly instead of answering them wrongly.
type Memory struct {
	cfg   config
	mu    sync.Mutex
	slugs map[string]map[string]string // user → slug → folder id
	books map[string]*memBook          // user + "\x00" + book
}

type memBook struct {
	state   Book
	members map[string]Member
	log     []Change          // in seq order; an entry is live iff latest[Name] == Seq
	latest  map[string]uint64 // name → seq of its live entry
	tombq   []Change          // tombstones in seq order, possibly superseded
	tombs   int               // live tombstones
}

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...Option) *Memory {
	return &Memory{
		cfg:   newConfig(opts),
		slugs: map[string]map[string]string{},
		books: map[string]*memBook{},
	}
}

// Slugs implements Store.
func (m *Memory) Slugs(_ context.Context, user string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.slugs[user]))
	for k, v := range m.slugs[user] {
		out[k] = v
	}
	return out, nil
}

// SetSlug implements Store.
func (m *Memory) SetSlug(_ context.Context, user, slug, folderID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.slugs[user] == nil {
		m.slugs[user] = map[string]string{}
	}
	m.slugs[user][slug] = folderID
	return nil
}

// DeleteSlug implements Store.
func (m *Memory) DeleteSlug(_ context.Context, user, slug string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.slugs[user], slug)
	return nil
}

func (m *Memory) book(user, book string) *memBook {
	k := user + "\x00" + book
	b := m.books[k]
	if b == nil {
		b = &memBook{
			state:   Book{Epoch: newEpoch()},
			members: map[string]Member{},
			latest:  map[string]uint64{},
		}
		m.books[k] = b
	}
	return b
}

// Book implements Store.
func (m *Memory) Book(_ context.Context, user, book string) (Book, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.book(user, book).state, nil
}

// Members implements Store.
func (m *Memory) Members(_ context.Context, user, book string) ([]Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.book(user, book)
	out := make([]Member, 0, len(b.members))
	for _, mem := range b.members {
		out = append(out, mem)
	}
	return out, nil
}

// Apply implements Store.
func (m *Memory) Apply(_ context.Context, user, book string, u Update) (Book, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.book(user, book)
	for _, name := range u.Delete {
		if _, ok := b.members[name]; !ok {
			continue
		}
		delete(b.members, name)
		b.append(Change{Name: name, Deleted: true})
	}
	for _, mem := range u.Put {
		old, ok := b.members[mem.Name]
		b.members[mem.Name] = mem
		if ok && old.ETag == mem.ETag && old.ID == mem.ID {
			continue
		}
		b.append(Change{Name: mem.Name, ETag: mem.ETag})
	}
	if u.DeltaLink != nil {
		b.state.DeltaLink = *u.DeltaLink
	}
	b.retain(m.cfg.retention)
	return b.state, nil
}

func (b *memBook) append(c Change) {
	if prev, ok := b.latest[c.Name]; ok {
		if i := b.index(prev); i < len(b.log) && b.log[i].Seq == prev && b.log[i].Deleted {
			b.tombs--
		}
	}
	b.state.Seq++
	c.Seq = b.state.Seq
	b.log = append(b.log, c)
	b.latest[c.Name] = c.Seq
	if c.Deleted {
		b.tombs++
		b.tombq = append(b.tombq, c)
	}
	// Drop superseded entries once they are half the log.
	if len(b.log) > 64 && len(b.log) > 2*len(b.latest) {
		live := b.log[:0]
		for _, e := range b.log {
			if b.latest[e.Name] == e.Seq {
				live = append(live, e)
			}
		}
		b.log = live
	}
}

// index returns the position of the first log entry with Seq >= seq.
func (b *memBook) index(seq uint64) int {
	return sort.Search(len(b.log), func(i int) bool { return b.log[i].Seq >= seq })
}

// retain drops the oldest tombstones beyond n and raises the floor past them.
func (b *memBook) retain(n int) {
	for b.tombs > n && len(b.tombq) > 0 {
		t := b.tombq[0]
		b.tombq = b.tombq[1:]
		if b.latest[t.Name] != t.Seq {
			continue // superseded: no longer a live tombstone
		}
		delete(b.latest, t.Name)
		b.tombs--
		if t.Seq > b.state.Floor {
			b.state.Floor = t.Seq
		}
	}
}

// Changes implements Store.
func (m *Memory) Changes(_ context.Context, user, book string, epoch, seq uint64, limit int) ([]Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.book(user, book)
	if err := checkPosition(b.state, epoch, seq); err != nil {
		return nil, err
	}
	var out []Change
	for _, e := range b.log[b.index(seq+1):] {
		if b.latest[e.Name] != e.Seq {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// DeleteBook implements Store.
func (m *Memory) DeleteBook(_ context.Context, user, book string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.books, user+"\x00"+book)
	return nil
}

// Books implements Store.
func (m *Memory) Books(_ context.Context, user string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.books {
		if u, book, ok := strings.Cut(k, "\x00"); ok && u == user {
			out = append(out, book)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Close implements Store; a closed Memory keeps working.
func (m *Memory) Close() error { return nil }
