package graph

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/semaphore"
)

// Defaults of Options.
const (
	DefaultMaxConcurrent = 4 // Outlook's documented per-mailbox concurrency cap
	DefaultMaxRetries    = 4
	DefaultBaseBackoff   = time.Second
	DefaultMaxBackoff    = 60 * time.Second
	// DefaultPageSize is the $top of lists and the odata.maxpagesize of
	// delta when a Query leaves PageSize zero.
	DefaultPageSize = 250
	// MaxPageSize is the largest $top Graph accepts on contacts.
	MaxPageSize = 1000
	// MaxBatch is the number of requests Graph accepts in one $batch.
	MaxBatch = 20
)

// maxResponse bounds the bytes read of one answer: a page of 1000 contacts
// or a 4 MB photo fit many times over.
const maxResponse = 64 << 20

// maxPages bounds every nextLink walk, so a server that keeps minting new
// links cannot keep a client busy for ever (a million contacts at $top=10).
const maxPages = 100000

// Options configure a Client.
type Options struct {
	// BaseURL is the Graph version root; default Clouds["global"].GraphBase.
	BaseURL string
	// Mailbox is the user principal name to work on; "" uses /me.
	Mailbox string
	// TokenSource gives bearer tokens; required. The Client caches a token
	// until it expires and asks the source again after a 401, once per
	// request. A source that caches tokens itself should implement
	// TokenInvalidator, or that one retry gets the same refused token.
	TokenSource oauth2.TokenSource
	// HTTPClient sends the requests; default http.DefaultClient. It must
	// not add its own Authorization header.
	HTTPClient *http.Client
	// MaxConcurrent caps requests in flight (default 4). Ignored when
	// Limiter is set.
	MaxConcurrent int
	// Limiter, when set, is shared with other Clients of the same mailbox
	// (or app registration) so the cap holds across them.
	Limiter *Limiter
	// MaxRetries is how many times a throttled or failed request is
	// retried (default 4; negative means none).
	MaxRetries int
	// MaxBackoff caps one wait between attempts (default 60s). A
	// Retry-After longer than this is not waited for: the error is returned
	// at once with its RetryAfter so the caller can pass it on.
	MaxBackoff time.Duration
	// BaseBackoff is the first wait of the exponential backoff used when
	// the server gives no Retry-After (default 1s).
	BaseBackoff time.Duration
	// Logger receives debug lines about retries; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts requests and their durations.
	Metrics *Metrics
}

// Client is a Graph v1.0 contacts client for one mailbox. It is safe for
// concurrent use.
type Client struct {
	base        *url.URL // version root, e.g. https://graph.microsoft.com/v1.0
	baseStr     string   // base without a trailing slash
	mailboxPath string   // "/me" or "/users/{upn}", relative to base
	hc          *http.Client
	ts          *tokenCache
	lim         *Limiter
	maxRetries  int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	log         *slog.Logger
	metrics     *Metrics
}

// New returns a Client configured by opts.
func New(opts Options) (*Client, error) {
	if opts.TokenSource == nil {
		return nil, errors.New("graph: Options.TokenSource is required")
	}
	base := opts.BaseURL
	if base == "" {
		base = Clouds["global"].GraphBase
	}
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("graph: bad BaseURL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("graph: BaseURL %q is not an absolute http(s) URL", base)
	}
	c := &Client{
		base:        u,
		baseStr:     base,
		mailboxPath: "/me",
		hc:          opts.HTTPClient,
		ts:          &tokenCache{src: opts.TokenSource},
		lim:         opts.Limiter,
		maxRetries:  opts.MaxRetries,
		baseBackoff: opts.BaseBackoff,
		maxBackoff:  opts.MaxBackoff,
		log:         opts.Logger,
		metrics:     opts.Metrics,
	}
	if opts.Mailbox != "" {
		c.mailboxPath = "/users/" + url.PathEscape(opts.Mailbox)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.lim == nil {
		n := opts.MaxConcurrent
		if n <= 0 {
			n = DefaultMaxConcurrent
		}
		c.lim = NewLimiter(n)
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.baseBackoff <= 0 {
		c.baseBackoff = DefaultBaseBackoff
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = DefaultMaxBackoff
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// Limiter caps the requests in flight; share one between Clients that
// Graph throttles together (the Outlook cap is 4 per app and mailbox). A
// $batch counts as the items Graph runs at once for it (up to 4), since
// each of them holds one of Outlook's concurrency slots.
type Limiter struct {
	sem *semaphore.Weighted
	n   int64
}

// NewLimiter returns a Limiter allowing n requests at once (at least 1).
func NewLimiter(n int) *Limiter {
	if n < 1 {
		n = 1
	}
	return &Limiter{sem: semaphore.NewWeighted(int64(n)), n: int64(n)}
}

// weight is how many slots a request of weight w takes: at least one, at
// most all.
func (l *Limiter) weight(w int) int64 { return min(max(int64(w), 1), l.n) }

func (l *Limiter) acquire(ctx context.Context, w int) error {
	return l.sem.Acquire(ctx, l.weight(w))
}

func (l *Limiter) release(w int) { l.sem.Release(l.weight(w)) }

// tokenCache keeps the current token so a 401 can drop it and force the
// source to be asked again.
type tokenCache struct {
	mu  sync.Mutex
	src oauth2.TokenSource
	tok *oauth2.Token
}

func (tc *tokenCache) token() (*oauth2.Token, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.tok.Valid() {
		return tc.tok, nil
	}
	t, err := tc.src.Token()
	if err != nil {
		// The oauth2 errors may quote the token endpoint's body but never
		// the token itself, so they are safe to wrap. A refresh the
		// endpoint refused (invalid_grant: revoked, expired, password
		// changed) needs a new sign-in, which ErrUnauthorized tells.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.Response == nil || re.Response.StatusCode < 500) {
			return nil, &tokenError{fmt.Errorf("%w: getting a token: %w", ErrUnauthorized, err)}
		}
		return nil, &tokenError{fmt.Errorf("graph: getting a token: %w", err)}
	}
	tc.tok = t
	return t, nil
}

// TokenInvalidator may be implemented by an Options.TokenSource that caches
// access tokens itself: after Graph answers 401 the Client calls
// InvalidateToken with the refused token, so the next Token call refreshes
// instead of serving it again.
type TokenInvalidator interface {
	InvalidateToken(t *oauth2.Token)
}

// invalidate drops t if it is still the cached token (another request may
// already have replaced it) and tells a caching source.
func (tc *tokenCache) invalidate(t *oauth2.Token) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.tok == t {
		tc.tok = nil
		if inv, ok := tc.src.(TokenInvalidator); ok {
			inv.InvalidateToken(t)
		}
	}
}

// tokenError is a failure of the TokenSource; it is not retried here, the
// source has its own policy.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// request is one logical Graph call, replayable on retry.
type request struct {
	op          string // operation name for logs and metrics
	method      string
	url         string // absolute
	body        []byte
	contentType string
	ifMatch     string
	prefer      []string // Prefer values besides IdType="ImmutableId"
	weight      int      // Limiter slots it takes; 0 is 1
	// repeatable marks a POST that is safe to send again when its answer
	// was lost (a $batch of GETs); other POSTs create things.
	repeatable bool
}

// response is a successful (2xx) answer, body read in full.
type response struct {
	header http.Header
	body   []byte
}

// preferImmutableID asks Graph for ids that survive moves between folders.
const preferImmutableID = `IdType="ImmutableId"`

// preferHeader joins Prefer values into one header value, as RFC 7240 §2
// allows ("Prefer: a, b").
func preferHeader(extra []string) string {
	return strings.Join(append([]string{preferImmutableID}, extra...), ", ")
}

func newRequestID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // UUID version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// retryable reports whether Graph asks to try again later.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		status == http.StatusGatewayTimeout
}

// do sends r, retrying throttled and unavailable answers and one 401, and
// returns the 2xx response or an error (an *Error for Graph's answers).
func (c *Client) do(ctx context.Context, r *request) (*response, error) {
	reqID := newRequestID()
	refreshed := false
	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, r, reqID, &refreshed)
		if err == nil {
			return resp, nil
		}
		var ge *Error
		isGraph := errors.As(err, &ge)
		var te *tokenError
		if ctx.Err() != nil || errors.As(err, &te) {
			return nil, err
		}
		if attempt >= c.maxRetries {
			return nil, err
		}
		// Graph answers 412 now and then with no precondition sent (a
		// change key race inside Exchange); only then is it transient.
		transient412 := isGraph && ge.Status == http.StatusPreconditionFailed && r.ifMatch == ""
		if isGraph && !retryable(ge.Status) && !transient412 {
			return nil, err
		}
		// A create may have been carried out when the answer was lost or
		// the gateway timed out (504); retrying it could duplicate the
		// item, so only refusals (429, 503) are retried for it.
		if r.method == http.MethodPost && !r.repeatable && (!isGraph || ge.Status == http.StatusGatewayTimeout) {
			return nil, err
		}
		var retryAfter time.Duration
		if isGraph {
			retryAfter = ge.RetryAfter
		}
		wait, ok := c.retryWait(ctx, attempt, retryAfter)
		if !ok {
			return nil, err
		}
		c.log.DebugContext(ctx, "graph: retrying", "op", r.op, "attempt", attempt+1,
			"wait", wait, "err", err, "client-request-id", reqID)
		if !sleep(ctx, wait) {
			return nil, err
		}
	}
}

// retryWait is the wait before retry attempt+1: Graph's Retry-After when it
// sent one (retryAfter > 0), else the backoff. It is false when Graph asks
// for more than MaxBackoff or the wait would outlive ctx's deadline: the
// caller then hands back Graph's answer, which says when to come back,
// rather than a bare timeout.
func (c *Client) retryWait(ctx context.Context, attempt int, retryAfter time.Duration) (time.Duration, bool) {
	wait := retryAfter
	if wait <= 0 {
		wait = c.backoff(attempt)
	} else if wait > c.maxBackoff {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false
	}
	return wait, true
}

// sleep waits d; it is false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attempt sends r once, or twice when the first answer is a 401 and the
// token has not been refreshed yet for this request.
func (c *Client) attempt(ctx context.Context, r *request, reqID string, refreshed *bool) (*response, error) {
	for {
		tok, err := c.ts.token()
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, r, reqID, tok)
		var ge *Error
		if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized && !*refreshed {
			*refreshed = true
			c.ts.invalidate(tok)
			c.log.DebugContext(ctx, "graph: 401, refreshing the token", "op", r.op)
			continue
		}
		return resp, err
	}
}

// send makes one HTTP exchange while holding a Limiter slot.
func (c *Client) send(ctx context.Context, r *request, reqID string, tok *oauth2.Token) (*response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", r.op, err)
	}
	if r.body != nil {
		// Even an empty body (clearing a photo) is sent with its length.
		req.ContentLength = int64(len(r.body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.body)), nil }
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Prefer", preferHeader(r.prefer))
	req.Header.Set("client-request-id", reqID)
	req.Header.Set("return-client-request-id", "true")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.ifMatch != "" {
		req.Header.Set("If-Match", r.ifMatch)
	}

	if err := c.lim.acquire(ctx, r.weight); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
		if err == nil && len(data) > maxResponse {
			err = fmt.Errorf("answer larger than %d bytes", maxResponse)
		}
		res.Body.Close()
	}
	c.lim.release(r.weight)
	if err != nil {
		c.metrics.observe(r.op, "error", time.Since(start))
		return nil, fmt.Errorf("graph: %s: %w", r.op, scrubURLError(err))
	}
	c.metrics.observe(r.op, strconv.Itoa(res.StatusCode), time.Since(start))
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return &response{header: res.Header, body: data}, nil
	}
	return nil, decodeError(res.StatusCode, res.Header, data)
}

// scrubURLError drops the query of the URL in a *url.Error: delta and skip
// tokens are credentials of a kind and do not belong in logs.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// backoff is the exponential wait before retry attempt+1, with jitter so
// clients throttled together do not come back together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseBackoff
	for i := 0; i < attempt && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	// Between half and all of d.
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After value: delay seconds, possibly
// fractional as Graph sends them ("2.128"), or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 24*3600 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// url builds an absolute URL under the mailbox from path segments already
// escaped by the caller and a raw query (may be "").
func (c *Client) mailboxURL(path, rawQuery string) string {
	u := c.baseStr + c.mailboxPath + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	return u
}

// checkLink makes sure a nextLink or deltaLink points at the Graph we were
// configured for, so a bearer token is never sent elsewhere.
func (c *Client) checkLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("graph: bad link from server: %w", err)
	}
	if !u.IsAbs() || !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return fmt.Errorf("graph: link from server points at %s://%s, not %s", u.Scheme, u.Host, c.base.Host)
	}
	return nil
}

// getJSON sends a GET and decodes the 2xx body into v.
func (c *Client) getJSON(ctx context.Context, op, u string, prefer []string, v any) error {
	resp, err := c.do(ctx, &request{op: op, method: http.MethodGet, url: u, prefer: prefer})
	if err != nil {
		return err
	}
	return decodeBody(op, resp.body, v)
}

// sendJSON sends body as JSON and decodes a 2xx answer into v (unless nil).
func (c *Client) sendJSON(ctx context.Context, op, method, u, ifMatch string, body, v any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("graph: %s: encoding: %w", op, err)
	}
	resp, err := c.do(ctx, &request{op: op, method: method, url: u, body: data,
		contentType: "application/json", ifMatch: ifMatch})
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return decodeBody(op, resp.body, v)
}

func decodeBody(op string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("graph: %s: decoding the answer: %w", op, err)
	}
	return nil
}

// page is one page of a Graph collection.
type page[T any] struct {
	Value     []T    `json:"value"`
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
}

// linkGuard remembers the links followed in one walk: Graph has been seen
// handing out a nextLink that points back to itself (docs#9008).
type linkGuard struct {
	seen  map[string]bool
	pages int
}

// newLinkGuard starts a walk at first, which counts as followed.
func newLinkGuard(first string) *linkGuard {
	return &linkGuard{seen: map[string]bool{first: true}}
}

func (g *linkGuard) next(c *Client, link string) error {
	if g.seen[link] {
		return errors.New("graph: the server repeated a nextLink; stopping a paging loop")
	}
	g.seen[link] = true
	g.pages++
	if g.pages > maxPages {
		return fmt.Errorf("graph: more than %d pages; giving up", maxPages)
	}
	return c.checkLink(link)
}

// listAll GETs first and every @odata.nextLink after it, verbatim.
func listAll[T any](ctx context.Context, c *Client, op, first string, prefer []string) ([]T, error) {
	var all []T
	g := newLinkGuard(first)
	link := first
	for {
		var p page[T]
		if err := c.getJSON(ctx, op, link, prefer, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Value...)
		if p.NextLink == "" {
			return all, nil
		}
		if err := g.next(c, p.NextLink); err != nil {
			return nil, err
		}
		link = p.NextLink
	}
}
