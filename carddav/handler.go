package carddav

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-webdav"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxResourceSize is the largest vCard accepted when Options leaves
// MaxResourceSize unset: room for an inline photo.
const DefaultMaxResourceSize = 8 << 20

// davCapabilities is the DAV header: class 1 and 3 WebDAV, CardDAV and
// extended MKCOL (RFC 5689). DAVx5 rejects a principal without "addressbook".
const davCapabilities = "1, 3, addressbook, extended-mkcol"

// Options configure NewHandler.
type Options struct {
	// Auth checks Basic credentials and returns the user's Backend; required.
	Auth Authenticator
	// Realm is the Basic realm; "contactsdav" if empty.
	Realm string
	// Logger receives one line per request (method, path, status,
	// duration, user, user agent); slog.Default() if nil.
	Logger *slog.Logger
	// Registry, if set, receives request counts and durations.
	Registry prometheus.Registerer
	// MaxResourceSize is the largest vCard a PUT may carry, in bytes;
	// DefaultMaxResourceSize if zero.
	MaxResourceSize int64
}

// handler serves one URL space for every user.
type handler struct {
	opts    Options
	metrics *metrics
	// meCards holds each user's CS:me-card href (Apple's "this is my card",
	// a PROPPATCH on the home set). It lives in memory only: losing it on a
	// restart costs the user one click, and Graph has nowhere to keep it.
	meCards sync.Map // user name → href
}

// NewHandler returns the CardDAV server. It owns the whole URL space it is
// mounted on, from /.well-known/carddav down to the address objects.
func NewHandler(opts Options) http.Handler {
	if opts.Auth == nil {
		panic("carddav: NewHandler without an Authenticator")
	}
	if opts.Realm == "" {
		opts.Realm = "contactsdav"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxResourceSize <= 0 {
		opts.MaxResourceSize = DefaultMaxResourceSize
	}
	h := &handler{opts: opts}
	if opts.Registry != nil {
		h.metrics = newMetrics(opts.Registry)
	}
	return h
}

// session is one authenticated request.
type session struct {
	*handler
	be   Backend
	user string
	r    *http.Request
}

// statusWriter records the status of an answer for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	user := h.serve(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	d := time.Since(start)
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", sw.status), slog.Duration("duration", d),
		slog.String("user", user), slog.String("ua", r.Header.Get("User-Agent")))
	if h.metrics != nil {
		h.metrics.observe(r.Method, sw.status, d)
	}
}

// serve answers a request and returns the authenticated user, if any.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) string {
	if p := r.URL.Path; p == "/.well-known/carddav" || p == "/.well-known/carddav/" {
		return h.wellKnown(w, r)
	}
	if strings.HasPrefix(r.URL.Path, "/.well-known/") {
		// Clients probe caldav and others too; no need to challenge.
		writeText(w, http.StatusNotFound, "not found")
		return ""
	}
	t := parsePath(r.URL.EscapedPath())
	if r.Method == http.MethodOptions {
		writeOptions(w, t.kind)
		return ""
	}
	s, ok := h.authenticate(w, r)
	if !ok {
		return ""
	}
	if t.kind == kindInvalid {
		writeText(w, http.StatusNotFound, "not found")
		return s.user
	}
	if t.kind != kindRoot && t.user != s.user {
		writeText(w, http.StatusForbidden, "forbidden")
		return s.user
	}
	if err := s.dispatch(w, t); err != nil {
		h.writeError(w, r, err)
	}
	return s.user
}

// writeOptions answers OPTIONS. It comes before authentication: DAVx5 and
// Apple probe with OPTIONS, and the capabilities are the same for everyone.
func writeOptions(w http.ResponseWriter, k kind) {
	w.Header().Set("DAV", davCapabilities)
	w.Header().Set("Allow", allowFor(k))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// authenticate checks Basic credentials; on failure it has answered.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (*session, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		h.challenge(w)
		return nil, false
	}
	be, err := h.opts.Auth.Authenticate(r, user, pass)
	if err == nil && be == nil {
		err = ErrUnauthorized
	}
	if err != nil {
		h.writeError(w, r, err)
		return nil, false
	}
	return &session{handler: h, be: be, user: user, r: r}, true
}

// wellKnown redirects /.well-known/carddav (RFC 6764): to the principal when
// credentials came with the request, else to the root, which challenges.
// 301 rather than 308: Radicale found other codes confuse clients, and
// Thunderbird and DAVx5 re-send the method and body on any redirect.
func (h *handler) wellKnown(w http.ResponseWriter, r *http.Request) string {
	if r.Method == http.MethodOptions {
		writeOptions(w, kindRoot)
		return ""
	}
	location, user := "/", ""
	if _, _, ok := r.BasicAuth(); ok {
		s, ok := h.authenticate(w, r)
		if !ok {
			return ""
		}
		location, user = principalHref(s.user), s.user
	}
	w.Header().Set("Location", location)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusMovedPermanently)
	return user
}

// dispatch runs a method on an authorized target.
func (s *session) dispatch(w http.ResponseWriter, t target) error {
	switch s.r.Method {
	case "PROPFIND":
		return s.propfind(w, t)
	case "PROPPATCH":
		return s.proppatch(w, t)
	case "REPORT":
		return s.report(w, t)
	case http.MethodGet, http.MethodHead:
		return s.get(w, t)
	case http.MethodPut:
		if t.kind == kindObject {
			return s.put(w, t)
		}
	case http.MethodDelete:
		return s.delete(w, t)
	case "MKCOL":
		return s.mkcol(w, t)
	}
	w.Header().Set("Allow", allowFor(t.kind))
	return webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("carddav: method not allowed here"))
}

// metrics are the handler's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactsdav_carddav_requests_total",
			Help: "CardDAV requests by method and status.",
		}, []string{"method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "contactsdav_carddav_request_duration_seconds",
			Help:    "CardDAV request durations by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	return m
}

// register adds a collector, reusing one a previous handler registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
	}
	return c
}

// knownMethods bounds the method label's values.
var knownMethods = map[string]bool{
	"OPTIONS": true, "GET": true, "HEAD": true, "PUT": true, "DELETE": true,
	"PROPFIND": true, "PROPPATCH": true, "REPORT": true, "MKCOL": true,
}

func (m *metrics) observe(method string, status int, d time.Duration) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	m.requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}
