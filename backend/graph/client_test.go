package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
)

// baseURLPath is a non-empty prefix the fake Graph lives under, so a client
// that builds URLs from the host alone, or rebuilds a nextLink instead of
// following it, lands in the catch-all and fails (go-github's harness).
const baseURLPath = "/t/graph/v1.0"

// countingSource hands out tokens "tok-1", "tok-2", … and counts calls.
type countingSource struct{ n atomic.Int32 }

func (s *countingSource) Token() (*oauth2.Token, error) {
	n := s.n.Add(1)
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n), TokenType: "Bearer",
		Expiry: time.Now().Add(time.Hour)}, nil
}

// setup starts a fake Graph and a Client pointed at it. Handlers are
// registered on mux with paths relative to the version root.
func setup(t *testing.T, opts Options) (c *Client, mux *http.ServeMux, serverURL string) {
	t.Helper()
	mux = http.NewServeMux()
	api := http.NewServeMux()
	api.Handle(baseURLPath+"/", http.StripPrefix(baseURLPath, mux))
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request to %s outside %s: the client built a URL instead of using its base or a link", r.URL, baseURLPath)
		http.Error(w, "outside the base path", http.StatusBadRequest)
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	opts.BaseURL = srv.URL + baseURLPath
	if opts.TokenSource == nil {
		opts.TokenSource = &countingSource{}
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 20 * time.Millisecond
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, mux, srv.URL
}

func testHeader(t *testing.T, r *http.Request, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("header %s = %q, want %q", name, got, want)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]any{"request-id": "req-" + code, "date": "2026-01-01T00:00:00"}}})
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without TokenSource: no error")
	}
	if _, err := New(Options{TokenSource: &countingSource{}, BaseURL: "graph.example/v1.0"}); err == nil {
		t.Error("New with a relative BaseURL: no error")
	}
	c, err := New(Options{TokenSource: &countingSource{}, Mailbox: "a b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.mailboxURL("/contacts", ""), "https://graph.microsoft.com/v1.0/users/a%20b@example.com/contacts"; got != want {
		t.Errorf("mailboxURL = %s, want %s", got, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"2.128", 2128 * time.Millisecond},
		{" 0.5 ", 500 * time.Millisecond},
		{"0", 0},
		{"-1", 0},
		{"soon", 0},
		{"Thu, 01 Jan 2026 12:00:30 GMT", 30 * time.Second},
		{"Thu, 01 Jan 2026 11:00:00 GMT", 0}, // in the past
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoffBounded(t *testing.T) {
	c, err := New(Options{TokenSource: &countingSource{}, BaseBackoff: time.Second, MaxBackoff: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := range 70 { // past the point where doubling would overflow
		want := min(time.Second<<min(attempt, 10), 8*time.Second)
		for range 20 {
			d := c.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestRequestHeaders(t *testing.T) {
	c, mux, _ := setup(t, Options{})
	var ids []string
	mux.HandleFunc("GET /me/contactFolders/contacts", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Authorization", "Bearer tok-1")
		testHeader(t, r, "Accept", "application/json")
		testHeader(t, r, "Prefer", `IdType="ImmutableId"`)
		ids = append(ids, r.Header.Get("client-request-id"))
		if len(ids) == 1 {
			w.Header().Set("Retry-After", "0.001")
			graphError(w, 503, "ServiceNotAvailable", "busy")
			return
		}
		writeJSON(w, 200, ContactFolder{ID: "F", DisplayName: "Contacts"})
	})
	f, err := c.DefaultFolder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != "F" {
		t.Errorf("folder = %+v", f)
	}
	if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
		t.Errorf("client-request-id over a retry = %q, want one non-empty id twice", ids)
	}
}

func TestPreferComposition(t *testing.T) {
	tests := []struct {
		extra []string
		want  string
	}{
		{nil, `IdType="ImmutableId"`},
		{[]string{"odata.maxpagesize=50"}, `IdType="ImmutableId", odata.maxpagesize=50`},
	}
	for _, tc := range tests {
		if got := preferHeader(tc.extra); got != tc.want {
			t.Errorf("preferHeader(%q) = %s, want %s", tc.extra, got, tc.want)
		}
	}
	// On the wire, through delta.
	c, mux, srv := setup(t, Options{})
	mux.HandleFunc("GET /me/contactFolders/F/contacts/delta", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Prefer", `IdType="ImmutableId", odata.maxpagesize=50`)
		if got := r.URL.RawQuery; got != "$select=displayName,givenName" {
			t.Errorf("delta query = %s", got)
		}
		writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.deltaLink": srv + baseURLPath + "/me/contactFolders/F/contacts/delta?$deltatoken=x"})
	})
	if _, err := c.ContactsDelta(context.Background(), "F", "", Query{Select: []string{"displayName", "givenName"}, PageSize: 50, Expand: []string{"ignored"}}); err != nil {
		t.Fatal(err)
	}
}

func TestRawQuery(t *testing.T) {
	tests := []struct {
		name string
		q    Query
		top  bool
		want string
	}{
		{"empty get", Query{}, false, ""},
		{"default top", Query{}, true, "$top=250"},
		{"capped top", Query{PageSize: 5000}, true, "$top=1000"},
		{"select", Query{Select: []string{"id", "displayName"}, PageSize: 10}, true, "$top=10&$select=id,displayName"},
		{"expand", Query{Expand: []string{PropHasPicture, "String {6a8f3d2e-0000-0000-0000-000000000000} Name vcard-uid"}}, false,
			"$expand=singleValueExtendedProperties($filter=id%20eq%20'Boolean%20%7B00062004-0000-0000-C000-000000000046%7D%20Id%200x8015'%20or%20id%20eq%20'String%20%7B6a8f3d2e-0000-0000-0000-000000000000%7D%20Name%20vcard-uid')"},
		{"quote doubled", Query{Expand: []string{"String {x} Name o'k&y"}}, false,
			"$expand=singleValueExtendedProperties($filter=id%20eq%20'String%20%7Bx%7D%20Name%20o''k%26y')"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.q.rawQuery(tc.top); got != tc.want {
				t.Errorf("rawQuery = %s\nwant       %s", got, tc.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int  // answers in order; the last repeats
		retryAfter string // Retry-After on failures
		maxRetries int
		wantErr    error
		wantCalls  int
		wantRA     time.Duration
	}{
		{"429 then ok", []int{429, 429, 200}, "0.002", 0, nil, 3, 0},
		{"503 then ok, no Retry-After", []int{503, 200}, "", 0, nil, 2, 0},
		{"504 then ok", []int{504, 200}, "", 0, nil, 2, 0},
		{"429 exhausted", []int{429}, "0.001", 2, ErrThrottled, 3, time.Millisecond},
		{"503 exhausted", []int{503}, "", 1, ErrUnavailable, 2, 0},
		{"Retry-After beyond MaxBackoff is not waited for", []int{429}, "3600", 0, ErrThrottled, 1, time.Hour},
		{"500 not retried", []int{500}, "", 0, ErrUnavailable, 1, 0},
		{"404 not retried", []int{404}, "", 0, ErrNotFound, 1, 0},
		{"no retries", []int{429}, "", -1, ErrThrottled, 1, 0},
		{"412 without If-Match is transient", []int{412, 200}, "", 0, nil, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, mux, _ := setup(t, Options{MaxRetries: tc.maxRetries})
			var calls int
			mux.HandleFunc("GET /me/contacts/X", func(w http.ResponseWriter, r *http.Request) {
				st := tc.statuses[min(calls, len(tc.statuses)-1)]
				calls++
				if st == 200 {
					writeJSON(w, 200, Contact{ID: "X"})
					return
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				graphError(w, st, "Whatever", "failing")
			})
			_, err := c.GetContact(context.Background(), "", "X", Query{})
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.RetryAfter != tc.wantRA {
				t.Errorf("err = %#v, want RetryAfter %v", err, tc.wantRA)
			}
		})
	}
}

func TestRetryBoundedByContext(t *testing.T) {
	// Backoff of an hour, a context of 5s: the client must give up at
	// once with Graph's answer rather than sleep until the deadline.
	c, mux, _ := setup(t, Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
	mux.HandleFunc("GET /me/contacts/X", func(w http.ResponseWriter, r *http.Request) {
		graphError(w, 429, "TooManyRequests", "Please retry again later.")
	})
	const deadline = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := c.GetContact(ctx, "", "X", Query{}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrThrottled) {
			t.Errorf("err = %v, want ErrThrottled", err)
		}
		if d := time.Since(start); d > deadline/2 {
			t.Errorf("GetContact returned after %v: it waited for the deadline instead of giving up at once", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetContact did not return within the context's bounds")
	}

	// Cancelled while waiting (no deadline known in advance).
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { _, err := c.GetContact(ctx2, "", "X", Query{}); done <- err }()
	time.AfterFunc(20*time.Millisecond, cancel2)
	select {
	case err := <-done:
		if err == nil {
			t.Error("no error after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetContact did not return after cancel")
	}
}

func TestUnauthorizedRefreshOnce(t *testing.T) {
	tests := []struct {
		name       string
		goodToken  string // the token the server accepts; "" none
		wantErr    error
		wantCalls  int
		wantTokens int32
	}{
		{"refresh fixes it", "tok-2", nil, 2, 2},
		{"still 401 after refresh", "", ErrUnauthorized, 2, 2},
		{"first token fine", "tok-1", nil, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingSource{}
			c, mux, _ := setup(t, Options{TokenSource: src})
			calls := 0
			mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
				calls++
				if tc.goodToken == "" || r.Header.Get("Authorization") != "Bearer "+tc.goodToken {
					graphError(w, 401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
					return
				}
				writeJSON(w, 200, User{ID: "u1", UserPrincipalName: "a@example.com"})
			})
			u, err := c.Me(context.Background())
			if calls != tc.wantCalls || src.n.Load() != tc.wantTokens {
				t.Errorf("calls = %d, tokens = %d; want %d, %d", calls, src.n.Load(), tc.wantCalls, tc.wantTokens)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "tok-") {
					t.Errorf("error %q leaks the token", err)
				}
				return
			}
			if err != nil || u.UserPrincipalName != "a@example.com" {
				t.Fatalf("Me = %+v, %v", u, err)
			}
			// The good token is cached: the next call asks no more.
			if _, err := c.Me(context.Background()); err != nil {
				t.Fatal(err)
			}
			if src.n.Load() != tc.wantTokens {
				t.Errorf("token not cached: %d calls to the source", src.n.Load())
			}
		})
	}
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		wantCode string
		wantMsg  string
		wantReq  string
		wantRA   time.Duration
		is       []error
		isNot    []error
	}{
		{name: "item not found", status: 404,
			body:     `{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store.","innerError":{"date":"2020-08-18T12:51:51","request-id":"r-1","client-request-id":"c-1"}}}`,
			wantCode: "ErrorItemNotFound", wantMsg: "The specified object was not found in the store.", wantReq: "r-1",
			is: []error{ErrNotFound}, isNot: []error{ErrBadRequest, ErrThrottled}},
		{name: "nested innerError, request-id header fallback", status: 412, header: map[string]string{"request-id": "hdr"},
			body:     `{"error":{"code":"ErrorIrresolvableConflict","message":"m","innerError":{"innerError":{"request-id":"deep"}}}}`,
			wantCode: "ErrorIrresolvableConflict", wantMsg: "m", wantReq: "deep", is: []error{ErrPreconditionFailed}},
		{name: "request-id only in header", status: 400, header: map[string]string{"request-id": "hdr"},
			body:     `{"error":{"code":"ErrorInvalidIdMalformed","message":"Id is malformed."}}`,
			wantCode: "ErrorInvalidIdMalformed", wantMsg: "Id is malformed.", wantReq: "hdr", is: []error{ErrBadRequest}},
		{name: "throttled with fractional Retry-After", status: 429, header: map[string]string{"Retry-After": "2.128"},
			body:     `{"error":{"code":"TooManyRequests","innerError":{},"message":"Please retry again later."}}`,
			wantCode: "TooManyRequests", wantMsg: "Please retry again later.", wantRA: 2128 * time.Millisecond,
			is: []error{ErrThrottled}, isNot: []error{ErrUnavailable}},
		{name: "sync state gone", status: 410,
			body:     `{"error":{"code":"SyncStateNotFound","message":"The sync state generation is not found; generation=149;[highest=157]"}}`,
			wantCode: "SyncStateNotFound", wantMsg: "The sync state generation is not found; generation=149;[highest=157]",
			is: []error{ErrSyncStateNotFound}},
		{name: "camelCase gateway code without status mapping", status: 400,
			body:     `{"error":{"code":"syncStateNotFound","message":"x"}}`,
			wantCode: "syncStateNotFound", wantMsg: "x", is: []error{ErrSyncStateNotFound, ErrBadRequest}},
		{name: "invalid sync state data", status: 400, body: `{"error":{"code":"ErrorInvalidSyncStateData","message":"x"}}`,
			wantCode: "ErrorInvalidSyncStateData", wantMsg: "x", is: []error{ErrSyncStateNotFound, ErrBadRequest}, isNot: []error{ErrNotFound}},
		{name: "503 unavailable", status: 503, body: `{"error":{"code":"ServiceNotAvailable","message":"m"}}`,
			wantCode: "ServiceNotAvailable", wantMsg: "m", is: []error{ErrUnavailable, ErrThrottled}},
		{name: "folder exists", status: 409, body: `{"error":{"code":"ErrorFolderExists","message":"A folder with the specified name already exists."}}`,
			wantCode: "ErrorFolderExists", wantMsg: "A folder with the specified name already exists.", is: []error{ErrConflict}},
		{name: "forbidden", status: 403, body: `{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}`,
			wantCode: "ErrorAccessDenied", wantMsg: "Access is denied.", is: []error{ErrForbidden}},
		{name: "code alone decides", status: 418, body: `{"error":{"code":"ErrorItemNotFound","message":"m"}}`,
			wantCode: "ErrorItemNotFound", wantMsg: "m", is: []error{ErrNotFound}},
		{name: "not JSON", status: 502, body: `<html>bad gateway</html>`,
			wantMsg: "Bad Gateway", is: []error{ErrUnavailable}, isNot: []error{ErrNotFound}},
		{name: "unauthorized", status: 401, body: `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}`,
			wantCode: "InvalidAuthenticationToken", wantMsg: "Access token is empty.", is: []error{ErrUnauthorized}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			e := decodeError(tc.status, h, []byte(tc.body))
			if e.Status != tc.status || e.Code != tc.wantCode || e.Message != tc.wantMsg || e.RequestID != tc.wantReq || e.RetryAfter != tc.wantRA {
				t.Errorf("decodeError = %+v", e)
			}
			var err error = fmt.Errorf("wrapped: %w", e)
			for _, s := range tc.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = false", e, s)
				}
			}
			for _, s := range tc.isNot {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = true", e, s)
				}
			}
		})
	}
}

func TestListContactsPaging(t *testing.T) {
	c, mux, srv := setup(t, Options{})
	mux.HandleFunc("GET /me/contactFolders/F/contacts", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch q.Get("$skip") {
		case "":
			if got := r.URL.RawQuery; got != "$top=2&$select=displayName" {
				t.Errorf("first query = %s", got)
			}
			writeJSON(w, 200, map[string]any{"value": []Contact{{ID: "1"}, {ID: "2"}},
				"@odata.nextLink": srv + baseURLPath + "/me/contactFolders/F/contacts?%24top=2&%24select=displayName&%24skip=2"})
		case "2":
			// A short page with a nextLink is normal (hidden distribution lists).
			writeJSON(w, 200, map[string]any{"value": []Contact{{ID: "3"}},
				"@odata.nextLink": srv + baseURLPath + "/me/contactFolders/F/contacts?%24top=2&%24select=displayName&%24skip=4"})
		case "4":
			writeJSON(w, 200, map[string]any{"value": []Contact{}})
		default:
			t.Errorf("unexpected page %s", r.URL)
		}
	})
	got, err := c.ListContacts(context.Background(), "F", Query{Select: []string{"displayName"}, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "1" || got[2].ID != "3" {
		t.Errorf("contacts = %+v", got)
	}
}

func TestNextLinkGuards(t *testing.T) {
	tests := []struct {
		name string
		next func(srv string) string
	}{
		{"link to itself", func(srv string) string { return srv + baseURLPath + "/me/contactFolders/F/contacts?$top=250" }},
		{"loop over two links", func(srv string) string { return srv + baseURLPath + "/me/contactFolders/F/contacts?$skip=1" }},
		{"foreign host", func(string) string { return "https://evil.example/v1.0/me/contacts?$skip=10" }},
		{"relative link", func(string) string { return "/v1.0/me/contacts?$skip=10" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, mux, srv := setup(t, Options{})
			calls := 0
			mux.HandleFunc("GET /me/contactFolders/F/contacts", func(w http.ResponseWriter, r *http.Request) {
				calls++
				if calls > 10 {
					http.Error(w, "loop", 500)
					return
				}
				writeJSON(w, 200, map[string]any{"value": []Contact{{ID: "1"}}, "@odata.nextLink": tc.next(srv)})
			})
			if _, err := c.ListContacts(context.Background(), "F", Query{}); err == nil {
				t.Error("no error")
			}
			if calls > 3 {
				t.Errorf("%d calls before stopping", calls)
			}
		})
	}
}

func TestDeltaNextLinkToItself(t *testing.T) {
	// The walk's first link counts as followed in delta as in a list: a
	// nextLink back to it stops the round at once.
	c, mux, srv := setup(t, Options{})
	calls := 0
	mux.HandleFunc("GET /me/contactFolders/F/contacts/delta", func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls > 10 {
			http.Error(w, "loop", 500)
			return
		}
		writeJSON(w, 200, map[string]any{"value": []Contact{{ID: "1"}},
			"@odata.nextLink": srv + baseURLPath + "/me/contactFolders/F/contacts/delta"})
	})
	if _, err := c.ContactsDelta(context.Background(), "F", "", Query{}); err == nil {
		t.Error("no error")
	}
	if calls != 1 {
		t.Errorf("%d calls before stopping, want 1", calls)
	}
}

func TestConcurrencyCap(t *testing.T) {
	const limit, callers = 3, 10
	c, mux, _ := setup(t, Options{MaxConcurrent: limit})
	var mu sync.Mutex
	inflight, maxInflight := 0, 0
	release := make(chan struct{})
	reached := make(chan struct{}, callers)
	mux.HandleFunc("GET /me/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inflight++
		maxInflight = max(maxInflight, inflight)
		mu.Unlock()
		reached <- struct{}{}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		inflight--
		mu.Unlock()
		writeJSON(w, 200, Contact{ID: r.PathValue("id")})
	})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			if _, err := c.GetContact(context.Background(), "", fmt.Sprint(i), Query{}); err != nil {
				t.Error(err)
			}
		})
	}
	for range limit {
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("requests did not reach the server")
		}
	}
	close(release)
	wg.Wait()
	if maxInflight != limit {
		t.Errorf("max in flight = %d, want %d", maxInflight, limit)
	}
}

func TestSharedLimiter(t *testing.T) {
	lim := NewLimiter(1)
	c1, mux, _ := setup(t, Options{Limiter: lim})
	mux.HandleFunc("GET /me/contacts/X", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, Contact{ID: "X"}) })
	// Hold the only slot: c1 must wait for it and give up with its context.
	if err := lim.acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c1.GetContact(ctx, "", "X", Query{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded while the shared slot is held", err)
	}
	lim.release(1)
	if _, err := c1.GetContact(context.Background(), "", "X", Query{}); err != nil {
		t.Error(err)
	}
}

func TestBodyReplayedOnRetry(t *testing.T) {
	c, mux, _ := setup(t, Options{})
	var bodies []string
	mux.HandleFunc("POST /me/contactFolders/F/contacts", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Content-Type", "application/json")
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if len(bodies) == 1 {
			graphError(w, 503, "ServiceNotAvailable", "m")
			return
		}
		writeJSON(w, 201, Contact{ID: "N", GivenName: "Ada"})
	})
	in := &Contact{ID: "ignored", ChangeKey: "ck", GivenName: "Ada",
		SingleValueExtendedProperties: []ExtendedProperty{{ID: "String {x} Name y", Value: "v"}}}
	got, err := c.CreateContact(context.Background(), "F", in)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "N" || len(bodies) != 2 || bodies[0] != bodies[1] || bodies[0] == "" {
		t.Errorf("got %+v, bodies %q", got, bodies)
	}
	if strings.Contains(bodies[0], "ignored") || strings.Contains(bodies[0], "changeKey") ||
		!strings.Contains(bodies[0], `"singleValueExtendedProperties":[{"id":"String {x} Name y","value":"v"}]`) {
		t.Errorf("body = %s", bodies[0])
	}
	if in.ID != "ignored" {
		t.Error("CreateContact modified its argument")
	}
}

func TestWritesSendIfMatch(t *testing.T) {
	c, mux, _ := setup(t, Options{})
	patches := 0
	mux.HandleFunc("PATCH /me/contactFolders/F/contacts/X", func(w http.ResponseWriter, r *http.Request) {
		patches++
		testHeader(t, r, "If-Match", `W/"ck1"`)
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		if _, ok := p["surname"]; !ok || p["surname"] != nil {
			t.Errorf("patch body = %v, want surname null", p)
		}
		graphError(w, 412, "ErrorIrresolvableConflict", "The change key passed in the request does not match the current change key for the item.")
	})
	mux.HandleFunc("DELETE /me/contactFolders/F/contacts/X", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "If-Match", "")
		w.WriteHeader(204)
	})
	_, err := c.UpdateContact(context.Background(), "F", "X", Patch{"surname": nil}, `W/"ck1"`)
	if !errors.Is(err, ErrPreconditionFailed) {
		t.Errorf("UpdateContact err = %v, want ErrPreconditionFailed", err)
	}
	if patches != 1 {
		t.Errorf("a 412 answering If-Match was retried: %d PATCHes", patches)
	}
	if err := c.DeleteContact(context.Background(), "F", "X", ""); err != nil {
		t.Errorf("DeleteContact: %v", err)
	}
}

func TestListFoldersNested(t *testing.T) {
	c, mux, srv := setup(t, Options{})
	children := map[string][]ContactFolder{
		"A":   {{ID: "A1", DisplayName: "a1", ParentFolderID: "A"}},
		"A1":  {{ID: "A11", DisplayName: "a11"}}, // parent left out: the walk fills it in
		"B":   {},
		"A11": {},
	}
	mux.HandleFunc("GET /me/contactFolders", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("$skip") == "" {
			writeJSON(w, 200, map[string]any{"value": []ContactFolder{{ID: "A", DisplayName: "a", ParentFolderID: "D"}},
				"@odata.nextLink": srv + baseURLPath + "/me/contactFolders?$skip=1"})
			return
		}
		writeJSON(w, 200, map[string]any{"value": []ContactFolder{{ID: "B", DisplayName: "b", ParentFolderID: "D"}}})
	})
	mux.HandleFunc("GET /me/contactFolders/{id}/childFolders", func(w http.ResponseWriter, r *http.Request) {
		kids, ok := children[r.PathValue("id")]
		if !ok {
			t.Errorf("childFolders of unknown %s", r.PathValue("id"))
		}
		writeJSON(w, 200, map[string]any{"value": kids})
	})
	got, err := c.ListFolders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, f := range got {
		s = append(s, f.ID+"<"+f.ParentFolderID)
	}
	if want := "A<D B<D A1<A A11<A1"; strings.Join(s, " ") != want {
		t.Errorf("folders = %s, want %s", strings.Join(s, " "), want)
	}
}

func TestDelta(t *testing.T) {
	c, mux, srv := setup(t, Options{})
	link := func(q string) string { return srv + baseURLPath + "/me/contactFolders/F/contacts/delta?" + q }
	mux.HandleFunc("GET /me/contactFolders/F/contacts/delta", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case q.Get("$skiptoken") == "" && q.Get("$deltatoken") == "":
			writeJSON(w, 200, map[string]any{"value": []map[string]any{
				{"id": "1", "displayName": "one"},
				{"id": "2", "displayName": "two"},
				{"id": "3", "@removed": map[string]string{"reason": "deleted"}},
			}, "@odata.nextLink": link("$skiptoken=p2")})
		case q.Get("$skiptoken") == "p2":
			writeJSON(w, 200, map[string]any{"value": []map[string]any{
				{"id": "1", "displayName": "one again"},                         // replay: last wins
				{"id": "2", "@removed": map[string]string{"reason": "deleted"}}, // change then removal
				{"id": "3", "displayName": "three back"},                        // removal then change
			}, "@odata.deltaLink": link("$deltatoken=d1")})
		case q.Get("$deltatoken") == "d1":
			writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.deltaLink": link("$deltatoken=d2")})
		case q.Get("$deltatoken") == "gone":
			graphError(w, 410, "SyncStateNotFound", "The sync state generation is not found")
		case q.Get("$deltatoken") == "malformed":
			graphError(w, 400, "ErrorInvalidIdMalformed", "Id is malformed.")
		}
	})
	ctx := context.Background()
	r, err := c.ContactsDelta(ctx, "F", "", Query{})
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, ct := range r.Changed {
		changed = append(changed, ct.ID+"="+ct.DisplayName)
	}
	if got := strings.Join(changed, ","); got != "1=one again,3=three back" {
		t.Errorf("changed = %s", got)
	}
	if strings.Join(r.Removed, ",") != "2" || r.DeltaLink != link("$deltatoken=d1") {
		t.Errorf("removed = %v, deltaLink = %s", r.Removed, r.DeltaLink)
	}
	r, err = c.ContactsDelta(ctx, "F", r.DeltaLink, Query{})
	if err != nil || len(r.Changed)+len(r.Removed) != 0 || r.DeltaLink != link("$deltatoken=d2") {
		t.Errorf("second round = %+v, %v", r, err)
	}
	for _, tok := range []string{"gone", "malformed"} {
		_, err := c.ContactsDelta(ctx, "F", link("$deltatoken="+tok), Query{})
		if !errors.Is(err, ErrSyncStateNotFound) {
			t.Errorf("%s: err = %v, want ErrSyncStateNotFound", tok, err)
		}
		var ge *Error
		if !errors.As(err, &ge) {
			t.Errorf("%s: err %v does not carry *Error", tok, err)
		}
	}
	if _, err := c.ContactsDelta(ctx, "F", "https://elsewhere.example/v1.0/x?$deltatoken=1", Query{}); err == nil {
		t.Error("a deltaLink to another host was followed")
	}
}

func TestGetContactsBatch(t *testing.T) {
	c, mux, _ := setup(t, Options{})
	var ids []string
	for i := range 45 {
		ids = append(ids, fmt.Sprintf("c%02d", i))
	}
	var mu sync.Mutex
	throttledOnce := map[string]bool{}
	var batches []int
	mux.HandleFunc("POST /$batch", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Content-Type", "application/json")
		var in struct {
			Requests []batchRequest `json:"requests"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, len(in.Requests))
		var out []map[string]any
		// Answer in reverse order: Graph does not keep the request order.
		for i := len(in.Requests) - 1; i >= 0; i-- {
			rq := in.Requests[i]
			path, query, _ := strings.Cut(rq.URL, "?")
			id := strings.TrimPrefix(path, "/me/contacts/")
			if rq.Method != "GET" || !strings.HasPrefix(path, "/me/contacts/") ||
				query != "$select=id,displayName" || rq.Headers["Prefer"] != `IdType="ImmutableId"` {
				t.Errorf("batch item %+v", rq)
			}
			switch {
			case id == "c07" || id == "c30":
				out = append(out, map[string]any{"id": rq.ID, "status": 404, "body": map[string]any{"error": map[string]string{"code": "ErrorItemNotFound"}}})
			case (id == "c03" || id == "c21") && !throttledOnce[id]:
				throttledOnce[id] = true
				out = append(out, map[string]any{"id": rq.ID, "status": 429, "headers": map[string]string{"retry-after": "0.001"},
					"body": map[string]any{"error": map[string]string{"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}}})
			default:
				out = append(out, map[string]any{"id": rq.ID, "status": 200, "headers": map[string]string{"Content-Type": "application/json"},
					"body": Contact{ID: id, DisplayName: "n" + id}})
			}
		}
		writeJSON(w, 200, map[string]any{"responses": out})
	})
	got, err := c.GetContacts(context.Background(), ids, Query{Select: []string{"id", "displayName"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 43 {
		t.Fatalf("got %d contacts, want 43", len(got))
	}
	j := 0
	for _, id := range ids {
		if id == "c07" || id == "c30" {
			continue
		}
		if got[j].ID != id || got[j].DisplayName != "n"+id {
			t.Fatalf("got[%d] = %+v, want %s", j, got[j], id)
		}
		j++
	}
	// 20+20+5, plus one retry of one item in each of the first two batches.
	if fmt.Sprint(batches) != "[20 1 20 1 5]" {
		t.Errorf("batch sizes = %v", batches)
	}
}

func TestGetContactsBatchItemError(t *testing.T) {
	c, mux, _ := setup(t, Options{MaxRetries: 1})
	mux.HandleFunc("POST /$batch", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"responses": []map[string]any{{"id": "0", "status": 503, "headers": map[string]string{"Retry-After": "0.001"},
			"body": map[string]any{"error": map[string]string{"code": "ServiceNotAvailable", "message": "m"}}}}})
	})
	_, err := c.GetContacts(context.Background(), []string{"x"}, Query{})
	var ge *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ge) || ge.RetryAfter != time.Millisecond {
		t.Errorf("err = %v, want an unavailable *Error with RetryAfter", err)
	}
}

func TestPhotos(t *testing.T) {
	c, mux, _ := setup(t, Options{})
	var stored []byte
	var storedType string
	mux.HandleFunc("PUT /me/contacts/X/photo/$value", func(w http.ResponseWriter, r *http.Request) {
		stored, _ = io.ReadAll(r.Body)
		storedType = r.Header.Get("Content-Type")
		if r.ContentLength != int64(len(stored)) {
			t.Errorf("Content-Length = %d for %d bytes", r.ContentLength, len(stored))
		}
		w.WriteHeader(200)
	})
	mux.HandleFunc("GET /me/contacts/X/photo/$value", func(w http.ResponseWriter, r *http.Request) {
		if len(stored) == 0 {
			graphError(w, 404, "ErrorItemNotFound", "The photo wasn't found.")
			return
		}
		w.Header().Set("Content-Type", storedType)
		_, _ = w.Write(stored)
	})
	ctx := context.Background()
	if _, err := c.GetPhoto(ctx, "X"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetPhoto with none: %v", err)
	}
	if err := c.PutPhoto(ctx, "X", &Photo{ContentType: "image/png", Data: []byte("\x89PNG....")}); err != nil {
		t.Fatal(err)
	}
	p, err := c.GetPhoto(ctx, "X")
	if err != nil || p.ContentType != "image/png" || string(p.Data) != "\x89PNG...." {
		t.Errorf("GetPhoto = %+v, %v", p, err)
	}
	if err := c.PutPhoto(ctx, "X", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPhoto(ctx, "X"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetPhoto after clearing: %v", err)
	}
}

func TestFolderWrites(t *testing.T) {
	c, mux, _ := setup(t, Options{})
	mux.HandleFunc("POST /me/contactFolders", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, ContactFolder{ID: "N", DisplayName: "top", ParentFolderID: "D"})
	})
	mux.HandleFunc("POST /me/contactFolders/P/childFolders", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		if b["displayName"] == "dup" {
			graphError(w, 409, "ErrorFolderExists", "A folder with the specified name already exists.")
			return
		}
		writeJSON(w, 201, ContactFolder{ID: "K", DisplayName: b["displayName"], ParentFolderID: "P"})
	})
	mux.HandleFunc("PATCH /me/contactFolders/K", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, ContactFolder{ID: "K", DisplayName: "renamed", ParentFolderID: "P"})
	})
	mux.HandleFunc("DELETE /me/contactFolders/K", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	ctx := context.Background()
	if f, err := c.CreateFolder(ctx, "", "top"); err != nil || f.ID != "N" {
		t.Errorf("CreateFolder top = %+v, %v", f, err)
	}
	if f, err := c.CreateFolder(ctx, "P", "kid"); err != nil || f.ID != "K" {
		t.Errorf("CreateFolder child = %+v, %v", f, err)
	}
	if _, err := c.CreateFolder(ctx, "P", "dup"); !errors.Is(err, ErrConflict) {
		t.Errorf("CreateFolder dup: %v", err)
	}
	if f, err := c.RenameFolder(ctx, "K", "renamed"); err != nil || f.DisplayName != "renamed" {
		t.Errorf("RenameFolder = %+v, %v", f, err)
	}
	if err := c.DeleteFolder(ctx, "K"); err != nil {
		t.Error(err)
	}
}

func TestMetricsAndLogs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if again := NewMetrics(reg); again.requests != m.requests {
		t.Error("a second NewMetrics on one registry did not share the collectors")
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, mux, _ := setup(t, Options{Metrics: m, Logger: logger})
	calls := 0
	mux.HandleFunc("GET /me/contacts/X", func(w http.ResponseWriter, r *http.Request) {
		calls++
		switch calls {
		case 1:
			graphError(w, 401, "InvalidAuthenticationToken", "expired")
		case 2:
			graphError(w, 429, "TooManyRequests", "later")
		default:
			writeJSON(w, 200, Contact{ID: "X"})
		}
	})
	if _, err := c.GetContact(context.Background(), "", "X", Query{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status string
		want   float64
	}{{"401", 1}, {"429", 1}, {"200", 1}} {
		if got := gathered(t, reg, "contactsdav_graph_requests_total", "GetContact", tc.status); got != tc.want {
			t.Errorf("contactsdav_graph_requests_total{GetContact,%s} = %v, want %v", tc.status, got, tc.want)
		}
	}
	if n := gathered(t, reg, "contactsdav_graph_request_duration_seconds", "GetContact", ""); n != 3 {
		t.Errorf("%v durations observed, want 3", n)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "tok-") {
		t.Errorf("a token is in the logs: %s", logs.String())
	}
}

// gathered reads a counter's value, or a histogram's sample count, of the
// series with the given operation (and status, when not "").
func gathered(t *testing.T, reg *prometheus.Registry, name, op, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] != op || (status != "" && labels["status"] != status) {
				continue
			}
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

type failingSource struct {
	err error
	n   atomic.Int32
}

func (s *failingSource) Token() (*oauth2.Token, error) { s.n.Add(1); return nil, s.err }

func TestTokenSourceErrors(t *testing.T) {
	tests := []struct {
		name             string
		err              error
		wantUnauthorized bool
	}{
		{"refresh refused", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"}, true},
		{"token endpoint down", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}}, false},
		{"network", errors.New("dial tcp: connection refused"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &failingSource{err: tc.err}
			c, _, _ := setup(t, Options{TokenSource: src})
			_, err := c.DefaultFolder(context.Background())
			if err == nil || errors.Is(err, ErrUnauthorized) != tc.wantUnauthorized || !errors.Is(err, tc.err) {
				t.Errorf("err = %v; want wrapping %v, ErrUnauthorized %v", err, tc.err, tc.wantUnauthorized)
			}
			if n := src.n.Load(); n != 1 {
				t.Errorf("token source asked %d times, want 1 (no retries of its failures)", n)
			}
		})
	}
}

// cachingSource caches its token like a ReuseTokenSource, and refreshes
// only when invalidated.
type cachingSource struct {
	countingSource
	mu          sync.Mutex
	tok         *oauth2.Token
	invalidated int
}

func (s *cachingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		s.tok, _ = s.countingSource.Token()
	}
	return s.tok, nil
}

func (s *cachingSource) InvalidateToken(t *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated++
	if s.tok == t {
		s.tok = nil
	}
}

func TestTokenInvalidator(t *testing.T) {
	src := &cachingSource{}
	c, mux, _ := setup(t, Options{TokenSource: src})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-2" {
			graphError(w, 401, "InvalidAuthenticationToken", "revoked")
			return
		}
		writeJSON(w, 200, User{ID: "u"})
	})
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.invalidated != 1 || src.n.Load() != 2 {
		t.Errorf("invalidated %d times, %d tokens minted; want 1 and 2", src.invalidated, src.n.Load())
	}
}

func TestBatchTakesItsParallelism(t *testing.T) {
	// With a cap of 4, a batch of 20 (run 4 at a time by Outlook) leaves
	// no slot for another request until it is answered.
	c, mux, _ := setup(t, Options{MaxConcurrent: 4})
	inBatch := make(chan struct{})
	release := make(chan struct{})
	var batchDone atomic.Bool
	mux.HandleFunc("POST /$batch", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Requests []batchRequest `json:"requests"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		close(inBatch)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		batchDone.Store(true)
		out := []map[string]any{}
		for _, rq := range in.Requests {
			out = append(out, map[string]any{"id": rq.ID, "status": 404})
		}
		writeJSON(w, 200, map[string]any{"responses": out})
	})
	mux.HandleFunc("GET /me/contacts/X", func(w http.ResponseWriter, r *http.Request) {
		if !batchDone.Load() {
			t.Error("a request ran beside a batch holding every slot")
		}
		writeJSON(w, 200, Contact{ID: "X"})
	})
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprint("id", i)
	}
	batchErr := make(chan error, 1)
	go func() { _, err := c.GetContacts(context.Background(), ids, Query{}); batchErr <- err }()
	select {
	case <-inBatch:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch did not arrive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.GetContact(ctx, "", "X", Query{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetContact beside the batch: err = %v, want it to wait for a slot", err)
	}
	close(release)
	if err := <-batchErr; err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetContact(context.Background(), "", "X", Query{}); err != nil {
		t.Error(err)
	}
}

func TestSmallBatchTakesOneSlot(t *testing.T) {
	// A one-item batch holds one slot only: a GET runs beside it.
	c, mux, _ := setup(t, Options{MaxConcurrent: 4})
	inBatch := make(chan struct{})
	release := make(chan struct{})
	mux.HandleFunc("POST /$batch", func(w http.ResponseWriter, r *http.Request) {
		close(inBatch)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		writeJSON(w, 200, map[string]any{"responses": []map[string]any{{"id": "0", "status": 404}}})
	})
	mux.HandleFunc("GET /me/contacts/X", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, Contact{ID: "X"}) })
	batchErr := make(chan error, 1)
	go func() { _, err := c.GetContacts(context.Background(), []string{"x"}, Query{}); batchErr <- err }()
	select {
	case <-inBatch:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch did not arrive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.GetContact(ctx, "", "X", Query{}); err != nil {
		t.Errorf("GetContact beside a one-item batch: %v", err)
	}
	close(release)
	if err := <-batchErr; err != nil {
		t.Fatal(err)
	}
}

func TestCreateNotRetriedWhenItMayHaveHappened(t *testing.T) {
	tests := []struct {
		status    int
		wantCalls int
	}{
		{504, 1}, // the gateway timed out: the contact may exist
		{503, 2}, // refused: safe to send again
		{429, 2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			c, mux, _ := setup(t, Options{})
			calls := 0
			mux.HandleFunc("POST /me/contactFolders/contacts/contacts", func(w http.ResponseWriter, r *http.Request) {
				calls++
				if calls == 1 {
					graphError(w, tc.status, "x", "y")
					return
				}
				writeJSON(w, 201, Contact{ID: "N"})
			})
			_, _ = c.CreateContact(context.Background(), "", &Contact{GivenName: "a"})
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
		})
	}
}

func TestBatchOfGetsRetriedAfterGatewayTimeout(t *testing.T) {
	// Unlike a create, a $batch of GETs may be sent again when the gateway
	// timed out (504) or the answer was lost.
	c, mux, _ := setup(t, Options{})
	calls := 0
	mux.HandleFunc("POST /$batch", func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			graphError(w, 504, "GatewayTimeout", "y")
			return
		}
		writeJSON(w, 200, map[string]any{"responses": []map[string]any{{"id": "0", "status": 404}}})
	})
	if _, err := c.GetContacts(context.Background(), []string{"x"}, Query{}); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("calls = %d, want 2", calls)
	}
}
