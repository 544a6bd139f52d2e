package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/carddav"
)

// accountAuth adapts the accounts registry to carddav.Authenticator for a
// multi-user server: Basic credentials are a user's sign-in name and one of
// their app passwords; the Backend it returns reaches Graph with the user's
// rotating Microsoft token.
type accountAuth struct {
	reg *accounts.Registry
	// backendFor builds the user's Backend on their token source.
	backendFor func(a accounts.Account, ts oauth2.TokenSource) (carddav.Backend, error)
	log        *slog.Logger
	// trusted are reverse proxies whose X-Forwarded-For is believed, so
	// failed logins are counted per real client, not per proxy.
	trusted []netip.Prefix
}

// Authenticate implements carddav.Authenticator.
func (a *accountAuth) Authenticate(r *http.Request, username, password string) (carddav.Backend, error) {
	err := a.reg.Authenticate(username, password, clientAddr(r, a.trusted))
	var rl *accounts.RateLimited
	switch {
	case errors.As(err, &rl):
		return nil, &carddav.RateLimitError{RetryAfter: rl.RetryAfter}
	case errors.Is(err, accounts.ErrUnauthorized):
		return nil, carddav.ErrUnauthorized
	case err != nil:
		return nil, &carddav.UnavailableError{RetryAfter: 30 * time.Second, Err: err}
	}
	acct, err := a.reg.Get(username)
	if err != nil {
		return nil, carddav.ErrUnauthorized
	}
	if acct.NeedsSignIn {
		// 401 makes the client ask for the password; the fix is at the
		// sign-in page, which the log line and the web page point to.
		a.log.Warn("Microsoft refused this user's token; they must sign in again", "user", acct.User)
		return nil, carddav.ErrUnauthorized
	}
	return a.backendFor(acct, a.reg.TokenSource(acct.User))
}

// oauthConfigFor returns the accounts.Options.OAuthConfig of a server:
// each account refreshes at its own cloud and tenant, unless loginURL
// overrides the authority (the emulator).
func oauthConfigFor(clientID, clientSecret, loginURL string) func(accounts.Account) *oauth2.Config {
	return func(a accounts.Account) *oauth2.Config {
		base := loginURL
		if base == "" {
			c, ok := graph.Clouds[a.Cloud]
			if !ok {
				c = graph.Clouds["global"]
			}
			base = c.LoginBase
		}
		return &oauth2.Config{
			ClientID:     clientID,
			ClientSecret: clientSecret,
			Endpoint:     accounts.MicrosoftEndpoint(base, a.Tenant),
			Scopes:       accounts.Scopes,
		}
	}
}

// clientAddr is the address a request came from, as "ip:port": its peer, or,
// when the peer is a trusted reverse proxy, the nearest X-Forwarded-For hop
// that is not one (hops further left could be forged by the client).
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !isTrusted(peer.Addr()) {
		return r.RemoteAddr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !isTrusted(a) {
			return net.JoinHostPort(a.Unmap().String(), "0")
		}
	}
	return r.RemoteAddr
}

// parsePrefixes reads a comma-separated list of addresses and CIDR prefixes.
func parsePrefixes(spec string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(spec) {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
