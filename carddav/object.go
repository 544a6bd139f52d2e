package carddav

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/emersion/go-webdav"
)

// Why GET, PUT and DELETE are ours: go-webdav's PUT decodes the body with
// go-vcard (which corrupts escaping, clients.md §5) before the backend sees
// it and always answers 201; its DELETE drops If-Match; its GET ignores
// Accept, so it could not serve 3.0 to Apple and 4.0 to DAVx5.

// acceptVersion picks the vCard version from an Accept header: 4.0 only
// when text/vcard;version=4.0 is asked for, else 3.0.
func acceptVersion(accept string) string {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "text/vcard" && params["version"] == "4.0" {
			return "4.0"
		}
	}
	return "3.0"
}

// etagMatches reports whether an If-None-Match list names etag.
func etagMatches(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
		if e == "*" || (etag != "" && e == etag) {
			return true
		}
	}
	return false
}

// get answers GET and HEAD: the card for an object, a line of text for a
// collection (a browser pointed at the server should see something).
func (s *session) get(w http.ResponseWriter, t target) error {
	ctx := s.r.Context()
	switch t.kind {
	case kindObject:
	case kindBook:
		if _, err := s.be.AddressBook(ctx, t.book); err != nil {
			return err
		}
		writeText(w, http.StatusOK, "CardDAV address book: use a CardDAV client.")
		return nil
	default:
		writeText(w, http.StatusOK, "contactsdav CardDAV server: use a CardDAV client.")
		return nil
	}
	objs, err := s.be.GetObjects(ctx, t.book, []string{t.name}, acceptVersion(s.r.Header.Get("Accept")))
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return webdav.NewHTTPError(http.StatusNotFound, nil)
	}
	o := objs[0]
	h := w.Header()
	if o.ETag != "" {
		h.Set("ETag", o.ETag)
	}
	if !o.ModTime.IsZero() {
		h.Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	}
	if inm := s.r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, o.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", vcardContentType)
	h.Set("Content-Length", strconv.Itoa(len(o.Card)))
	w.WriteHeader(http.StatusOK)
	if s.r.Method != http.MethodHead {
		_, _ = w.Write(o.Card)
	}
	return nil
}

// put stores the client's vCard as sent. A request without Content-Type is
// taken as a vCard (the backend validates the bytes anyway); text/x-vcard
// and text/directory are old names for the same thing.
func (s *session) put(w http.ResponseWriter, t target) error {
	if ct := s.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "text/vcard" && mt != "text/x-vcard" && mt != "text/directory") {
			return &PreconditionError{Status: http.StatusUnsupportedMediaType, Condition: SupportedAddressData}
		}
	}
	max := s.opts.MaxResourceSize
	tooLarge := &PreconditionError{Status: http.StatusRequestEntityTooLarge, Condition: MaxResourceSize}
	if s.r.ContentLength > max {
		return tooLarge
	}
	card, err := io.ReadAll(io.LimitReader(s.r.Body, max+1))
	if err != nil {
		return webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	if int64(len(card)) > max {
		return tooLarge
	}
	cond := Conditions{
		IfMatch:     webdav.ConditionalMatch(s.r.Header.Get("If-Match")),
		IfNoneMatch: webdav.ConditionalMatch(s.r.Header.Get("If-None-Match")),
	}
	res, err := s.be.PutObject(s.r.Context(), t.book, t.name, card, cond)
	if status, ok := httpStatus(err); ok && status == http.StatusNotFound {
		// The object's own absence is a 412 (If-Match) or a create, so a
		// 404 means the book is missing: RFC 4918 §9.7.1 says 409.
		return webdav.NewHTTPError(http.StatusConflict, err)
	}
	if err != nil {
		return err
	}
	if res.ETag != "" {
		w.Header().Set("ETag", res.ETag)
	}
	w.Header().Set("Content-Length", "0")
	if res.Created {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// delete removes an object (honouring If-Match) or a whole book.
func (s *session) delete(w http.ResponseWriter, t target) error {
	ctx := s.r.Context()
	var err error
	switch t.kind {
	case kindObject:
		err = s.be.DeleteObject(ctx, t.book, t.name, webdav.ConditionalMatch(s.r.Header.Get("If-Match")))
	case kindBook:
		err = s.be.DeleteAddressBook(ctx, t.book)
	default:
		err = webdav.NewHTTPError(http.StatusForbidden, errors.New("carddav: cannot delete this collection"))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
