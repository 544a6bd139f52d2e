// Package carddavtest provides test doubles for the carddav package: an
// in-memory Backend with RFC 6578 change logs, conditional writes and
// preconditions, and an Authenticator over a fixed set of users; and
// helpers that parse and query RFC 4918 multistatus answers in tests.
package carddavtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/contactsdav/contactsdav/carddav"
)

// DefaultBook is the slug of the book every new Backend starts with.
const DefaultBook = "default"

// bookIDs numbers books across all backends, so a token never survives the
// deletion and re-creation of a book with the same slug.
var bookIDs atomic.Int64

// Backend is one user's address books in memory. The zero value is not
// usable; call NewBackend. It is safe for concurrent use.
type Backend struct {
	// Fail, if set, is called at the start of every method with the
	// method's name ("PutObject", …); a non-nil result is returned as is.
	// Tests use it to inject errors of every type. It is read without
	// locking: set it before the Backend is shared, or between requests
	// served in the test's own goroutine.
	Fail func(op string) error
	// Now is the clock for modification times; time.Now if nil.
	Now func() time.Time
	// MaxResourceSize is reported on every book (0: none).
	MaxResourceSize int64

	mu    sync.Mutex
	books map[string]*book
	order []string // slugs, the default first
}

type book struct {
	id    int64
	props carddav.BookProps
	objs  map[string]*object
	seq   int64
	log   []change // in seq order
}

type object struct {
	card    []byte
	uid     string
	etag    string
	modTime time.Time
}

type change struct {
	seq     int64
	name    string
	deleted bool
}

var _ carddav.Backend = (*Backend)(nil)

// NewBackend returns a Backend holding one empty book, DefaultBook,
// named "Contacts".
func NewBackend() *Backend {
	b := &Backend{books: map[string]*book{}}
	name := "Contacts"
	b.addBook(DefaultBook, carddav.BookProps{DisplayName: &name})
	return b
}

func (b *Backend) addBook(slug string, props carddav.BookProps) *book {
	bk := &book{id: bookIDs.Add(1), objs: map[string]*object{}}
	bk.props.DisplayName = copyString(props.DisplayName)
	bk.props.Description = copyString(props.Description)
	b.books[slug] = bk
	b.order = append(b.order, slug)
	return bk
}

func copyString(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

func (b *Backend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Backend) fail(op string) error {
	if b.Fail != nil {
		return b.Fail(op)
	}
	return nil
}

func notFound(what string) error {
	return webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("carddavtest: %s not found", what))
}

// token renders a book's sync token for a sequence number.
func (bk *book) token(seq int64) string {
	return fmt.Sprintf("http://contactsdav.test/ns/sync/%d/%d", bk.id, seq)
}

func (b *Backend) describe(slug string, bk *book) carddav.AddressBook {
	ab := carddav.AddressBook{
		Name:            slug,
		MaxResourceSize: b.MaxResourceSize,
		SyncToken:       bk.token(bk.seq),
	}
	if bk.props.DisplayName != nil {
		ab.DisplayName = *bk.props.DisplayName
	}
	if bk.props.Description != nil {
		ab.Description = *bk.props.Description
	}
	return ab
}

func (b *Backend) lookup(slug string) (*book, error) {
	bk, ok := b.books[slug]
	if !ok {
		return nil, notFound("address book " + strconv.Quote(slug))
	}
	return bk, nil
}

// ListAddressBooks returns the books, the default first.
func (b *Backend) ListAddressBooks(ctx context.Context) ([]carddav.AddressBook, error) {
	if err := b.fail("ListAddressBooks"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]carddav.AddressBook, 0, len(b.order))
	for _, slug := range b.order {
		out = append(out, b.describe(slug, b.books[slug]))
	}
	return out, nil
}

// AddressBook returns one book.
func (b *Backend) AddressBook(ctx context.Context, slug string) (*carddav.AddressBook, error) {
	if err := b.fail("AddressBook"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return nil, err
	}
	ab := b.describe(slug, bk)
	return &ab, nil
}

// CreateAddressBook adds a book; 405 when the slug is taken.
func (b *Backend) CreateAddressBook(ctx context.Context, slug string, props carddav.BookProps) (*carddav.AddressBook, error) {
	if err := b.fail("CreateAddressBook"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.books[slug]; ok {
		return nil, webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("carddavtest: address book exists"))
	}
	ab := b.describe(slug, b.addBook(slug, props))
	return &ab, nil
}

// UpdateAddressBook changes the props that are set.
func (b *Backend) UpdateAddressBook(ctx context.Context, slug string, props carddav.BookProps) error {
	if err := b.fail("UpdateAddressBook"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return err
	}
	if props.DisplayName != nil {
		bk.props.DisplayName = copyString(props.DisplayName)
	}
	if props.Description != nil {
		bk.props.Description = copyString(props.Description)
	}
	return nil
}

// DeleteAddressBook removes a book; 403 for the default one.
func (b *Backend) DeleteAddressBook(ctx context.Context, slug string) error {
	if err := b.fail("DeleteAddressBook"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if slug == DefaultBook {
		return webdav.NewHTTPError(http.StatusForbidden, errors.New("carddavtest: the default book cannot be deleted"))
	}
	if _, err := b.lookup(slug); err != nil {
		return err
	}
	delete(b.books, slug)
	for i, s := range b.order {
		if s == slug {
			b.order = append(b.order[:i:i], b.order[i+1:]...)
			break
		}
	}
	return nil
}

// ListObjects returns every object's name and version, sorted by name.
func (b *Backend) ListObjects(ctx context.Context, slug string) ([]carddav.ObjectInfo, error) {
	if err := b.fail("ListObjects"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return nil, err
	}
	out := make([]carddav.ObjectInfo, 0, len(bk.objs))
	for name, o := range bk.objs {
		out = append(out, carddav.ObjectInfo{Name: name, ETag: o.etag, ModTime: o.modTime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// withVersion rewrites a card's VERSION line.
func withVersion(card []byte, version string) []byte {
	i := bytes.Index(card, []byte("\nVERSION:"))
	if i < 0 {
		return bytes.Clone(card)
	}
	start := i + len("\nVERSION:")
	end := start + bytes.IndexAny(card[start:], "\r\n")
	if end < start {
		end = len(card)
	}
	out := make([]byte, 0, len(card)+4)
	out = append(out, card[:start]...)
	out = append(out, version...)
	return append(out, card[end:]...)
}

// GetObjects returns the named objects. The double does not convert
// between vCard versions: it rewrites the VERSION line, which is enough
// to see which version the handler asked for.
func (b *Backend) GetObjects(ctx context.Context, slug string, names []string, version string) ([]carddav.Object, error) {
	if err := b.fail("GetObjects"); err != nil {
		return nil, err
	}
	if version != "3.0" && version != "4.0" {
		return nil, fmt.Errorf("carddavtest: GetObjects asked for vCard %q", version)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return nil, err
	}
	var out []carddav.Object
	for _, name := range names {
		o, ok := bk.objs[name]
		if !ok {
			continue
		}
		card := withVersion(o.card, version)
		out = append(out, carddav.Object{
			ObjectInfo: carddav.ObjectInfo{Name: name, ETag: o.etag, ModTime: o.modTime},
			Card:       card,
		})
	}
	return out, nil
}

// PutObject stores a card as sent, after checking the conditions, that it
// looks like a vCard with a UID, and that no other object has its UID.
func (b *Backend) PutObject(ctx context.Context, slug, name string, card []byte, cond carddav.Conditions) (*carddav.PutResult, error) {
	if err := b.fail("PutObject"); err != nil {
		return nil, err
	}
	uid, err := parseCard(card)
	if err != nil {
		return nil, &carddav.PreconditionError{Status: http.StatusForbidden, Condition: carddav.ValidAddressData, Err: err}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return nil, err
	}
	old, exists := bk.objs[name]
	if err := checkConditions(cond, old, exists); err != nil {
		return nil, err
	}
	for other, o := range bk.objs {
		if other != name && o.uid == uid {
			return nil, &carddav.PreconditionError{Status: http.StatusConflict, Condition: carddav.NoUIDConflict,
				Err: fmt.Errorf("UID %q is used by %q", uid, other)}
		}
	}
	sum := sha256.Sum256(card)
	o := &object{
		card:    bytes.Clone(card),
		uid:     uid,
		etag:    `"` + hex.EncodeToString(sum[:8]) + `"`,
		modTime: b.now().UTC().Truncate(time.Second),
	}
	bk.objs[name] = o
	bk.record(name, false)
	return &carddav.PutResult{Created: !exists, ETag: o.etag}, nil
}

// DeleteObject removes an object; 412 when ifMatch is set and stale.
func (b *Backend) DeleteObject(ctx context.Context, slug, name string, ifMatch webdav.ConditionalMatch) error {
	if err := b.fail("DeleteObject"); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return err
	}
	old, exists := bk.objs[name]
	if err := checkConditions(carddav.Conditions{IfMatch: ifMatch}, old, exists); err != nil {
		return err
	}
	if !exists {
		return notFound("object " + strconv.Quote(name))
	}
	delete(bk.objs, name)
	bk.record(name, true)
	return nil
}

func (bk *book) record(name string, deleted bool) {
	bk.seq++
	bk.log = append(bk.log, change{seq: bk.seq, name: name, deleted: deleted})
}

// checkConditions applies If-Match and If-None-Match (RFC 7232 §3).
func checkConditions(cond carddav.Conditions, old *object, exists bool) error {
	failed := webdav.NewHTTPError(http.StatusPreconditionFailed, errors.New("carddavtest: precondition failed"))
	if cond.IfMatch.IsSet() {
		if !exists {
			return failed
		}
		if !cond.IfMatch.IsWildcard() && !etagListHas(string(cond.IfMatch), old.etag) {
			return failed
		}
	}
	if cond.IfNoneMatch.IsSet() && exists {
		if cond.IfNoneMatch.IsWildcard() || etagListHas(string(cond.IfNoneMatch), old.etag) {
			return failed
		}
	}
	return nil
}

func etagListHas(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		if strings.TrimPrefix(strings.TrimSpace(e), "W/") == etag {
			return true
		}
	}
	return false
}

// parseCard checks the envelope of a vCard and returns its UID.
func parseCard(card []byte) (string, error) {
	text := strings.ReplaceAll(string(card), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\n ", "")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 2 || !strings.EqualFold(strings.TrimSpace(lines[0]), "BEGIN:VCARD") ||
		!strings.EqualFold(strings.TrimSpace(lines[len(lines)-1]), "END:VCARD") {
		return "", errors.New("not a vCard")
	}
	uid := ""
	for _, l := range lines {
		if i := strings.IndexByte(l, ':'); i > 0 && strings.EqualFold(strings.SplitN(l[:i], ";", 2)[0], "UID") {
			uid = strings.TrimSpace(l[i+1:])
		}
	}
	if uid == "" {
		return "", errors.New("vCard without UID")
	}
	return uid, nil
}

// SyncChanges answers from the book's change log: the last change per name
// after the token, at most limit of them, oldest first.
func (b *Backend) SyncChanges(ctx context.Context, slug, token string, limit int) (*carddav.Changes, error) {
	if err := b.fail("SyncChanges"); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, err := b.lookup(slug)
	if err != nil {
		return nil, err
	}
	var from int64
	if token != "" {
		var id int64
		if _, err := fmt.Sscanf(token, "http://contactsdav.test/ns/sync/%d/%d", &id, &from); err != nil ||
			id != bk.id || from < 0 || from > bk.seq || bk.token(from) != token {
			return nil, carddav.ErrInvalidSyncToken
		}
	}
	last := map[string]change{}
	for _, c := range bk.log {
		if c.seq > from {
			last[c.name] = c
		}
	}
	changes := make([]change, 0, len(last))
	for _, c := range last {
		if c.deleted && token == "" {
			continue // an initial sync lists members only
		}
		changes = append(changes, c)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].seq < changes[j].seq })
	out := &carddav.Changes{Token: bk.token(bk.seq)}
	if limit > 0 && len(changes) > limit {
		changes = changes[:limit]
		out.Token = bk.token(changes[limit-1].seq)
		out.Truncated = true
	}
	for _, c := range changes {
		if c.deleted {
			out.Deleted = append(out.Deleted, c.name)
			continue
		}
		o := bk.objs[c.name]
		out.Changed = append(out.Changed, carddav.ObjectInfo{Name: c.name, ETag: o.etag, ModTime: o.modTime})
	}
	return out, nil
}

// Authenticator maps user names and passwords to Backends. The zero value
// has no users. It is safe for concurrent use.
type Authenticator struct {
	// Fail, if set, is consulted before the password check; a non-nil
	// result (a *carddav.RateLimitError, …) is returned as is. Like
	// Backend.Fail, it is read without locking.
	Fail func(username string) error

	mu    sync.Mutex
	users map[string]user
}

type user struct {
	password string
	backend  *Backend
}

var _ carddav.Authenticator = (*Authenticator)(nil)

// AddUser registers a user with a fresh Backend and returns it.
func (a *Authenticator) AddUser(name, password string) *Backend {
	be := NewBackend()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users == nil {
		a.users = map[string]user{}
	}
	a.users[name] = user{password: password, backend: be}
	return be
}

// Authenticate checks the password in constant time.
func (a *Authenticator) Authenticate(r *http.Request, username, password string) (carddav.Backend, error) {
	if a.Fail != nil {
		if err := a.Fail(username); err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	u, ok := a.users[username]
	a.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) != 1 {
		return nil, carddav.ErrUnauthorized
	}
	return u.backend, nil
}
