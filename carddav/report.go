package carddav

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/emersion/go-webdav"
)

// report answers REPORT by its root element.
func (s *session) report(w http.ResponseWriter, t target) error {
	root, err := readXML(s.r)
	if err != nil {
		return err
	}
	if root == nil {
		return webdav.NewHTTPError(http.StatusBadRequest, errors.New("carddav: REPORT without body"))
	}
	switch root.XMLName {
	case cardName("addressbook-multiget"):
		return s.multiget(w, t, root)
	case cardName("addressbook-query"):
		return s.addressbookQuery(w, t, root)
	case davName("sync-collection"):
		return s.syncCollection(w, t, root)
	}
	return &PreconditionError{Status: http.StatusForbidden, Condition: supportedReport,
		Err: fmt.Errorf("report %s %s", root.XMLName.Space, root.XMLName.Local)}
}

// multiget answers addressbook-multiget (RFC 6352 §8.7). Each href is
// echoed as the client wrote it, because Thunderbird matches hrefs as
// strings; hrefs that name no object of this user get a 404 each.
func (s *session) multiget(w http.ResponseWriter, t target, root *element) error {
	q := parsePropRequest(root)
	_, version, err := cardRequest(q)
	if err != nil {
		return err
	}
	type wanted struct {
		href string
		t    target
	}
	var hrefs []wanted
	byBook := map[string][]string{}
	var books []string
	for i := range root.Children {
		c := &root.Children[i]
		if c.XMLName != davName("href") {
			continue
		}
		href := strings.TrimSpace(c.Text)
		ht := target{}
		if u, err := url.Parse(href); err == nil {
			ht = parsePath(u.EscapedPath())
		}
		if ht.kind != kindObject || ht.user != s.user {
			ht = target{}
		} else {
			if _, ok := byBook[ht.book]; !ok {
				books = append(books, ht.book)
			}
			byBook[ht.book] = append(byBook[ht.book], ht.name)
		}
		hrefs = append(hrefs, wanted{href, ht})
	}
	loaded := map[string]map[string]objectData{}
	for _, book := range books {
		objs, err := s.loadObjects(book, dedupe(byBook[book]), version)
		if status, ok := httpStatus(err); ok && status == http.StatusNotFound {
			objs, err = nil, nil // the book is gone: every href in it is a 404
		}
		if err != nil {
			return err
		}
		loaded[book] = objs
	}
	ms := &multistatus{}
	for _, h := range hrefs {
		o, ok := loaded[h.t.book][h.t.name]
		if h.t.kind != kindObject || !ok {
			ms.responses = append(ms.responses, response{href: h.href, status: http.StatusNotFound})
			continue
		}
		resp, err := respond(h.href, s.objectProps(o), q)
		if err != nil {
			return err
		}
		ms.responses = append(ms.responses, resp)
	}
	s.writeMultistatus(w, ms)
	return nil
}

func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := names[:0:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// syncCollection answers the RFC 6578 sync-collection REPORT on a book.
// The Depth header is ignored: clients disagree (Thunderbird sends 1, DAVx5
// 0, go-webdav none). sync-level "infinite" is answered as 1, which is the
// same thing for a book, since it holds no collections.
func (s *session) syncCollection(w http.ResponseWriter, t target, root *element) error {
	if t.kind != kindBook {
		return &PreconditionError{Status: http.StatusForbidden, Condition: supportedReport,
			Err: errors.New("sync-collection outside an address book")}
	}
	token := ""
	if el := root.child(davName("sync-token")); el != nil {
		token = strings.TrimSpace(el.Text)
	}
	if el := root.child(davName("sync-level")); el != nil {
		switch lvl := strings.TrimSpace(el.Text); lvl {
		case "", "1", "infinite", "infinity":
		default:
			return webdav.NewHTTPError(http.StatusBadRequest, fmt.Errorf("carddav: sync-level %q", lvl))
		}
	}
	limit, err := parseLimit(root.child(davName("limit")), nsDAV)
	if err != nil {
		return err
	}
	q := parsePropRequest(root)
	need, version, err := cardRequest(q)
	if err != nil {
		return err
	}
	ch, err := s.be.SyncChanges(s.r.Context(), t.book, token, limit)
	if err != nil {
		return err
	}
	var loaded map[string]objectData
	if need {
		if loaded, err = s.loadListed(t.book, ch.Changed, version); err != nil {
			return err
		}
	}
	ms := &multistatus{syncToken: ch.Token, hasSyncToken: true}
	for _, c := range ch.Changed {
		o := objectData{ObjectInfo: c}
		if need {
			l, ok := loaded[c.Name]
			if !ok { // deleted since the change was logged
				ms.responses = append(ms.responses, response{href: t.member(c.Name, false), status: http.StatusNotFound})
				continue
			}
			o = l
		}
		resp, err := respond(t.member(c.Name, false), s.objectProps(o), q)
		if err != nil {
			return err
		}
		ms.responses = append(ms.responses, resp)
	}
	for _, name := range ch.Deleted {
		ms.responses = append(ms.responses, response{href: t.member(name, false), status: http.StatusNotFound})
	}
	if ch.Truncated {
		ms.responses = append(ms.responses, response{href: t.href(), status: http.StatusInsufficientStorage})
	}
	s.writeMultistatus(w, ms)
	return nil
}
