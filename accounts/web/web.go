// Package web is the sign-in page of a multi-user contactsdav server: a
// Microsoft sign-in through the OAuth 2.0 authorization-code flow with PKCE
// (RFC 6749 §4.1, RFC 7636) against the Microsoft identity platform (or the
// emulator's), after which the user's refresh token is stored in the
// accounts registry and an app password is issued for CardDAV (RFC 6352)
// clients, with an Apple configuration profile and a DAVx⁵ link to set them up.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/accounts"
)

// Options configure a Handler.
type Options struct {
	// Registry stores accounts, tokens and app passwords (required).
	Registry *accounts.Registry
	// OAuth is the app registration and authority (required): ClientID,
	// ClientSecret for a confidential client, Endpoint.AuthURL/TokenURL.
	// Empty Scopes take accounts.Scopes; an empty RedirectURL becomes
	// PublicURL + Prefix + "/callback", which must be registered with the app.
	OAuth *oauth2.Config
	// GraphBase is the Graph root for GET /me, e.g. https://graph.microsoft.com/v1.0.
	GraphBase string
	// Cloud and Tenant are recorded in each account.
	Cloud, Tenant string
	// PublicURL is the external origin of this server, e.g.
	// https://dav.example.org:8443 (required).
	PublicURL string
	// CardDAVURL is the CardDAV root shown to users (default PublicURL + "/").
	CardDAVURL string
	// Prefix is the path the handler serves under (default "/login").
	Prefix string
	// CAPEM, when set, is the local CA of a self-signed server; it goes
	// into the configuration profiles and can be downloaded.
	CAPEM []byte
	// HTTPClient makes the token and /me requests (default http.DefaultClient).
	HTTPClient *http.Client
	// AllowUser, when set, decides who may use the server after signing in.
	AllowUser func(user string) bool
	// SessionTTL is how long a browser session lasts (default 1h).
	SessionTTL time.Duration
	// Logger receives events; secrets are never logged.
	Logger *slog.Logger
}

// Handler serves the sign-in and app-password pages under Options.Prefix.
type Handler struct {
	opts Options
	log  *slog.Logger
	cfg  oauth2.Config

	mu       sync.Mutex
	pending  map[string]pendingLogin // state → PKCE verifier
	sessions map[string]*session     // session id → session
	profiles map[string]oneTime      // one-time profile token → password
}

type pendingLogin struct {
	verifier string
	expires  time.Time
}

type session struct {
	user    string
	csrf    string
	expires time.Time
}

// oneTime lets the page that shows a new app password offer a profile
// containing it, for a few minutes, without storing the password anywhere
// but in memory.
type oneTime struct {
	user, password string
	expires        time.Time
}

const (
	sessionCookie = "contactsdav_session"
	stateCookie   = "contactsdav_state"
	pendingTTL    = 10 * time.Minute
	profileTTL    = 10 * time.Minute
	maxEntries    = 10000 // bounds each in-memory map against floods
)

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Registry == nil || opts.OAuth == nil || opts.PublicURL == "" {
		return nil, errors.New("web: Registry, OAuth and PublicURL are required")
	}
	pub, err := url.Parse(opts.PublicURL)
	if err != nil || pub.Host == "" || (pub.Scheme != "https" && pub.Scheme != "http") {
		return nil, fmt.Errorf("web: bad PublicURL %q", opts.PublicURL)
	}
	opts.PublicURL = strings.TrimSuffix(opts.PublicURL, "/")
	if opts.Prefix == "" {
		opts.Prefix = "/login"
	}
	opts.Prefix = "/" + strings.Trim(opts.Prefix, "/")
	if opts.CardDAVURL == "" {
		opts.CardDAVURL = opts.PublicURL + "/"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := *opts.OAuth
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = accounts.Scopes
	}
	if cfg.RedirectURL == "" {
		cfg.RedirectURL = opts.PublicURL + opts.Prefix + "/callback"
	}
	return &Handler{
		opts: opts, cfg: cfg, log: opts.Logger.With("component", "web-login"),
		pending:  map[string]pendingLogin{},
		sessions: map[string]*session{},
		profiles: map[string]oneTime{},
	}, nil
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pruneLocked drops expired entries; the caller holds h.mu.
func (h *Handler) pruneLocked(now time.Time) {
	for k, p := range h.pending {
		if now.After(p.expires) {
			delete(h.pending, k)
		}
	}
	for k, s := range h.sessions {
		if now.After(s.expires) {
			delete(h.sessions, k)
		}
	}
	for k, p := range h.profiles {
		if now.After(p.expires) {
			delete(h.profiles, k)
		}
	}
}

func (h *Handler) secure() bool { return strings.HasPrefix(h.opts.PublicURL, "https:") }

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: h.opts.Prefix,
		MaxAge: int(maxAge / time.Second), HttpOnly: true, Secure: h.secure(),
		// Lax: the callback arrives as a top-level navigation from the
		// identity provider and must carry the state cookie.
		SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: h.opts.Prefix, MaxAge: -1, HttpOnly: true, Secure: h.secure(), SameSite: http.SameSiteLaxMode})
}

// currentSession returns the request's live session, or nil.
func (h *Handler) currentSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.sessions[c.Value]
	if !ok || time.Now().After(s.expires) {
		return nil
	}
	return s
}

func (h *Handler) newSession(w http.ResponseWriter, user string) *session {
	s := &session{user: user, csrf: randomString(24), expires: time.Now().Add(h.opts.SessionTTL)}
	id := randomString(32)
	h.mu.Lock()
	h.pruneLocked(time.Now())
	if len(h.sessions) >= maxEntries {
		clear(h.sessions) // under a flood, everyone signs in again rather than memory growing
	}
	h.sessions[id] = s
	h.mu.Unlock()
	h.setCookie(w, sessionCookie, id, h.opts.SessionTTL)
	return s
}

// checkCSRF compares the form's token with the session's.
func checkCSRF(r *http.Request, s *session) bool {
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) == 1
}

// ServeHTTP serves the pages.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// no-referrer: the callback URL carries the authorization code and the
	// pages show passwords; neither should leak to another site.
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")

	rest, ok := strings.CutPrefix(r.URL.Path, h.opts.Prefix)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		http.NotFound(w, r)
		return
	}
	route := r.Method + " " + strings.TrimSuffix(rest, "/")
	switch route {
	case "GET ", "HEAD ":
		h.serveHome(w, r)
	case "GET /start":
		h.serveStart(w, r)
	case "GET /callback":
		h.serveCallback(w, r)
	case "POST /app-passwords":
		h.serveIssue(w, r)
	case "POST /app-passwords/revoke":
		h.serveRevoke(w, r)
	case "GET /profile.mobileconfig":
		h.serveProfile(w, r)
	case "GET /CA.pem":
		h.serveCA(w, r)
	case "POST /logout":
		h.serveLogout(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveStart(w http.ResponseWriter, r *http.Request) {
	state, verifier := randomString(24), oauth2.GenerateVerifier()
	h.mu.Lock()
	h.pruneLocked(time.Now())
	if len(h.pending) >= maxEntries {
		h.mu.Unlock()
		http.Error(w, "too many sign-ins in progress; try again in a few minutes", http.StatusServiceUnavailable)
		return
	}
	h.pending[state] = pendingLogin{verifier: verifier, expires: time.Now().Add(pendingTTL)}
	h.mu.Unlock()
	// The state also goes into a cookie so that the callback completes only
	// in the browser that started it (no login CSRF).
	h.setCookie(w, stateCookie, state, pendingTTL)
	http.Redirect(w, r, h.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(stateCookie)
	h.clearCookie(w, stateCookie)
	h.mu.Lock()
	p, ok := h.pending[state]
	delete(h.pending, state)
	h.mu.Unlock()
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 || !ok || time.Now().After(p.expires) {
		h.renderError(w, http.StatusBadRequest, "This sign-in link is stale or was opened in another browser. Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		h.log.Info("sign-in refused by the identity provider", "error", e)
		h.renderError(w, http.StatusForbidden, "Microsoft did not sign you in: "+q.Get("error_description"))
		return
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, h.opts.HTTPClient)
	tok, err := h.cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		h.log.Warn("code exchange failed", "err", describeOAuthError(err))
		h.renderError(w, http.StatusBadGateway, "Signing in with Microsoft failed. Start again.")
		return
	}
	user, err := SignInName(ctx, h.opts.HTTPClient, h.opts.GraphBase, tok.AccessToken)
	if err != nil {
		h.log.Warn("reading the signed-in user failed", "err", err)
		h.renderError(w, http.StatusBadGateway, "Could not read your Microsoft account (GET /me).")
		return
	}
	if h.opts.AllowUser != nil && !h.opts.AllowUser(user) {
		h.log.Warn("sign-in by a user not allowed here", "user", user)
		h.renderError(w, http.StatusForbidden, user+" may not use this server.")
		return
	}
	if err := h.opts.Registry.Put(accounts.Account{User: user, Mailbox: user, Cloud: h.opts.Cloud, Tenant: h.opts.Tenant}, tok); err != nil {
		h.log.Error("storing the account", "user", user, "err", err)
		h.renderError(w, http.StatusInternalServerError, "Could not store your account.")
		return
	}
	h.log.Info("signed in", "user", user)
	h.issue(w, h.newSession(w, user), "Issued at sign-in "+time.Now().UTC().Format("2006-01-02"))
}

func (h *Handler) serveHome(w http.ResponseWriter, r *http.Request) {
	s := h.currentSession(r)
	if s == nil {
		h.render(w, http.StatusOK, "landing", h.pageData(nil, "", ""))
		return
	}
	h.renderAccount(w, s, "", "")
}

func (h *Handler) serveIssue(w http.ResponseWriter, r *http.Request) {
	s := h.currentSession(r)
	if s == nil || !checkCSRF(r, s) {
		h.renderError(w, http.StatusForbidden, "Your session expired. Sign in again.")
		return
	}
	label := strings.TrimSpace(r.PostFormValue("label"))
	if len(label) > 100 {
		label = label[:100]
	}
	h.issue(w, s, label)
}

// issue issues the session's user an app password and shows it on the
// account page.
func (h *Handler) issue(w http.ResponseWriter, s *session, label string) {
	pw, _, err := h.opts.Registry.IssueAppPassword(s.user, label)
	switch {
	case errors.Is(err, accounts.ErrTooManyAppPasswords):
		h.renderAccount(w, s, "", "You have the most app passwords allowed; revoke one to issue another.")
	case err != nil:
		h.log.Error("issuing an app password", "user", s.user, "err", err)
		h.renderError(w, http.StatusInternalServerError, "Could not issue an app password.")
	default:
		h.renderAccount(w, s, pw, "")
	}
}

func (h *Handler) serveRevoke(w http.ResponseWriter, r *http.Request) {
	s := h.currentSession(r)
	if s == nil || !checkCSRF(r, s) {
		h.renderError(w, http.StatusForbidden, "Your session expired. Sign in again.")
		return
	}
	if err := h.opts.Registry.RevokeAppPassword(s.user, r.PostFormValue("id")); err != nil && !errors.Is(err, accounts.ErrNoAppPassword) {
		h.log.Error("revoking an app password", "user", s.user, "err", err)
		h.renderError(w, http.StatusInternalServerError, "Could not revoke the app password.")
		return
	}
	// 303: reloading the page afterwards does not repeat the POST.
	http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
}

func (h *Handler) serveProfile(w http.ResponseWriter, r *http.Request) {
	s := h.currentSession(r)
	if s == nil {
		h.renderError(w, http.StatusForbidden, "Your session expired. Sign in again.")
		return
	}
	p := Profile{CardDAVURL: h.opts.CardDAVURL, User: s.user, CAPEM: h.opts.CAPEM}
	if t := r.URL.Query().Get("t"); t != "" {
		h.mu.Lock()
		ot, ok := h.profiles[t]
		h.mu.Unlock()
		if ok && ot.user == s.user && time.Now().Before(ot.expires) {
			p.Password = ot.password
		}
	}
	b, err := p.MobileConfig()
	if err != nil {
		h.log.Error("building the profile", "err", err)
		h.renderError(w, http.StatusInternalServerError, "Could not build the profile.")
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="contactsdav.mobileconfig"`)
	w.Write(b)
}

func (h *Handler) serveCA(w http.ResponseWriter, r *http.Request) {
	if len(h.opts.CAPEM) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="contactsdav-CA.pem"`)
	w.Write(h.opts.CAPEM)
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	if s := h.currentSession(r); s != nil && checkCSRF(r, s) {
		c, _ := r.Cookie(sessionCookie)
		h.mu.Lock()
		delete(h.sessions, c.Value)
		h.mu.Unlock()
	}
	h.clearCookie(w, sessionCookie)
	http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
}

// describeOAuthError keeps the error code and description of a token
// endpoint error, never a body that could hold a token.
func describeOAuthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode + ": " + re.ErrorDescription
	}
	return err.Error()
}
