package accounts

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
)

// cheap keeps argon2 fast in tests; production uses DefaultArgon2.
var cheap = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testKey() []byte { return bytes.Repeat([]byte{7}, KeySize) }

func openTest(t *testing.T, opts Options) (*Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts.db")
	opts.Argon2 = cheap
	opts.Logger = quiet
	r, err := Open(path, testKey(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "key")
	k1, err := LoadKey(path, "")
	if err != nil || len(k1) != KeySize {
		t.Fatalf("create: %v %d", err, len(k1))
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", st.Mode(), err)
	}
	k2, err := LoadKey(path, "")
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload gave another key: %v", err)
	}
	want := bytes.Repeat([]byte{0xab}, KeySize)
	for _, tc := range []struct {
		name, env string
		ok        bool
	}{
		{"base64", base64.StdEncoding.EncodeToString(want), true},
		{"hex", hex.EncodeToString(want), true},
		{"short", "abcd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONTACTSDAV_TEST_KEY", tc.env)
			k, err := LoadKey(path, "CONTACTSDAV_TEST_KEY")
			if tc.ok != (err == nil) || (tc.ok && !bytes.Equal(k, want)) {
				t.Fatalf("%x %v", k, err)
			}
		})
	}
	t.Setenv("CONTACTSDAV_TEST_KEY", "")
	if k, err := LoadKey(path, "CONTACTSDAV_TEST_KEY"); err != nil || !bytes.Equal(k, k1) {
		t.Fatalf("empty env must fall back to the file: %v", err)
	}
}

func TestAccountsCRUD(t *testing.T) {
	r, _ := openTest(t, Options{})
	if _, err := r.Get("nobody@x"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("get missing: %v", err)
	}
	if err := r.Put(Account{User: "Adele@Contoso.example", Cloud: "global"}, nil); err != nil {
		t.Fatal(err)
	}
	a, err := r.Get("adele@contoso.example")
	if err != nil || a.User != "Adele@Contoso.example" || a.Created.IsZero() {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := r.RefreshToken(a.User); !errors.Is(err, ErrNoToken) {
		t.Fatalf("token of tokenless account: %v", err)
	}
	if err := r.Put(Account{User: "x"}, &oauth2.Token{AccessToken: "a"}); err == nil {
		t.Fatal("token without refresh token accepted")
	}
	if err := r.Put(Account{User: "b@x"}, &oauth2.Token{RefreshToken: "rt-b"}); err != nil {
		t.Fatal(err)
	}
	if rt, err := r.RefreshToken("B@X"); err != nil || rt != "rt-b" {
		t.Fatalf("%q %v", rt, err)
	}
	list, err := r.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list %v %v", list, err)
	}
	if err := r.Delete("b@x"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("b@x"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	r, path := openTest(t, Options{})
	if err := r.Put(Account{User: "a@x"}, &oauth2.Token{RefreshToken: "secret-rt"}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	other, err := Open(path, bytes.Repeat([]byte{8}, KeySize), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.RefreshToken("a@x"); err == nil {
		t.Fatal("decrypted with the wrong key")
	}
	if _, err := Open(path+"2", []byte("short"), Options{}); err == nil {
		t.Fatal("short key accepted")
	}
}

var passwordShape = regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}-[a-z2-7]{5}-[a-z2-7]{5}$`)

func TestAppPasswords(t *testing.T) {
	for _, ttl := range []time.Duration{0, -1} { // with and without the verify cache
		t.Run(map[bool]string{true: "cache", false: "nocache"}[ttl == 0], func(t *testing.T) {
			r, _ := openTest(t, Options{VerifyCacheTTL: ttl, MaxAppPasswords: 3})
			const u = "adele@contoso.example"
			if _, _, err := r.IssueAppPassword(u, "x"); !errors.Is(err, ErrNoAccount) {
				t.Fatalf("issue without account: %v", err)
			}
			if err := r.Put(Account{User: u}, nil); err != nil {
				t.Fatal(err)
			}
			pw1, id1, err := r.IssueAppPassword(u, "iPhone")
			if err != nil {
				t.Fatal(err)
			}
			pw2, id2, err := r.IssueAppPassword(u, "")
			if err != nil {
				t.Fatal(err)
			}
			if !passwordShape.MatchString(pw1) || pw1 == pw2 || id1 == id2 {
				t.Fatalf("passwords %q %q ids %q %q", pw1, pw2, id1, id2)
			}
			for _, tc := range []struct {
				user, pw string
				ok       bool
			}{
				{u, pw1, true},
				{u, pw2, true},
				{strings.ToUpper(u), pw1, true},
				{u, " " + strings.ToUpper(pw2) + " ", true},
				{u, pw1 + "x", false},
				{u, "", false},
				{"other@x", pw1, false},
			} {
				for i := 0; i < 2; i++ { // twice: the second may hit the cache
					if err := r.Verify(tc.user, tc.pw); (err == nil) != tc.ok {
						t.Fatalf("Verify(%q, %q) = %v", tc.user, tc.pw, err)
					} else if err != nil && !errors.Is(err, ErrUnauthorized) {
						t.Fatalf("error %v is not ErrUnauthorized", err)
					}
				}
			}
			list, err := r.ListAppPasswords(u)
			if err != nil || len(list) != 2 || list[0].Label != "iPhone" || list[1].Label != "CardDAV" || list[0].LastUsed.IsZero() {
				t.Fatalf("list %+v %v", list, err)
			}
			if err := r.RevokeAppPassword(u, id1); err != nil {
				t.Fatal(err)
			}
			if err := r.RevokeAppPassword(u, id1); !errors.Is(err, ErrNoAppPassword) {
				t.Fatalf("revoke twice: %v", err)
			}
			if err := r.Verify(u, pw1); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("revoked password still works: %v", err)
			}
			if err := r.Verify(u, pw2); err != nil {
				t.Fatalf("other password broken by revoke: %v", err)
			}
			for i := 0; i < 2; i++ {
				if _, _, err := r.IssueAppPassword(u, "more"); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := r.IssueAppPassword(u, "one too many"); !errors.Is(err, ErrTooManyAppPasswords) {
				t.Fatalf("limit: %v", err)
			}
		})
	}
}

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLimiter(t *testing.T) {
	type step struct {
		advance    time.Duration
		fail       bool   // record a failure (else check Allow)
		succeed    bool   // record a success
		user, addr string // defaults "u", "192.0.2.1:1234"
		wantWait   time.Duration
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"under-limit", []step{{fail: true}, {fail: true}, {}}},
		{"per-user", []step{{fail: true}, {fail: true}, {fail: true}, {wantWait: 10 * time.Minute},
			{addr: "198.51.100.9:1", wantWait: 10 * time.Minute}, {user: "v"}}},
		{"window-slides", []step{{fail: true}, {advance: time.Minute, fail: true}, {fail: true},
			{advance: 8 * time.Minute, wantWait: time.Minute}, {advance: time.Minute}}},
		{"per-address", []step{{user: "a", fail: true}, {user: "b", fail: true}, {user: "c", fail: true}, {user: "d", fail: true},
			{user: "e", wantWait: 10 * time.Minute}, {user: "e", addr: "192.0.2.2:1"}}},
		{"ipv6-slash64", []step{
			{addr: "[2001:db8::1]:1", user: "a", fail: true}, {addr: "[2001:db8::2]:1", user: "b", fail: true},
			{addr: "[2001:db8::3]:1", user: "c", fail: true}, {addr: "[2001:db8::4]:1", user: "d", fail: true},
			{addr: "[2001:db8::5]:1", user: "e", wantWait: 10 * time.Minute},
			{addr: "[2001:db8:0:1::5]:1", user: "e"}}},
		{"success-resets-user", []step{{fail: true}, {fail: true}, {succeed: true}, {fail: true}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			l := NewLimiter(LimiterOptions{PerUser: 3, PerAddress: 4, Window: 10 * time.Minute, Now: clk.Now})
			for i, s := range tc.steps {
				if s.user == "" {
					s.user = "u"
				}
				if s.addr == "" {
					s.addr = "192.0.2.1:1234"
				}
				clk.Advance(s.advance)
				switch {
				case s.fail:
					l.Fail(s.user, s.addr)
				case s.succeed:
					l.Succeed(s.user)
				default:
					err := l.Allow(s.user, s.addr)
					var rl *RateLimited
					if s.wantWait == 0 && err != nil {
						t.Fatalf("step %d: refused: %v", i, err)
					}
					if s.wantWait != 0 && (!errors.As(err, &rl) || rl.RetryAfter != s.wantWait || !errors.Is(err, ErrRateLimited)) {
						t.Fatalf("step %d: got %v, want wait %s", i, err, s.wantWait)
					}
				}
			}
		})
	}
}

func TestLimiterBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(LimiterOptions{MaxKeys: 10, Window: time.Minute, Now: clk.Now})
	for i := 0; i < 100; i++ {
		l.Fail("user"+string(rune('a'+i%26))+string(rune('a'+i/26)), "192.0.2.1:1")
	}
	if n := len(l.failures); n > 10 {
		t.Fatalf("limiter holds %d keys", n)
	}
	clk.Advance(2 * time.Minute)
	l.Fail("fresh", "192.0.2.9:1")
	if _, ok := l.failures[userKey("fresh")]; !ok {
		t.Fatal("aged keys were not pruned to make room")
	}
}

func TestAuthenticate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	lim := NewLimiter(LimiterOptions{PerUser: 2, Window: time.Minute, Now: clk.Now})
	r, _ := openTest(t, Options{Limiter: lim})
	const u, addr = "a@x", "127.0.0.1:5000"
	if err := r.Put(Account{User: u}, nil); err != nil {
		t.Fatal(err)
	}
	pw, _, err := r.IssueAppPassword(u, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Authenticate(u, pw, addr); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := r.Authenticate(u, "wrong", addr); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	var rl *RateLimited
	if err := r.Authenticate(u, pw, addr); !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Fatalf("after failures: %v", err)
	}
	clk.Advance(time.Minute)
	if err := r.Authenticate(u, pw, addr); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// emuToken signs testUser in at an oauthemu authority through the
// authorization-code flow and returns the OAuth config and token.
func emuToken(t *testing.T, a *oauthemu.Authority, user string) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	base := srv.URL + "/common/oauth2/v2.0/"
	cfg := &oauth2.Config{
		ClientID:    "client-1",
		Endpoint:    oauth2.Endpoint{AuthURL: base + "authorize", TokenURL: base + "token", AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://127.0.0.1/cb",
		Scopes:      []string{"Contacts.ReadWrite", "offline_access", "User.Read"},
	}
	v := oauth2.GenerateVerifier()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := cfg.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, tok
}

func TestTokenSourceRotationAndReauth(t *testing.T) {
	const u = "adele@contoso.example"
	auth := oauthemu.New(oauthemu.Options{AutoApproveUser: u})
	cfg, tok := emuToken(t, auth, u)
	r, path := openTest(t, Options{OAuthConfig: func(Account) *oauth2.Config { return cfg }})
	if err := r.Put(Account{User: u, Mailbox: u, Cloud: "global"}, tok); err != nil {
		t.Fatal(err)
	}
	pw, _, err := r.IssueAppPassword(u, "Mac")
	if err != nil {
		t.Fatal(err)
	}

	ts := r.TokenSource(u)
	at, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := auth.Validate(at.AccessToken); err != nil || p.User != u {
		t.Fatalf("access token principal %+v %v", p, err)
	}
	rt1, _ := r.RefreshToken(u)
	if rt1 == tok.RefreshToken {
		t.Fatal("rotated refresh token was not saved")
	}
	if at2, err := r.TokenSource(u).Token(); err != nil || at2.AccessToken != at.AccessToken {
		t.Fatalf("valid access token not reused: %v", err)
	}

	// No plaintext secret in the file: neither refresh token, nor the app
	// password (with or without its dashes), nor the access token.
	r.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{tok.RefreshToken, rt1, pw, strings.ReplaceAll(pw, "-", ""), at.AccessToken} {
		if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte(secret)))) {
			t.Fatalf("the database holds a secret in plaintext")
		}
	}

	// A restarted registry refreshes with the rotated token.
	r2, err := Open(path, testKey(), Options{Argon2: cheap, Logger: quiet, OAuthConfig: func(Account) *oauth2.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.TokenSource(u).Token(); err != nil {
		t.Fatal(err)
	}
	if rt2, _ := r2.RefreshToken(u); rt2 == rt1 {
		t.Fatal("second rotation not saved")
	}

	// Revocation at Microsoft: invalid_grant → ErrReauthRequired, remembered.
	auth.RevokeUser(u)
	r2.mu.Lock()
	clear(r2.sources)
	r2.mu.Unlock()
	if _, err := r2.TokenSource(u).Token(); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("after revoke: %v", err)
	}
	if a, _ := r2.Get(u); !a.NeedsSignIn {
		t.Fatal("NeedsSignIn not set")
	}
	if _, err := r2.TokenSource(u).Token(); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("second call after revoke: %v", err)
	}
	// Signing in again clears it; app passwords survive.
	_, tok3 := emuToken(t, auth, u)
	if err := r2.Put(Account{User: u, Mailbox: u, Cloud: "global"}, tok3); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.TokenSource(u).Token(); err != nil {
		t.Fatalf("after new sign-in: %v", err)
	}
	if err := r2.Verify(u, pw); err != nil {
		t.Fatalf("app password lost on re-sign-in: %v", err)
	}
}

func TestVerifyCacheRevokeRace(t *testing.T) {
	c := newVerifyCache(time.Minute)
	gen := c.generation("a@x")
	c.forgetUser("a@x") // a revocation lands while a Verify is hashing
	c.remember("a@x", "pw", "id1", gen)
	if _, ok := c.lookup("a@x", "pw"); ok {
		t.Fatal("a result read before the revocation was cached after it")
	}
	c.remember("a@x", "pw", "id1", c.generation("a@x"))
	if id, ok := c.lookup("A@X", "pw"); !ok || id != "id1" {
		t.Fatal("cache miss for a current result")
	}
	if _, ok := c.lookup("a@x", "other"); ok {
		t.Fatal("cache hit for another password")
	}
}

// A remembered credential is forgotten once the cache's TTL has passed.
func TestVerifyCacheExpires(t *testing.T) {
	c := newVerifyCache(time.Millisecond)
	c.remember("a@x", "pw", "id1", c.generation("a@x"))
	if id, ok := c.lookup("a@x", "pw"); !ok || id != "id1" {
		t.Fatal("cache miss right after remembering")
	}
	time.Sleep(5 * time.Millisecond)
	if _, ok := c.lookup("a@x", "pw"); ok {
		t.Fatal("cache hit after the TTL")
	}
}

// An access token Graph refused is not handed out again: the next Token
// refreshes, though the refused one had not reached its stated expiry.
func TestTokenSourceInvalidate(t *testing.T) {
	const u = "megan@contoso.example"
	auth := oauthemu.New(oauthemu.Options{AutoApproveUser: u})
	cfg, tok := emuToken(t, auth, u)
	r, _ := openTest(t, Options{OAuthConfig: func(Account) *oauth2.Config { return cfg }})
	if err := r.Put(Account{User: u, Mailbox: u, Cloud: "global"}, tok); err != nil {
		t.Fatal(err)
	}
	ts := r.TokenSource(u)
	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	inv, ok := ts.(interface{ InvalidateToken(*oauth2.Token) })
	if !ok {
		t.Fatal("the token source does not implement graph.TokenInvalidator")
	}
	inv.InvalidateToken(&oauth2.Token{AccessToken: "some other token"})
	if again, _ := ts.Token(); again.AccessToken != first.AccessToken {
		t.Fatal("invalidating another token dropped the cached one")
	}
	auth.ExpireAccessTokens(u)
	inv.InvalidateToken(first)
	second, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken {
		t.Fatal("the refused access token was handed out again")
	}
	if _, err := auth.Validate(second.AccessToken); err != nil {
		t.Fatalf("new access token: %v", err)
	}
}
