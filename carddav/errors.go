package carddav

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-webdav"
)

// Preconditions the handler itself reports, beside the backend's.
const (
	validSyncToken    Precondition = "valid-sync-token"   // DAV:, RFC 6578 §3.2
	supportedReport   Precondition = "supported-report"   // DAV:, RFC 3253 §3.6
	validResourceType Precondition = "valid-resourcetype" // DAV:, RFC 5689 §3.3
	// CARDDAV:, RFC 6352 §8.6 and §8.7.
	supportedAddressDataConversion Precondition = "supported-address-data-conversion"
	supportedFilter                Precondition = "supported-filter"
	supportedCollation             Precondition = "supported-collation"
)

// namespace tells which XML namespace a precondition belongs to.
func (p Precondition) namespace() string {
	switch p {
	case NeedPrivileges, validSyncToken, supportedReport, validResourceType:
		return nsDAV
	}
	return nsCardDAV
}

// httpErrorType is the dynamic type of webdav.NewHTTPError's errors, which
// live in go-webdav's internal package and so cannot be named for errors.As.
var httpErrorType = reflect.TypeOf(webdav.NewHTTPError(http.StatusTeapot, nil))

// httpStatus returns the status carried by a webdav.NewHTTPError anywhere in
// err's chain.
func httpStatus(err error) (int, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if reflect.TypeOf(e) != httpErrorType {
			continue
		}
		v := reflect.ValueOf(e).Elem().FieldByName("Code")
		if v.IsValid() && v.CanInt() {
			return int(v.Int()), true
		}
	}
	return 0, false
}

// retryAfter formats a Retry-After header in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// writePrecondition sends a DAV:error body naming the condition.
func writePrecondition(w http.ResponseWriter, status int, cond Precondition) {
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	if cond.namespace() == nsDAV {
		body += `<D:error xmlns:D="DAV:"><D:` + string(cond) + `/></D:error>` + "\n"
	} else {
		body += `<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><C:` + string(cond) + `/></D:error>` + "\n"
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// writeText sends a short plain-text answer.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(text)+1))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}

// challenge sends 401 with a Basic challenge; Thunderbird stores a password
// only when the challenge names a realm.
func (h *handler) challenge(w http.ResponseWriter) {
	realm := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(h.opts.Realm)
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	writeText(w, http.StatusUnauthorized, "authentication required")
}

// isThunderbird reports a Thunderbird client (or its fork Betterbird, which
// shares the CardDAV code), which recovers from a bad sync token only when
// it gets 400 (clients.md §2.2).
func isThunderbird(r *http.Request) bool {
	ua := r.Header.Get("User-Agent")
	return strings.Contains(ua, "Thunderbird") || strings.Contains(ua, "Betterbird")
}

// writeError answers a failed request by the error's type. The Go error text
// never reaches the client: it may carry upstream details.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		pre   *PreconditionError
		unav  *UnavailableError
		limit *RateLimitError
	)
	switch {
	case errors.Is(err, ErrInvalidSyncToken):
		status := http.StatusForbidden
		if isThunderbird(r) {
			status = http.StatusBadRequest
		}
		writePrecondition(w, status, validSyncToken)
	case errors.As(err, &pre):
		status := pre.Status
		if status == 0 {
			status = http.StatusForbidden
		}
		writePrecondition(w, status, pre.Condition)
	case errors.As(err, &unav):
		w.Header().Set("Retry-After", retryAfter(unav.RetryAfter))
		writeText(w, http.StatusServiceUnavailable, "service temporarily unavailable")
	case errors.As(err, &limit):
		w.Header().Set("Retry-After", retryAfter(limit.RetryAfter))
		writeText(w, http.StatusTooManyRequests, "too many failed login attempts")
	case errors.Is(err, ErrUnauthorized):
		h.challenge(w)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
		return
	default:
		status, ok := httpStatus(err)
		if !ok || status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		if status >= 500 {
			h.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "request failed",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Any("err", err))
		}
		if status == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
			w.Header().Set("Allow", allowFor(kindOf(r.URL)))
		}
		writeText(w, status, http.StatusText(status))
		return
	}
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelDebug, "request refused",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
}
