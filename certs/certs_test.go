package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// server is a TLS server on 127.0.0.1 serving cfg as is (httptest's
// StartTLS would add its own certificate).
type server struct {
	URL      string
	Listener net.Listener
}

func serveTLS(t *testing.T, cfg *tls.Config) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go hs.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { hs.Close() })
	return &server{URL: "https://" + ln.Addr().String(), Listener: ln}
}

// client trusts only caPEM and dials the server whatever host name is used.
func client(t *testing.T, caPEM []byte, addr string) *http.Client {
	pool, err := CAPool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

func TestSelfSignedHandshake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	cfg, caPEM, err := SelfSigned(dir, []string{"localhost", "127.0.0.1", "carddav.home.arpa"})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveTLS(t, cfg)
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	c := client(t, caPEM, addr)
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"localhost", true},
		{"carddav.home.arpa", true},
		{"other.example", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			err := get(c, "https://"+net.JoinHostPort(tc.host, port)+"/")
			if (err == nil) != tc.ok {
				t.Fatalf("GET via %s: %v", tc.host, err)
			}
		})
	}
	// A client with the system roots only must refuse the certificate.
	plain := &http.Client{Timeout: 10 * time.Second}
	if err := get(plain, srv.URL); err == nil {
		t.Fatal("a client without the CA accepted the certificate")
	}

	for _, tc := range []struct {
		name string
		mode os.FileMode
	}{{CAKeyFile, 0o600}, {KeyFile, 0o600}, {CAFile, 0o644}, {CertFile, 0o644}} {
		st, err := os.Stat(filepath.Join(dir, tc.name))
		if err != nil || st.Mode().Perm() != tc.mode {
			t.Errorf("%s: %v %v", tc.name, st.Mode(), err)
		}
	}
	if b, _ := os.ReadFile(CAPath(dir)); !bytes.Equal(b, caPEM) {
		t.Error("CA.pem differs from the returned CA")
	}
}

func leafOf(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSelfSignedReuse(t *testing.T) {
	dir := t.TempDir()
	_, ca1, err := SelfSigned(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf1 := leafOf(t, dir)
	if !slices.Contains(leaf1.DNSNames, "localhost") || len(leaf1.IPAddresses) != 2 {
		t.Fatalf("default hosts: %v %v", leaf1.DNSNames, leaf1.IPAddresses)
	}
	if leaf1.NotAfter.Sub(leaf1.NotBefore) > 825*24*time.Hour {
		t.Fatal("server certificate outlives Apple's limit")
	}
	_, ca2, err := SelfSigned(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1, ca2) || leafOf(t, dir).SerialNumber.Cmp(leaf1.SerialNumber) != 0 {
		t.Fatal("second call did not reuse the CA and certificate")
	}
	_, ca3, err := SelfSigned(dir, []string{"localhost", "nas.home.arpa"})
	if err != nil {
		t.Fatal(err)
	}
	leaf3 := leafOf(t, dir)
	if !bytes.Equal(ca1, ca3) || leaf3.SerialNumber.Cmp(leaf1.SerialNumber) == 0 || leaf3.VerifyHostname("nas.home.arpa") != nil {
		t.Fatal("a new host must give a new certificate from the same CA")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := SelfSigned(dir, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(CAPath(dir))
	srv := serveTLS(t, cfg)
	if err := get(client(t, caPEM, srv.Listener.Addr().String()), srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "nope.pem"), filepath.Join(dir, KeyFile)); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestACMEConfig(t *testing.T) {
	m := ACMEManager([]string{"carddav.example.org"}, t.TempDir(), "admin@example.org")
	for _, tc := range []struct {
		host string
		ok   bool
	}{{"carddav.example.org", true}, {"evil.example", false}} {
		if err := m.HostPolicy(context.Background(), tc.host); (err == nil) != tc.ok {
			t.Errorf("HostPolicy(%s) = %v", tc.host, err)
		}
	}
	cfg := ACME([]string{"carddav.example.org"}, t.TempDir(), "")
	if cfg.GetCertificate == nil || !slices.Contains(cfg.NextProtos, "acme-tls/1") || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("config %+v", cfg)
	}
}

// A renewed certificate file is served once the minute between checks has
// passed, without a restart; a half-written pair keeps the old one.
func TestLoadReloadsRenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := SelfSigned(dir, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	r := &reloader{certFile: certPath, keyFile: keyPath}
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	old := leafOf(t, dir).SerialNumber
	serial := func() *big.Int {
		c, err := r.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber
	}
	if _, _, err := SelfSigned(dir, []string{"127.0.0.1", "nas.home.arpa"}); err != nil { // a renewal
		t.Fatal(err)
	}
	renewed := leafOf(t, dir).SerialNumber
	if renewed.Cmp(old) == 0 {
		t.Fatal("the renewal kept the certificate")
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(certPath, future, future); err != nil {
		t.Fatal(err)
	}
	if serial().Cmp(old) != 0 {
		t.Fatal("the file was re-read before a minute passed")
	}
	r.mu.Lock()
	r.checked = time.Now().Add(-2 * time.Minute)
	r.mu.Unlock()
	if serial().Cmp(renewed) != 0 {
		t.Fatal("the renewed certificate is not served")
	}

	// A half-written pair: the key no longer matches; the renewed one stays.
	if err := os.WriteFile(keyPath, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := future.Add(time.Hour)
	if err := os.Chtimes(certPath, later, later); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.checked = time.Now().Add(-2 * time.Minute)
	r.mu.Unlock()
	if serial().Cmp(renewed) != 0 {
		t.Fatal("a broken pair replaced the served certificate")
	}
}
