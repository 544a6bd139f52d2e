package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// webDriver is the few W3C WebDriver commands the sign-in test needs,
// spoken to chromedriver over loopback.
type webDriver struct {
	t       *testing.T
	base    string // chromedriver URL
	session string
}

const elementKey = "element-6066-11e4-a52e-4f735466cecf" // W3C WebDriver §12

func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	driver := requireTool(t, "chromedriver")
	browser := requireTool(t, "chromium")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	must(t, cmd.Start())
	t.Cleanup(func() { cancel(); cmd.Wait() })
	wd := &webDriver{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(wd.base + "/status"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not start within 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	wd.call("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": browser, "args": []string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(),
		}},
	}}}, &created)
	wd.session = created.SessionID
	t.Cleanup(func() { wd.call("DELETE", "/session/"+wd.session, nil, nil) })
	return wd
}

func (wd *webDriver) call(method, path string, body any, out any) {
	wd.t.Helper()
	if err := wd.try(method, path, body, out); err != nil {
		wd.t.Fatal(err)
	}
}

// try is call that returns WebDriver errors instead of failing the test.
func (wd *webDriver) try(method, path string, body any, out any) error {
	wd.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(wd.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, wd.base+path, rd)
	must(wd.t, err)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	must(wd.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(wd.t, err)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webdriver %s %s: %d %.300s", method, path, resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	if path == "/session" {
		var v struct{ Value json.RawMessage }
		must(wd.t, json.Unmarshal(raw, &v))
		raw = v.Value
	} else {
		var v struct{ Value any }
		must(wd.t, json.Unmarshal(raw, &v))
		raw, _ = json.Marshal(v.Value)
	}
	return json.Unmarshal(raw, out)
}

func (wd *webDriver) open(url string) {
	wd.t.Helper()
	wd.call("POST", "/session/"+wd.session+"/url", map[string]string{"url": url}, nil)
}

// onElement runs fn on the first element matching a CSS selector, retrying
// while the page is still loading after a click (no such element, stale
// element), for at most 15 seconds.
func (wd *webDriver) onElement(css string, fn func(id string) error) {
	wd.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var el map[string]string
		err := wd.try("POST", "/session/"+wd.session+"/element", map[string]string{"using": "css selector", "value": css}, &el)
		if err == nil {
			err = fn(el[elementKey])
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			wd.t.Fatalf("element %q: %v", css, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (wd *webDriver) click(css string) {
	wd.t.Helper()
	wd.onElement(css, func(id string) error {
		return wd.try("POST", "/session/"+wd.session+"/element/"+id+"/click", map[string]any{}, nil)
	})
}

func (wd *webDriver) text(css string) string {
	wd.t.Helper()
	var s string
	wd.onElement(css, func(id string) error {
		return wd.try("GET", "/session/"+wd.session+"/element/"+id+"/text", nil, &s)
	})
	return s
}

// waitText waits, at most 15 seconds, for an element's text to contain
// want: after a click the old page may still be showing.
func (wd *webDriver) waitText(css, want string) {
	wd.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := wd.text(css)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			wd.t.Fatalf("%s never showed %q; last:\n%s", css, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Issue 5: a person signs in on /login in a real browser (Microsoft's side
// played by the emulator's interactive sign-in page), reads their app
// password off the page, syncs with it, revokes it on the page, and the
// next sync gets 401.
func TestWebSignInInHeadlessChromium(t *testing.T) {
	const user = "bianca@fabrikam.example"
	wd := startBrowser(t)
	ms := newMicrosoft(t, user, 4, true)
	_, base, _ := startTestServer(t, ms.accountsConfig(t.TempDir()))

	wd.open(base + "/login")
	wd.click(`a[href$="/login/start"]`)
	// The emulator's authorize page stands in for Microsoft's sign-in.
	wd.waitText("h1", "Sign in")
	wd.click(`button[name="accept"]`)

	password := strings.TrimSpace(wd.text("#app-password"))
	if got := strings.TrimSpace(wd.text("#user")); got != user {
		t.Fatalf("signed in as %q, want %q", got, user)
	}
	if n, status := syncAs(t, base, user, password); status != http.StatusMultiStatus || n == 0 {
		t.Fatalf("sync with the password from the page: %d members, status %d", n, status)
	}

	wd.click(`#app-passwords button[type="submit"]`)
	wd.waitText("#app-passwords", "None.") // the revoked password is no longer listed
	if _, status := syncAs(t, base, user, password); status != http.StatusUnauthorized {
		t.Fatalf("sync with the revoked password: status %d, want 401", status)
	}
}
