package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
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
	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/vcardmap"
)

// renderParallel bounds concurrent photo fetches while rendering; the Graph
// client allows four requests in flight per mailbox anyway.
const renderParallel = 4

// batchSize is how many contacts one Graph $batch request fetches.
const batchSize = 20

// cacheContact keeps a fetched contact (with our extended properties) for
// rendering. The cached value is never modified afterwards.
func (b *Backend) cacheContact(c *graph.Contact) {
	cp := *c
	b.cache.Set(b.key("c", c.ID), &cp, cache.DefaultExpiration)
}

// cachedContact returns the cached contact if it is at the given changeKey.
func (b *Backend) cachedContact(id, changeKey string) *graph.Contact {
	v, ok := b.cache.Get(b.key("c", id))
	if !ok {
		return nil
	}
	c := v.(*graph.Contact)
	if c.ChangeKey != changeKey {
		return nil
	}
	return c
}

// ListObjects implements carddav.Backend.
func (b *Backend) ListObjects(ctx context.Context, slug string) ([]carddav.ObjectInfo, error) {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return nil, err
	}
	if err := b.fresh(ctx, bk); err != nil {
		return nil, err
	}
	snap, err := b.snapshot(ctx, bk)
	if err != nil {
		return nil, err
	}
	out := make([]carddav.ObjectInfo, 0, len(snap.byName))
	for _, m := range snap.byName {
		out = append(out, carddav.ObjectInfo{Name: m.Name, ETag: m.ETag, ModTime: m.Modified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GetObjects implements carddav.Backend. Contacts not in the cache are
// fetched in $batch requests; a contact that fails to render is logged and
// left out rather than failing the whole multiget.
func (b *Backend) GetObjects(ctx context.Context, slug string, names []string, version string) ([]carddav.Object, error) {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return nil, err
	}
	if version == "" {
		version = "3.0"
	}
	if err := b.fresh(ctx, bk); err != nil {
		return nil, err
	}
	snap, err := b.snapshot(ctx, bk)
	if err != nil {
		return nil, err
	}
	type job struct {
		m    store.Member
		c    *graph.Contact
		card []byte
		etag string
	}
	jobs := make([]*job, 0, len(names))
	var fetch []string
	seen := map[string]bool{}
	for _, name := range names {
		m, ok := snap.byName[name]
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		j := &job{m: m, etag: m.ETag}
		if v, ok := b.cache.Get(b.key("v", m.ID, m.ETag, version)); ok {
			j.card = v.([]byte)
		} else if j.c = b.cachedContact(m.ID, m.ChangeKey); j.c == nil {
			fetch = append(fetch, m.ID)
		}
		jobs = append(jobs, j)
	}
	if len(fetch) > 0 {
		var got []graph.Contact
		var err error
		if _, listed := b.cache.Get(b.key("listed", bk.Key)); !listed && len(fetch) > batchSize {
			// A cold cache (after a restart): one listing in pages of
			// 1000 warms the whole book for the multigets that follow.
			if got, err = b.api.ListContacts(ctx, bk.FolderID, listQuery); err == nil {
				b.cache.Set(b.key("listed", bk.Key), true, cache.DefaultExpiration)
			}
		} else {
			got, err = b.api.GetContacts(ctx, fetch, fullQuery)
		}
		if err != nil {
			return nil, b.graphErr(ctx, "get contacts", err)
		}
		byID := make(map[string]*graph.Contact, len(got))
		for i := range got {
			b.cacheContact(&got[i])
			byID[got[i].ID] = &got[i]
		}
		for _, j := range jobs {
			if j.card == nil && j.c == nil {
				// Changed since the last round: serve what Graph has now,
				// under its own ETag; the next round logs the change.
				j.c = byID[j.m.ID]
				if j.c != nil {
					j.etag = contactETag(j.c)
				}
			}
		}
	}
	var withPhoto []string // contacts to render that have a photo
	for _, j := range jobs {
		if j.card == nil && j.c != nil && hasPicture(j.c) {
			withPhoto = append(withPhoto, j.c.ID)
		}
	}
	photos := b.batchPhotos(ctx, bk, withPhoto)
	var wg sync.WaitGroup
	sem := make(chan struct{}, renderParallel)
	for _, j := range jobs {
		if j.card != nil || j.c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			card, err := b.renderContact(ctx, j.c, j.m.Name, j.etag, version, photos)
			if err != nil {
				b.log.Warn("contact left out of multiget", "book", bk.Slug, "name", j.m.Name, "err", err)
				return
			}
			j.card = card
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]carddav.Object, 0, len(jobs))
	for _, j := range jobs {
		if j.card == nil {
			continue
		}
		out = append(out, carddav.Object{ObjectInfo: carddav.ObjectInfo{Name: j.m.Name, ETag: j.etag, ModTime: j.m.Modified}, Card: j.card})
	}
	return out, nil
}

// PhotoBatcher is implemented by a ContactsAPI that fetches many photos per
// request ($batch). GetObjects then fetches the photos of a multiget in a
// few requests instead of one each. The result maps every id asked for to
// its photo, or to nil when the contact has none.
type PhotoBatcher interface {
	GetPhotos(ctx context.Context, ids []string) (map[string]*graph.Photo, error)
}

// batchPhotos fetches photos through PhotoBatcher when the API has it; on
// failure rendering falls back to one GET per photo.
func (b *Backend) batchPhotos(ctx context.Context, bk *book, ids []string) map[string]*graph.Photo {
	pb, ok := b.api.(PhotoBatcher)
	if !ok || len(ids) == 0 {
		return nil
	}
	photos, err := pb.GetPhotos(ctx, ids)
	if err != nil {
		b.log.Warn("batched photo fetch", "book", bk.Slug, "err", err)
		return nil
	}
	return photos
}

// render renders a contact as a vCard and caches the card under its ETag.
func (b *Backend) renderContact(ctx context.Context, c *graph.Contact, name, etag, version string, photos map[string]*graph.Photo) ([]byte, error) {
	var photo *graph.Photo
	if p, ok := photos[c.ID]; ok {
		photo = p // fetched in a batch; nil means none after all
		if p != nil {
			b.cache.Set(b.key("p", c.ID, c.ChangeKey), sha256.Sum256(p.Data), cache.DefaultExpiration)
		}
	} else if hasPicture(c) {
		p, err := b.api.GetPhoto(ctx, c.ID)
		switch {
		case err == nil:
			photo = p
			b.cache.Set(b.key("p", c.ID, c.ChangeKey), sha256.Sum256(p.Data), cache.DefaultExpiration)
		case errors.Is(err, graph.ErrNotFound):
		default:
			return nil, fmt.Errorf("photo: %w", err)
		}
	}
	plain := *c
	plain.SingleValueExtendedProperties = nil
	card, err := b.render(&vcardmap.Mapped{Contact: plain, UID: uidFor(c, name), Extras: joinExtras(c), Photo: photo}, version)
	if err != nil {
		return nil, err
	}
	b.cache.Set(b.key("v", c.ID, etag, version), card, cache.DefaultExpiration)
	return card, nil
}

// matchETag reports whether a conditional header lists etag; weak tags
// compare by their opaque part, which is what a client echoing ours means.
func matchETag(h webdav.ConditionalMatch, etag string) bool {
	for _, t := range strings.Split(string(h), ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || (t != "" && t == etag) {
			return true
		}
	}
	return false
}

var errPrecondition = webdav.NewHTTPError(http.StatusPreconditionFailed, errors.New("precondition failed"))

// checkConditions applies If-Match / If-None-Match to an object's state.
func checkConditions(cond carddav.Conditions, exists bool, etag string) error {
	if cond.IfNoneMatch.IsSet() && exists && matchETag(cond.IfNoneMatch, etag) {
		return errPrecondition
	}
	if cond.IfMatch.IsSet() && (!exists || !matchETag(cond.IfMatch, etag)) {
		return errPrecondition
	}
	return nil
}

// graphIfMatch is the If-Match we send Graph for a contact we read.
func graphIfMatch(c *graph.Contact) string {
	if c.ODataETag != "" {
		return c.ODataETag
	}
	if c.ChangeKey != "" {
		return `W/"` + c.ChangeKey + `"`
	}
	return ""
}

// PutObject implements carddav.Backend.
func (b *Backend) PutObject(ctx context.Context, slug, name string, card []byte, cond carddav.Conditions) (*carddav.PutResult, error) {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, fmt.Errorf("invalid resource name %q", name))
	}
	if len(card) > MaxResourceSize {
		return nil, &carddav.PreconditionError{Status: http.StatusForbidden, Condition: carddav.MaxResourceSize,
			Err: fmt.Errorf("card of %d bytes over %d", len(card), MaxResourceSize)}
	}
	m, err := b.parse(card)
	if err != nil {
		return nil, &carddav.PreconditionError{Status: http.StatusForbidden, Condition: carddav.ValidAddressData, Err: err}
	}
	chunks, ok := splitExtras(m.Extras)
	if !ok {
		return nil, &carddav.PreconditionError{Status: http.StatusForbidden, Condition: carddav.MaxResourceSize,
			Err: fmt.Errorf("%d bytes of properties Graph has no field for, over %d", len(m.Extras), maxChunks*extraChunk)}
	}
	if err := b.fresh(ctx, bk); err != nil {
		return nil, err
	}
	lock := b.bookLock(bk.Key)
	lock.Lock()
	defer lock.Unlock()
	snap, err := b.snapshot(ctx, bk)
	if err != nil {
		return nil, err
	}
	cur, exists := snap.byName[name]
	if err := checkConditions(cond, exists, cur.ETag); err != nil {
		return nil, err
	}
	if other := uidHolder(snap, m.UID, name); other != "" {
		// RFC 6352 §6.3.2.1: one UID per book. Clients that re-upload a
		// card under a new name would otherwise make a duplicate.
		return nil, &carddav.PreconditionError{Status: http.StatusConflict, Condition: carddav.NoUIDConflict,
			Err: fmt.Errorf("UID already used by %s", other)}
	}
	conditional := cond.IfMatch.IsSet() || cond.IfNoneMatch.IsSet()
	var final *graph.Contact
	var werr error
	if exists {
		final, werr = b.update(ctx, bk, cur, m, chunks, conditional)
		if errors.Is(werr, graph.ErrNotFound) {
			// Deleted in Outlook since our last round: the PUT recreates it.
			if _, err := b.apply(ctx, bk, snap, store.Update{Delete: []string{name}}); err != nil {
				return nil, err
			}
			if cond.IfMatch.IsSet() {
				return nil, errPrecondition // the version the client edited is gone
			}
			if snap, err = b.snapshot(ctx, bk); err != nil {
				return nil, err
			}
			exists = false
		} else if final == nil {
			return nil, b.writeErr(ctx, bk, "update contact", werr, conditional)
		}
	}
	if !exists {
		final, werr = b.create(ctx, bk, name, m, chunks)
		if final == nil {
			return nil, b.writeErr(ctx, bk, "create contact", werr, conditional)
		}
	}
	b.cacheContact(final)
	mem := store.Member{Name: name, ID: final.ID, ETag: contactETag(final), ChangeKey: final.ChangeKey, Modified: modTime(final), UID: uidFor(final, name)}
	if _, err := b.apply(ctx, bk, snap, store.Update{Put: []store.Member{mem}}); err != nil {
		return nil, err
	}
	if werr != nil { // the contact was written, its photo was not
		return nil, b.writeErr(ctx, bk, "put photo", werr, conditional)
	}
	b.log.Debug("object written", "book", bk.Slug, "name", name, "created", !exists)
	return &carddav.PutResult{Created: !exists, ETag: mem.ETag}, nil
}

// uidHolder returns the name of another member serving uid, "" when none.
func uidHolder(snap *snapshot, uid, name string) string {
	if uid == "" {
		return ""
	}
	for n, m := range snap.byName {
		if m.UID == uid && n != name {
			return n
		}
	}
	return ""
}

// writeErr maps a failed write. A 412 from Graph means our snapshot is
// stale, so the next read refreshes; when the client sent no precondition
// a 412 would puzzle it, so it is a short 503 and the client tries again.
func (b *Backend) writeErr(ctx context.Context, bk *book, op string, err error, conditional bool) error {
	if errors.Is(err, graph.ErrPreconditionFailed) {
		b.cache.Delete(b.key("fresh", bk.Key))
		if !conditional {
			return &carddav.UnavailableError{RetryAfter: time.Second, Err: fmt.Errorf("%s: %w", op, err)}
		}
	}
	return b.graphErr(ctx, op, err)
}

// create POSTs a new contact with our extended properties, then its photo.
// It returns the contact as Graph now holds it; a non-nil contact with an
// error means the photo failed.
func (b *Backend) create(ctx context.Context, bk *book, name string, m *vcardmap.Mapped, chunks []string) (*graph.Contact, error) {
	c := m.Contact
	c.SingleValueExtendedProperties = wantProps(nil, name, m.UID, chunks)
	created, err := b.api.CreateContact(ctx, bk.FolderID, &c)
	if err != nil {
		return nil, err
	}
	final := *created
	// Graph does not echo extended properties; we know what we wrote.
	final.SingleValueExtendedProperties = c.SingleValueExtendedProperties
	if m.Photo == nil || len(m.Photo.Data) == 0 {
		return &final, nil
	}
	if err := b.api.PutPhoto(ctx, final.ID, m.Photo); err != nil {
		return &final, err
	}
	return b.reread(ctx, bk, &final), nil
}

// reread fetches a contact after a photo write changed its changeKey; on
// failure it keeps what it had, and the next delta round corrects the ETag.
func (b *Backend) reread(ctx context.Context, bk *book, c *graph.Contact) *graph.Contact {
	re, err := b.api.GetContact(ctx, bk.FolderID, c.ID, fullQuery)
	if err != nil {
		b.log.Warn("re-read after photo write", "book", bk.Slug, "err", err)
		return c
	}
	return re
}

// keepUnsaid is the contact a PUT asks for, except that the fields only an
// X-MS-* property carries keep Graph's values when the card has no property
// for them: a client that drops properties it does not know must not clear
// an Outlook office location (clients.md §6: never delete Graph data
// because a client's dialect lacks the field).
func keepUnsaid(old *graph.Contact, m *vcardmap.Mapped) graph.Contact {
	c := m.Contact
	for _, name := range m.Unsaid {
		switch name {
		case "initials":
			c.Initials = old.Initials
		case "officeLocation":
			c.OfficeLocation = old.OfficeLocation
		case "fileAs":
			c.FileAs = old.FileAs
		}
	}
	return c
}

// update PATCHes the fields that changed and, if it changed, the photo.
func (b *Backend) update(ctx context.Context, bk *book, cur store.Member, m *vcardmap.Mapped, chunks []string, conditional bool) (*graph.Contact, error) {
	old := b.cachedContact(cur.ID, cur.ChangeKey)
	if old == nil {
		var err error
		if old, err = b.api.GetContact(ctx, bk.FolderID, cur.ID, fullQuery); err != nil {
			return nil, err
		}
	}
	var props []graph.ExtendedProperty
	patchFor := func(old *graph.Contact) graph.Patch {
		want := keepUnsaid(old, m)
		patch := graph.NewPatch(old, &want)
		props = wantProps(old, cur.Name, m.UID, chunks)
		if len(props) > 0 {
			patch["singleValueExtendedProperties"] = props
		}
		return patch
	}
	updated, err := b.api.UpdateContact(ctx, bk.FolderID, cur.ID, patchFor(old), graphIfMatch(old))
	if errors.Is(err, graph.ErrPreconditionFailed) {
		// Either Graph's spurious 412 (research §1.4) or a change we have
		// not seen yet. Read the contact again: if it is as we knew it, or
		// the client asked for no precondition (last writer wins), write
		// once more against what Graph holds now.
		re, rerr := b.api.GetContact(ctx, bk.FolderID, cur.ID, fullQuery)
		if rerr == nil && (!conditional || re.ChangeKey == old.ChangeKey) {
			old = re
			updated, err = b.api.UpdateContact(ctx, bk.FolderID, cur.ID, patchFor(old), graphIfMatch(old))
		}
	}
	if err != nil {
		return nil, err
	}
	final := *updated
	final.SingleValueExtendedProperties = append([]graph.ExtendedProperty(nil), old.SingleValueExtendedProperties...)
	for _, p := range props {
		setProp(&final, p.ID, p.Value)
	}
	newPic := m.Photo != nil && len(m.Photo.Data) > 0
	oldPic := hasPicture(old)
	switch {
	case !newPic && !oldPic:
		return &final, nil
	case newPic && oldPic && b.samePhoto(ctx, old, m.Photo):
		return &final, nil
	}
	var photo *graph.Photo
	if newPic {
		photo = m.Photo
	}
	if err := b.api.PutPhoto(ctx, cur.ID, photo); err != nil {
		return &final, err
	}
	return b.reread(ctx, bk, &final), nil
}

// unchanged reports whether Graph still holds c at its changeKey, telling a
// transient 412 from a real conflict.
func (b *Backend) unchanged(ctx context.Context, bk *book, c *graph.Contact) bool {
	cur, err := b.api.GetContact(ctx, bk.FolderID, c.ID, graph.Query{Select: []string{"id", "changeKey"}})
	return err == nil && c.ChangeKey != "" && cur.ChangeKey == c.ChangeKey
}

// samePhoto reports whether a contact's stored photo equals p, so an
// unchanged photo is not uploaded again with every edit.
func (b *Backend) samePhoto(ctx context.Context, c *graph.Contact, p *graph.Photo) bool {
	sum := sha256.Sum256(p.Data)
	if v, ok := b.cache.Get(b.key("p", c.ID, c.ChangeKey)); ok {
		return v.([32]byte) == sum
	}
	cur, err := b.api.GetPhoto(ctx, c.ID)
	if err != nil {
		return false
	}
	return bytes.Equal(cur.Data, p.Data)
}

// DeleteObject implements carddav.Backend.
func (b *Backend) DeleteObject(ctx context.Context, slug, name string, ifMatch webdav.ConditionalMatch) error {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return err
	}
	if err := b.fresh(ctx, bk); err != nil {
		return err
	}
	lock := b.bookLock(bk.Key)
	lock.Lock()
	defer lock.Unlock()
	snap, err := b.snapshot(ctx, bk)
	if err != nil {
		return err
	}
	cur, exists := snap.byName[name]
	if !exists {
		return webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no object %q", name))
	}
	if err := checkConditions(carddav.Conditions{IfMatch: ifMatch}, true, cur.ETag); err != nil {
		return err
	}
	gm := ""
	if ifMatch.IsSet() && cur.ChangeKey != "" {
		gm = `W/"` + cur.ChangeKey + `"`
	}
	err = b.api.DeleteContact(ctx, bk.FolderID, cur.ID, gm)
	if errors.Is(err, graph.ErrPreconditionFailed) && b.unchanged(ctx, bk, &graph.Contact{ID: cur.ID, ChangeKey: cur.ChangeKey}) {
		err = b.api.DeleteContact(ctx, bk.FolderID, cur.ID, gm)
	}
	if err != nil && !errors.Is(err, graph.ErrNotFound) {
		return b.writeErr(ctx, bk, "delete contact", err, ifMatch.IsSet())
	}
	if _, err := b.apply(ctx, bk, snap, store.Update{Delete: []string{name}}); err != nil {
		return err
	}
	b.cache.Delete(b.key("c", cur.ID))
	b.log.Debug("object deleted", "book", bk.Slug, "name", name)
	return nil
}
