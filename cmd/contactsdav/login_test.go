package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
)

// TestLoginDeviceCode runs `contactsdav login` against the Graph emulator:
// device code (one authorization_pending, then approval), GET /me, the
// account stored with its refresh token, an app password printed.
func TestLoginDeviceCode(t *testing.T) {
	const upn = "adele@contoso.example"
	auth := oauthemu.New(oauthemu.Options{AutoApproveUser: upn, DeviceCodeInterval: time.Second})
	emu, err := graphemu.New(graphemu.Options{PathPrefix: "/ms", Authority: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	if err := emu.AddMailbox(upn); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()

	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Setenv(keyEnv, "")
	var out bytes.Buffer
	err = login(ctx, []string{
		"--data", data, "--login-url", srv.URL + "/ms", "--graph-url", srv.URL + "/ms/v1.0",
		"--carddav-url", "https://127.0.0.1:8443/",
	}, &out, srv.Client())
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, srv.URL+"/ms/common/oauth2/deviceauth") || !strings.Contains(text, "user name   "+upn) {
		t.Fatalf("output:\n%s", text)
	}
	m := regexp.MustCompile(`password    (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no password in:\n%s", text)
	}
	if st, err := os.Stat(filepath.Join(data, accountsKeyName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}

	f := loginFlags{data: data}
	reg, err := f.openRegistry(accounts.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Verify(upn, m[1]); err != nil {
		t.Fatalf("printed password: %v", err)
	}
	rt, err := reg.RefreshToken(upn)
	if err != nil || rt == "" {
		t.Fatalf("refresh token: %v", err)
	}
	if a, _ := reg.Get(upn); a.Cloud != "global" || a.Tenant != "common" {
		t.Fatalf("account %+v", a)
	}
}

func TestLoginFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no-client-id", []string{"--data", t.TempDir()}, "--client-id is required"},
		{"bad-cloud", []string{"--data", t.TempDir(), "--cloud", "mars", "--client-id", "x"}, "unknown cloud"},
		{"extra-args", []string{"now"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(clientIDEnv, "")
			var out bytes.Buffer
			err := login(context.Background(), tc.args, &out, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// login and serve find the same data folder, Graph and app registration
// from the same environment, so the account login stores is the one serve
// reads.
func TestLoginAndServeShareDefaults(t *testing.T) {
	t.Setenv("CONTACTSDAV_DATA", "/srv/contactsdav")
	t.Setenv("CONTACTSDAV_GRAPH_URL", "http://127.0.0.1:8081/v1.0")
	t.Setenv(clientIDEnv, "app-id")
	var lf loginFlags
	lfs := flag.NewFlagSet("login", flag.ContinueOnError)
	lf.register(lfs)
	var sc serveConfig
	sfs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sc.flags(sfs)
	must(t, lfs.Parse(nil))
	must(t, sfs.Parse(nil))
	if lf != sc.loginFlags || lf.data != "/srv/contactsdav" || lf.graphURL != "http://127.0.0.1:8081/v1.0" || lf.clientID != "app-id" {
		t.Fatalf("login %+v, serve %+v", lf, sc.loginFlags)
	}
}
