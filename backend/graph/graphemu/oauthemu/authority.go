// Package oauthemu is the Graph emulator's identity provider: enough of the
// Microsoft identity platform v2.0 endpoints (/{tenant}/oauth2/v2.0/devicecode,
// /authorize, /token) for golang.org/x/oauth2 to run the device-code flow
// (RFC 8628), the authorization-code flow with PKCE (RFC 7636), client
// credentials and refresh-token rotation against it. It issues the bearer
// tokens that the emulated Graph accepts.
package oauthemu

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Errors from Validate.
var (
	ErrInvalidToken = errors.New("oauthemu: invalid token")
	ErrExpiredToken = errors.New("oauthemu: token expired")
)

// Principal is who a bearer token speaks for.
type Principal struct {
	User string // UPN of a delegated token; "" for an app-only token
	App  bool   // client-credentials (application permissions) token
}

// Options configure an Authority.
type Options struct {
	// AutoApproveUser is the UPN signed in, without a page, by /authorize
	// and by pending device codes. When empty, device codes stay pending
	// until ApproveDevice and /authorize needs InteractiveAuthorize.
	AutoApproveUser string
	// AccessTokenTTL is the lifetime of issued access tokens (default 1h).
	AccessTokenTTL time.Duration

	// ClientID, when set, is the only client_id the endpoints accept
	// (others get invalid_client, AADSTS700016). Empty accepts any.
	ClientID string
	// ClientSecret, when set, is required by the client_credentials grant.
	// Empty accepts any non-empty secret.
	ClientSecret string

	// DeviceCodeInterval is the polling interval announced by /devicecode
	// (default 5s). It is sent in whole seconds, at least 1, because
	// RFC 8628 clients treat 0 as "use 5".
	DeviceCodeInterval time.Duration
	// DeviceCodeTTL is how long a device code lives (default 15 min, as at
	// Microsoft); polling after that answers expired_token.
	DeviceCodeTTL time.Duration
	// PendingPolls is how many token polls of a device code answer
	// authorization_pending before AutoApproveUser is signed in
	// (default 1; negative: none).
	PendingPolls int
	// VerificationURI is announced by /devicecode. The default is the
	// emulator's own page, /{tenant}/oauth2/deviceauth under the mount
	// point (Microsoft's https://microsoft.com/devicelogin leads to the
	// same path at login.microsoftonline.com), where a code is approved
	// for any user name.
	VerificationURI string

	// InteractiveAuthorize makes /authorize show a small sign-in page whose
	// form POST completes the sign-in, instead of redirecting at once.
	InteractiveAuthorize bool
}

// Authority issues and checks tokens. The zero value is not usable; call New.
type Authority struct {
	opts Options

	mu      sync.Mutex
	access  map[string]accessToken
	refresh map[string]grant      // refresh token → what it grants
	codes   map[string]*authCode  // authorization code → pending exchange
	devices map[string]*deviceReq // device_code → state
}

type accessToken struct {
	principal Principal
	expires   time.Time
}

// grant is what a refresh token stands for.
type grant struct {
	principal Principal
	clientID  string
	scope     []string
}

// New returns an Authority.
func New(opts Options) *Authority {
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.DeviceCodeInterval == 0 {
		opts.DeviceCodeInterval = 5 * time.Second
	}
	if opts.DeviceCodeTTL == 0 {
		opts.DeviceCodeTTL = 15 * time.Minute
	}
	if opts.PendingPolls == 0 {
		opts.PendingPolls = 1
	}
	return &Authority{
		opts:    opts,
		access:  map[string]accessToken{},
		refresh: map[string]grant{},
		codes:   map[string]*authCode{},
		devices: map[string]*deviceReq{},
	}
}

// Mint issues an access token for p valid for ttl (the default TTL when 0).
func (a *Authority) Mint(p Principal, ttl time.Duration) string {
	if ttl == 0 {
		ttl = a.opts.AccessTokenTTL
	}
	tok := randomToken()
	a.mu.Lock()
	a.access[tok] = accessToken{principal: p, expires: time.Now().Add(ttl)}
	a.mu.Unlock()
	return tok
}

// Validate returns the principal of a bearer token.
func (a *Authority) Validate(bearer string) (Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.access[bearer]
	if !ok {
		return Principal{}, ErrInvalidToken
	}
	if time.Now().After(t.expires) {
		return Principal{}, ErrExpiredToken
	}
	return t.principal, nil
}

// RevokeUser invalidates every token issued to user: access tokens, refresh
// tokens (which then answer invalid_grant, as after a password reset) and
// unredeemed authorization codes.
func (a *Authority) RevokeUser(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.access {
		if t.principal.User == user {
			delete(a.access, k)
		}
	}
	for k, g := range a.refresh {
		if g.principal.User == user {
			delete(a.refresh, k)
		}
	}
	for k, c := range a.codes {
		if c.user == user {
			delete(a.codes, k)
		}
	}
}

// ExpireAccessTokens makes every access token of user expired now, so the
// emulated Graph answers 401 and clients must refresh. Refresh tokens stay.
func (a *Authority) ExpireAccessTokens(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for k, t := range a.access {
		if t.principal.User == user {
			t.expires = past
			a.access[k] = t
		}
	}
}

// RefreshTokenCount is how many refresh tokens are live for user (tests use
// it to see rotation and revocation).
func (a *Authority) RefreshTokenCount(user string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, g := range a.refresh {
		if g.principal.User == user {
			n++
		}
	}
	return n
}

// mintRefreshLocked issues a refresh token for g; the caller holds a.mu.
func (a *Authority) mintRefreshLocked(g grant) string {
	tok := "0.emu." + randomToken()
	a.refresh[tok] = g
	return tok
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ServeHTTP serves /{tenant}/oauth2/v2.0/{devicecode,authorize,token}, with
// any mount prefix already stripped.
func (a *Authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant, op, ok := splitPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	_ = tenant // any tenant (common, organizations, consumers, a GUID) is accepted
	switch op {
	case "devicecode":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		a.serveDeviceCode(w, r)
	case "token":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		a.serveToken(w, r)
	case "deviceauth":
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			methodNotAllowed(w, "GET, POST")
			return
		}
		a.serveDeviceAuth(w, r)
	case "authorize":
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			methodNotAllowed(w, "GET, POST")
			return
		}
		a.serveAuthorize(w, r)
	default:
		http.NotFound(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}
