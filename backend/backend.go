// Package backend is one user's CardDAV view of their Microsoft Graph
// contacts: contact folders at every depth are address books, contacts are
// address objects named and identified as their CardDAV client chose, and a
// per-book change log in a durable store answers RFC 6578 sync tokens that
// survive Graph delta-token expiry and restarts.
//
// Reads are served from a go-cache snapshot refreshed by at most one Graph
// delta round per book per refresh interval; writes go to Graph at once and
// are logged with the ETag they produced, so their delta echo is dropped.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/patrickmn/go-cache"
	"golang.org/x/sync/singleflight"

	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/vcardmap"
)

// DefaultRefreshInterval is how long reads of a book are served without
// asking Graph for changes.
const DefaultRefreshInterval = 30 * time.Second

// MaxResourceSize is the largest vCard accepted on PUT: a photo under Graph's
// 4 MB upload limit, base64-encoded, plus the rest of the card.
const MaxResourceSize = 6 << 20

// Options configure a Backend.
type Options struct {
	// User is the CardDAV user name; it namespaces store and cache keys
	// and labels logs.
	User string
	// API is the user's Graph mailbox.
	API ContactsAPI
	// Store holds the durable sync state (change logs, delta links, name
	// maps); it may be shared by every user. Backends of one user on one
	// Store share their locks and delta rounds within the process when the
	// Store is a comparable value (a pointer, as *store.BoltStore is).
	Store store.Store
	// Cache holds snapshots, contacts and rendered cards; it may be shared
	// by every user (keys are prefixed by user). Nil gives the Backend its
	// own, which suits a Backend kept per user; one built per request
	// should get the shared one, or each pays a delta round.
	Cache *cache.Cache
	// RefreshInterval bounds how stale reads may be; within it reads cost
	// no Graph request. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
}

// Backend implements carddav.Backend for one user over Graph.
type Backend struct {
	user    string
	api     ContactsAPI
	store   store.Store
	cache   *cache.Cache
	refresh time.Duration
	log     *slog.Logger
	prefix  string // cache key prefix

	// parse and render are vcardmap's; tests may substitute them.
	parse  func([]byte) (*vcardmap.Mapped, error)
	render func(*vcardmap.Mapped, string) ([]byte, error)

	*coordinator
}

// coordinator is what every Backend of one user over one store shares in a
// process: whoever builds a Backend per request still gets one delta round
// per book at a time and writes serialised with it.
type coordinator struct {
	sf    singleflight.Group
	mu    sync.Mutex
	locks map[string]*sync.Mutex // book key → lock serialising writes and delta applies
}

// coordinators maps a store and user to their coordinator.
var coordinators sync.Map // coordKey → *coordinator

type coordKey struct {
	store store.Store
	user  string
}

var _ carddav.Backend = (*Backend)(nil)

// New returns the Backend of one user.
func New(opts Options) (*Backend, error) {
	if opts.API == nil || opts.Store == nil {
		return nil, errors.New("backend: Options.API and Options.Store are required")
	}
	if opts.User == "" {
		return nil, errors.New("backend: Options.User is required")
	}
	b := &Backend{
		user:    opts.User,
		api:     opts.API,
		store:   opts.Store,
		cache:   opts.Cache,
		refresh: opts.RefreshInterval,
		log:     opts.Logger,
		prefix:  "backend\x00" + opts.User + "\x00",
		parse:   vcardmap.Parse,
		render:  vcardmap.Render,
	}
	b.coordinator = &coordinator{locks: map[string]*sync.Mutex{}}
	if reflect.TypeOf(opts.Store).Comparable() {
		c, _ := coordinators.LoadOrStore(coordKey{opts.Store, opts.User}, b.coordinator)
		b.coordinator = c.(*coordinator)
	}
	if b.cache == nil {
		b.cache = cache.New(30*time.Minute, 10*time.Minute)
	}
	if b.refresh <= 0 {
		b.refresh = DefaultRefreshInterval
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.log = b.log.With("user", opts.User)
	return b, nil
}

// bookLock returns the lock of a book, which serialises writes and the
// application of delta rounds so a round can never log a version older than
// a write it raced with.
func (c *coordinator) bookLock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		c.locks[key] = l
	}
	return l
}

func (b *Backend) key(parts ...string) string {
	k := b.prefix
	for i, p := range parts {
		if i > 0 {
			k += "\x00"
		}
		k += p
	}
	return k
}

// storeErr wraps a store failure: it is ours, not the client's, and its text
// must not reach the client.
func storeErr(op string, err error) error {
	return fmt.Errorf("backend: store %s: %w", op, err)
}

// ctxErr reports whether err is only the request going away.
func ctxErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
