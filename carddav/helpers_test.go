package carddav_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/carddav/carddavtest"
)

const (
	alice    = "alice@example.com"
	alicePwd = "secret"
)

// fixture is a handler on 127.0.0.1 over a memory backend with one user.
type fixture struct {
	srv  *httptest.Server
	h    http.Handler
	auth *carddavtest.Authenticator
	be   *carddavtest.Backend
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	auth := &carddavtest.Authenticator{}
	be := auth.AddUser(alice, alicePwd)
	auth.AddUser("bob", "bobpwd")
	h := carddav.NewHandler(carddav.Options{
		Auth:   auth,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, h: h, auth: auth, be: be}
}

// req describes one HTTP request of a test.
type req struct {
	method, path string
	header       map[string]string
	body         string
	noAuth       bool
}

// do sends a request (as alice unless noAuth or an Authorization header is
// given) without following redirects.
func (f *fixture) do(t testing.TB, rq req) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest(rq.method, f.srv.URL+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	if !rq.noAuth {
		r.SetBasicAuth(alice, alicePwd)
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// rec serves a request in the test's goroutine, without the network, for
// tests that change the backend's fault hooks between requests.
func (f *fixture) rec(t *testing.T, rq req) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	if !rq.noAuth {
		r.SetBasicAuth(alice, alicePwd)
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp, w.Body.String()
}

// card is a minimal vCard 3.0 with a UID and a name.
func card(uid, fn string) string {
	return "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nN:" + fn + ";;;;\r\nEND:VCARD\r\n"
}

// put stores a card through the handler and returns its ETag.
func (f *fixture) put(t testing.TB, path, body string) string {
	t.Helper()
	resp, _ := f.do(t, req{method: "PUT", path: path, body: body, header: map[string]string{"Content-Type": "text/vcard"}})
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT %s = %d", path, resp.StatusCode)
	}
	return resp.Header.Get("ETag")
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("body lacks %q:\n%s", w, body)
		}
	}
}

func mustNotContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if strings.Contains(body, w) {
			t.Errorf("body has %q:\n%s", w, body)
		}
	}
}

// fixtureBody reads testdata/<name> and fills its placeholders.
func fixtureBody(t testing.TB, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(repl...).Replace(string(b))
}

const (
	nsDAV  = "DAV:"
	nsCard = "urn:ietf:params:xml:ns:carddav"
	nsCS   = "http://calendarserver.org/ns/"

	uaApple = "iOS/17.5 (21F79) dataaccessd/1.0"
	uaTB    = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
	uaDAVx5 = "DAVx5/4.4.3-ose (2024/10/01; dav4jvm; okhttp/4.12.0) Android/14"

	principal = "/alice@example.com/"
	home      = "/alice@example.com/contacts/"
	book      = "/alice@example.com/contacts/default/"
)
