package main

import (
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/carddav"
)

func TestAccountAuth(t *testing.T) {
	lim := accounts.NewLimiter(accounts.LimiterOptions{PerUser: 2, Window: time.Minute})
	reg, err := accounts.Open(filepath.Join(t.TempDir(), "a.db"), make([]byte, accounts.KeySize), accounts.Options{
		Argon2: accounts.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Limiter: lim, Logger: slog.New(slog.DiscardHandler),
		OAuthConfig: oauthConfigFor("client", "", "http://127.0.0.1:1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Put(accounts.Account{User: "Adele@contoso.example", Tenant: "common"}, &oauth2.Token{RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	pw, _, err := reg.IssueAppPassword("adele@contoso.example", "t")
	if err != nil {
		t.Fatal(err)
	}
	var gotUser string
	auth := &accountAuth{reg: reg, log: slog.New(slog.DiscardHandler),
		backendFor: func(a accounts.Account, ts oauth2.TokenSource) (carddav.Backend, error) {
			gotUser = a.User
			if ts == nil {
				t.Error("no token source")
			}
			return nil, nil
		}}
	req := httptest.NewRequest("PROPFIND", "/", nil)
	if _, err := auth.Authenticate(req, "adele@contoso.example", pw); err != nil || gotUser != "Adele@contoso.example" {
		t.Fatalf("good password: %v, user %q", err, gotUser)
	}
	for i := 0; i < 2; i++ {
		if _, err := auth.Authenticate(req, "adele@contoso.example", "nope"); !errors.Is(err, carddav.ErrUnauthorized) {
			t.Fatalf("bad password: %v", err)
		}
	}
	var rl *carddav.RateLimitError
	if _, err := auth.Authenticate(req, "adele@contoso.example", pw); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("after failures: %v", err)
	}
	cfg := oauthConfigFor("client", "", "")(accounts.Account{Cloud: "usgov", Tenant: "contoso.onmicrosoft.us"})
	if cfg.Endpoint.TokenURL != "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token" {
		t.Fatalf("usgov token URL %s", cfg.Endpoint.TokenURL)
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := parsePrefixes("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, want string
	}{
		{"direct client", "203.0.113.9:5000", "", "203.0.113.9:5000"},
		{"direct client forging a header", "203.0.113.9:5000", "198.51.100.1", "203.0.113.9:5000"},
		{"through a trusted proxy", "127.0.0.1:40000", "198.51.100.7", "198.51.100.7:0"},
		{"two trusted proxies", "10.1.2.3:40000", "198.51.100.7, 10.9.9.9", "198.51.100.7:0"},
		{"forged hop left of the real client", "127.0.0.1:40000", "192.0.2.66, 198.51.100.7", "198.51.100.7:0"},
		{"trusted proxy without header", "127.0.0.1:40000", "", "127.0.0.1:40000"},
		{"garbage header", "127.0.0.1:40000", "not-an-ip", "127.0.0.1:40000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("PROPFIND", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientAddr(r, trusted); got != tc.want {
				t.Fatalf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := parsePrefixes("10.0.0.0/8,bogus"); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}
