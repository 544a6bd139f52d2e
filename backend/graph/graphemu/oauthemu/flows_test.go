package oauthemu

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const testUser = "adele@contoso.example"

// newServer mounts a at /login on 127.0.0.1, as the emulator does.
func newServer(t *testing.T, opts Options) (*Authority, *httptest.Server) {
	t.Helper()
	if opts.DeviceCodeInterval == 0 {
		opts.DeviceCodeInterval = time.Second
	}
	a := New(opts)
	mux := http.NewServeMux()
	mux.Handle("/login/", http.StripPrefix("/login", a))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv
}

func config(srv *httptest.Server, tenant string) *oauth2.Config {
	base := srv.URL + "/login/" + tenant + "/oauth2/v2.0/"
	return &oauth2.Config{
		ClientID: "client-1",
		Endpoint: oauth2.Endpoint{
			AuthURL: base + "authorize", TokenURL: base + "token", DeviceAuthURL: base + "devicecode",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: "http://127.0.0.1/callback",
		Scopes:      []string{"Contacts.ReadWrite", "offline_access", "User.Read"},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestDeviceCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tenant  string
		auto    string
		act     func(a *Authority, userCode string)
		wantErr string
		user    string
	}{
		{name: "auto-approve", tenant: "common", auto: testUser, user: testUser},
		{name: "guid-tenant", tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", auto: testUser, user: testUser},
		{name: "approve-hook", tenant: "organizations", act: func(a *Authority, c string) { a.ApproveDevice(c, "bob@x.example") }, user: "bob@x.example"},
		{name: "declined", tenant: "consumers", act: func(a *Authority, c string) { a.DeclineDevice(c) }, wantErr: "authorization_declined"},
		{name: "expired", tenant: "common", act: func(a *Authority, c string) { a.ExpireDevice(c) }, wantErr: "expired_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, srv := newServer(t, Options{AutoApproveUser: tc.auto})
			cfg := config(srv, tc.tenant)
			ctx := ctxT(t)
			da, err := cfg.DeviceAuth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if da.UserCode == "" || da.DeviceCode == "" || da.VerificationURI == "" || da.Interval != 1 || da.VerificationURIComplete != "" {
				t.Fatalf("device auth response %+v", da)
			}
			if tc.act != nil {
				tc.act(a, da.UserCode)
			}
			tok, err := cfg.DeviceAccessToken(ctx, da)
			if tc.wantErr != "" {
				if got := errorCode(err); got != tc.wantErr {
					t.Fatalf("err %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
				t.Fatalf("token %+v", tok)
			}
			if s, _ := tok.Extra("scope").(string); s != "Contacts.ReadWrite User.Read" {
				t.Errorf("scope %q", s)
			}
			p, err := a.Validate(tok.AccessToken)
			if err != nil || p.User != tc.user || p.App {
				t.Fatalf("principal %+v, %v", p, err)
			}
		})
	}
}

func TestDeviceCodePendingFirst(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{AutoApproveUser: testUser})
	cfg := config(srv, "common")
	da, err := cfg.DeviceAuth(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	poll := func() map[string]any {
		resp, err := http.PostForm(cfg.Endpoint.TokenURL, url.Values{
			"client_id": {"client-1"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		m["status"] = resp.StatusCode
		return m
	}
	first := poll()
	if first["error"] != "authorization_pending" || first["status"] != 400 {
		t.Fatalf("first poll %v", first)
	}
	for _, k := range []string{"error_description", "error_codes", "timestamp", "trace_id", "correlation_id"} {
		if _, ok := first[k]; !ok {
			t.Errorf("error body lacks %s", k)
		}
	}
	if second := poll(); second["access_token"] == nil {
		t.Fatalf("second poll %v", second)
	}
	if third := poll(); third["error"] != "invalid_grant" {
		t.Fatalf("redeemed twice: %v", third)
	}
}

func TestAuthCodePKCE(t *testing.T) {
	t.Parallel()
	a, srv := newServer(t, Options{AutoApproveUser: testUser})
	cfg := config(srv, "common")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(verifier string) url.Values {
		resp, err := noRedirect.Get(cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize status %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if !strings.HasPrefix(loc.String(), cfg.RedirectURL+"?") {
			t.Fatalf("redirect to %s", loc)
		}
		return loc.Query()
	}
	ctx := ctxT(t)

	verifier := oauth2.GenerateVerifier()
	q := authorize(verifier)
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Validate(tok.AccessToken); err != nil || p.User != testUser {
		t.Fatalf("principal %+v %v", p, err)
	}
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); errorCode(err) != "invalid_grant" {
		t.Fatalf("code reuse: %v", err)
	}

	for _, tc := range []struct {
		name string
		mod  func(c *oauth2.Config) []oauth2.AuthCodeOption
	}{
		{"wrong-verifier", func(*oauth2.Config) []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
		}},
		{"no-verifier", func(*oauth2.Config) []oauth2.AuthCodeOption { return nil }},
		{"wrong-redirect", func(c *oauth2.Config) []oauth2.AuthCodeOption {
			c.RedirectURL = "http://127.0.0.1/elsewhere"
			return []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := authorize(verifier).Get("code")
			c := *cfg
			opts := tc.mod(&c)
			if _, err := c.Exchange(ctx, code, opts...); errorCode(err) != "invalid_grant" {
				t.Fatalf("got %v, want invalid_grant", err)
			}
		})
	}
}

func TestAuthorizeInteractive(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{AutoApproveUser: testUser, InteractiveAuthorize: true})
	cfg := config(srv, "common")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := oauth2.GenerateVerifier()
	u := cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, tc := range []struct {
		name, button, wantParam string
	}{{"accept", "accept", "code"}, {"decline", "decline", "error"}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := noRedirect.PostForm(u, url.Values{"login": {"carol@x.example"}, tc.button: {"1"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc.Query().Get(tc.wantParam) == "" {
				t.Fatalf("%d %s", resp.StatusCode, loc)
			}
			if tc.name != "accept" {
				return
			}
			tok, err := cfg.Exchange(ctxT(t), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" {
				t.Fatal("no access token")
			}
		})
	}
}

func TestRefreshRotationAndRevoke(t *testing.T) {
	t.Parallel()
	a, srv := newServer(t, Options{AutoApproveUser: testUser})
	cfg := config(srv, "common")
	ctx := ctxT(t)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.ApproveDevice(da.UserCode, testUser)
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	first := tok.RefreshToken
	// An expired token makes the TokenSource refresh.
	tok.Expiry = time.Now().Add(-time.Minute)
	ts := cfg.TokenSource(ctx, tok)
	seen := map[string]bool{first: true}
	for i := 0; i < 3; i++ {
		nt, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if seen[nt.RefreshToken] {
			t.Fatalf("refresh %d did not rotate", i)
		}
		seen[nt.RefreshToken] = true
		// Force the next call to refresh again.
		nt.Expiry = time.Now().Add(-time.Minute)
		ts = cfg.TokenSource(ctx, nt)
	}
	// The first refresh token still works (Microsoft keeps old ones valid).
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token(); err != nil {
		t.Fatalf("old refresh token: %v", err)
	}
	if n := a.RefreshTokenCount(testUser); n < 5 {
		t.Fatalf("refresh tokens live: %d", n)
	}

	// ExpireAccessTokens: the access token fails validation; refresh works.
	a.ExpireAccessTokens(testUser)
	if _, err := a.Validate(tok.AccessToken); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("after ExpireAccessTokens: %v", err)
	}
	a.RevokeUser(testUser)
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token()
	if errorCode(err) != "invalid_grant" {
		t.Fatalf("after revoke: %v", err)
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	a, srv := newServer(t, Options{ClientSecret: "s3cret"})
	for _, tc := range []struct {
		name, secret string
		style        oauth2.AuthStyle
		ok           bool
	}{
		{"params", "s3cret", oauth2.AuthStyleInParams, true},
		{"header", "s3cret", oauth2.AuthStyleInHeader, true},
		{"autodetect", "s3cret", oauth2.AuthStyleAutoDetect, true},
		{"wrong", "nope", oauth2.AuthStyleInParams, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := clientcredentials.Config{
				ClientID: "daemon", ClientSecret: tc.secret, AuthStyle: tc.style,
				TokenURL: srv.URL + "/login/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
				Scopes:   []string{"https://graph.microsoft.com/.default"},
			}
			tok, err := cc.Token(ctxT(t))
			if !tc.ok {
				if errorCode(err) != "invalid_client" {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken != "" {
				t.Error("app-only token came with a refresh token")
			}
			if p, err := a.Validate(tok.AccessToken); err != nil || !p.App || p.User != "" {
				t.Fatalf("principal %+v %v", p, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{ClientID: "client-1"})
	base := srv.URL + "/login/common/oauth2/v2.0/"
	for _, tc := range []struct {
		name, path string
		form       url.Values
		status     int
		code       string
	}{
		{"unknown-client", "token", url.Values{"client_id": {"other"}, "grant_type": {"refresh_token"}}, 400, "unauthorized_client"},
		{"no-grant", "token", url.Values{"client_id": {"client-1"}}, 400, "invalid_request"},
		{"bad-grant", "token", url.Values{"client_id": {"client-1"}, "grant_type": {"password"}}, 400, "unsupported_grant_type"},
		{"bad-refresh", "token", url.Values{"client_id": {"client-1"}, "grant_type": {"refresh_token"}, "refresh_token": {"x"}}, 400, "invalid_grant"},
		{"bad-device", "token", url.Values{"client_id": {"client-1"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}}, 400, "bad_verification_code"},
		{"no-scope", "devicecode", url.Values{"client_id": {"client-1"}}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.PostForm(base+tc.path, tc.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e oauthError
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || e.Error != tc.code || len(e.ErrorCodes) != 1 || e.TraceID == "" || e.CorrelationID == "" {
				t.Fatalf("%d %+v", resp.StatusCode, e)
			}
		})
	}
	for _, p := range []string{"/login/common/oauth2/v2.0/nope", "/login/common/oauth2/token", "/login/"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestDeviceVerificationPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		form    func(code string) url.Values
		status  int
		wantErr string
	}{
		{"approve", func(c string) url.Values {
			return url.Values{"code": {strings.ToLower(c)}, "login": {"dave@x.example"}}
		}, 200, ""},
		{"decline", func(c string) url.Values { return url.Values{"code": {c}, "decline": {"1"}} }, 200, "authorization_declined"},
		{"wrong-code", func(string) url.Values { return url.Values{"code": {"NOPE"}, "login": {"dave@x.example"}} }, 400, "expired_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, srv := newServer(t, Options{})
			cfg := config(srv, "common")
			ctx := ctxT(t)
			da, err := cfg.DeviceAuth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := srv.URL + "/login/common/oauth2/deviceauth"; da.VerificationURI != want {
				t.Fatalf("verification_uri %s, want %s", da.VerificationURI, want)
			}
			if resp, err := http.Get(da.VerificationURI); err != nil || resp.StatusCode != 200 {
				t.Fatalf("page: %v", err)
			} else {
				resp.Body.Close()
			}
			resp, err := http.PostForm(da.VerificationURI, tc.form(da.UserCode))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("POST: %d", resp.StatusCode)
			}
			if tc.wantErr == "expired_token" {
				a.ExpireDevice(da.UserCode) // nobody approved it; end the wait
			}
			tok, err := cfg.DeviceAccessToken(ctx, da)
			if tc.wantErr != "" {
				if errorCode(err) != tc.wantErr {
					t.Fatalf("got %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p, err := a.Validate(tok.AccessToken); err != nil || p.User != "dave@x.example" {
				t.Fatalf("principal %+v %v", p, err)
			}
		})
	}
}
