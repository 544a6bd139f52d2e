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
	// base is the path as the client escaped it, with the trailing slash
	// of a collection. Answers about a request's own resource and its
	// members use it, so they match the request URL as a string whatever
	// the client's percent-encoding (DAVx5 matches its own URL that way).
	base string
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
	t := target{kind: kind(int(kindRoot) + len(segs)), user: segs[0], base: "/" + trimmed}
	if t.kind != kindObject {
		t.base += "/"
	}
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

// Canonical hrefs of the principal and home set, percent-encoded.
func principalHref(user string) string { return "/" + url.PathEscape(user) + "/" }
func homeHref(user string) string      { return principalHref(user) + homeSegment + "/" }

// href returns the target's href as the client wrote it ("/" for the zero
// target).
func (t target) href() string {
	if t.base == "" {
		return "/"
	}
	return t.base
}

// member returns the href of a member of a collection target.
func (t target) member(name string, collection bool) string {
	h := t.href() + url.PathEscape(name)
	if collection {
		h += "/"
	}
	return h
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
