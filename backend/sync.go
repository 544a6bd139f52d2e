package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/patrickmn/go-cache"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
)

// refreshTimeout bounds one delta round, which runs detached from the request
// that started it because other requests share it.
const refreshTimeout = 5 * time.Minute

// snapshot is a book's members as last logged. It is immutable once cached:
// changes build a new one, so readers never see a half-applied round.
type snapshot struct {
	byName map[string]store.Member
	byID   map[string]string // Graph id → name
}

func newSnapshot(members []store.Member) *snapshot {
	s := &snapshot{byName: make(map[string]store.Member, len(members)), byID: make(map[string]string, len(members))}
	for _, m := range members {
		s.byName[m.Name] = m
		s.byID[m.ID] = m.Name
	}
	return s
}

// with returns a copy of s with members put and names deleted.
func (s *snapshot) with(put []store.Member, del []string) *snapshot {
	n := &snapshot{byName: make(map[string]store.Member, len(s.byName)+len(put)), byID: make(map[string]string, len(s.byID)+len(put))}
	for k, v := range s.byName {
		n.byName[k] = v
	}
	for k, v := range s.byID {
		n.byID[k] = v
	}
	for _, name := range del {
		if m, ok := n.byName[name]; ok {
			delete(n.byID, m.ID)
			delete(n.byName, name)
		}
	}
	for _, m := range put {
		if old, ok := n.byName[m.Name]; ok && old.ID != m.ID {
			delete(n.byID, old.ID)
		}
		n.byName[m.Name] = m
		n.byID[m.ID] = m.Name
	}
	return n
}

// snapshot returns a book's cached members, loading them from the store.
func (b *Backend) snapshot(ctx context.Context, bk *book) (*snapshot, error) {
	ck := b.key("snap", bk.Key)
	if v, ok := b.cache.Get(ck); ok {
		return v.(*snapshot), nil
	}
	members, err := b.store.Members(ctx, b.user, bk.Key)
	if err != nil {
		return nil, storeErr("members", err)
	}
	s := newSnapshot(members)
	// Add, not Set: a write that finished while we read the store has
	// published a newer snapshot, which must win.
	if err := b.cache.Add(ck, s, cache.DefaultExpiration); err != nil {
		if v, ok := b.cache.Get(ck); ok {
			return v.(*snapshot), nil
		}
	}
	return s, nil
}

// apply logs an update and publishes the new snapshot. The caller holds
// the book lock.
func (b *Backend) apply(ctx context.Context, bk *book, snap *snapshot, u store.Update) (store.Book, error) {
	st, err := b.store.Apply(ctx, b.user, bk.Key, u)
	if err != nil {
		return st, storeErr("apply", err)
	}
	if len(u.Put)+len(u.Delete) > 0 {
		b.cache.Set(b.key("snap", bk.Key), snap.with(u.Put, u.Delete), cache.DefaultExpiration)
	}
	return st, nil
}

// fresh brings a book up to date unless it was within the refresh interval.
// When Graph fails and the book was loaded before, it logs and serves the
// state it has: a client then sees changes a little later, not an error.
func (b *Backend) fresh(ctx context.Context, bk *book) error {
	err := b.ensureFresh(ctx, bk)
	if err == nil || ctxErr(ctx, err) {
		return err
	}
	st, serr := b.store.Book(ctx, b.user, bk.Key)
	if serr != nil || st.DeltaLink == "" {
		return err
	}
	b.log.Warn("refresh failed; serving the last known state", "book", bk.Slug, "err", err)
	return nil
}

// ensureFresh runs a delta round for the book unless one finished within
// the refresh interval; concurrent callers share one round.
func (b *Backend) ensureFresh(ctx context.Context, bk *book) error {
	fk := b.key("fresh", bk.Key)
	if _, ok := b.cache.Get(fk); ok {
		return nil
	}
	ch := b.sf.DoChan(fk, func() (any, error) {
		if _, ok := b.cache.Get(fk); ok {
			return nil, nil // a round finished while we queued
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		if err := b.refreshBook(rctx, bk); err != nil {
			return nil, err
		}
		b.cache.Set(fk, true, b.refresh)
		return nil, nil
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshBook runs one delta round, or re-lists the folder when there is no
// usable delta link, and logs what changed.
func (b *Backend) refreshBook(ctx context.Context, bk *book) error {
	lock := b.bookLock(bk.Key)
	lock.Lock()
	defer lock.Unlock()
	st, err := b.store.Book(ctx, b.user, bk.Key)
	if err != nil {
		return storeErr("book", err)
	}
	snap, err := b.snapshot(ctx, bk)
	if err != nil {
		return err
	}
	if st.DeltaLink != "" {
		res, err := b.api.ContactsDelta(ctx, bk.FolderID, st.DeltaLink, deltaQuery)
		if err == nil {
			return b.applyDelta(ctx, bk, snap, res)
		}
		// Evolution's lesson: a delta link Graph answers with 400 is as dead
		// as one it answers with 410.
		if !errors.Is(err, graph.ErrSyncStateNotFound) && !errors.Is(err, graph.ErrBadRequest) {
			return b.graphErr(ctx, "delta", err)
		}
		b.log.Info("delta token expired; re-listing the folder", "book", bk.Slug)
	}
	return b.relist(ctx, bk, snap)
}

// relist loads a whole folder and logs its difference from the known state:
// the first load of a book, and the recovery from an expired delta token
// that keeps every client token valid.
func (b *Backend) relist(ctx context.Context, bk *book, snap *snapshot) error {
	// Start the delta round first: whatever changes between it and the
	// listing shows up again in the next round, with the listed changeKey
	// (dropped as known) or as news.
	res, err := b.api.ContactsDelta(ctx, bk.FolderID, "", deltaQuery)
	if err != nil {
		return b.graphErr(ctx, "initial delta", err)
	}
	return b.listAndDiff(ctx, bk, snap, res.DeltaLink)
}

// listAndDiff lists the whole folder and logs its difference from the
// snapshot, with deltaLink as the next round's start.
func (b *Backend) listAndDiff(ctx context.Context, bk *book, snap *snapshot, deltaLink string) error {
	list, err := b.api.ListContacts(ctx, bk.FolderID, listQuery)
	if err != nil {
		return b.graphErr(ctx, "list contacts", err)
	}
	listed := make(map[string]bool, len(list))
	for _, c := range list {
		listed[c.ID] = true
	}
	b.cache.Set(b.key("listed", bk.Key), true, cache.DefaultExpiration)
	var del []string
	for id, name := range snap.byID {
		if !listed[id] {
			del = append(del, name)
		}
	}
	put := b.members(bk, snap, list, del)
	st, err := b.apply(ctx, bk, snap, store.Update{Put: put, Delete: del, DeltaLink: &deltaLink})
	if err != nil {
		return err
	}
	b.log.Debug("book listed", "book", bk.Slug, "contacts", len(list), "changed", len(put), "deleted", len(del), "seq", st.Seq)
	return nil
}

// listCheaper reports whether listing a folder of n members takes fewer
// requests than fetching k of them in $batch requests of 20: a bulk change
// in Outlook (an import) is read in pages of 1000 instead.
func listCheaper(k, n int) bool {
	return (k+batchSize-1)/batchSize > (n+k+999)/1000
}

// applyDelta fetches what a delta round reports changed and logs it. Rows
// whose changeKey the book already holds are echoes of our own writes (or
// replays) and cost nothing.
func (b *Backend) applyDelta(ctx context.Context, bk *book, snap *snapshot, res *graph.DeltaResult) error {
	var del []string
	gone := map[string]bool{}
	for _, id := range res.Removed {
		if name, ok := snap.byID[id]; ok && !gone[id] {
			gone[id] = true
			del = append(del, name)
		}
	}
	var ids []string
	want := map[string]bool{}
	for _, c := range res.Changed {
		if gone[c.ID] || want[c.ID] {
			continue
		}
		if name, ok := snap.byID[c.ID]; ok && c.ChangeKey != "" && snap.byName[name].ChangeKey == c.ChangeKey {
			continue
		}
		want[c.ID] = true
		ids = append(ids, c.ID)
	}
	if listCheaper(len(ids), len(snap.byName)) {
		return b.listAndDiff(ctx, bk, snap, res.DeltaLink)
	}
	var put []store.Member
	if len(ids) > 0 {
		got, err := b.api.GetContacts(ctx, ids, fullQuery)
		if err != nil {
			return b.graphErr(ctx, "get changed contacts", err)
		}
		// The fetch is mailbox-wide: a contact moved to another of the
		// user's folders since the round is no longer a member here.
		elsewhere := b.otherFolders(ctx, bk)
		kept := got[:0]
		for _, c := range got {
			if c.ParentFolderID != "" && elsewhere[c.ParentFolderID] {
				continue
			}
			delete(want, c.ID)
			kept = append(kept, c)
		}
		got = kept
		for id := range want { // vanished (or moved) between delta and fetch
			if name, ok := snap.byID[id]; ok && !gone[id] {
				gone[id] = true
				del = append(del, name)
			}
		}
		put = b.members(bk, snap, got, del)
	}
	if len(put) == 0 && len(del) == 0 && res.DeltaLink == "" {
		return nil
	}
	u := store.Update{Put: put, Delete: del}
	if res.DeltaLink != "" {
		u.DeltaLink = &res.DeltaLink
	}
	st, err := b.apply(ctx, bk, snap, u)
	if err != nil {
		return err
	}
	if len(put)+len(del) > 0 {
		b.log.Debug("delta applied", "book", bk.Slug, "changed", len(put), "deleted", len(del), "seq", st.Seq)
	}
	return nil
}

// otherFolders returns the ids of the user's folders other than bk's, as
// far as the cached folder list knows them.
func (b *Backend) otherFolders(ctx context.Context, bk *book) map[string]bool {
	books, err := b.folderTree(ctx, false)
	if err != nil {
		return nil
	}
	out := make(map[string]bool, len(books))
	for _, o := range books {
		if o.FolderID != bk.FolderID {
			out[o.FolderID] = true
		}
	}
	return out
}

// members names fetched contacts, caches them, and returns those whose
// version differs from the snapshot. A known id keeps its name for life; a
// new one takes the href its client gave it unless a live member holds
// that name already (an Outlook copy of a contact copies our properties),
// and otherwise a name derived from its id.
func (b *Backend) members(bk *book, snap *snapshot, contacts []graph.Contact, del []string) []store.Member {
	leaving := map[string]bool{}
	for _, name := range del {
		leaving[name] = true
	}
	claimed := map[string]string{} // name → id, this round
	var put []store.Member
	for i := range contacts {
		c := &contacts[i]
		if c.ID == "" {
			continue
		}
		name, known := snap.byID[c.ID]
		if !known {
			name = hrefOf(c)
			if name == "" || !validName(name) {
				name = derivedName(c.ID)
			} else if old, ok := snap.byName[name]; (ok && old.ID != c.ID && !leaving[name]) || (claimed[name] != "" && claimed[name] != c.ID) {
				name = derivedName(c.ID)
			}
		}
		claimed[name] = c.ID
		b.cacheContact(c)
		m := store.Member{Name: name, ID: c.ID, ETag: contactETag(c), ChangeKey: c.ChangeKey, Modified: modTime(c), UID: uidFor(c, name)}
		if old, ok := snap.byName[name]; ok && old.ID == m.ID && old.ETag == m.ETag && old.UID == m.UID && !leaving[name] {
			continue
		}
		put = append(put, m)
	}
	return put
}

// validName accepts a resource name as one path segment.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") && len(name) <= 255
}

// Sync tokens are URIs: urn:contactsdav:sync:<book key>:<epoch>:<seq>.
const tokenPrefix = "urn:contactsdav:sync:"

func formatToken(key string, epoch, seq uint64) string {
	return tokenPrefix + key + ":" + strconv.FormatUint(epoch, 36) + ":" + strconv.FormatUint(seq, 10)
}

func parseToken(tok string) (key string, epoch, seq uint64, err error) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	parts := strings.Split(rest, ":")
	if !ok || len(parts) != 3 {
		return "", 0, 0, carddav.ErrInvalidSyncToken
	}
	if epoch, err = strconv.ParseUint(parts[1], 36, 64); err != nil {
		return "", 0, 0, carddav.ErrInvalidSyncToken
	}
	if seq, err = strconv.ParseUint(parts[2], 10, 64); err != nil {
		return "", 0, 0, carddav.ErrInvalidSyncToken
	}
	return parts[0], epoch, seq, nil
}

// SyncChanges implements carddav.Backend from the book's change log.
func (b *Backend) SyncChanges(ctx context.Context, slug, token string, limit int) (*carddav.Changes, error) {
	bk, err := b.book(ctx, slug)
	if err != nil {
		return nil, err
	}
	var from uint64
	var epoch uint64
	if token != "" {
		key, e, s, err := parseToken(token)
		if err != nil {
			return nil, err
		}
		if key != bk.Key {
			return nil, fmt.Errorf("token of another book: %w", carddav.ErrInvalidSyncToken)
		}
		epoch, from = e, s
	}
	if err := b.fresh(ctx, bk); err != nil {
		return nil, err
	}
	st, err := b.store.Book(ctx, b.user, bk.Key)
	if err != nil {
		return nil, storeErr("book", err)
	}
	if token == "" {
		epoch = st.Epoch
	}
	log, err := b.store.Changes(ctx, b.user, bk.Key, epoch, from, limit)
	if errors.Is(err, store.ErrExpired) {
		return nil, fmt.Errorf("sync token %s: %w", token, carddav.ErrInvalidSyncToken)
	}
	if err != nil {
		return nil, storeErr("changes", err)
	}
	snap, err := b.snapshot(ctx, bk)
	if err != nil {
		return nil, err
	}
	out := &carddav.Changes{Token: formatToken(bk.Key, epoch, st.Seq)}
	for _, c := range log {
		switch {
		case c.Deleted && token != "":
			out.Deleted = append(out.Deleted, c.Name)
		case !c.Deleted:
			info := carddav.ObjectInfo{Name: c.Name, ETag: c.ETag}
			if m, ok := snap.byName[c.Name]; ok {
				info.ModTime = m.Modified
			}
			out.Changed = append(out.Changed, info)
		}
	}
	if n := len(log); n > 0 {
		last := log[n-1].Seq
		if limit > 0 && n == limit && last < st.Seq {
			out.Truncated = true
		}
		if out.Truncated || last > st.Seq {
			out.Token = formatToken(bk.Key, epoch, last)
		}
	}
	return out, nil
}
