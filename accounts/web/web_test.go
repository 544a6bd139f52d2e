package web

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
	"github.com/contactsdav/contactsdav/certs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMobileConfig(t *testing.T) {
	_, caPEM, err := certs.SelfSigned(t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	caBlock, _ := pem.Decode(caPEM)
	for _, tc := range []struct {
		name         string
		p            Profile
		host         string
		port         int64
		ssl          bool
		principal    string
		wantPayloads int
		wantPassword bool
	}{
		{"https-default-port", Profile{CardDAVURL: "https://dav.example.org/", User: "adele@contoso.example", Password: "abcde-fghij-klmno-pqrst"},
			"dav.example.org", 443, true, "/adele@contoso.example/", 1, true},
		{"self-signed-with-ca", Profile{CardDAVURL: "https://nas.home.arpa:8443/", User: "a b@x.example", CAPEM: caPEM},
			"nas.home.arpa", 8443, true, "/a%20b@x.example/", 2, false},
		{"http-test", Profile{CardDAVURL: "http://127.0.0.1:8080", User: "u@x"},
			"127.0.0.1", 8080, false, "/u@x/", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.MobileConfig()
			if err != nil {
				t.Fatal(err)
			}
			v, err := parsePlist(b)
			if err != nil {
				t.Fatalf("not a property list: %v\n%s", err, b)
			}
			top := v.(map[string]any)
			if top["PayloadType"] != "Configuration" || top["PayloadVersion"] != int64(1) || top["PayloadUUID"] == "" {
				t.Fatalf("top level %v", top)
			}
			payloads := top["PayloadContent"].([]any)
			if len(payloads) != tc.wantPayloads {
				t.Fatalf("%d payloads", len(payloads))
			}
			acct := payloads[0].(map[string]any)
			want := map[string]any{
				"PayloadType": "com.apple.carddav.account", "CardDAVHostName": tc.host, "CardDAVPort": tc.port,
				"CardDAVUseSSL": tc.ssl, "CardDAVUsername": tc.p.User, "CardDAVPrincipalURL": tc.principal,
				"CardDAVAccountDescription": "Microsoft contacts", "PayloadVersion": int64(1),
			}
			for k, w := range want {
				if acct[k] != w {
					t.Errorf("%s = %#v, want %#v", k, acct[k], w)
				}
			}
			if pw, ok := acct["CardDAVPassword"]; ok != tc.wantPassword || (ok && pw != tc.p.Password) {
				t.Errorf("CardDAVPassword %v", pw)
			}
			for _, k := range []string{"PayloadIdentifier", "PayloadUUID"} {
				if s, _ := acct[k].(string); s == "" {
					t.Errorf("account payload lacks %s", k)
				}
			}
			if tc.wantPayloads == 2 {
				root := payloads[1].(map[string]any)
				der, _ := root["PayloadContent"].([]byte)
				if root["PayloadType"] != "com.apple.security.root" || string(der) != string(caBlock.Bytes) {
					t.Fatalf("root payload %v", root["PayloadType"])
				}
				if c, err := x509.ParseCertificate(der); err != nil || !c.IsCA {
					t.Fatalf("root payload certificate: %v", err)
				}
			}
			again, _ := tc.p.MobileConfig()
			if string(again) != string(b) {
				t.Error("profile is not stable (UUIDs must not change between downloads)")
			}
		})
	}
}

func TestDAVx5URL(t *testing.T) {
	for _, tc := range []struct{ base, user, want string }{
		{"https://dav.example.org/", "adele@contoso.example", "davx5://adele%40contoso.example@dav.example.org/"},
		{"https://dav.example.org:8443/dav/", "u@x", "davx5://u%40x@dav.example.org:8443/dav/"},
		{"http://127.0.0.1:8080/", "u@x", "http://127.0.0.1:8080/"},
	} {
		if got := DAVx5URL(tc.base, tc.user); got != tc.want {
			t.Errorf("DAVx5URL(%s, %s) = %s, want %s", tc.base, tc.user, got, tc.want)
		}
	}
}

const testUser = "adele@contoso.example"

// identity is the emulated Microsoft side: oauthemu under /login and a
// Graph stub answering GET /v1.0/me for valid bearer tokens.
func identity(t *testing.T, opts oauthemu.Options) (*oauthemu.Authority, *httptest.Server) {
	a := oauthemu.New(opts)
	mux := http.NewServeMux()
	mux.Handle("/login/", http.StripPrefix("/login", a))
	mux.HandleFunc("GET /v1.0/me", func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Validate(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil || p.App {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}`)
			return
		}
		json.NewEncoder(w).Encode(graph.User{ID: "1", DisplayName: "Adele", UserPrincipalName: p.User, Mail: p.User})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv
}

type site struct {
	srv  *httptest.Server
	reg  *accounts.Registry
	c    *http.Client
	auth *oauthemu.Authority
}

func newSite(t *testing.T, opts oauthemu.Options, allow func(string) bool) *site {
	t.Helper()
	auth, idp := identity(t, opts)
	reg, err := accounts.Open(filepath.Join(t.TempDir(), "a.db"), make([]byte, accounts.KeySize),
		accounts.Options{Argon2: accounts.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, caPEM, err := certs.SelfSigned(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{
		Registry: reg,
		OAuth: &oauth2.Config{ClientID: "client-1", Endpoint: oauth2.Endpoint{
			AuthURL: idp.URL + "/login/common/oauth2/v2.0/authorize", TokenURL: idp.URL + "/login/common/oauth2/v2.0/token",
			AuthStyle: oauth2.AuthStyleInParams}},
		GraphBase: idp.URL + "/v1.0", Cloud: "global", Tenant: "common",
		PublicURL: srv.URL, CAPEM: caPEM, AllowUser: allow, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/login", h)
	mux.Handle("/login/", h)
	jar, _ := cookiejar.New(nil)
	return &site{srv: srv, reg: reg, auth: auth, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (s *site) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := s.c.Get(s.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *site) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := s.c.PostForm(s.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	rePassword = regexp.MustCompile(`id="app-password">([a-z2-7-]+)<`)
	reCSRF     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	reProfile  = regexp.MustCompile(`id="profile" href="([^"]+)"`)
	reRevoke   = regexp.MustCompile(`name="id" value="([0-9a-f]+)"`)
)

func match(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page lacks %s:\n%s", re, body)
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

func TestSignInFlow(t *testing.T) {
	s := newSite(t, oauthemu.Options{AutoApproveUser: testUser}, nil)

	if code, body := s.get(t, "/login"); code != 200 || !strings.Contains(body, "/login/start") {
		t.Fatalf("landing %d", code)
	}
	code, body := s.get(t, "/login/start") // → authorize → callback
	if code != 200 {
		t.Fatalf("callback %d\n%s", code, body)
	}
	pw := match(t, rePassword, body)
	if err := s.reg.Verify(testUser, pw); err != nil {
		t.Fatalf("issued password does not verify: %v", err)
	}
	if a, err := s.reg.Get(testUser); err != nil || a.Cloud != "global" || a.Mailbox != testUser {
		t.Fatalf("account %+v %v", a, err)
	}
	if _, err := s.reg.RefreshToken(testUser); err != nil {
		t.Fatalf("refresh token not stored: %v", err)
	}
	if !strings.Contains(body, "davx5://adele%40contoso.example@127.0.0.1") && !strings.Contains(body, `id="davx5" href="http://127.0.0.1`) {
		t.Errorf("no DAVx5 link")
	}

	// The profile from the one-time link carries the password and the CA.
	code, prof := s.get(t, match(t, reProfile, body))
	if code != 200 {
		t.Fatalf("profile %d", code)
	}
	v, err := parsePlist([]byte(prof))
	if err != nil {
		t.Fatal(err)
	}
	payloads := v.(map[string]any)["PayloadContent"].([]any)
	if len(payloads) != 2 || payloads[0].(map[string]any)["CardDAVPassword"] != pw {
		t.Fatalf("profile payloads %v", payloads)
	}
	// Without the token: no password.
	_, prof = s.get(t, "/login/profile.mobileconfig")
	if strings.Contains(prof, pw) || strings.Contains(prof, "CardDAVPassword") {
		t.Fatal("password in the token-less profile")
	}

	// Issue a second password; revoke the first.
	csrf := match(t, reCSRF, body)
	code, body = s.post(t, "/login/app-passwords", url.Values{"csrf": {csrf}, "label": {"Thunderbird"}})
	pw2 := match(t, rePassword, body)
	if code != 200 || pw2 == pw || !strings.Contains(body, "Thunderbird") {
		t.Fatalf("issue: %d", code)
	}
	list, _ := s.reg.ListAppPasswords(testUser)
	if len(list) != 2 {
		t.Fatalf("%d app passwords", len(list))
	}
	// The page offers a revoke form for each password, oldest first.
	if id := match(t, reRevoke, body); id != list[0].ID {
		t.Fatalf("the first revoke form names %q, want the first password %q", id, list[0].ID)
	}
	code, body = s.post(t, "/login/app-passwords/revoke", url.Values{"csrf": {csrf}, "id": {list[0].ID}})
	if code != 200 || strings.Contains(body, list[0].ID) || !strings.Contains(body, list[1].ID) {
		t.Fatalf("revoke: %d", code)
	}
	if err := s.reg.Verify(testUser, pw); !errors.Is(err, accounts.ErrUnauthorized) {
		t.Fatalf("revoked password: %v", err)
	}
	if err := s.reg.Verify(testUser, pw2); err != nil {
		t.Fatal(err)
	}

	// CSRF: a POST without the token changes nothing.
	if code, _ := s.post(t, "/login/app-passwords/revoke", url.Values{"id": {list[1].ID}}); code != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", code)
	}
	if code, _ := s.post(t, "/login/app-passwords", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("issue with a forged CSRF token: %d", code)
	}
	if l, _ := s.reg.ListAppPasswords(testUser); len(l) != 1 {
		t.Fatalf("CSRF-less requests changed the list: %d", len(l))
	}

	// Sign out: the session is gone.
	s.post(t, "/login/logout", url.Values{"csrf": {csrf}})
	if _, body := s.get(t, "/login"); strings.Contains(body, `id="user"`) {
		t.Fatal("still signed in after logout")
	}
	if code, _ := s.get(t, "/login/profile.mobileconfig"); code != http.StatusForbidden {
		t.Fatalf("profile without session: %d", code)
	}
}

func TestCallbackRefusals(t *testing.T) {
	t.Run("stale-state", func(t *testing.T) {
		s := newSite(t, oauthemu.Options{AutoApproveUser: testUser}, nil)
		if code, _ := s.get(t, "/login/callback?code=x&state=forged"); code != http.StatusBadRequest {
			t.Fatalf("%d", code)
		}
	})
	t.Run("declined", func(t *testing.T) {
		s := newSite(t, oauthemu.Options{InteractiveAuthorize: true}, nil)
		// Start, then answer the emulator's sign-in page with Cancel.
		noFollow := *s.c
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noFollow.Get(s.srv.URL + "/login/start")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		authURL := resp.Header.Get("Location")
		resp, err = s.c.PostForm(authURL, url.Values{"decline": {"1"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "did not sign you in") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("not-allowed", func(t *testing.T) {
		s := newSite(t, oauthemu.Options{AutoApproveUser: testUser}, func(u string) bool { return strings.HasSuffix(u, "@fabrikam.example") })
		if code, _ := s.get(t, "/login/start"); code != http.StatusForbidden {
			t.Fatalf("%d", code)
		}
		if _, err := s.reg.Get(testUser); !errors.Is(err, accounts.ErrNoAccount) {
			t.Fatal("a refused user got an account")
		}
	})
}

// A sign-in when every app password slot is taken still signs in and says
// why no new password is shown.
func TestSignInWithAllAppPasswordsTaken(t *testing.T) {
	s := newSite(t, oauthemu.Options{AutoApproveUser: testUser}, nil)
	if code, _ := s.get(t, "/login/start"); code != 200 {
		t.Fatalf("first sign-in %d", code)
	}
	for {
		if _, _, err := s.reg.IssueAppPassword(testUser, "filler"); err != nil {
			if !errors.Is(err, accounts.ErrTooManyAppPasswords) {
				t.Fatal(err)
			}
			break
		}
	}
	code, body := s.get(t, "/login/start")
	if code != 200 || !strings.Contains(body, "most app passwords allowed") || rePassword.MatchString(body) || !strings.Contains(body, `id="user"`) {
		t.Fatalf("sign-in with no free slot: %d\n%s", code, body)
	}
}
