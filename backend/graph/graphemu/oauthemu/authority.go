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
	// and by pending device codes.
	AutoApproveUser string
	// AccessTokenTTL is the lifetime of issued access tokens (default 1h).
	AccessTokenTTL time.Duration
}

// Authority issues and checks tokens. The zero value is not usable; call New.
type Authority struct {
	opts Options

	mu     sync.Mutex
	access map[string]accessToken
}

type accessToken struct {
	principal Principal
	expires   time.Time
}

// New returns an Authority.
func New(opts Options) *Authority {
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = time.Hour
	}
	return &Authority{opts: opts, access: map[string]accessToken{}}
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

// RevokeUser invalidates every token issued to user.
func (a *Authority) RevokeUser(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, t := range a.access {
		if t.principal.User == user {
			delete(a.access, k)
		}
	}
}

// ServeHTTP serves /{tenant}/oauth2/v2.0/{devicecode,authorize,token}, with
// any mount prefix already stripped.
func (a *Authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "oauthemu: flows not implemented yet", http.StatusNotImplemented)
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
