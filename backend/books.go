package backend

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-webdav"
	"github.com/patrickmn/go-cache"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/carddav"
)

// DefaultSlug is the path segment of the default Contacts folder.
const DefaultSlug = "default"

// book is an address book: a contact folder and the names it goes by.
type book struct {
	Slug        string // path segment
	Key         string // store and token key, derived from the folder id
	FolderID    string
	DisplayName string // "Parent / Child" for nested folders
	Default     bool
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// shortHash is a 16-character (80-bit) lower-case base32 digest, safe in
// paths and tokens.
func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return lowerBase32.EncodeToString(h.Sum(nil))[:16]
}

// folderKey is the book key of a folder: stable for the folder's lifetime
// and different for a new folder of the same name.
func folderKey(folderID string) string { return shortHash("folder", folderID) }

// folderTreeMaxAge bounds how stale the folder tree may be for work inside
// one book (its sync, reads and writes). Walking the tree costs a Graph
// request per folder, and a client syncing one book learns nothing from it;
// listings of the home set still see the tree as fresh as the refresh
// interval, and a slug the stale tree lacks reloads it.
const folderTreeMaxAge = 5 * time.Minute

// books returns the user's books, the default first, then by display name,
// no older than the refresh interval.
func (b *Backend) books(ctx context.Context) ([]book, error) { return b.folderTree(ctx, true) }

// folderTree returns the cached books, reloading them when there are none,
// or when fresh is asked for and the refresh interval has passed.
func (b *Backend) folderTree(ctx context.Context, fresh bool) ([]book, error) {
	ck, fk := b.key("books"), b.key("books-fresh")
	if v, ok := b.cache.Get(ck); ok {
		if _, young := b.cache.Get(fk); young || !fresh {
			return v.([]book), nil
		}
	}
	v, err, _ := b.sf.Do(ck, func() (any, error) {
		// Shared by concurrent requests: one leaving must not fail the rest.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		books, err := b.loadBooks(lctx)
		if err != nil {
			return nil, err
		}
		b.cache.Set(ck, books, max(folderTreeMaxAge, b.refresh))
		b.cache.Set(fk, true, b.refresh)
		return books, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]book), nil
}

func (b *Backend) loadBooks(ctx context.Context) ([]book, error) {
	// The default folder never changes for a mailbox: ask once.
	var def *graph.ContactFolder
	if v, ok := b.cache.Get(b.key("default")); ok {
		def = v.(*graph.ContactFolder)
	} else {
		var err error
		if def, err = b.api.DefaultFolder(ctx); err != nil {
			return nil, b.graphErr(ctx, "default folder", err)
		}
		b.cache.Set(b.key("default"), def, cache.NoExpiration)
	}
	folders, err := b.api.ListFolders(ctx)
	if err != nil {
		return nil, b.graphErr(ctx, "list folders", err)
	}
	slugs, err := b.store.Slugs(ctx, b.user)
	if err != nil {
		return nil, storeErr("slugs", err)
	}
	bySlugFolder := map[string]string{} // folder id → remembered slug
	for slug, id := range slugs {
		bySlugFolder[id] = slug
	}
	byID := map[string]graph.ContactFolder{}
	for _, f := range folders {
		byID[f.ID] = f
	}
	out := []book{{Slug: DefaultSlug, Key: folderKey(def.ID), FolderID: def.ID, DisplayName: def.DisplayName, Default: true}}
	if out[0].DisplayName == "" {
		out[0].DisplayName = "Contacts"
	}
	seen := map[string]bool{def.ID: true}
	var rest []book
	for _, f := range folders {
		if seen[f.ID] {
			continue
		}
		seen[f.ID] = true
		slug, ok := bySlugFolder[f.ID]
		if !ok {
			slug = folderKey(f.ID)
		}
		rest = append(rest, book{Slug: slug, Key: folderKey(f.ID), FolderID: f.ID, DisplayName: nestedName(f, byID, def.ID)})
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].DisplayName != rest[j].DisplayName {
			return rest[i].DisplayName < rest[j].DisplayName
		}
		return rest[i].Slug < rest[j].Slug
	})
	// Forget the slugs of folders that are gone, so a later MKCOL may reuse them.
	for slug, id := range slugs {
		if !seen[id] {
			if err := b.store.DeleteSlug(ctx, b.user, slug); err != nil {
				b.log.Warn("forget slug", "book", slug, "err", err)
			}
		}
	}
	b.forgetGoneBooks(ctx, seen)
	return append(out, rest...), nil
}

// forgetGoneBooks drops the stored members, change log and delta link of
// every book whose folder is no longer in the mailbox (deleted in Outlook or
// through DELETE), so the store does not grow with folders long gone.
func (b *Backend) forgetGoneBooks(ctx context.Context, folders map[string]bool) {
	live := make(map[string]bool, len(folders))
	for id := range folders {
		live[folderKey(id)] = true
	}
	keys, err := b.store.Books(ctx, b.user)
	if err != nil {
		b.log.Warn("list stored books", "err", err)
		return
	}
	for _, k := range keys {
		if !live[k] {
			if err := b.store.DeleteBook(ctx, b.user, k); err != nil {
				b.log.Warn("forget book", "key", k, "err", err)
			}
		}
	}
}

// nestedName shows a folder's place below the default folder: "Parent /
// Child". Children of the default folder are shown by their own name.
func nestedName(f graph.ContactFolder, byID map[string]graph.ContactFolder, defID string) string {
	name := f.DisplayName
	p := f.ParentFolderID
	for range 32 { // bounded: a parent cycle must not hang a listing
		parent, ok := byID[p]
		if p == defID || !ok {
			break
		}
		name = parent.DisplayName + " / " + name
		p = parent.ParentFolderID
	}
	return name
}

// book returns one book by slug; 404 when there is none. The folder tree
// may be up to folderTreeMaxAge old here, unless it lacks the slug.
func (b *Backend) book(ctx context.Context, slug string) (*book, error) {
	for _, fresh := range []bool{false, true} {
		books, err := b.folderTree(ctx, fresh)
		if err != nil {
			return nil, err
		}
		for i := range books {
			if books[i].Slug == slug {
				return &books[i], nil
			}
		}
	}
	return nil, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no address book %q", slug))
}

// addressBook describes a book with its current sync token.
func (b *Backend) addressBook(ctx context.Context, bk *book) (*carddav.AddressBook, error) {
	st, err := b.store.Book(ctx, b.user, bk.Key)
	if err != nil {
		return nil, storeErr("book", err)
	}
	return &carddav.AddressBook{
		Name:            bk.Slug,
		DisplayName:     bk.DisplayName,
		MaxResourceSize: MaxResourceSize,
		SyncToken:       formatToken(bk.Key, st.Epoch, st.Seq),
	}, nil
}

// ListAddressBooks implements carddav.Backend. Each book is brought up to
// date first (at most one delta round per refresh interval), so the
// getctag a client polls moves when Outlook changes something.
func (b *Backend) ListAddressBooks(ctx context.Context) ([]carddav.AddressBook, error) {
	books, err := b.books(ctx)
	if err != nil {
		return nil, err
	}
	// Refresh the books side by side; the Graph client caps what is in
	// flight per mailbox anyway.
	var wg sync.WaitGroup
	sem := make(chan struct{}, renderParallel)
	for i := range books {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := b.ensureFresh(ctx, &books[i]); err != nil && !ctxErr(ctx, err) {
				b.log.Warn("refresh book for listing", "book", books[i].Slug, "err", err)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]carddav.AddressBook, 0, len(books))
	for i := range books {
		ab, err := b.addressBook(ctx, &books[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *ab)
	}
	return out, nil
}

// AddressBook implements carddav.Backend.
func (b *Backend) AddressBook(ctx context.Context, slug string) (*carddav.AddressBook, error) {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return nil, err
	}
	if err := b.ensureFresh(ctx, bk); err != nil {
		if ctxErr(ctx, err) {
			return nil, err
		}
		b.log.Warn("refresh book", "book", slug, "err", err)
	}
	return b.addressBook(ctx, bk)
}

// maxFolderNameTries bounds the "Name (n)" variants MKCOL tries when Graph
// already has folders of the name the client gave.
const maxFolderNameTries = 20

// validSlug accepts what a client may MKCOL: a resource name (one path
// segment) of at most 200 bytes.
func validSlug(slug string) bool { return validName(slug) && len(slug) <= 200 }

// CreateAddressBook implements carddav.Backend: MKCOL makes a Graph folder
// under the default folder and remembers the client's slug for it.
func (b *Backend) CreateAddressBook(ctx context.Context, slug string, props carddav.BookProps) (*carddav.AddressBook, error) {
	if !validSlug(slug) {
		return nil, webdav.NewHTTPError(http.StatusForbidden, fmt.Errorf("invalid address book name %q", slug))
	}
	books, err := b.books(ctx)
	if err != nil {
		return nil, err
	}
	for _, bk := range books {
		if bk.Slug == slug {
			return nil, webdav.NewHTTPError(http.StatusMethodNotAllowed, fmt.Errorf("address book %q exists", slug))
		}
	}
	name := slug
	if props.DisplayName != nil && *props.DisplayName != "" {
		name = *props.DisplayName
	}
	// Graph refuses two sibling folders of one name, but the client asked
	// for a new book at a URL of its own: name the folder "Work (2)" rather
	// than fail (DAVx5 shows a bare error otherwise).
	var f *graph.ContactFolder
	for n := 1; ; n++ {
		try := name
		if n > 1 {
			try = fmt.Sprintf("%s (%d)", name, n)
		}
		f, err = b.api.CreateFolder(ctx, books[0].FolderID, try)
		if err == nil {
			name = try
			break
		}
		if !errors.Is(err, graph.ErrConflict) || n == maxFolderNameTries {
			return nil, b.graphErr(ctx, "create folder", err)
		}
	}
	if err := b.store.SetSlug(ctx, b.user, slug, f.ID); err != nil {
		return nil, storeErr("set slug", err)
	}
	b.cache.Delete(b.key("books"))
	b.log.Info("address book created", "book", slug)
	bk := &book{Slug: slug, Key: folderKey(f.ID), FolderID: f.ID, DisplayName: f.DisplayName}
	if bk.DisplayName == "" {
		bk.DisplayName = name
	}
	return b.addressBook(ctx, bk)
}

// UpdateAddressBook implements carddav.Backend: a new display name renames
// the folder. Graph folders have no description, so one is not kept.
func (b *Backend) UpdateAddressBook(ctx context.Context, slug string, props carddav.BookProps) error {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return err
	}
	if props.DisplayName == nil {
		return nil
	}
	name := strings.TrimSpace(*props.DisplayName)
	if name == "" {
		return webdav.NewHTTPError(http.StatusForbidden, errors.New("empty display name"))
	}
	if bk.Default {
		// The default folder's name belongs to Outlook (and its locale).
		return webdav.NewHTTPError(http.StatusForbidden, errors.New("the default address book cannot be renamed"))
	}
	if i := strings.LastIndex(name, " / "); i >= 0 && strings.Contains(bk.DisplayName, " / ") {
		// A client echoing the nested name back renames the leaf only.
		name = name[i+3:]
	}
	if _, err := b.api.RenameFolder(ctx, bk.FolderID, name); err != nil {
		if errors.Is(err, graph.ErrConflict) {
			return webdav.NewHTTPError(http.StatusConflict, fmt.Errorf("a folder named %q exists", name))
		}
		return b.graphErr(ctx, "rename folder", err)
	}
	b.cache.Delete(b.key("books"))
	return nil
}

// DeleteAddressBook implements carddav.Backend: the folder is deleted in
// Graph; the default folder cannot be.
func (b *Backend) DeleteAddressBook(ctx context.Context, slug string) error {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return err
	}
	if bk.Default {
		return &carddav.PreconditionError{Status: http.StatusForbidden, Condition: carddav.NeedPrivileges,
			Err: errors.New("the default address book cannot be deleted")}
	}
	lock := b.bookLock(bk.Key)
	lock.Lock()
	defer lock.Unlock()
	if err := b.api.DeleteFolder(ctx, bk.FolderID); err != nil && !errors.Is(err, graph.ErrNotFound) {
		return b.graphErr(ctx, "delete folder", err)
	}
	if err := b.store.DeleteSlug(ctx, b.user, slug); err != nil {
		return storeErr("delete slug", err)
	}
	if err := b.store.DeleteBook(ctx, b.user, bk.Key); err != nil {
		return storeErr("delete book", err)
	}
	b.cache.Delete(b.key("books"))
	b.cache.Delete(b.key("snap", bk.Key))
	b.cache.Delete(b.key("fresh", bk.Key))
	b.log.Info("address book deleted", "book", slug)
	return nil
}
