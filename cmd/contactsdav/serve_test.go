package main

import (
	"context"
	"flag"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A write in flight when serve is told to stop (SIGINT/SIGTERM cancel its
// context) finishes: the client gets its 201 and the contact is in Graph
// after a restart.
func TestGracefulShutdownFinishesInFlightWrites(t *testing.T) {
	data := t.TempDir()
	cfg := serveConfig{loginFlags: loginFlags{data: data}, demoUser: "demo", demoPassword: "secret-pw", demoMailbox: "demo@contoso.example",
		emulatorListen: "127.0.0.1:0", refreshInterval: time.Hour}
	srv, err := newServer(context.Background(), cfg, newLogger("warn"))
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveUntilDone(ctx, &http.Server{Handler: srv.handler}, ln, newLogger("warn")) }()

	release := srv.emu.Hold() // Graph stalls: the PUT below stays in flight
	put := make(chan int, 1)
	go func() {
		card := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:in-flight-1\r\nFN:Grace Hopper\r\nN:Hopper;Grace;;;\r\nEND:VCARD\r\n"
		req, _ := http.NewRequest(http.MethodPut, base+"/demo/contacts/default/in-flight-1.vcf", strings.NewReader(card))
		req.SetBasicAuth("demo", "secret-pw")
		req.Header.Set("Content-Type", "text/vcard; charset=utf-8")
		req.Header.Set("If-None-Match", "*")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			put <- -1
			return
		}
		resp.Body.Close()
		put <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.emu.Held() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the PUT never reached Graph")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop() // as SIGTERM does
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-served:
		t.Fatalf("serve returned while a write was in flight: %v", err)
	default:
	}
	release()
	if code := <-put; code != http.StatusCreated {
		t.Fatalf("the in-flight PUT got %d, want 201", code)
	}
	must(t, <-served)
	must(t, srv.Close())

	// Restarted on the same data folder: the card is there.
	_, base2, _ := startTestServer(t, serveConfig{loginFlags: loginFlags{data: data}})
	req, _ := http.NewRequest(http.MethodGet, base2+"/demo/contacts/default/in-flight-1.vcf", nil)
	req.SetBasicAuth("demo", "secret-pw")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the restart the card is %d, want 200", resp.StatusCode)
	}
}

// Secrets given in the environment are used but never shown as flag
// defaults by `serve -h`.
func TestServeSecretsFromEnvNotInHelp(t *testing.T) {
	t.Setenv("CONTACTSDAV_DEMO_PASSWORD", "env-demo-secret")
	t.Setenv("CONTACTSDAV_CLIENT_SECRET", "env-client-secret")
	t.Setenv("CONTACTSDAV_GRAPH_TOKEN", "env-graph-token")
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	cfg.flags(fs)
	fs.PrintDefaults()
	for _, secret := range []string{"env-demo-secret", "env-client-secret", "env-graph-token"} {
		if strings.Contains(help.String(), secret) {
			t.Errorf("serve -h shows %q", secret)
		}
	}
	must(t, fs.Parse([]string{"--demo-password", "flag-wins"}))
	cfg.secretsFromEnv()
	if cfg.demoPassword != "flag-wins" || cfg.clientSecret != "env-client-secret" || cfg.graphToken != "env-graph-token" {
		t.Errorf("secrets: %q %q %q", cfg.demoPassword, cfg.clientSecret, cfg.graphToken)
	}
}
