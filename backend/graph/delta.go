package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ContactsDelta runs one delta round of a folder ("" is the default one):
// from deltaLink, or from a fresh start when it is "", following every
// @odata.nextLink verbatim to the final @odata.deltaLink. Only q.Select and
// q.PageSize (sent as Prefer: odata.maxpagesize) apply; $expand inside delta
// is unreliable at Graph, so fetch extended properties of the changed ids
// with GetContacts. An expired link gives an error matching
// ErrSyncStateNotFound: start again from "".
func (c *Client) ContactsDelta(ctx context.Context, folderID, deltaLink string, q Query) (*DeltaResult, error) {
	prefer := []string{"odata.maxpagesize=" + strconv.Itoa(q.pageSize())}
	link := deltaLink
	fromServer := link != "" // the link is Graph's own: a 400 means it no longer reads it
	if link == "" {
		link = c.mailboxURL(folderPath(folderID)+"/contacts/delta", Query{Select: q.Select}.rawQuery(false))
	} else if err := c.checkLink(link); err != nil {
		// A saved link for another Graph root (the base URL was changed
		// since it was saved) is never followed, so the token stays here;
		// to the caller it is a lost sync state: re-list and start over.
		return nil, fmt.Errorf("%w: %w", ErrSyncStateNotFound, err)
	}

	m := newDeltaMerge()
	g := newLinkGuard(link)
	for {
		var p page[Contact]
		if err := c.getJSON(ctx, "ContactsDelta", link, prefer, &p); err != nil {
			return nil, deltaError(err, fromServer)
		}
		for _, ct := range p.Value {
			m.add(ct)
		}
		switch {
		case p.NextLink != "":
			if err := g.next(c, p.NextLink); err != nil {
				return nil, err
			}
			link, fromServer = p.NextLink, true
		case p.DeltaLink != "":
			if err := c.checkLink(p.DeltaLink); err != nil {
				return nil, err
			}
			return m.result(p.DeltaLink), nil
		default:
			return nil, errors.New("graph: delta page with neither nextLink nor deltaLink")
		}
	}
}

// deltaError makes an expired delta state recognisable: 410 and
// SyncStateNotFound already match ErrSyncStateNotFound; a 400 on a link
// Graph handed out (ErrorInvalidIdMalformed, or another 400) means the same
// thing, as Evolution treats it.
func deltaError(err error, fromServer bool) error {
	var ge *Error
	if !errors.As(err, &ge) || errors.Is(err, ErrSyncStateNotFound) {
		return err
	}
	if fromServer && ge.Status == http.StatusBadRequest {
		return fmt.Errorf("%w: %w", ErrSyncStateNotFound, err)
	}
	return err
}

// deltaMerge folds delta pages idempotently: an id's last appearance wins,
// so a change then a tombstone is a removal and a tombstone then a change
// is a change.
type deltaMerge struct {
	order []string
	last  map[string]Contact
}

func newDeltaMerge() *deltaMerge { return &deltaMerge{last: map[string]Contact{}} }

func (m *deltaMerge) add(ct Contact) {
	if ct.ID == "" {
		return
	}
	if _, ok := m.last[ct.ID]; !ok {
		m.order = append(m.order, ct.ID)
	}
	m.last[ct.ID] = ct
}

func (m *deltaMerge) result(deltaLink string) *DeltaResult {
	r := &DeltaResult{DeltaLink: deltaLink}
	for _, id := range m.order {
		ct := m.last[id]
		if ct.Removed != nil {
			r.Removed = append(r.Removed, id)
		} else {
			r.Changed = append(r.Changed, ct)
		}
	}
	return r
}
