package accounts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenSource returns the user's Microsoft access tokens. It refreshes with
// the stored refresh token through Options.OAuthConfig and saves every
// rotated refresh token (encrypted) before handing the access token out, so
// a restart never falls back to an older one. When Microsoft answers
// invalid_grant the account is marked NeedsSignIn and Token returns an error
// matching ErrReauthRequired. One source per user is shared by all callers.
func (r *Registry) TokenSource(user string) oauth2.TokenSource {
	k := string(keyOf(user))
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sources[k]
	if !ok {
		s = &persistingSource{reg: r, user: user}
		r.sources[k] = s
	}
	return s
}

// persistingSource is the per-user TokenSource.
type persistingSource struct {
	reg  *Registry
	user string

	mu  sync.Mutex
	tok *oauth2.Token // last access token; nil before the first refresh
}

// expiryDelta refreshes this long before expiry, as oauth2 does, so a token
// does not die on its way to Graph.
const expiryDelta = time.Minute

func (s *persistingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reg
	if s.tok != nil && s.tok.AccessToken != "" && r.opts.Now().Add(expiryDelta).Before(s.tok.Expiry) {
		return s.tok, nil
	}
	acct, err := r.Get(s.user)
	if err != nil {
		return nil, err
	}
	rt, err := r.RefreshToken(s.user)
	if err != nil {
		return nil, err
	}
	if r.opts.OAuthConfig == nil {
		return nil, errors.New("accounts: no OAuthConfig to refresh tokens with")
	}
	cfg := r.opts.OAuthConfig(acct)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, r.opts.HTTPClient)
	// An expired token with only the refresh token makes the oauth2
	// source refresh right away.
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			if merr := r.markNeedsSignIn(s.user); merr != nil {
				r.log.Error("marking account for sign-in", "user", s.user, "err", merr)
			}
			r.log.Warn("Microsoft refused the refresh token; the user must sign in again", "user", s.user, "error_code", re.ErrorCode)
			// Keep Microsoft's refusal in the chain: callers such as the
			// Graph client recognise a refused grant by it.
			return nil, fmt.Errorf("%w (%s): %w", ErrReauthRequired, s.user, err)
		}
		return nil, fmt.Errorf("accounts: refreshing the token of %s: %w", s.user, err)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != rt {
		if err := r.saveRefreshToken(s.user, tok.RefreshToken); err != nil {
			// The new access token works, but losing the rotated refresh
			// token is survivable (the old one stays valid at Microsoft),
			// so log instead of failing the request.
			r.log.Error("saving rotated refresh token", "user", s.user, "err", err)
		}
	}
	s.tok = tok
	return tok, nil
}

// InvalidateToken drops t if it is the cached access token, so the next
// Token refreshes. The Graph client calls it after a 401 (it implements
// graph.TokenInvalidator): an access token revoked or expired early at
// Microsoft must not be handed out again until its stated expiry.
func (s *persistingSource) InvalidateToken(t *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t != nil && s.tok != nil && s.tok.AccessToken == t.AccessToken {
		s.tok = nil
	}
}
