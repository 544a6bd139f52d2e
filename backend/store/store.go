// Package store keeps the backend's durable sync state: for each user the
// address-book slugs, and for each book its members (resource name ↔ Graph
// id and version), its change log and the Graph delta link. The change log is
// what client sync tokens point into, so it must outlive restarts; contacts
// and rendered cards are not kept here but in the backend's cache.
//
// The log keeps one entry per name (a newer change supersedes the older one),
// so it never holds more than the live members plus a bounded number of
// tombstones. When old tombstones are dropped, positions before them can no
// longer be answered and Changes reports ErrExpired.
package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"
)

// ErrExpired reports a log position that cannot be answered: from another
// epoch (the book was recreated or the store wiped), beyond the log's end,
// or older than the oldest retained tombstone.
var ErrExpired = errors.New("store: log position expired or foreign")

// DefaultRetention is the number of tombstones a book keeps by default.
const DefaultRetention = 100_000

// Member is one address object of a book as last seen.
type Member struct {
	Name      string    // resource name, e.g. "6E1F….vcf"
	ID        string    // Graph (immutable) contact id
	ETag      string    // the served ETag, quoted
	ChangeKey string    // Graph changeKey the ETag derives from
	UID       string    // the vCard UID served, for no-uid-conflict checks
	Modified  time.Time // lastModifiedDateTime; zero when unknown
}

// Change is one change log entry: a member created or modified (ETag set) or
// deleted.
type Change struct {
	Seq     uint64
	Name    string
	ETag    string
	Deleted bool
}

// Book is a book's log state.
type Book struct {
	// Epoch identifies this incarnation of the book's log; it is chosen at
	// random when the log is created, so positions from a wiped or recreated
	// book never match.
	Epoch uint64
	// Seq is the position of the latest change; 0 for an empty log.
	Seq uint64
	// Floor is the oldest position Changes still answers, besides 0.
	Floor uint64
	// DeltaLink is the Graph delta link of the book's folder, "" when none.
	DeltaLink string
}

// Update is a batch of member changes applied atomically by Apply: first
// the deletions, then the puts, so a name can change hands in one update.
type Update struct {
	Put       []Member // created or modified members
	Delete    []string // names of removed members; unknown names are ignored
	DeltaLink *string  // when non-nil, the new delta link
}

// Store is the durable sync state of every user. Users and books are opaque
// keys chosen by the caller. Implementations are safe for concurrent use.
type Store interface {
	// Slugs returns the user's remembered book slugs: slug → folder id.
	Slugs(ctx context.Context, user string) (map[string]string, error)
	// SetSlug remembers a slug for a folder.
	SetSlug(ctx context.Context, user, slug, folderID string) error
	// DeleteSlug forgets a slug.
	DeleteSlug(ctx context.Context, user, slug string) error

	// Book returns a book's log state, creating an empty log with a fresh
	// epoch when the book is unknown.
	Book(ctx context.Context, user, book string) (Book, error)
	// Members returns every member of a book, in no particular order.
	Members(ctx context.Context, user, book string) ([]Member, error)
	// Apply stores the update and logs every real change: a Put whose ETag
	// and id equal the stored member's, or a Delete of an unknown name, is
	// not logged. It returns the book's new state.
	Apply(ctx context.Context, user, book string, u Update) (Book, error)
	// Changes returns the log entries after position seq of the given
	// epoch, oldest first, one per name, at most limit (0: all). It returns
	// ErrExpired when the position cannot be answered. From position 0 it
	// returns every live member's entry (and the retained tombstones).
	Changes(ctx context.Context, user, book string, epoch, seq uint64, limit int) ([]Change, error)
	// DeleteBook forgets a book's members, log and delta link; a later Book
	// starts a new epoch.
	DeleteBook(ctx context.Context, user, book string) error
	// Books returns the keys of the user's stored books, sorted, so that
	// books whose folder is gone can be forgotten.
	Books(ctx context.Context, user string) ([]string, error)

	// Close releases the store.
	Close() error
}

// Option configures a store.
type Option func(*config)

type config struct {
	retention int
}

// Retention sets how many tombstones each book keeps (default
// DefaultRetention); older ones are dropped and positions before them expire.
func Retention(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.retention = n
		}
	}
}

func newConfig(opts []Option) config {
	c := config{retention: DefaultRetention}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// newEpoch returns a random non-zero epoch below 2^40, short enough to keep
// tokens readable and wide enough that two incarnations never collide in
// practice.
func newEpoch() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("store: no randomness: " + err.Error())
	}
	e := binary.BigEndian.Uint64(b[:]) & (1<<40 - 1)
	if e == 0 {
		e = 1
	}
	return e
}

// checkPosition validates a log position against a book's state. Position 0
// (before the first change) stays answerable below the floor: a client there
// never knew the members whose tombstones were dropped.
func checkPosition(b Book, epoch, seq uint64) error {
	if epoch != b.Epoch || seq > b.Seq || (seq < b.Floor && seq != 0) {
		return ErrExpired
	}
	return nil
}
