package oauthemu

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// splitPath parses "/{tenant}/oauth2/v2.0/{op}", and the device
// verification page "/{tenant}/oauth2/deviceauth" (op "deviceauth").
func splitPath(p string) (tenant, op string, ok bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) == 3 && parts[0] != "" && parts[1] == "oauth2" && parts[2] == "deviceauth" {
		return parts[0], "deviceauth", true
	}
	if len(parts) != 4 || parts[0] == "" || parts[1] != "oauth2" || parts[2] != "v2.0" || parts[3] == "deviceauth" {
		return "", "", false
	}
	return parts[0], parts[3], true
}

// verificationURI is Options.VerificationURI or the emulator's own page,
// found from the request: RequestURI still holds the mount prefix that
// http.StripPrefix removed from URL.Path.
func (a *Authority) verificationURI(r *http.Request, tenant string) string {
	if a.opts.VerificationURI != "" {
		return a.opts.VerificationURI
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	full := r.URL.Path
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		full = u.Path
	}
	prefix := strings.TrimSuffix(full, r.URL.Path)
	return scheme + "://" + r.Host + prefix + "/" + tenant + "/oauth2/deviceauth"
}

// oauthError is the Microsoft identity platform's error body.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

// writeError answers 400 (or status) with an AADSTS-style error body.
func writeError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	now := time.Now().UTC()
	body := oauthError{
		Error:            code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Timestamp: %s", aadsts, desc, newGUID(), now.Format("2006-01-02 15:04:05Z")),
		ErrorCodes:       []int{aadsts},
		Timestamp:        now.Format("2006-01-02 15:04:05Z"),
		TraceID:          newGUID(),
		CorrelationID:    newGUID(),
		ErrorURI:         "https://login.microsoftonline.com/error?code=" + fmt.Sprint(aadsts),
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// clientOf returns the client_id and secret from the form or, as
// x/oauth2's AuthStyleInHeader sends them, from Basic auth.
func clientOf(r *http.Request) (id, secret string) {
	id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		if id == "" {
			id, _ = url.QueryUnescape(u)
		}
		if secret == "" {
			secret, _ = url.QueryUnescape(p)
		}
	}
	return id, secret
}

// checkClient reports whether id is acceptable, answering the error if not.
func (a *Authority) checkClient(w http.ResponseWriter, id string) bool {
	if id == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return false
	}
	if a.opts.ClientID != "" && id != a.opts.ClientID {
		writeError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory.", id))
		return false
	}
	return true
}

func scopesOf(s string) []string { return strings.Fields(s) }

// grantedScope is the scope string in a token response: what was asked,
// without offline_access (Microsoft reports it by returning a refresh token).
func grantedScope(scope []string) string {
	out := make([]string, 0, len(scope))
	for _, s := range scope {
		if s != "offline_access" {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// tokenResponse is the successful /token body.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// issue mints the tokens for g and writes the response. A refresh token is
// issued only when offline_access was asked for, as at Microsoft.
func (a *Authority) issue(w http.ResponseWriter, g grant) {
	ttl := a.opts.AccessTokenTTL
	resp := tokenResponse{
		TokenType:    "Bearer",
		Scope:        grantedScope(g.scope),
		ExpiresIn:    int(ttl / time.Second),
		ExtExpiresIn: int(ttl / time.Second),
		AccessToken:  a.Mint(g.principal, ttl),
	}
	if !g.principal.App && slices.Contains(g.scope, "offline_access") {
		a.mu.Lock()
		resp.RefreshToken = a.mintRefreshLocked(g)
		a.mu.Unlock()
	}
	if !g.principal.App && slices.Contains(g.scope, "openid") {
		resp.IDToken = idToken(g)
	}
	writeJSON(w, http.StatusOK, resp)
}

// idToken is an unsigned (alg "none") JWT naming the user; the emulator's
// clients read, never verify, it.
func idToken(g grant) string {
	enc := base64.RawURLEncoding
	head, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "none"})
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{
		"aud": g.clientID, "iss": "https://login.microsoftonline.com/emulator/v2.0",
		"iat": now, "nbf": now, "exp": now + 3600,
		"preferred_username": g.principal.User, "name": g.principal.User,
		"oid": newGUID(), "tid": newGUID(), "ver": "2.0",
	})
	return enc.EncodeToString(head) + "." + enc.EncodeToString(claims) + "."
}

// ---- device code (RFC 8628) ----

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDeclined
	deviceRedeemed
)

type deviceReq struct {
	userCode string
	clientID string
	scope    []string
	expires  time.Time
	polls    int
	state    deviceState
	user     string
}

const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newUserCode() string {
	b := make([]byte, 9)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(userCodeAlphabet))))
		b[i] = userCodeAlphabet[n.Int64()]
	}
	return string(b)
}

func (a *Authority) serveDeviceCode(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body is not a valid form.")
		return
	}
	id, _ := clientOf(r)
	if !a.checkClient(w, id) {
		return
	}
	scope := scopesOf(r.PostForm.Get("scope"))
	if len(scope) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
		return
	}
	tenant, _, _ := splitPath(r.URL.Path)
	verify := a.verificationURI(r, tenant)
	d := &deviceReq{userCode: newUserCode(), clientID: id, scope: scope, expires: time.Now().Add(a.opts.DeviceCodeTTL)}
	code := randomToken()
	a.mu.Lock()
	a.pruneLocked()
	a.devices[code] = d
	a.mu.Unlock()
	interval := int((a.opts.DeviceCodeInterval + time.Second - 1) / time.Second)
	if interval < 1 {
		interval = 1
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":      code,
		"user_code":        d.userCode,
		"verification_uri": verify,
		"expires_in":       int(a.opts.DeviceCodeTTL / time.Second),
		"interval":         interval,
		"message": fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.",
			verify, d.userCode),
	})
}

// deviceByUserCode finds a device request; the caller holds a.mu.
func (a *Authority) deviceByUserCodeLocked(userCode string) *deviceReq {
	for _, d := range a.devices {
		if d.userCode == userCode {
			return d
		}
	}
	return nil
}

// ApproveDevice signs user in for the pending device code userCode, as if
// they had entered it at the verification page. It reports whether the code
// was pending.
func (a *Authority) ApproveDevice(userCode, user string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.deviceByUserCodeLocked(userCode)
	if d == nil || d.state != devicePending {
		return false
	}
	d.state, d.user = deviceApproved, user
	return true
}

// DeclineDevice makes the device code userCode answer authorization_declined,
// as when the user cancels the sign-in. It reports whether the code was pending.
func (a *Authority) DeclineDevice(userCode string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.deviceByUserCodeLocked(userCode)
	if d == nil || d.state != devicePending {
		return false
	}
	d.state = deviceDeclined
	return true
}

// ExpireDevice makes the device code userCode answer expired_token.
func (a *Authority) ExpireDevice(userCode string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.deviceByUserCodeLocked(userCode)
	if d == nil {
		return false
	}
	d.expires = time.Now().Add(-time.Second)
	return true
}

func (a *Authority) grantDevice(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("device_code")
	a.mu.Lock()
	d, ok := a.devices[code]
	if !ok || d.clientID != clientID {
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "bad_verification_code", 70000, "The provided value for the input parameter 'device_code' is not valid.")
		return
	}
	if time.Now().After(d.expires) {
		delete(a.devices, code)
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
		return
	}
	d.polls++
	if d.state == devicePending && a.opts.AutoApproveUser != "" && d.polls > a.opts.PendingPolls {
		d.state, d.user = deviceApproved, a.opts.AutoApproveUser
	}
	switch d.state {
	case devicePending:
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
		return
	case deviceDeclined:
		delete(a.devices, code)
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "authorization_declined", 70000, "The user declined the authorization request.")
		return
	case deviceRedeemed:
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "invalid_grant", 54005, "The device code was already redeemed.")
		return
	}
	d.state = deviceRedeemed
	g := grant{principal: Principal{User: d.user}, clientID: d.clientID, scope: d.scope}
	a.mu.Unlock()
	a.issue(w, g)
}

// pruneLocked forgets expired device and authorization codes and access
// tokens, so a long-running emulator does not grow; the caller holds a.mu.
func (a *Authority) pruneLocked() {
	now := time.Now()
	// An hour of grace keeps expired_token answerable for late pollers.
	for k, d := range a.devices {
		if now.Sub(d.expires) > time.Hour {
			delete(a.devices, k)
		}
	}
	for k, c := range a.codes {
		if now.After(c.expires) {
			delete(a.codes, k)
		}
	}
	for k, t := range a.access {
		// A day of grace keeps ErrExpiredToken (not ErrInvalidToken) for
		// recently expired tokens, as Graph tells the two apart.
		if now.Sub(t.expires) > 24*time.Hour {
			delete(a.access, k)
		}
	}
}

// ---- token endpoint ----

func (a *Authority) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body is not a valid form.")
		return
	}
	id, secret := clientOf(r)
	if !a.checkClient(w, id) {
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "urn:ietf:params:oauth:grant-type:device_code":
		a.grantDevice(w, r, id)
	case "authorization_code":
		a.grantCode(w, r, id)
	case "refresh_token":
		a.grantRefresh(w, r, id)
	case "client_credentials":
		if secret == "" || (a.opts.ClientSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(a.opts.ClientSecret)) != 1) {
			writeError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
			return
		}
		a.issue(w, grant{principal: Principal{App: true}, clientID: id, scope: scopesOf(r.PostForm.Get("scope"))})
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
	}
}

func (a *Authority) grantRefresh(w http.ResponseWriter, r *http.Request, clientID string) {
	rt := r.PostForm.Get("refresh_token")
	a.mu.Lock()
	g, ok := a.refresh[rt]
	a.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.")
		return
	}
	if g.clientID != clientID {
		writeError(w, http.StatusBadRequest, "invalid_grant", 70000, "The refresh token was issued to a different client.")
		return
	}
	// Rotation: the old refresh token stays valid (as at Microsoft); issue
	// mints a new one because the grant carries offline_access.
	if s := scopesOf(r.PostForm.Get("scope")); len(s) > 0 {
		g.scope = s
		if !slices.Contains(s, "offline_access") {
			g.scope = append(g.scope, "offline_access")
		}
	}
	a.issue(w, g)
}

// ---- authorization code with PKCE (RFC 7636) ----

type authCode struct {
	user        string
	clientID    string
	redirectURI string
	scope       []string
	challenge   string
	method      string
	expires     time.Time
}

func (a *Authority) grantCode(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("code")
	a.mu.Lock()
	c, ok := a.codes[code]
	delete(a.codes, code) // single use
	a.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed or is not valid.")
		return
	case time.Now().After(c.expires):
		writeError(w, http.StatusBadRequest, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.")
		return
	case c.clientID != clientID:
		writeError(w, http.StatusBadRequest, "invalid_grant", 70000, "The authorization code was issued to a different client.")
		return
	case r.PostForm.Get("redirect_uri") != c.redirectURI:
		writeError(w, http.StatusBadRequest, "invalid_grant", 50011, "The redirect URI specified in the request does not match the redirect URI used to obtain the authorization code.")
		return
	}
	if c.challenge != "" {
		v := r.PostForm.Get("code_verifier")
		var want string
		if c.method == "S256" {
			sum := sha256.Sum256([]byte(v))
			want = base64.RawURLEncoding.EncodeToString(sum[:])
		} else {
			want = v
		}
		if v == "" || subtle.ConstantTimeCompare([]byte(want), []byte(c.challenge)) != 1 {
			writeError(w, http.StatusBadRequest, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
			return
		}
	}
	a.issue(w, grant{principal: Principal{User: c.user}, clientID: c.clientID, scope: c.scope})
}

// authorizeParams are the /authorize query parameters a code is bound to.
type authorizeParams struct {
	ClientID, RedirectURI, Scope, State, Challenge, Method string
}

func (a *Authority) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	q := r.Form
	p := authorizeParams{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), Scope: q.Get("scope"),
		State: q.Get("state"), Challenge: q.Get("code_challenge"), Method: q.Get("code_challenge_method"),
	}
	ru, err := url.Parse(p.RedirectURI)
	if p.RedirectURI == "" || err != nil || !ru.IsAbs() {
		// Without a usable redirect the error is shown, never redirected.
		http.Error(w, "AADSTS50011: The redirect URI specified in the request is missing or not valid.", http.StatusBadRequest)
		return
	}
	if p.ClientID == "" || (a.opts.ClientID != "" && p.ClientID != a.opts.ClientID) {
		http.Error(w, "AADSTS700016: Application with identifier '"+p.ClientID+"' was not found in the directory.", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		redirectWith(w, r, ru, url.Values{"error": {code}, "error_description": {desc}, "state": {p.State}})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "AADSTS700054: response_type 'code' is the only one the emulator supports.")
		return
	}
	if p.Method == "" && p.Challenge != "" {
		p.Method = "plain"
	}
	if p.Challenge != "" && p.Method != "S256" && p.Method != "plain" {
		fail("invalid_request", "AADSTS501491: Invalid code_challenge_method.")
		return
	}
	if len(scopesOf(p.Scope)) == 0 {
		fail("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope'.")
		return
	}
	user := a.opts.AutoApproveUser
	if a.opts.InteractiveAuthorize || user == "" {
		if r.Method != http.MethodPost {
			a.signInPage(w, p)
			return
		}
		if r.PostForm.Get("decline") != "" {
			fail("access_denied", "AADSTS65004: User declined to consent to access the app.")
			return
		}
		if user = strings.TrimSpace(r.PostForm.Get("login")); user == "" {
			a.signInPage(w, p)
			return
		}
	}
	code := "1.emu." + randomToken()
	a.mu.Lock()
	a.pruneLocked()
	a.codes[code] = &authCode{user: user, clientID: p.ClientID, redirectURI: p.RedirectURI, scope: scopesOf(p.Scope),
		challenge: p.Challenge, method: p.Method, expires: time.Now().Add(10 * time.Minute)}
	a.mu.Unlock()
	v := url.Values{"code": {code}}
	if p.State != "" {
		v.Set("state", p.State)
	}
	redirectWith(w, r, ru, v)
}

func redirectWith(w http.ResponseWriter, r *http.Request, ru *url.URL, v url.Values) {
	u := *ru
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var signInTmpl = template.Must(template.New("signin").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to your account (emulator)</title></head>
<body><h1>Sign in</h1>
<p>Application <code>{{.P.ClientID}}</code> asks for: {{.P.Scope}}</p>
<form method="post">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="client_id" value="{{.P.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.P.RedirectURI}}">
<input type="hidden" name="scope" value="{{.P.Scope}}">
<input type="hidden" name="state" value="{{.P.State}}">
<input type="hidden" name="code_challenge" value="{{.P.Challenge}}">
<input type="hidden" name="code_challenge_method" value="{{.P.Method}}">
<label>Email <input type="email" name="login" value="{{.User}}" required></label>
<button type="submit" name="accept" value="1">Sign in</button>
<button type="submit" name="decline" value="1" formnovalidate>Cancel</button>
</form></body></html>
`))

func (a *Authority) signInPage(w http.ResponseWriter, p authorizeParams) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = signInTmpl.Execute(w, struct {
		P    authorizeParams
		User string
	}{p, a.opts.AutoApproveUser})
}

var deviceTmpl = template.Must(template.New("device").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Enter code (emulator)</title></head>
<body><h1>Enter code</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
<form method="post">
<label>Code <input name="code" autocomplete="off" required></label>
<label>Email <input type="email" name="login" value="{{.User}}" required></label>
<button type="submit" name="accept" value="1">Sign in</button>
<button type="submit" name="decline" value="1" formnovalidate>Cancel</button>
</form></body></html>
`))

// serveDeviceAuth is the emulator's device verification page: the code a
// device shows is approved for the user name typed (or declined).
func (a *Authority) serveDeviceAuth(w http.ResponseWriter, r *http.Request) {
	msg, status := "", http.StatusOK
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		code := strings.ToUpper(strings.TrimSpace(r.PostForm.Get("code")))
		login := strings.TrimSpace(r.PostForm.Get("login"))
		switch {
		case r.PostForm.Get("decline") != "" && a.DeclineDevice(code):
			msg = "Sign-in declined. You can close this window."
		case r.PostForm.Get("decline") == "" && login != "" && a.ApproveDevice(code, login):
			msg = "You have signed in as " + login + ". You can close this window."
		default:
			status = http.StatusBadRequest
			msg = "That code is not valid or was already used."
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = deviceTmpl.Execute(w, struct{ Message, User string }{msg, a.opts.AutoApproveUser})
}
