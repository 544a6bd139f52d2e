package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/accounts/web"
	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/carddav"
	"github.com/contactsdav/contactsdav/certs"
)

// setupAccounts wires a server for real Microsoft accounts: the registry in
// the data folder, the /login sign-in page, and one Backend per signed-in
// person, reaching Graph with their own rotating token (delegated) or with
// the app's client-credentials token on /users/{upn} (--app-only).
func (srv *server) setupAccounts(cfg serveConfig, d sharedDeps, caPEM []byte, mux *http.ServeMux) (carddav.Authenticator, error) {
	lf := cfg.loginFlags
	loginBase, graphBase, err := lf.resolve()
	if err != nil {
		return nil, err
	}
	reg, err := lf.openRegistry(accounts.Options{
		OAuthConfig: oauthConfigFor(lf.clientID, cfg.clientSecret, cfg.loginURL),
		Logger:      d.logger.With("component", "accounts"),
	})
	if err != nil {
		return nil, err
	}
	srv.closers = append(srv.closers, reg.Close)

	srv.publicURL = strings.TrimSuffix(cfg.publicURL, "/")
	if srv.publicURL == "" {
		srv.publicURL = defaultPublicURL(cfg.listen, srv.tls != nil)
	}
	webh, err := web.New(web.Options{
		Registry:  reg,
		OAuth:     &oauth2.Config{ClientID: lf.clientID, ClientSecret: cfg.clientSecret, Endpoint: accounts.MicrosoftEndpoint(loginBase, cfg.tenant)},
		GraphBase: graphBase,
		Cloud:     cfg.cloud,
		Tenant:    cfg.tenant,
		PublicURL: srv.publicURL,
		CAPEM:     caPEM,
		AllowUser: allowList(cfg.allowUsers),
		Logger:    d.logger.With("component", "web"),
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("/login", webh)
	mux.Handle("/login/", webh)

	// Graph's 4-requests-at-once limit is per mailbox, and in current docs
	// per app: app-only mode shares one limiter across every mailbox.
	limiters := perKeyLimiters{}
	var appTokens oauth2.TokenSource
	if cfg.appOnly {
		if cfg.clientSecret == "" {
			return nil, errors.New("--app-only needs --client-secret (client credentials)")
		}
		gu, err := url.Parse(graphBase)
		if err != nil {
			return nil, fmt.Errorf("graph URL: %w", err)
		}
		cc := clientcredentials.Config{
			ClientID:     lf.clientID,
			ClientSecret: cfg.clientSecret,
			TokenURL:     accounts.MicrosoftEndpoint(loginBase, cfg.tenant).TokenURL,
			Scopes:       []string{gu.Scheme + "://" + gu.Host + "/.default"},
		}
		appTokens = cc.TokenSource(context.Background())
	}
	trusted, err := parsePrefixes(cfg.trustedProxies)
	if err != nil {
		return nil, err
	}
	backends := &userBackends{m: map[string]carddav.Backend{}}
	return &accountAuth{
		reg:     reg,
		log:     d.logger,
		trusted: trusted,
		backendFor: func(a accounts.Account, ts oauth2.TokenSource) (carddav.Backend, error) {
			return backends.get(a.User, func() (carddav.Backend, error) {
				gopts := graph.Options{BaseURL: graphBase, TokenSource: ts, Limiter: limiters.get(a.Mailbox)}
				if cfg.appOnly {
					gopts.Mailbox, gopts.TokenSource, gopts.Limiter = a.Mailbox, appTokens, limiters.get("")
				}
				return d.newBackend(a.User, gopts)
			})
		},
	}, nil
}

// userBackends keeps one Backend per user, so a user's cache and delta
// rounds outlive a single request.
type userBackends struct {
	mu sync.Mutex
	m  map[string]carddav.Backend
}

func (u *userBackends) get(user string, build func() (carddav.Backend, error)) (carddav.Backend, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := strings.ToLower(user)
	if b, ok := u.m[key]; ok {
		return b, nil
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	u.m[key] = b
	return b, nil
}

// perKeyLimiters hands out one Graph request limiter per mailbox.
type perKeyLimiters struct {
	mu sync.Mutex
	m  map[string]*graph.Limiter
}

func (p *perKeyLimiters) get(key string) *graph.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*graph.Limiter{}
	}
	key = strings.ToLower(key)
	l, ok := p.m[key]
	if !ok {
		l = graph.NewLimiter(4)
		p.m[key] = l
	}
	return l
}

// allowList turns "a@x.org,@contoso.com" into a sign-in filter; "" allows all.
func allowList(spec string) func(string) bool {
	var names, domains []string
	for _, s := range strings.Split(spec, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		switch {
		case s == "":
		case strings.HasPrefix(s, "@"):
			domains = append(domains, s)
		default:
			names = append(names, s)
		}
	}
	if len(names)+len(domains) == 0 {
		return nil
	}
	return func(user string) bool {
		user = strings.ToLower(user)
		for _, n := range names {
			if user == n {
				return true
			}
		}
		for _, d := range domains {
			if strings.HasSuffix(user, d) {
				return true
			}
		}
		return false
	}
}

// defaultPublicURL guesses the origin clients reach from the listen address.
func defaultPublicURL(listen string, tlsOn bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = listen, ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") || port == "" {
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// tlsConfig picks the TLS setup from the flags: certificate files, a local
// self-signed CA, or ACME; nil when serving plain HTTP. caPEM is the local CA
// to hand to clients when self-signed.
func tlsConfig(cfg serveConfig) (conf *tls.Config, caPEM []byte, err error) {
	set := 0
	for _, v := range []string{cfg.tlsCert + cfg.tlsKey, cfg.tlsSelfSigned, cfg.acmeHosts} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return nil, nil, errors.New("choose one of --tls-cert/--tls-key, --tls-self-signed and --acme")
	}
	switch {
	case cfg.tlsCert != "" || cfg.tlsKey != "":
		if cfg.tlsCert == "" || cfg.tlsKey == "" {
			return nil, nil, errors.New("--tls-cert and --tls-key go together")
		}
		conf, err = certs.Load(cfg.tlsCert, cfg.tlsKey)
		return conf, nil, err
	case cfg.tlsSelfSigned != "":
		return certs.SelfSigned(filepath.Join(cfg.data, "tls"), splitList(cfg.tlsSelfSigned))
	case cfg.acmeHosts != "":
		return certs.ACME(splitList(cfg.acmeHosts), filepath.Join(cfg.data, "acme"), cfg.acmeEmail), nil, nil
	}
	return nil, nil, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
