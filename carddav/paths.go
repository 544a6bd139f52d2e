package carddav

import (
	"net/url"
	"strings"
)

// The URL layout, by path depth (clients.md §6):
//
//	/                                  root
//	/<user>/                           principal
//	/<user>/contacts/                  address book home set
//	/<user>/contacts/<book>/           address book
//	/<user>/contacts/<book>/<name>     address object
//
// Every path matches with or without a trailing slash; the hrefs written
// end collections with "/" and percent-encode each segment.

// homeSegment is the home set's path segment under the principal.
const homeSegment = "contacts"

// kind is what a path names.
type kind int

const (
	kindInvalid kind = iota
	kindRoot
	kindPrincipal
	kindHome
	kindBook
	kindObject
)

// target is a parsed request path.
type target struct {
	kind       kind
	user, book string
	name       string // object resource name
}

// parsePath splits an escaped URL path into its decoded segments.
func parsePath(escaped string) target {
	if !strings.HasPrefix(escaped, "/") {
		return target{}
	}
	trimmed := strings.TrimSuffix(escaped[1:], "/")
	if trimmed == "" {
		return target{kind: kindRoot}
	}
	raw := strings.Split(trimmed, "/")
	if len(raw) > 4 {
		return target{}
	}
	segs := make([]string, len(raw))
	for i, s := range raw {
		d, err := url.PathUnescape(s)
		if err != nil || d == "" || d == "." || d == ".." || strings.Contains(d, "/") {
			return target{}
		}
		segs[i] = d
	}
	t := target{kind: kind(int(kindRoot) + len(segs)), user: segs[0]}
	if len(segs) >= 2 && segs[1] != homeSegment {
		return target{}
	}
	if len(segs) >= 3 {
		t.book = segs[2]
	}
	if len(segs) == 4 {
		t.name = segs[3]
	}
	return t
}

// kindOf classifies a request URL.
func kindOf(u *url.URL) kind {
	return parsePath(u.EscapedPath()).kind
}

// hrefs of the layout's resources, percent-encoded.
func principalHref(user string) string { return "/" + url.PathEscape(user) + "/" }
func homeHref(user string) string      { return principalHref(user) + homeSegment + "/" }
func bookHref(user, book string) string {
	return homeHref(user) + url.PathEscape(book) + "/"
}
func objectHref(user, book, name string) string {
	return bookHref(user, book) + url.PathEscape(name)
}

// href returns the canonical href of a target.
func (t target) href() string {
	switch t.kind {
	case kindPrincipal:
		return principalHref(t.user)
	case kindHome:
		return homeHref(t.user)
	case kindBook:
		return bookHref(t.user, t.book)
	case kindObject:
		return objectHref(t.user, t.book, t.name)
	}
	return "/"
}

// allowFor lists the methods a kind of resource accepts.
func allowFor(k kind) string {
	switch k {
	case kindBook:
		return "OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, REPORT, MKCOL, DELETE"
	case kindObject:
		return "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT"
	case kindInvalid:
		return "OPTIONS"
	}
	return "OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, REPORT"
}
