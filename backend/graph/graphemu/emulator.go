// Package graphemu is a Microsoft Graph v1.0 contacts service emulator:
// contact folders (childFolders at any depth), contacts with Graph's JSON
// shapes, ids, change keys and PATCH semantics, per-folder delta with
// skip/delta tokens, $top/$skip paging, $select, $filter, $expand of
// single-value extended properties, contact photos, JSON $batch, Graph's
// error shape and its Outlook throttling (4 concurrent requests and 10,000
// requests per 10 minutes per mailbox), persisted in bbolt. The wire facts it
// follows are collected in the project's research notes (Part 1); behaviour
// those notes mark as inferred carries an [inf] comment here.
//
// It is the test double of the Graph client, the backend of end-to-end tests
// and benchmarks, and the embedded default of "contactsdav serve". The OAuth2
// endpoints are served by the oauthemu sub-package under the same prefix.
// GET PathPrefix+"/_emulator/counts" is emulator-only (not Graph): the
// request counts of Counts as a plain JSON object.
//
// Contact ids come in two kinds, as in Exchange: a regular id, which changes
// when the contact moves to another folder, and the immutable id returned to
// callers that send Prefer: IdType="ImmutableId". Folder ids never change.
//
// Not modelled: multi-value extended properties, extended properties
// written on folders, $search, $orderby on more than one property, $expand
// or $top inside delta, and transient 412s on reads. Unmodelled routes and
// options answer 501 NotImplemented, never a plausible 404.
package graphemu

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
)

// Options configure an Emulator.
type Options struct {
	DataDir    string              // bbolt database DataDir/graph.db; "" keeps everything in memory
	PathPrefix string              // mount point, e.g. "/graph": Graph at PathPrefix+"/v1.0/…", OAuth at PathPrefix+"/{tenant}/oauth2/v2.0/…"
	Authority  *oauthemu.Authority // token issuer; nil makes one
	Logger     *slog.Logger        // nil discards
	Faults     Faults              // injected failures
	Limits     Limits              // zero fields take Graph's documented values
	// PhotoDelete accepts DELETE …/photo/$value as a removal; by default it
	// answers 405, as the documentation lists no DELETE for contact photos.
	PhotoDelete bool
	// DistListEvery makes Seed add a contact group (IPM.DistList) after
	// every N contacts. Like Graph, lists leave groups out of "value" but
	// count them in $top, $skip and $count, so pages come up short
	// (docs-contrib#8153); delta and GET by id do not show them [inf].
	// 0: no groups.
	DistListEvery int
}

// Faults are failures injected at random into Graph requests (and $batch
// items), for exercising a client's retry paths.
type Faults struct {
	ThrottleRate    float64       // fraction of requests answered 429 TooManyRequests with Retry-After
	UnavailableRate float64       // fraction answered 503 ServiceNotAvailable with Retry-After
	ConflictRate    float64       // fraction of writes answered a transient 412 ErrorIrresolvableConflict
	Latency         time.Duration // added to every request
	RetryAfter      time.Duration // Retry-After of injected faults, sent as fractional seconds; default 1s
	Seed            int64         // seed of the fault draws, for reproducible runs
	// DeltaReplayRate is the fraction of delta items sent twice, with each
	// page then shuffled: Graph documents neither order nor uniqueness
	// within a round, so merge logic must be idempotent.
	DeltaReplayRate float64
	// ExpiredDelta picks the answer to an expired or unknown delta token.
	ExpiredDelta ExpiredDeltaMode
}

// ExpiredDeltaMode is how the emulator answers an expired delta or skip
// token.
type ExpiredDeltaMode int

// The answers to an expired delta token seen from Graph and its clients.
const (
	// ExpiredDelta410 is 410 SyncStateNotFound (the usual, documented case).
	ExpiredDelta410 ExpiredDeltaMode = iota
	// ExpiredDeltaReset is 410 SyncStateNotFound with a Location header
	// holding a fresh initial delta URL, the "synchronization reset" of the
	// delta overview.
	ExpiredDeltaReset
	// ExpiredDelta400 is 400 ErrorInvalidSyncStateData, which clients such
	// as Evolution also treat as "start over" (the code is [inf]).
	ExpiredDelta400
)

// Limits are the per-mailbox throttling limits.
type Limits struct {
	Concurrency       int           // concurrent requests per mailbox (default 4), else 429 ApplicationThrottled
	RequestsPerWindow int           // requests per mailbox per Window (default 10000), else 429 TooManyRequests
	Window            time.Duration // default 10 minutes
	MaxPhotoBytes     int           // largest photo upload (default 4 MiB)
	UploadBytes       int64         // bytes of POST/PATCH/PUT bodies per mailbox per UploadWindow (default 150 MB), else 429
	UploadWindow      time.Duration // default 5 minutes
	// NamedProps is the mailbox's quota of distinct named extended
	// properties ("{GUID} Name x"); a write that would exceed it fails as
	// MapiExceptionNamedPropsQuotaExceeded. Default 16384, Exchange's
	// default quota [inf].
	NamedProps int
}

// Emulator is the Graph contacts service. It is an http.Handler.
type Emulator struct {
	prefix string
	auth   *oauthemu.Authority
	log    *slog.Logger
	limits Limits
	st     *store

	photoDelete   bool
	distListEvery int

	mu        sync.Mutex // guards mailboxes
	mailboxes map[string]*mailbox

	limMu sync.Mutex // guards mailbox inflight/window counters

	faultMu sync.Mutex
	faults  Faults
	rnd     *rand.Rand

	holdMu sync.Mutex
	hold   chan struct{}
	held   int

	countMu   sync.Mutex
	counts    map[string]int
	immutable [2]int // requests without / with Prefer: IdType="ImmutableId"
}

// New opens (or creates) the emulator's store and returns the emulator.
func New(opts Options) (*Emulator, error) {
	l := opts.Limits
	if l.Concurrency <= 0 {
		l.Concurrency = 4
	}
	if l.RequestsPerWindow <= 0 {
		l.RequestsPerWindow = 10000
	}
	if l.Window <= 0 {
		l.Window = 10 * time.Minute
	}
	if l.MaxPhotoBytes <= 0 {
		l.MaxPhotoBytes = 4 << 20
	}
	if l.UploadBytes <= 0 {
		l.UploadBytes = 150_000_000
	}
	if l.UploadWindow <= 0 {
		l.UploadWindow = 5 * time.Minute
	}
	if l.NamedProps <= 0 {
		l.NamedProps = 16384
	}
	auth := opts.Authority
	if auth == nil {
		auth = oauthemu.New(oauthemu.Options{})
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(opts.DataDir)
	if err != nil {
		return nil, err
	}
	mbs, err := st.load()
	if err != nil {
		st.close()
		return nil, err
	}
	e := &Emulator{
		prefix:    strings.TrimSuffix(opts.PathPrefix, "/"),
		auth:      auth,
		log:       logger,
		limits:    l,
		st:        st,
		mailboxes: mbs,
		counts:    map[string]int{},

		photoDelete:   opts.PhotoDelete,
		distListEvery: opts.DistListEvery,
	}
	e.SetFaults(opts.Faults)
	return e, nil
}

// Close closes the store. In-flight requests should be finished first.
func (e *Emulator) Close() error { return e.st.close() }

// Authority returns the token authority whose tokens the emulator accepts.
func (e *Emulator) Authority() *oauthemu.Authority { return e.auth }

// SetFaults replaces the injected faults (and reseeds their draws).
func (e *Emulator) SetFaults(f Faults) {
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	e.faultMu.Lock()
	e.faults = f
	e.rnd = rand.New(rand.NewSource(f.Seed))
	e.faultMu.Unlock()
}

// AddMailbox creates the mailbox of upn with its default Contacts folder; it
// is a no-op when the mailbox exists.
func (e *Emulator) AddMailbox(upn string) error {
	_, err := e.mailbox(upn, true)
	return err
}

// AccessToken mints a delegated bearer token for upn.
func (e *Emulator) AccessToken(upn string) string {
	return e.auth.Mint(oauthemu.Principal{User: upn}, 0)
}

// ExpireDeltaTokens makes every outstanding delta and skip token of the
// mailbox answer 410 SyncStateNotFound, as when Exchange evicts sync states.
func (e *Emulator) ExpireDeltaTokens(upn string) {
	mb, err := e.mailbox(upn, false)
	if err != nil || mb == nil {
		return
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.meta.DeltaGen++
	if err := e.st.save(mb); err != nil {
		e.log.Error("graphemu: persist delta generation", "err", err)
	}
}

// Hold makes Graph requests block, after they took their concurrency slot,
// until release is called (or their context ends).
func (e *Emulator) Hold() (release func()) {
	ch := make(chan struct{})
	e.holdMu.Lock()
	e.hold = ch
	e.holdMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.holdMu.Lock()
			if e.hold == ch {
				e.hold = nil
			}
			e.holdMu.Unlock()
			close(ch)
		})
	}
}

// Held returns the number of requests currently blocked by Hold.
func (e *Emulator) Held() int {
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	return e.held
}

// Counts returns request counts keyed "operation status", e.g.
// "contacts.list 200".
func (e *Emulator) Counts() map[string]int {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	out := make(map[string]int, len(e.counts))
	for k, v := range e.counts {
		out[k] = v
	}
	return out
}

// NamedProperties returns the distinct named extended properties
// ("{GUID} name", lower-cased) ever written in the mailbox, in first-use
// order: each uses a slot of the mailbox's named-property table for good,
// so a client should use few.
func (e *Emulator) NamedProperties(upn string) []string {
	mb, _ := e.mailbox(upn, false)
	if mb == nil {
		return nil
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]string(nil), mb.meta.Named...)
}

// ImmutableIDRequests returns how many mailbox requests carried
// Prefer: IdType="ImmutableId" and how many did not, so a test can check
// that a client always asks for ids that survive moves.
func (e *Emulator) ImmutableIDRequests() (with, without int) {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	return e.immutable[1], e.immutable[0]
}

func (e *Emulator) count(op string, status int) {
	e.countMu.Lock()
	e.counts[op+" "+strconv.Itoa(status)]++
	e.countMu.Unlock()
}

// mailbox finds the mailbox of upn, creating it when create is set.
func (e *Emulator) mailbox(upn string, create bool) (*mailbox, error) {
	key := strings.ToLower(upn)
	e.mu.Lock()
	defer e.mu.Unlock()
	if mb, ok := e.mailboxes[key]; ok {
		return mb, nil
	}
	if !create {
		return nil, nil
	}
	if upn == "" || !strings.Contains(upn, "@") {
		return nil, errors.New("graphemu: a mailbox needs a user principal name like user@example.com")
	}
	mb := newMailbox()
	local := upn[:strings.IndexByte(upn, '@')]
	mb.meta = mailboxMeta{UPN: upn, UserID: newGUID(), DisplayName: local, DefaultID: newItemID(), RootID: newItemID()}
	seq := mb.next()
	def := &folder{ID: mb.meta.DefaultID, DisplayName: "Contacts", Parent: mb.meta.RootID, Seq: seq, Entered: seq, CreatedSeq: seq, Modified: time.Now().UTC()}
	mb.folders[def.ID] = def
	if err := e.st.save(mb, putJSON(bFolders, def.ID, def)); err != nil {
		return nil, err
	}
	e.mailboxes[key] = mb
	return mb, nil
}

// reqInfo is what the error writer needs about the request.
type reqInfo struct {
	id, client string
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ServeHTTP serves Graph under PathPrefix+"/v1.0", the OAuth2 endpoints
// under PathPrefix+"/{tenant}/oauth2/v2.0" and the emulator-only
// PathPrefix+"/_emulator/counts".
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ri := reqInfo{id: newGUID(), client: r.Header.Get("client-request-id")}
	if ri.client == "" {
		ri.client = ri.id
	}
	w.Header().Set("request-id", ri.id)
	w.Header().Set("client-request-id", ri.client)
	rest, ok := strings.CutPrefix(r.URL.Path, e.prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		e.writeError(w, ri, errf(501, "NotImplemented", "%s %s is outside the emulator's mount point %q.", r.Method, r.URL.Path, e.prefix+"/"))
		e.count("unmodelled", 501)
		return
	}
	switch {
	case rest == "/_emulator/counts" && r.Method == http.MethodGet:
		// Emulator-only, not Graph-shaped: request counts as plain JSON.
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.Counts())
		return
	case strings.HasPrefix(rest, "/v1.0/"):
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		op := e.serveGraph(sw, r, rest[len("/v1.0"):], ri, false)
		if sw.status == 0 {
			sw.status = 200
		}
		e.count(op, sw.status)
		// The query is left out: it can carry contact data ($filter).
		e.log.Debug("graphemu request", "method", r.Method, "path", r.URL.Path, "op", op,
			"status", sw.status, "duration", time.Since(start), "request-id", ri.id)
		return
	}
	if segs := strings.Split(strings.TrimPrefix(rest, "/"), "/"); len(segs) >= 2 && segs[1] == "oauth2" {
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		e.auth.ServeHTTP(w, r2)
		return
	}
	e.writeError(w, ri, errf(501, "NotImplemented", "The emulator does not model %s %s.", r.Method, r.URL.Path))
	e.count("unmodelled", 501)
}

// graphError is Graph's error body, fields in Graph's order.
type graphError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Date            string `json:"date"`
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// writeError writes Graph's error shape.
func (e *Emulator) writeError(w http.ResponseWriter, ri reqInfo, ae *apiError) {
	var body graphError
	body.Error.Code, body.Error.Message = ae.code, ae.message
	body.Error.InnerError.Date = time.Now().UTC().Format("2006-01-02T15:04:05")
	body.Error.InnerError.RequestID, body.Error.InnerError.ClientRequestID = ri.id, ri.client
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	_, _ = w.Write(mustJSON(body))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func formatRetryAfter(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// throttled writes a 429 or 503 with Retry-After.
func (e *Emulator) throttled(w http.ResponseWriter, ri reqInfo, status int, code, msg string, after time.Duration) {
	w.Header().Set("Retry-After", formatRetryAfter(after))
	e.writeError(w, ri, errf(status, code, "%s", msg))
}

// admit applies latency, injected faults and the mailbox's limits. On
// success the caller must call the returned release.
func (e *Emulator) admit(ctx context.Context, w http.ResponseWriter, ri reqInfo, mb *mailbox, write bool) (release func(), ok bool) {
	e.faultMu.Lock()
	f := e.faults
	throttle := f.ThrottleRate > 0 && e.rnd.Float64() < f.ThrottleRate
	unavailable := !throttle && f.UnavailableRate > 0 && e.rnd.Float64() < f.UnavailableRate
	conflict := !throttle && !unavailable && write && f.ConflictRate > 0 && e.rnd.Float64() < f.ConflictRate
	e.faultMu.Unlock()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			e.writeError(w, ri, errf(504, "GatewayTimeout", "The request was cancelled."))
			return nil, false
		}
	}
	switch {
	case throttle:
		e.throttled(w, ri, 429, "TooManyRequests", "Please retry again later.", f.RetryAfter)
		return nil, false
	case unavailable:
		e.throttled(w, ri, 503, "ServiceNotAvailable", "Service is temporarily unavailable. Please retry later.", f.RetryAfter)
		return nil, false
	case conflict:
		e.writeError(w, ri, errIrresolvable())
		return nil, false
	}

	now := time.Now()
	e.limMu.Lock()
	if now.Sub(mb.windowStart) >= e.limits.Window {
		mb.windowStart, mb.windowCount = now, 0
	}
	if mb.windowCount >= e.limits.RequestsPerWindow {
		wait := mb.windowStart.Add(e.limits.Window).Sub(now)
		e.limMu.Unlock()
		e.throttled(w, ri, 429, "TooManyRequests", "Please retry again later.", wait)
		return nil, false
	}
	mb.windowCount++
	if mb.inflight >= e.limits.Concurrency {
		e.limMu.Unlock()
		// Graph answers a concurrency breach at once; the wait is [inf].
		e.throttled(w, ri, 429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.", 500*time.Millisecond)
		return nil, false
	}
	mb.inflight++
	e.limMu.Unlock()
	release = func() {
		e.limMu.Lock()
		mb.inflight--
		e.limMu.Unlock()
	}

	e.holdMu.Lock()
	hold := e.hold
	if hold != nil {
		e.held++
	}
	e.holdMu.Unlock()
	if hold != nil {
		var cancelled bool
		select {
		case <-hold:
		case <-ctx.Done():
			cancelled = true
		}
		e.holdMu.Lock()
		e.held--
		e.holdMu.Unlock()
		if cancelled {
			release()
			e.writeError(w, ri, errf(504, "GatewayTimeout", "The request was cancelled."))
			return nil, false
		}
	}
	return release, true
}

// chargeUpload counts n uploaded bytes against the mailbox's upload budget
// (150 MB per 5 minutes per app and mailbox, documented); over it, the
// request is refused with 429 TooManyRequests and the window's remainder
// as Retry-After [inf: the code].
func (e *Emulator) chargeUpload(w http.ResponseWriter, ri reqInfo, mb *mailbox, n int) bool {
	now := time.Now()
	e.limMu.Lock()
	if now.Sub(mb.uploadStart) >= e.limits.UploadWindow {
		mb.uploadStart, mb.uploadBytes = now, 0
	}
	if mb.uploadBytes+int64(n) > e.limits.UploadBytes {
		wait := mb.uploadStart.Add(e.limits.UploadWindow).Sub(now)
		e.limMu.Unlock()
		e.throttled(w, ri, 429, "TooManyRequests", "Please retry again later.", wait)
		return false
	}
	mb.uploadBytes += int64(n)
	e.limMu.Unlock()
	return true
}

func errIrresolvable() *apiError {
	return errf(412, "ErrorIrresolvableConflict", "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.")
}

func errNotFound() *apiError {
	return errf(404, "ErrorItemNotFound", "The specified object was not found in the store., The process failed to get the correct properties.")
}

func errMalformed() *apiError {
	return errf(400, "ErrorInvalidIdMalformed", "Id is malformed.")
}

// disorder applies Faults.DeltaReplayRate to a delta page.
func (e *Emulator) disorder(page []deltaItem) []deltaItem {
	e.faultMu.Lock()
	defer e.faultMu.Unlock()
	rate := e.faults.DeltaReplayRate
	if rate <= 0 || len(page) == 0 {
		return page
	}
	out := append([]deltaItem(nil), page...)
	for _, it := range page {
		if e.rnd.Float64() < rate {
			out = append(out, it)
		}
	}
	e.rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
