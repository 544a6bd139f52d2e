package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id costs (RFC 9106). They are stored with each
// hash, so raising them later leaves old passwords verifiable.
type Argon2Params struct {
	Time      uint32 `json:"t"`
	MemoryKiB uint32 `json:"m"`
	Threads   uint8  `json:"p"`
}

// DefaultArgon2 follows the OWASP recommendation for argon2id
// (19 MiB, 2 passes, 1 lane): app passwords carry 100 random bits, so the
// hash only has to resist a stolen database, not guessable passwords.
var DefaultArgon2 = Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

const hashLen = 32

// appPassword is a stored app password: never the password, only its hash.
type appPassword struct {
	ID       string       `json:"id"`
	Label    string       `json:"label"`
	Created  time.Time    `json:"created"`
	LastUsed time.Time    `json:"last_used,omitzero"`
	Salt     []byte       `json:"salt"`
	Hash     []byte       `json:"hash"`
	Params   Argon2Params `json:"params"`
}

// AppPassword describes an app password (without any secret).
type AppPassword struct {
	ID       string
	Label    string
	Created  time.Time
	LastUsed time.Time // zero when never used; updated at most hourly
}

var passwordEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newPassword returns 20 base32 characters (100 random bits) in four groups
// of five, lower case, e.g. "k3vxa-7mq2d-…", easy to type on a phone.
func newPassword() string {
	b := make([]byte, 13) // 104 bits → 21 chars; the first 20 are used
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	s := strings.ToLower(passwordEncoding.EncodeToString(b))[:20]
	return s[0:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:20]
}

// normalizePassword forgives what people do when typing a shown password:
// upper case and spaces. Generated passwords have no upper case or spaces,
// so nothing is lost.
func normalizePassword(p string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(p), " ", ""))
}

func newID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func hashPassword(pw string, salt []byte, p Argon2Params) []byte {
	return argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, hashLen)
}

// IssueAppPassword creates an app password for an existing account and
// returns it; it is shown once and only its hash is stored.
func (r *Registry) IssueAppPassword(user, label string) (password, id string, err error) {
	password = newPassword()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", "", err
	}
	ap := appPassword{
		ID: newID(), Label: strings.TrimSpace(label), Created: r.opts.Now().UTC(),
		Salt: salt, Params: r.opts.Argon2,
		Hash: hashPassword(normalizePassword(password), salt, r.opts.Argon2),
	}
	if ap.Label == "" {
		ap.Label = "CardDAV"
	}
	err = r.update(user, func(rec *record) error {
		if len(rec.AppPasswords) >= r.opts.MaxAppPasswords {
			return ErrTooManyAppPasswords
		}
		rec.AppPasswords = append(rec.AppPasswords, ap)
		return nil
	})
	if err != nil {
		return "", "", err
	}
	r.log.Info("app password issued", "user", user, "id", ap.ID, "label", ap.Label)
	return password, ap.ID, nil
}

// RevokeAppPassword deletes one app password; it stops working at once.
func (r *Registry) RevokeAppPassword(user, id string) error {
	err := r.update(user, func(rec *record) error {
		for i, ap := range rec.AppPasswords {
			if ap.ID == id {
				rec.AppPasswords = append(rec.AppPasswords[:i], rec.AppPasswords[i+1:]...)
				return nil
			}
		}
		return ErrNoAppPassword
	})
	if err == nil {
		r.cache.forgetUser(user)
		r.log.Info("app password revoked", "user", user, "id", id)
	}
	return err
}

// ListAppPasswords returns the user's app passwords, oldest first.
func (r *Registry) ListAppPasswords(user string) ([]AppPassword, error) {
	var out []AppPassword
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, user)
		if err != nil {
			return err
		}
		for _, ap := range rec.AppPasswords {
			out = append(out, AppPassword{ID: ap.ID, Label: ap.Label, Created: ap.Created, LastUsed: ap.LastUsed})
		}
		return nil
	})
	return out, err
}

// dummySalt is hashed against when the user does not exist, so the answer
// takes as long as for a real user and does not reveal who has an account.
var dummySalt = make([]byte, 16)

// Verify checks an app password: nil when it matches one of the user's,
// ErrUnauthorized otherwise (also for an unknown user).
func (r *Registry) Verify(user, password string) error {
	password = normalizePassword(password)
	if id, ok := r.cache.lookup(user, password); ok {
		r.touch(user, id)
		return nil
	}
	gen := r.cache.generation(user)
	var pws []appPassword
	err := r.db.View(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, user)
		if err != nil {
			return err
		}
		pws = rec.AppPasswords
		return nil
	})
	if err != nil || len(pws) == 0 {
		hashPassword(password, dummySalt, r.opts.Argon2)
		return ErrUnauthorized
	}
	match := ""
	for _, ap := range pws {
		h := hashPassword(password, ap.Salt, ap.Params)
		// Every stored password is hashed and compared, whether or not an
		// earlier one matched, so timing says nothing about which matched.
		if subtle.ConstantTimeCompare(h, ap.Hash) == 1 {
			match = ap.ID
		}
	}
	if match == "" {
		return ErrUnauthorized
	}
	r.cache.remember(user, password, match, gen)
	r.touch(user, match)
	return nil
}

// touch records the use of an app password, at most once an hour so that
// a busy client does not turn every request into a database write.
func (r *Registry) touch(user, id string) {
	now := r.opts.Now().UTC()
	var stale bool
	_ = r.db.View(func(tx *bolt.Tx) error {
		rec, err := r.load(tx, user)
		if err != nil {
			return err
		}
		for _, ap := range rec.AppPasswords {
			if ap.ID == id {
				stale = now.Sub(ap.LastUsed) > time.Hour
			}
		}
		return nil
	})
	if !stale {
		return
	}
	if err := r.update(user, func(rec *record) error {
		for i := range rec.AppPasswords {
			if rec.AppPasswords[i].ID == id {
				rec.AppPasswords[i].LastUsed = now
			}
		}
		return nil
	}); err != nil {
		r.log.Warn("recording app password use", "user", user, "err", err)
	}
}

// verifyCache remembers recently verified credentials as HMACs under a
// per-process random key (never the passwords), so CardDAV clients, which
// send Basic auth on every request, do not pay argon2 each time.
type verifyCache struct {
	ttl time.Duration
	key []byte

	mu      sync.Mutex
	entries map[string]map[string]cacheEntry // user key → mac → entry
	// gens counts each user's revocations: a Verify that read the
	// passwords before a revocation must not cache its result after it.
	gens map[string]uint64
}

type cacheEntry struct {
	id      string // the app password's
	expires time.Time
}

func newVerifyCache(ttl time.Duration) *verifyCache {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return &verifyCache{ttl: ttl, key: k, entries: map[string]map[string]cacheEntry{}, gens: map[string]uint64{}}
}

func (c *verifyCache) mac(user, password string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write(keyOf(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	return string(m.Sum(nil))
}

func (c *verifyCache) lookup(user, password string) (string, bool) {
	if c.ttl < 0 {
		return "", false
	}
	mac := c.mac(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	macs := c.entries[string(keyOf(user))]
	e, ok := macs[mac]
	if !ok {
		return "", false
	}
	if time.Now().After(e.expires) {
		delete(macs, mac)
		return "", false
	}
	return e.id, true
}

func (c *verifyCache) generation(user string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[string(keyOf(user))]
}

func (c *verifyCache) remember(user, password, id string, gen uint64) {
	if c.ttl < 0 {
		return
	}
	mac := c.mac(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	k := string(keyOf(user))
	if c.gens[k] != gen {
		return
	}
	macs, ok := c.entries[k]
	if !ok {
		macs = map[string]cacheEntry{}
		c.entries[k] = macs
	}
	// A user has few app passwords; a bound keeps a client that cycles
	// through many valid ones from growing the map.
	if len(macs) >= 32 {
		clear(macs)
	}
	macs[mac] = cacheEntry{id: id, expires: time.Now().Add(c.ttl)}
}

func (c *verifyCache) forgetUser(user string) {
	k := string(keyOf(user))
	c.mu.Lock()
	delete(c.entries, k)
	c.gens[k]++
	c.mu.Unlock()
}
