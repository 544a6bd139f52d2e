package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/accounts"
	"github.com/contactsdav/contactsdav/accounts/web"
	"github.com/contactsdav/contactsdav/backend/graph"
)

func init() {
	register("login", "sign in to a Microsoft account with a device code", runLogin)
}

// File names in the data folder shared by login and serve.
const (
	accountsDBName  = "accounts.db"  // the accounts registry (bbolt)
	accountsKeyName = "accounts.key" // the at-rest key, unless CONTACTSDAV_KEY is set
	keyEnv          = "CONTACTSDAV_KEY"
	clientIDEnv     = "CONTACTSDAV_CLIENT_ID"
)

func runLogin(ctx context.Context, args []string) error {
	return login(ctx, args, os.Stdout, nil)
}

// loginFlags are the sign-in settings login and serve share: serve embeds
// them and registers them the same way.
type loginFlags struct {
	data, tenant, clientID, cloud, loginURL, graphURL, keyFile string
}

func (f *loginFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", envOr("CONTACTSDAV_DATA", "./contactsdav-data"), "data folder: accounts and keys, and serve's sync state and emulator mailbox ($CONTACTSDAV_DATA)")
	fs.StringVar(&f.tenant, "tenant", "common", "Microsoft tenant: common, organizations, consumers or a directory ID (a directory ID for serve --app-only)")
	fs.StringVar(&f.clientID, "client-id", os.Getenv(clientIDEnv), "application (client) ID of the Entra ID app registration, with public client flows allowed; turns on serve's accounts mode ($"+clientIDEnv+")")
	fs.StringVar(&f.cloud, "cloud", "global", "national cloud: global, usgov, usdod or china")
	fs.StringVar(&f.loginURL, "login-url", "", "sign-in authority root instead of the cloud's (e.g. a contactsdav emulate URL); turns on serve's accounts mode")
	fs.StringVar(&f.graphURL, "graph-url", os.Getenv("CONTACTSDAV_GRAPH_URL"), "Graph v1.0 root instead of the cloud's, e.g. http://127.0.0.1:8081/v1.0; outside accounts mode serve uses it instead of its embedded emulator ($CONTACTSDAV_GRAPH_URL)")
	fs.StringVar(&f.keyFile, "key-file", "", "file with the key that encrypts tokens at rest (default DATA/"+accountsKeyName+"; $"+keyEnv+" wins)")
}

// resolve returns the cloud's endpoints with the overrides applied.
func (f *loginFlags) resolve() (loginBase, graphBase string, err error) {
	c, ok := graph.Clouds[f.cloud]
	if !ok {
		return "", "", fmt.Errorf("unknown cloud %q (global, usgov, usdod, china)", f.cloud)
	}
	loginBase, graphBase = c.LoginBase, c.GraphBase
	if f.loginURL != "" {
		loginBase = f.loginURL
	}
	if f.graphURL != "" {
		graphBase = f.graphURL
	}
	if f.clientID == "" {
		if f.loginURL == "" {
			return "", "", errors.New("--client-id is required: register an app in Microsoft Entra ID (public client flows allowed, delegated Contacts.ReadWrite, User.Read, offline_access)")
		}
		f.clientID = "contactsdav" // the emulator accepts any client
	}
	return strings.TrimSuffix(loginBase, "/"), strings.TrimSuffix(graphBase, "/"), nil
}

// openRegistry opens DATA/accounts.db with the key from $CONTACTSDAV_KEY or
// the key file (created on first use).
func (f *loginFlags) openRegistry(opts accounts.Options) (*accounts.Registry, error) {
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return nil, err
	}
	keyFile := f.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(f.data, accountsKeyName)
	}
	key, err := accounts.LoadKey(keyFile, keyEnv)
	if err != nil {
		return nil, err
	}
	return accounts.Open(filepath.Join(f.data, accountsDBName), key, opts)
}

// login runs the device-code flow (RFC 8628), stores the account and prints
// a new app password. client, when set, makes the HTTP requests (tests).
func login(ctx context.Context, args []string, out io.Writer, client *http.Client) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	var f loginFlags
	f.register(fs)
	label := fs.String("label", "contactsdav login", "label of the app password issued")
	cardDAVURL := fs.String("carddav-url", "https://localhost:8443/", "CardDAV URL to print (where `contactsdav serve` listens)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("login: unexpected arguments %q", fs.Args())
	}
	loginBase, graphBase, err := f.resolve()
	if err != nil {
		return err
	}
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	reg, err := f.openRegistry(accounts.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer reg.Close()

	cfg := &oauth2.Config{
		ClientID: f.clientID,
		Endpoint: accounts.MicrosoftEndpoint(loginBase, f.tenant),
		Scopes:   accounts.Scopes,
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return fmt.Errorf("starting the device sign-in: %w", err)
	}
	fmt.Fprintf(out, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	fmt.Fprintln(out, "Waiting for the sign-in to finish…")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch re.ErrorCode {
			case "authorization_declined", "access_denied":
				return errors.New("the sign-in was declined")
			case "expired_token":
				return errors.New("the code expired before the sign-in finished; run login again")
			}
			return fmt.Errorf("signing in: %s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return fmt.Errorf("signing in: %w", err)
	}
	user, err := web.SignInName(ctx, client, graphBase, tok.AccessToken)
	if err != nil {
		return err
	}
	if err := reg.Put(accounts.Account{User: user, Mailbox: user, Cloud: f.cloud, Tenant: f.tenant}, tok); err != nil {
		return err
	}
	pw, _, err := reg.IssueAppPassword(user, *label)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nSigned in as %s. Set up your CardDAV app with:\n", user)
	fmt.Fprintf(out, "  server URL  %s\n", *cardDAVURL)
	fmt.Fprintf(out, "  principal   %s\n", web.PrincipalURL(*cardDAVURL, user))
	fmt.Fprintf(out, "  user name   %s\n", user)
	fmt.Fprintf(out, "  password    %s\n", pw)
	fmt.Fprintln(out, "The password is shown only now; run login again for another one.")
	return nil
}
