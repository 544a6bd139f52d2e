package accounts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of the at-rest encryption key (AES-256).
const KeySize = 32

// LoadKey returns the key that encrypts Microsoft tokens at rest. The
// environment variable env, when set, wins: it holds the key as base64 or hex.
// Otherwise the key is read from path (base64 text), and when path does not
// exist a new random key is written there with mode 0600, so a fresh data
// folder works without setup.
func LoadKey(path, env string) ([]byte, error) {
	if env != "" {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			k, err := decodeKey(v)
			if err != nil {
				return nil, fmt.Errorf("accounts: key in $%s: %w", env, err)
			}
			return k, nil
		}
	}
	if path == "" {
		return nil, errors.New("accounts: no key file and no key in the environment")
	}
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := decodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("accounts: key file %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	// O_EXCL: when two processes race to create the key, one loses and
	// reads the winner's key instead of silently replacing it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(path, "")
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, fmt.Errorf("accounts: writing key file: %w", werr)
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	if k, err := base64.RawURLEncoding.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	if k, err := hex.DecodeString(s); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("want %d bytes as base64 or hex", KeySize)
}

// sealer encrypts secrets with AES-256-GCM; each value is bound to its
// purpose and owner through the additional data, so a ciphertext copied to
// another account does not decrypt.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("accounts: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, ad string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(ad))
}

// errDecrypt means the key changed or the data was tampered with.
var errDecrypt = errors.New("accounts: cannot decrypt the stored token (wrong key?)")

func (s *sealer) open(sealed []byte, ad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errDecrypt
	}
	p, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, errDecrypt
	}
	return p, nil
}
