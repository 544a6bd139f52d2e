package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patrickmn/go-cache"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/backend"
	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
)

func init() {
	register("serve", "run the CardDAV server (on the built-in Graph emulator unless --graph-url is given)", runServe)
}

// serveConfig is everything `serve` can be told.
type serveConfig struct {
	loginFlags // data folder, Graph and sign-in settings, as login has them

	listen          string
	demoUser        string
	demoPassword    string
	demoMailbox     string
	seedContacts    int
	graphToken      string
	refreshInterval time.Duration
	emulatorListen  string
	logLevel        string

	// Real Microsoft accounts (accounts mode): on when a client id or a
	// sign-in authority is given.
	clientSecret   string
	publicURL      string
	appOnly        bool
	allowUsers     string
	trustedProxies string

	// TLS.
	tlsCert, tlsKey string
	tlsSelfSigned   string
	acmeHosts       string
	acmeEmail       string
}

// accountsMode reports whether serve fronts real accounts rather than the
// embedded default's demo account.
func (c *serveConfig) accountsMode() bool { return c.clientID != "" || c.loginURL != "" }

func (c *serveConfig) flags(fs *flag.FlagSet) {
	c.loginFlags.register(fs)
	fs.StringVar(&c.listen, "listen", envOr("CONTACTSDAV_LISTEN", "127.0.0.1:8080"), "address to serve CardDAV on")
	fs.StringVar(&c.demoUser, "demo-user", envOr("CONTACTSDAV_DEMO_USER", "demo"), "CardDAV user name of the demo account")
	fs.StringVar(&c.demoPassword, "demo-password", "", "password of the demo account (default: generated once and kept in the data folder; env CONTACTSDAV_DEMO_PASSWORD)")
	fs.StringVar(&c.demoMailbox, "demo-mailbox", "demo@contoso.example", "mailbox (UPN) of the demo account in the emulator")
	fs.IntVar(&c.seedContacts, "seed-contacts", 0, "fill an empty demo mailbox with N generated contacts on first start")
	fs.StringVar(&c.graphToken, "graph-token", "", "bearer token for --graph-url (env CONTACTSDAV_GRAPH_TOKEN)")
	fs.DurationVar(&c.refreshInterval, "refresh-interval", 30*time.Second, "how long reads are served from cache before Graph is asked for changes")
	fs.StringVar(&c.emulatorListen, "emulator-listen", "127.0.0.1:0", "loopback address of the embedded Graph emulator")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")

	fs.StringVar(&c.clientSecret, "client-secret", "", "client secret of a confidential app registration; needed by --app-only ($CONTACTSDAV_CLIENT_SECRET)")
	fs.StringVar(&c.publicURL, "public-url", "", "external origin of this server for the sign-in page and profiles, e.g. https://dav.example.org (default from --listen)")
	fs.BoolVar(&c.appOnly, "app-only", false, "organisation mode: reach mailboxes with application permissions (client credentials, /users/{upn}); people still sign in once on /login to get app passwords")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client (for the failed-login limit)")
	fs.StringVar(&c.allowUsers, "allow-users", "", "comma-separated sign-in names or @domains allowed to sign in (default: anyone the tenant lets in)")

	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM, with chain)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fs.StringVar(&c.tlsSelfSigned, "tls-self-signed", "", "comma-separated host names: serve TLS with a local CA and certificate kept in DATA/tls (CA at DATA/tls/CA.pem)")
	fs.StringVar(&c.acmeHosts, "acme", "", "comma-separated public host names: get certificates from Let's Encrypt (TLS-ALPN-01 on this listener)")
	fs.StringVar(&c.acmeEmail, "acme-email", "", "contact e-mail for the ACME account")
}

// secretsFromEnv fills the secrets not given as flags from the environment.
// They are not flag defaults, which `serve -h` would print.
func (c *serveConfig) secretsFromEnv() {
	for _, s := range []struct {
		v   *string
		env string
	}{
		{&c.demoPassword, "CONTACTSDAV_DEMO_PASSWORD"},
		{&c.graphToken, "CONTACTSDAV_GRAPH_TOKEN"},
		{&c.clientSecret, "CONTACTSDAV_CLIENT_SECRET"},
	} {
		if *s.v == "" {
			*s.v = os.Getenv(s.env)
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runServe(ctx context.Context, args []string) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.secretsFromEnv()
	logger := newLogger(cfg.logLevel)

	srv, err := newServer(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if srv.tls != nil {
		scheme, ln = "https", tls.NewListener(ln, srv.tls)
	}
	if srv.publicURL != "" {
		fmt.Printf("contactsdav: CardDAV at %s/ (accounts mode)\n  sign in at %s/login to get a user name and app password\n", srv.publicURL, srv.publicURL)
	} else {
		fmt.Printf("contactsdav: CardDAV at %s://%s/\n  user:     %s\n  password: %s\n", scheme, ln.Addr(), cfg.demoUser, srv.demoPassword)
	}
	if srv.emulatorURL != "" {
		fmt.Printf("  Graph emulator at %s (mailbox %s)\n", srv.emulatorURL, cfg.demoMailbox)
	}
	return serveUntilDone(ctx, &http.Server{Handler: srv.handler, ReadHeaderTimeout: 30 * time.Second}, ln, logger)
}

// serveUntilDone serves until ctx ends, then shuts down gracefully: in-flight
// requests (writes to Graph among them) are given time to finish.
func serveUntilDone(ctx context.Context, hs *http.Server, ln net.Listener, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: waiting for in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// server is the assembled gateway: CardDAV front, backends, store, and, on
// the embedded default, the Graph emulator on a loopback port.
type server struct {
	handler      http.Handler
	tls          *tls.Config // nil: plain HTTP
	publicURL    string      // set in accounts mode
	demoPassword string
	emulatorURL  string
	emu          *graphemu.Emulator // the embedded emulator; nil with --graph-url
	closers      []func() error
}

func (s *server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

func newServer(ctx context.Context, cfg serveConfig, logger *slog.Logger) (srv *server, err error) {
	srv = &server{}
	defer func() {
		if err != nil {
			srv.Close()
		}
	}()
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := store.OpenBolt(filepath.Join(cfg.data, "sync.db"))
	if err != nil {
		return nil, fmt.Errorf("open sync store: %w", err)
	}
	srv.closers = append(srv.closers, st.Close)

	var caPEM []byte
	if srv.tls, caPEM, err = tlsConfig(cfg); err != nil {
		return nil, err
	}

	shared := sharedDeps{
		store:   st,
		cache:   cache.New(cache.NoExpiration, 10*time.Minute),
		metrics: graph.NewMetrics(reg),
		refresh: cfg.refreshInterval,
		logger:  logger,
	}
	mux := http.NewServeMux()
	var auth carddav.Authenticator
	if cfg.accountsMode() {
		auth, err = srv.setupAccounts(cfg, shared, caPEM, mux)
	} else {
		auth, err = srv.setupDemo(cfg, shared)
	}
	if err != nil {
		return nil, err
	}

	mux.Handle("/", carddav.NewHandler(carddav.Options{Auth: auth, Logger: logger, Registry: reg, MaxResourceSize: backend.MaxResourceSize}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv.handler = mux
	return srv, nil
}

// sharedDeps are what every user's Backend shares.
type sharedDeps struct {
	store   store.Store
	cache   *cache.Cache
	metrics *graph.Metrics
	refresh time.Duration
	logger  *slog.Logger
}

// newBackend builds one user's Backend on a Graph client.
func (d sharedDeps) newBackend(user string, gopts graph.Options) (*backend.Backend, error) {
	gopts.Metrics, gopts.Logger = d.metrics, d.logger
	client, err := graph.New(gopts)
	if err != nil {
		return nil, err
	}
	return backend.New(backend.Options{
		User:            user,
		API:             client,
		Store:           d.store,
		Cache:           d.cache,
		RefreshInterval: d.refresh,
		Logger:          d.logger,
	})
}

// setupDemo wires the embedded default: one demo account on the embedded
// emulator, or on an external Graph given by URL and token.
func (srv *server) setupDemo(cfg serveConfig, d sharedDeps) (carddav.Authenticator, error) {
	gopts := graph.Options{BaseURL: strings.TrimSuffix(cfg.graphURL, "/")}
	if gopts.BaseURL == "" {
		emu, base, closeEmu, err := startEmulator(cfg, d.logger)
		if err != nil {
			return nil, err
		}
		srv.closers = append(srv.closers, closeEmu)
		srv.emulatorURL, srv.emu = base, emu
		// The gateway reaches its embedded emulator in-process at a fixed
		// origin: the delta links it keeps name that origin, so they stay
		// valid across restarts, whatever port the loopback listener gets.
		gopts.BaseURL = embeddedGraphOrigin + "/v1.0"
		gopts.HTTPClient = &http.Client{Transport: handlerTransport{emu}}
		gopts.TokenSource = oauth2.ReuseTokenSource(nil, emulatorTokens{emu: emu, upn: cfg.demoMailbox})
	} else {
		if cfg.graphToken == "" {
			return nil, errors.New("--graph-url needs a bearer token (--graph-token or CONTACTSDAV_GRAPH_TOKEN), or accounts mode (--client-id / --login-url)")
		}
		gopts.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cfg.graphToken, TokenType: "Bearer"})
	}
	be, err := d.newBackend(cfg.demoUser, gopts)
	if err != nil {
		return nil, err
	}
	srv.demoPassword = cfg.demoPassword
	if srv.demoPassword == "" {
		if srv.demoPassword, err = demoPassword(cfg.data); err != nil {
			return nil, err
		}
	}
	return &demoAuth{user: cfg.demoUser, password: srv.demoPassword, backend: be}, nil
}

// startEmulator runs the built-in Graph emulator on a loopback listener with
// the demo mailbox, seeding it on first start when asked to.
func startEmulator(cfg serveConfig, logger *slog.Logger) (*graphemu.Emulator, string, func() error, error) {
	emu, err := graphemu.New(graphemu.Options{DataDir: filepath.Join(cfg.data, "graph"), Logger: logger.With("component", "graphemu")})
	if err != nil {
		return nil, "", nil, fmt.Errorf("start Graph emulator: %w", err)
	}
	if err := emu.AddMailbox(cfg.demoMailbox); err != nil {
		emu.Close()
		return nil, "", nil, err
	}
	if cfg.seedContacts > 0 {
		if err := emu.Seed(cfg.demoMailbox, cfg.seedContacts); err != nil {
			emu.Close()
			return nil, "", nil, fmt.Errorf("seed contacts: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.emulatorListen)
	if err != nil {
		emu.Close()
		return nil, "", nil, err
	}
	hs := &http.Server{Handler: emu, ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(ln)
	closeAll := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(hs.Shutdown(ctx), emu.Close())
	}
	return emu, "http://" + ln.Addr().String(), closeAll, nil
}

// embeddedGraphOrigin is where the gateway reaches its embedded emulator;
// .localhost never resolves off this machine (RFC 6761), and no request to it
// leaves the process anyway.
const embeddedGraphOrigin = "http://graph.contactsdav.localhost"

// handlerTransport serves requests in-process with an http.Handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	in := r.Clone(r.Context())
	in.Host = r.URL.Host
	in.RequestURI = r.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// emulatorTokens mints emulator access tokens for one mailbox, standing in
// for a Microsoft sign-in on the embedded default.
type emulatorTokens struct {
	emu *graphemu.Emulator
	upn string
}

func (t emulatorTokens) Token() (*oauth2.Token, error) {
	// The emulator's tokens live an hour; renew well before that.
	return &oauth2.Token{AccessToken: t.emu.AccessToken(t.upn), TokenType: "Bearer", Expiry: time.Now().Add(50 * time.Minute)}, nil
}

// demoPassword returns the demo account's password, generated on first start
// and kept in the data folder so that clients keep working across restarts.
func demoPassword(dir string) (string, error) {
	path := filepath.Join(dir, "demo-password")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 10)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(buf))
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

// demoAuth is the embedded default's single account.
type demoAuth struct {
	user, password string
	backend        carddav.Backend
}

func (a *demoAuth) Authenticate(r *http.Request, username, password string) (carddav.Backend, error) {
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(a.user)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(password), []byte(a.password)) == 1
	if !userOK || !passOK {
		return nil, carddav.ErrUnauthorized
	}
	return a.backend, nil
}
