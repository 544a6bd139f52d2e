package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
)

func init() { register("emulate", "run the Graph emulator", runEmulate) }

// runEmulate serves the Graph contacts emulator (graphemu) on its own, for
// trying the client or a CardDAV server against it.
func runEmulate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	data := fs.String("data", "./graphemu-data", "directory of the emulator's database")
	prefix := fs.String("prefix", "", "mount path of the emulator, e.g. /graph (Graph under PREFIX/v1.0)")
	user := fs.String("user", "demo@contoso.example", "mailbox to create and print a token for")
	seed := fs.Int("seed-contacts", 0, "add N generated contacts to the user's default folder")
	throttle := fs.Float64("throttle-rate", 0, "fraction of requests answered 429 TooManyRequests")
	unavailable := fs.Float64("unavailable-rate", 0, "fraction of requests answered 503 ServiceNotAvailable")
	conflict := fs.Float64("conflict-rate", 0, "fraction of writes answered a transient 412")
	latency := fs.Duration("latency", 0, "latency added to every request")
	expireEvery := fs.Duration("expire-delta-after", 0, "expire the user's delta tokens this often (0: never)")
	tokenTTL := fs.Duration("token-ttl", 24*time.Hour, "lifetime of the printed access token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The device-code and authorization-code flows sign the user in
	// without a page, so "contactsdav login" works against the emulator.
	auth := oauthemu.New(oauthemu.Options{AutoApproveUser: *user})
	emu, err := graphemu.New(graphemu.Options{
		DataDir:    *data,
		PathPrefix: *prefix,
		Authority:  auth,
		Logger:     logger,
		Faults:     graphemu.Faults{ThrottleRate: *throttle, UnavailableRate: *unavailable, ConflictRate: *conflict, Latency: *latency},
	})
	if err != nil {
		return err
	}
	defer emu.Close()
	if err := emu.AddMailbox(*user); err != nil {
		return err
	}
	if *seed > 0 {
		if err := emu.Seed(*user, *seed); err != nil {
			return err
		}
	}
	token := emu.Authority().Mint(oauthemu.Principal{User: *user}, *tokenTTL)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("Graph emulator at http://%s%s/v1.0\n", ln.Addr(), *prefix)
	fmt.Printf("OAuth2 at       http://%s%s/common/oauth2/v2.0/{devicecode,authorize,token}\n", ln.Addr(), *prefix)
	fmt.Printf("user            %s\n", *user)
	fmt.Printf("bearer token    %s\n", token)
	fmt.Printf("try: curl -H 'Authorization: Bearer %s' http://%s%s/v1.0/me/contacts\n", token, ln.Addr(), *prefix)

	if *expireEvery > 0 {
		go func() {
			t := time.NewTicker(*expireEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					emu.ExpireDeltaTokens(*user)
					logger.Info("expired delta tokens", "user", *user)
				}
			}
		}()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
