// Package certs provides the TLS configurations of the CardDAV server (Apple
// clients will not send Basic credentials over plain HTTP): a certificate
// and key from files, a self-signed local CA with a server certificate for
// LANs and tests (X.509, RFC 5280), or certificates from an ACME CA such as
// Let's Encrypt (RFC 8555) through golang.org/x/crypto/acme/autocert.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// File names in a SelfSigned directory.
const (
	CAFile       = "CA.pem"         // the local CA certificate, to install on clients
	CAKeyFile    = "CA-key.pem"     // its private key (0600)
	CertFile     = "server.pem"     // the server certificate followed by the CA
	KeyFile      = "server-key.pem" // its private key (0600)
	caValidity   = 10 * 365 * 24 * time.Hour
	leafLifetime = 397 * 24 * time.Hour // Apple rejects server certificates valid for longer than 825 days; 397 is the strictest rule in use
	renewBefore  = 30 * 24 * time.Hour
)

func baseConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// Load returns a TLS configuration serving the certificate chain and key in
// PEM files. The files are re-read when they change (checked at most once a
// minute), so a renewal by an outside tool needs no restart.
func Load(certFile, keyFile string) (*tls.Config, error) {
	r := &reloader{certFile: certFile, keyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := baseConfig()
	cfg.GetCertificate = r.get
	return cfg, nil
}

type reloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (r *reloader) load() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	st, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	r.mu.Lock()
	r.cert, r.modTime, r.checked = &c, st.ModTime(), time.Now()
	r.mu.Unlock()
	return nil
}

func (r *reloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	due := time.Since(r.checked) > time.Minute
	if due {
		r.checked = time.Now()
	}
	cert, mod := r.cert, r.modTime
	r.mu.Unlock()
	if due {
		if st, err := os.Stat(r.certFile); err == nil && !st.ModTime().Equal(mod) {
			// A half-written pair fails to load; keep serving the old one.
			if err := r.load(); err == nil {
				r.mu.Lock()
				cert = r.cert
				r.mu.Unlock()
			}
		}
	}
	return cert, nil
}

// DefaultHosts are used by SelfSigned when no host is given.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// SelfSigned returns a TLS configuration with a server certificate for hosts
// (DNS names and IP addresses) issued by a local CA, and the CA certificate
// as PEM for clients to trust (also in dir/CA.pem). Both are generated on
// first use and kept in dir; later calls reuse them, issuing a new server
// certificate from the same CA only when hosts change or it nears expiry,
// so clients that trusted the CA keep working.
func SelfSigned(dir string, hosts []string) (*tls.Config, []byte, error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	ca, caKey, caPEM, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, nil, err
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil || !leafUsable(c.Leaf, ca, hosts) {
		if err := issueLeaf(ca, caKey, hosts, certPath, keyPath); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := Load(certPath, keyPath)
	if err != nil {
		return nil, nil, err
	}
	return cfg, caPEM, nil
}

// CAPath is where SelfSigned keeps the CA certificate of dir.
func CAPath(dir string) string { return filepath.Join(dir, CAFile) }

func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if ok && pair.Leaf != nil && pair.Leaf.IsCA && time.Now().Before(pair.Leaf.NotAfter) {
			caPEM, err := os.ReadFile(certPath)
			return pair.Leaf, key, caPEM, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("certs: the CA in %s is unusable (%v); move it away to make a new one", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		// A distinct name per CA, so two installations' CAs on one phone
		// are told apart in the settings.
		Subject: pkix.Name{
			Organization: []string{"contactsdav"},
			CommonName:   fmt.Sprintf("contactsdav local CA %s %s", host, now.UTC().Format("2006-01-02 15:04")),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, nil, err
	}
	if err := writeFile(certPath, caPEM, 0o644); err != nil {
		return nil, nil, nil, err
	}
	return cert, key, caPEM, nil
}

// leafUsable reports whether leaf was issued by ca, names every host and is
// not about to expire.
func leafUsable(leaf, ca *x509.Certificate, hosts []string) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca) != nil || time.Until(leaf.NotAfter) < renewBefore {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func issueLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"contactsdav"}, CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	// The chain (leaf then CA) lets clients that were given only the CA
	// name build the path without fetching anything.
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writeFile(certPath, chain, 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFile writes through a temporary file and a rename, so a crash never
// leaves half a key behind.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// ACMEManager returns an autocert.Manager that obtains certificates for
// exactly hosts from Let's Encrypt (TLS-ALPN-01 through its TLSConfig, or
// HTTP-01 when its HTTPHandler serves port 80), caching them in cacheDir.
func ACMEManager(hosts []string, cacheDir, email string) *autocert.Manager {
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(hosts...),
		Cache:      autocert.DirCache(cacheDir),
		Email:      email,
	}
}

// ACME returns a TLS configuration whose certificates come from Let's
// Encrypt for hosts (see ACMEManager); the server must be reachable on port
// 443 of those names.
func ACME(hosts []string, cacheDir, email string) *tls.Config {
	cfg := ACMEManager(hosts, cacheDir, email).TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	return cfg
}

// CAPool returns a pool holding the PEM certificates in caPEM, for clients
// (and tests) that should trust only the local CA.
func CAPool(caPEM []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("certs: no certificate in the CA PEM")
	}
	return p, nil
}
