// Package accounts is the gateway's user registry: CardDAV users (named by
// their Microsoft sign-in name), the app passwords CardDAV clients send with
// HTTP Basic auth (RFC 7617) stored as argon2id hashes (RFC 9106), and each
// user's Microsoft identity platform refresh token (OAuth 2.0, RFC 6749)
// encrypted at rest with AES-256-GCM. It persists to a bbolt file in the data
// folder, keeps rotated refresh tokens, and rate-limits failed sign-ins.
package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"
)

// Errors of the registry.
var (
	// ErrNoAccount: the user has no account.
	ErrNoAccount = errors.New("accounts: no such account")
	// ErrUnauthorized: the user name or app password is wrong.
	ErrUnauthorized = errors.New("accounts: wrong user name or app password")
	// ErrReauthRequired: Microsoft refused the refresh token (invalid_grant,
	// e.g. after a password reset or revocation); the user must sign in again.
	ErrReauthRequired = errors.New("accounts: Microsoft sign-in expired; the user must sign in again")
	// ErrNoToken: the account holds no Microsoft token.
	ErrNoToken = errors.New("accounts: no Microsoft token stored")
	// ErrNoAppPassword: no app password with that id.
	ErrNoAppPassword = errors.New("accounts: no such app password")
	// ErrTooManyAppPasswords: the user reached Options.MaxAppPasswords.
	ErrTooManyAppPasswords = errors.New("accounts: too many app passwords; revoke one first")
)

// Account is one CardDAV user.
type Account struct {
	// User is the CardDAV user name: the Microsoft sign-in name (UPN from
	// GET /me). Look-ups ignore case, as Microsoft does.
	User string `json:"user"`
	// Mailbox is the mailbox whose contacts are served (usually = User).
	Mailbox string `json:"mailbox,omitempty"`
	// Cloud is the national cloud name (global, usgov, usdod, china).
	Cloud string `json:"cloud,omitempty"`
	// Tenant is the directory the user signed in through (common, a GUID…).
	Tenant string `json:"tenant,omitempty"`
	// Created is when the account was first stored.
	Created time.Time `json:"created"`
	// NeedsSignIn is set when Microsoft refused the refresh token.
	NeedsSignIn bool `json:"needs_sign_in,omitempty"`
}

// record is the stored form of an account.
type record struct {
	Account
	Updated time.Time `json:"updated"`
	// RefreshToken is the sealed refresh token (never plaintext).
	RefreshToken []byte        `json:"refresh_token_sealed,omitempty"`
	AppPasswords []appPassword `json:"app_passwords,omitempty"`
}

// Options tune a Registry; the zero value gives the defaults.
type Options struct {
	// Argon2 are the hashing costs for new app passwords (default
	// DefaultArgon2). Tests pass cheap ones.
	Argon2 Argon2Params
	// MaxAppPasswords bounds a user's app passwords (default 20), which
	// also bounds the work of one Verify.
	MaxAppPasswords int
	// Limiter refuses sign-ins after repeated failures (default
	// NewLimiter(LimiterOptions{})).
	Limiter *Limiter
	// OAuthConfig returns the OAuth client for an account's token refresh;
	// it is required by TokenSource.
	OAuthConfig func(Account) *oauth2.Config
	// HTTPClient makes token requests (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// VerifyCacheTTL is how long a verified app password is remembered
	// in memory, so that every CardDAV request need not pay for argon2
	// (default 5 min; negative disables).
	VerifyCacheTTL time.Duration
	// Logger receives events (default slog.Default()). Secrets are never logged.
	Logger *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Registry holds the accounts. It is safe for concurrent use.
type Registry struct {
	db    *bolt.DB
	seal  *sealer
	opts  Options
	log   *slog.Logger
	cache *verifyCache

	mu      sync.Mutex
	sources map[string]*persistingSource
}

var bucketAccounts = []byte("accounts")

// Open opens (creating if needed) the registry file at path with the at-rest
// key (see LoadKey).
func Open(path string, key []byte, opts Options) (*Registry, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	if opts.Argon2 == (Argon2Params{}) {
		opts.Argon2 = DefaultArgon2
	}
	if opts.MaxAppPasswords == 0 {
		opts.MaxAppPasswords = 20
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(LimiterOptions{})
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.VerifyCacheTTL == 0 {
		opts.VerifyCacheTTL = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("accounts: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketAccounts)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &Registry{
		db: db, seal: s, opts: opts, log: opts.Logger.With("component", "accounts"),
		cache:   newVerifyCache(opts.VerifyCacheTTL),
		sources: map[string]*persistingSource{},
	}, nil
}

// Close closes the database.
func (r *Registry) Close() error { return r.db.Close() }

func keyOf(user string) []byte { return []byte(strings.ToLower(strings.TrimSpace(user))) }

// tokenAD binds a sealed refresh token to its account.
func tokenAD(user string) string { return "contactsdav/refresh-token/" + string(keyOf(user)) }

func (r *Registry) load(tx *bolt.Tx, user string) (*record, error) {
	v := tx.Bucket(bucketAccounts).Get(keyOf(user))
	if v == nil {
		return nil, ErrNoAccount
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("accounts: corrupt record for %s: %w", user, err)
	}
	return &rec, nil
}

func (r *Registry) store(tx *bolt.Tx, rec *record) error {
	rec.Updated = r.opts.Now().UTC()
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketAccounts).Put(keyOf(rec.User), v)
}

// update runs fn on the user's record inside a write transaction and saves it.
func (r *Registry) update(user string, fn func(rec *record) error) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, user)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		return r.store(tx, rec)
	})
}

// Put creates or updates an account. A non-nil tok replaces the stored
// Microsoft refresh token (and clears NeedsSignIn); app passwords are kept.
func (r *Registry) Put(a Account, tok *oauth2.Token) error {
	if strings.TrimSpace(a.User) == "" {
		return errors.New("accounts: empty user name")
	}
	err := r.db.Update(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, a.User)
		if errors.Is(err, ErrNoAccount) {
			rec = &record{}
			if a.Created.IsZero() {
				a.Created = r.opts.Now().UTC()
			}
		} else if err != nil {
			return err
		} else {
			a.Created = rec.Created
			a.NeedsSignIn = rec.NeedsSignIn
		}
		rec.Account = a
		if tok != nil {
			if tok.RefreshToken == "" {
				return errors.New("accounts: token has no refresh token (was offline_access asked for?)")
			}
			rec.RefreshToken = r.seal.seal([]byte(tok.RefreshToken), tokenAD(a.User))
			rec.NeedsSignIn = false
		}
		return r.store(tx, rec)
	})
	if err != nil {
		return err
	}
	if tok != nil {
		// A fresh sign-in replaces whatever the cached source held.
		r.mu.Lock()
		delete(r.sources, string(keyOf(a.User)))
		r.mu.Unlock()
	}
	return nil
}

// Get returns an account.
func (r *Registry) Get(user string) (Account, error) {
	var a Account
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, user)
		if err == nil {
			a = rec.Account
		}
		return err
	})
	return a, err
}

// List returns every account, ordered by user name.
func (r *Registry) List() ([]Account, error) {
	var out []Account
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(_, v []byte) error {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec.Account)
			return nil
		})
	})
	return out, err
}

// Delete removes an account with its token and app passwords.
func (r *Registry) Delete(user string) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		if b.Get(keyOf(user)) == nil {
			return ErrNoAccount
		}
		return b.Delete(keyOf(user))
	})
	if err == nil {
		r.cache.forgetUser(user)
		r.mu.Lock()
		delete(r.sources, string(keyOf(user)))
		r.mu.Unlock()
	}
	return err
}

// RefreshToken returns the user's decrypted Microsoft refresh token.
func (r *Registry) RefreshToken(user string) (string, error) {
	var rt string
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, user)
		if err != nil {
			return err
		}
		if rec.NeedsSignIn {
			return ErrReauthRequired
		}
		if len(rec.RefreshToken) == 0 {
			return ErrNoToken
		}
		p, err := r.seal.open(rec.RefreshToken, tokenAD(rec.User))
		rt = string(p)
		return err
	})
	return rt, err
}

// saveRefreshToken stores a rotated refresh token.
func (r *Registry) saveRefreshToken(user, rt string) error {
	return r.update(user, func(rec *record) error {
		rec.RefreshToken = r.seal.seal([]byte(rt), tokenAD(rec.User))
		return nil
	})
}

// markNeedsSignIn records that Microsoft refused the refresh token.
func (r *Registry) markNeedsSignIn(user string) error {
	return r.update(user, func(rec *record) error {
		rec.NeedsSignIn = true
		return nil
	})
}
