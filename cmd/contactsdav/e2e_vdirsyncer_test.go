package main

import (
	"context"
	"flag"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// requireTool finds an external client the end-to-end tests drive. Outside CI
// a missing tool skips the test; under CI=true it fails it, so CI can never
// pass by not running the client.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; .ci/run installs it from Debian", name)
		}
		t.Skipf("%s is not installed (apt-get install %s); end-to-end test skipped", name, name)
	}
	return p
}

// startTestServer runs the whole gateway on a loopback port — on its
// embedded default unless cfg says otherwise — and returns it, its URL and a
// stop function (also run at cleanup; calling it twice is harmless). Fields
// cfg leaves zero take serve's flag defaults.
func startTestServer(t testing.TB, cfg serveConfig) (*server, string, func()) {
	t.Helper()
	var def serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	def.flags(fs)
	must(t, fs.Parse(nil))
	if cfg.data == "" {
		cfg.data = t.TempDir()
	}
	if cfg.demoUser == "" {
		cfg.demoUser = "demo"
	}
	if cfg.demoPassword == "" {
		cfg.demoPassword = "secret-pw"
	}
	if cfg.demoMailbox == "" {
		cfg.demoMailbox = def.demoMailbox
	}
	if cfg.tenant == "" {
		cfg.tenant = def.tenant
	}
	if cfg.cloud == "" {
		cfg.cloud = def.cloud
	}
	cfg.emulatorListen = "127.0.0.1:0"
	if cfg.refreshInterval == 0 {
		cfg.refreshInterval = time.Millisecond // every read asks Graph for changes
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.listen = ln.Addr().String()
	srv, err := newServer(context.Background(), cfg, newLogger("warn"))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.handler}
	go hs.Serve(ln)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			hs.Close()
			srv.Close()
		})
	}
	t.Cleanup(stop)
	return srv, "http://" + ln.Addr().String(), stop
}

func TestVdirsyncerSyncsBothWays(t *testing.T) {
	vdirsyncer := requireTool(t, "vdirsyncer")
	srv, base, _ := startTestServer(t, serveConfig{seedContacts: 12})
	dir := t.TempDir()
	local := filepath.Join(dir, "local")
	conf := filepath.Join(dir, "config")
	must(t, os.WriteFile(conf, []byte(`[general]
status_path = "`+filepath.Join(dir, "status")+`/"

[pair contacts]
a = "local"
b = "remote"
collections = ["from b"]
conflict_resolution = "b wins"

[storage local]
type = "filesystem"
path = "`+local+`/"
fileext = ".vcf"

[storage remote]
type = "carddav"
url = "`+base+`/"
username = "demo"
password = "secret-pw"
`), 0o600))
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, vdirsyncer, append([]string{"-c", conf}, args...)...)
		cmd.Stdin = strings.NewReader(strings.Repeat("y\n", 20))
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vdirsyncer %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	outlook := outlookClient(t, srv)
	ctx := context.Background()
	graphDefault := func() []graph.Contact {
		t.Helper()
		cs, err := outlook.ListContacts(ctx, "contacts", graph.Query{PageSize: 100})
		must(t, err)
		return cs
	}

	run("discover")
	run("sync")
	// Every contact of the default folder is now a local file.
	books, err := filepath.Glob(filepath.Join(local, "*"))
	must(t, err)
	if len(books) < 2 {
		t.Fatalf("vdirsyncer found %d address books, want the default folder and the seeded subfolders: %v", len(books), books)
	}
	defaultDir := filepath.Join(local, "default")
	if got, want := len(localCards(t, defaultDir)), len(graphDefault()); got != want || want == 0 {
		t.Fatalf("default book: %d local cards, %d contacts in Graph", got, want)
	}

	// A card created locally reaches Graph with its fields.
	must(t, os.WriteFile(filepath.Join(defaultDir, "e2e-local-1.vcf"), []byte("BEGIN:VCARD\r\nVERSION:3.0\r\n"+
		"UID:e2e-local-1\r\nFN:Zoë Ångström\r\nN:Ångström;Zoë;;;\r\nEMAIL;TYPE=INTERNET,WORK:zoe@example.org\r\n"+
		"TEL;TYPE=CELL:+46 70 123 45 67\r\nCATEGORIES:Friends,Sauna club\r\nNOTE:line one\\nline two\r\nEND:VCARD\r\n"), 0o600))
	run("sync")
	created := findContact(t, graphDefault(), "Zoë Ångström")
	if created.MobilePhone != "+46 70 123 45 67" || len(created.EmailAddresses) != 1 || created.EmailAddresses[0].Address != "zoe@example.org" ||
		created.PersonalNotes != "line one\nline two" || strings.Join(created.Categories, "|") != "Friends|Sauna club" {
		t.Fatalf("created contact in Graph: %+v", created)
	}

	// An edit made in Outlook reaches the local file at the next sync.
	_, err = outlook.UpdateContact(ctx, "contacts", created.ID, graph.Patch{"jobTitle": "Chief Tester", "displayName": created.DisplayName}, "")
	must(t, err)
	run("sync")
	if card := readLocal(t, defaultDir, "e2e-local-1"); !strings.Contains(card, "TITLE:Chief Tester") || !strings.Contains(card, "UID:e2e-local-1") {
		t.Fatalf("Outlook edit not synced to the local card:\n%s", card)
	}

	// A local edit reaches Graph, and Outlook's edit is kept.
	card := readLocal(t, defaultDir, "e2e-local-1")
	card = strings.Replace(card, "FN:Zoë Ångström", "FN:Zoë Ångström\r\nORG:Nordic Saunas AB", 1)
	must(t, os.WriteFile(localPath(t, defaultDir, "e2e-local-1"), []byte(card), 0o600))
	run("sync")
	edited := findContact(t, graphDefault(), "Zoë Ångström")
	if edited.CompanyName != "Nordic Saunas AB" || edited.JobTitle != "Chief Tester" {
		t.Fatalf("local edit in Graph: company %q, job title %q", edited.CompanyName, edited.JobTitle)
	}

	// A contact deleted in Outlook disappears locally; one deleted locally disappears from Graph.
	before := localCards(t, defaultDir)
	var victim graph.Contact
	for _, c := range graphDefault() {
		if c.ID != created.ID {
			victim = c
			break
		}
	}
	must(t, outlook.DeleteContact(ctx, "contacts", victim.ID, ""))
	must(t, os.Remove(localPath(t, defaultDir, "e2e-local-1")))
	run("sync")
	if got := len(localCards(t, defaultDir)); got != len(before)-2 {
		t.Fatalf("after deleting one card on each side: %d local cards, want %d", got, len(before)-2)
	}
	for _, c := range graphDefault() {
		if c.ID == created.ID {
			t.Fatal("card deleted locally is still in Graph")
		}
	}

	// Nothing left to do: another sync copies nothing either way.
	if out := run("sync"); strings.Contains(out, "Copying") || strings.Contains(out, "Updating") || strings.Contains(out, "Deleting") {
		t.Fatalf("idle sync still moved items:\n%s", out)
	}
}

// outlookClient is a Graph client on the embedded emulator: it plays Outlook,
// editing the mailbox behind the gateway's back.
func outlookClient(t *testing.T, srv *server) *graph.Client {
	t.Helper()
	c, err := graph.New(graph.Options{
		BaseURL:     srv.emulatorURL + "/v1.0",
		TokenSource: emulatorTokens{emu: srv.emu, upn: "demo@contoso.example"},
	})
	must(t, err)
	return c
}

func findContact(t *testing.T, cs []graph.Contact, displayName string) graph.Contact {
	t.Helper()
	for _, c := range cs {
		if c.DisplayName == displayName {
			return c
		}
	}
	t.Fatalf("no contact %q in Graph", displayName)
	return graph.Contact{}
}

// localCards maps UID to file path for the cards in a vdirsyncer folder.
func localCards(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.vcf"))
	must(t, err)
	cards := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if uid, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "UID:"); ok {
				cards[uid] = f
			}
		}
	}
	return cards
}

func localPath(t *testing.T, dir, uid string) string {
	t.Helper()
	p, ok := localCards(t, dir)[uid]
	if !ok {
		t.Fatalf("no local card with UID %s in %s", uid, dir)
	}
	return p
}

func readLocal(t *testing.T, dir, uid string) string {
	t.Helper()
	b, err := os.ReadFile(localPath(t, dir, uid))
	must(t, err)
	return string(b)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
