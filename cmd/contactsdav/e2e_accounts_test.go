package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
	"github.com/contactsdav/contactsdav/certs"
)

// microsoft is a stand-in for Microsoft: the Graph emulator with its sign-in
// endpoints on a loopback port, auto-approving one user.
type microsoft struct {
	emu  *graphemu.Emulator
	auth *oauthemu.Authority
	url  string // origin + mount prefix
	http *httptest.Server
}

func newMicrosoft(t *testing.T, user string, contacts int, interactive bool) *microsoft {
	t.Helper()
	auth := oauthemu.New(oauthemu.Options{AutoApproveUser: user, DeviceCodeInterval: time.Second, InteractiveAuthorize: interactive})
	emu, err := graphemu.New(graphemu.Options{PathPrefix: "/ms", Authority: auth, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	t.Cleanup(func() { emu.Close() })
	must(t, emu.AddMailbox(user))
	if contacts > 0 {
		must(t, emu.Seed(user, contacts))
	}
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	return &microsoft{emu: emu, auth: auth, url: hs.URL + "/ms", http: hs}
}

// accountsConfig is serve in accounts mode against the stand-in.
func (m *microsoft) accountsConfig(data string) serveConfig {
	return serveConfig{loginFlags: loginFlags{data: data, loginURL: m.url, graphURL: m.url + "/v1.0"}}
}

// syncAs runs an initial sync-collection of the user's default book and
// returns the number of members and the HTTP status.
func syncAs(t *testing.T, base, user, password string) (int, int) {
	t.Helper()
	req, err := http.NewRequest("REPORT", base+"/"+user+"/contacts/default/", strings.NewReader(fmt.Sprintf(syncBody, "")))
	must(t, err)
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	req.Header.Set("Depth", "1")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return strings.Count(string(b), "<D:getetag>"), resp.StatusCode
}

// Issue 5: the device-code sign-in end to end against the emulator, a
// CardDAV sync with the issued app password, no plaintext secret in the data
// folder, and a clear 401 once Microsoft revokes the grant.
func TestDeviceCodeLoginThenSyncThenRevokedGrant(t *testing.T) {
	const user = "alice@contoso.example"
	ms := newMicrosoft(t, user, 6, false)
	data := t.TempDir()
	t.Setenv(keyEnv, "")

	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, login(ctx, []string{"--data", data, "--login-url", ms.url, "--graph-url", ms.url + "/v1.0"}, &out, ms.http.Client()))
	m := regexp.MustCompile(`password\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no app password printed:\n%s", out.String())
	}
	password := m[1]

	_, base, stop := startTestServer(t, ms.accountsConfig(data))
	if n, status := syncAs(t, base, user, password); status != http.StatusMultiStatus || n == 0 {
		t.Fatalf("sync with the issued app password: %d members, status %d", n, status)
	}
	if _, status := syncAs(t, base, user, "wrong-password"); status != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d, want 401", status)
	}

	stop()

	// No secret is stored in plaintext anywhere in the data folder: neither
	// the app password nor the (rotated) refresh token.
	reg, err := (&loginFlags{data: data}).openRegistry(accounts.Options{Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	rt, err := reg.RefreshToken(user)
	reg.Close()
	must(t, err)
	assertNoSecretOnDisk(t, data, map[string]string{"app password": password, "refresh token": rt})

	// Microsoft revokes the grant: the CardDAV client gets a 401 (the
	// person must sign in again), not a 500 or an endless 503.
	_, base, _ = startTestServer(t, ms.accountsConfig(data))
	ms.auth.RevokeUser(user)
	if _, status := syncAs(t, base, user, password); status != http.StatusUnauthorized {
		t.Fatalf("after the grant was revoked: status %d, want 401", status)
	}
	if _, status := syncAs(t, base, user, password); status != http.StatusUnauthorized {
		t.Fatalf("again after the grant was revoked: status %d, want 401", status)
	}
}

func assertNoSecretOnDisk(t *testing.T, dir string, secrets map[string]string) {
	t.Helper()
	files := 0
	must(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for what, s := range secrets {
			if s != "" && (bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(strings.ReplaceAll(s, "-", "")))) {
				t.Errorf("%s found in plaintext in %s", what, path)
			}
		}
		return nil
	}))
	if files < 2 {
		t.Fatalf("only %d files in the data folder: nothing was checked", files)
	}
}

// serve --tls-self-signed: a Go client that trusts only the generated local
// CA reaches the server by host name and by address; one that does not
// trust it is refused.
func TestServeSelfSignedTLS(t *testing.T) {
	data := t.TempDir()
	srv, err := newServer(context.Background(), serveConfig{
		loginFlags: loginFlags{data: data}, demoUser: "demo", demoPassword: "pw", demoMailbox: "demo@contoso.example",
		tlsSelfSigned: "localhost,127.0.0.1", emulatorListen: "127.0.0.1:0", refreshInterval: time.Second,
	}, newLogger("warn"))
	must(t, err)
	defer srv.Close()
	if srv.tls == nil {
		t.Fatal("no TLS configuration")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: srv.handler}
	go hs.Serve(tls.NewListener(ln, srv.tls))
	defer hs.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	caPEM, err := os.ReadFile(certs.CAPath(filepath.Join(data, "tls")))
	must(t, err)
	pool, err := certs.CAPool(caPEM)
	must(t, err)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		url := fmt.Sprintf("https://%s/healthz", net.JoinHostPort(host, strconv.Itoa(port)))
		resp, err := trusting.Get(url)
		if err != nil {
			t.Fatalf("%s with the local CA: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", url, resp.StatusCode)
		}
	}
	if _, err := http.Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err == nil {
		t.Fatal("a client without the local CA was not refused")
	}
}
