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
