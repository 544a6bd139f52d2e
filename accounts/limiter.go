package accounts

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// LimiterOptions tune a Limiter; zero fields take the defaults.
type LimiterOptions struct {
	// PerUser is how many failures one user name may have within Window
	// (default 5), whoever tries.
	PerUser int
	// PerAddress is how many failures one client address may have within
	// Window (default 20), whichever user names it tries.
	PerAddress int
	// Window is the sliding window failures are counted over (default 15 min).
	Window time.Duration
	// MaxKeys bounds the memory the limiter uses (default 100000 keys);
	// when reached, keys whose failures have all aged out are dropped, and
	// if none have, the new key is not tracked.
	MaxKeys int
	// Now is the clock (tests).
	Now func() time.Time
}

// Limiter counts failed Basic-auth attempts per user name and per client
// address in a sliding window, and refuses further attempts once either
// count is reached, until the oldest failure leaves the window.
type Limiter struct {
	opts LimiterOptions

	mu       sync.Mutex
	failures map[string][]time.Time // key → failure times, oldest first, at most the limit
}

// NewLimiter returns a Limiter.
func NewLimiter(opts LimiterOptions) *Limiter {
	if opts.PerUser == 0 {
		opts.PerUser = 5
	}
	if opts.PerAddress == 0 {
		opts.PerAddress = 20
	}
	if opts.Window == 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = 100000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{opts: opts, failures: map[string][]time.Time{}}
}

// RateLimited refuses an attempt; RetryAfter is when one more is allowed
// (callers answer 429 or 503 with Retry-After).
type RateLimited struct {
	RetryAfter time.Duration
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("accounts: too many failed sign-ins; retry after %s", e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrRateLimited) true for any *RateLimited.
func (e *RateLimited) Is(target error) bool { return target == ErrRateLimited }

// ErrRateLimited matches every *RateLimited with errors.Is.
var ErrRateLimited = errors.New("accounts: too many failed sign-ins")

// userKey normalises the name as the registry does (keyOf).
func userKey(user string) string { return "u:" + string(keyOf(user)) }

// addrKey names a client by IP; IPv6 clients by their /64, since one host
// usually owns a whole /64 and could otherwise rotate addresses.
func addrKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "a:" + host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "a:" + p.String()
	}
	return "a:" + ip.String()
}

// recent returns key's failures still inside the window; the caller holds l.mu.
func (l *Limiter) recentLocked(key string, now time.Time) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= l.opts.Window {
		i++
	}
	if i > 0 {
		fs = fs[i:]
		if len(fs) == 0 {
			delete(l.failures, key)
		} else {
			l.failures[key] = fs
		}
	}
	return fs
}

// Allow reports whether user may try from remoteAddr now; if not, the error
// is a *RateLimited.
func (l *Limiter) Allow(user, remoteAddr string) error {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{userKey(user), l.opts.PerUser}, {addrKey(remoteAddr), l.opts.PerAddress}} {
		fs := l.recentLocked(k.key, now)
		if len(fs) >= k.limit {
			// The attempt becomes possible when enough failures age out
			// to bring the count under the limit.
			w := fs[len(fs)-k.limit].Add(l.opts.Window).Sub(now)
			wait = max(wait, w)
		}
	}
	if wait > 0 {
		return &RateLimited{RetryAfter: wait}
	}
	return nil
}

// Fail records a failed attempt.
func (l *Limiter) Fail(user, remoteAddr string) {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(userKey(user), l.opts.PerUser, now)
	l.addLocked(addrKey(remoteAddr), l.opts.PerAddress, now)
}

func (l *Limiter) addLocked(key string, limit int, now time.Time) {
	fs := l.recentLocked(key, now)
	if fs == nil && len(l.failures) >= l.opts.MaxKeys {
		l.pruneLocked(now)
		if len(l.failures) >= l.opts.MaxKeys {
			return
		}
	}
	fs = append(fs, now)
	if len(fs) > limit {
		fs = fs[len(fs)-limit:]
	}
	l.failures[key] = fs
}

func (l *Limiter) pruneLocked(now time.Time) {
	for k, fs := range l.failures {
		if len(fs) == 0 || now.Sub(fs[len(fs)-1]) >= l.opts.Window {
			delete(l.failures, k)
		}
	}
}

// Succeed clears the user's failures after a successful sign-in (the
// address's stay: one success must not unlock guessing other names).
func (l *Limiter) Succeed(user string) {
	l.mu.Lock()
	delete(l.failures, userKey(user))
	l.mu.Unlock()
}

// Authenticate checks user's app password from a client at remoteAddr
// ("ip:port" as in http.Request.RemoteAddr): a *RateLimited when the user
// or address failed too often recently (the password is then not even
// checked), ErrUnauthorized for a wrong password, nil on success.
func (r *Registry) Authenticate(user, password, remoteAddr string) error {
	lim := r.opts.Limiter
	if err := lim.Allow(user, remoteAddr); err != nil {
		r.log.Warn("sign-in refused: too many failures", "user", user, "addr", remoteAddr)
		return err
	}
	if err := r.Verify(user, password); err != nil {
		lim.Fail(user, remoteAddr)
		r.log.Info("sign-in failed", "user", user, "addr", remoteAddr)
		return err
	}
	lim.Succeed(user)
	return nil
}
