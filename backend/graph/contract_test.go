package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/contactsdav/contactsdav/backend"
	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
)

// The Client is what the backend takes.
var (
	_ backend.ContactsAPI  = (*graph.Client)(nil)
	_ backend.PhotoBatcher = (*graph.Client)(nil) // photos of a multiget in one request per 20
)

// contractEnv is a Graph to run the contract against: the emulator, or a
// live tenant.
type contractEnv struct {
	name string
	base string // Graph version root
	upn  string // mailbox of the token; "" when unknown (live)
	// token is a valid bearer token of the mailbox.
	token func() string
	// emu is the emulator behind base; nil when live, which skips the
	// subtests that inject faults or need emulator-only hooks.
	emu *graphemu.Emulator
}

// sequenceSource serves toks in order, repeating the last.
type sequenceSource struct {
	toks []string
	n    atomic.Int32
}

func (s *sequenceSource) Token() (*oauth2.Token, error) {
	i := int(s.n.Add(1)) - 1
	return &oauth2.Token{AccessToken: s.toks[min(i, len(s.toks)-1)], TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}, nil
}

// client returns a Client of env's mailbox with small test backoffs;
// fields of o that are set win.
func (env *contractEnv) client(t *testing.T, o graph.Options) *graph.Client {
	t.Helper()
	o.BaseURL = env.base
	if o.TokenSource == nil {
		o.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: env.token(), TokenType: "Bearer"})
	}
	// The emulator's injected Retry-After values are milliseconds; live
	// Graph asks for seconds, which the client must be allowed to wait.
	base, maxWait := 2*time.Millisecond, 50*time.Millisecond
	if env.emu == nil {
		base, maxWait = 500*time.Millisecond, 30*time.Second
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = base
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = maxWait
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 6
	}
	c, err := graph.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// needEmulator skips a subtest on live Graph.
func (env *contractEnv) needEmulator(t *testing.T, why string) {
	t.Helper()
	if env.emu == nil {
		t.Skipf("live Graph: %s needs the emulator's fault injection or hooks", why)
	}
}

// emuPrefix is where the emulator is mounted: a non-empty prefix catches a
// client that rebuilds URLs from the host instead of following links.
const emuPrefix = "/t/graph"

func TestContractEmulator(t *testing.T) {
	const upn = "ada@contoso.example"
	emu, err := graphemu.New(graphemu.Options{PathPrefix: emuPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	if err := emu.AddMailbox(upn); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	runContract(t, &contractEnv{
		name:  "emulator",
		base:  srv.URL + emuPrefix + "/v1.0",
		upn:   upn,
		token: func() string { return emu.AccessToken(upn) },
		emu:   emu,
	})
}

func TestContractLive(t *testing.T) {
	tok := os.Getenv("GRAPH_TEST_TOKEN")
	if tok == "" {
		t.Skip("GRAPH_TEST_TOKEN not set: live Graph contract run skipped")
	}
	base := os.Getenv("GRAPH_TEST_BASE")
	if base == "" {
		base = graph.Clouds["global"].GraphBase
	}
	runContract(t, &contractEnv{name: "live", base: base, token: func() string { return tok }})
}

// runContract drives a Client over HTTP against env. Every subtest works in
// its own folder below one scratch folder, which is deleted at the end.
func runContract(t *testing.T, env *contractEnv) {
	ctx := context.Background()
	c := env.client(t, graph.Options{})
	scratch, err := c.CreateFolder(ctx, "", fmt.Sprintf("contactsdav-contract-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatalf("creating the scratch folder: %v", err)
	}
	t.Cleanup(func() {
		if err := c.DeleteFolder(context.Background(), scratch.ID); err != nil {
			t.Errorf("deleting the scratch folder: %v", err)
		}
	})
	n := 0
	folder := func(t *testing.T) string {
		t.Helper()
		n++
		f, err := c.CreateFolder(ctx, scratch.ID, fmt.Sprintf("%s-%d", t.Name()[strings.LastIndexByte(t.Name(), '/')+1:], n))
		if err != nil {
			t.Fatal(err)
		}
		return f.ID
	}

	t.Run("Me", func(t *testing.T) {
		u, err := c.Me(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID == "" || u.UserPrincipalName == "" || (env.upn != "" && !strings.EqualFold(u.UserPrincipalName, env.upn)) {
			t.Errorf("Me = %+v, want %s", u, env.upn)
		}
	})

	t.Run("Folders", func(t *testing.T) { contractFolders(t, env, c, scratch.ID) })
	t.Run("ContactCRUD", func(t *testing.T) { contractCRUD(t, c, folder(t)) })
	t.Run("Caps", func(t *testing.T) { contractCaps(t, c, folder(t)) })
	t.Run("ExtendedProperties", func(t *testing.T) { contractExtended(t, c, folder(t)) })
	t.Run("Photos", func(t *testing.T) { contractPhotos(t, c, folder(t)) })
	t.Run("BatchedPhotos", func(t *testing.T) { contractBatchedPhotos(t, env, c, folder(t)) })
	t.Run("Delta", func(t *testing.T) { contractDelta(t, env, c, folder(t)) })
	t.Run("Batch", func(t *testing.T) { contractBatch(t, env, c, folder(t)) })
	t.Run("Paging", func(t *testing.T) { contractPaging(t, env, c, folder(t)) })
	t.Run("Unauthorized", func(t *testing.T) { contractUnauthorized(t, env) })
	t.Run("UsersMailbox", func(t *testing.T) {
		if env.upn == "" {
			t.Skip("live Graph: the mailbox UPN is not known; /users/{upn} is not exercised")
		}
		cu := env.client(t, graph.Options{Mailbox: env.upn})
		f, err := cu.GetFolder(ctx, scratch.ID)
		if err != nil || f.ID != scratch.ID {
			t.Errorf("GetFolder through /users/{upn} = %+v, %v", f, err)
		}
	})
	t.Run("Throttling", func(t *testing.T) { contractThrottling(t, env, folder(t)) })
	t.Run("Unavailable", func(t *testing.T) { contractUnavailable(t, env, folder(t)) })
	t.Run("ConcurrencyCap", func(t *testing.T) { contractConcurrency(t, env, folder(t)) })
	t.Run("TransientConflicts", func(t *testing.T) { contractConflicts(t, env, folder(t)) })
	t.Run("ImmutableIds", func(t *testing.T) {
		env.needEmulator(t, "counting Prefer headers")
		with, without := env.emu.ImmutableIDRequests()
		if with == 0 || without != 0 {
			t.Errorf("requests with Prefer IdType=ImmutableId: %d, without: %d", with, without)
		}
	})
}

func contractFolders(t *testing.T, env *contractEnv, c *graph.Client, root string) {
	ctx := context.Background()
	def, err := c.DefaultFolder(ctx)
	if err != nil || def.ID == "" {
		t.Fatalf("DefaultFolder = %+v, %v", def, err)
	}
	a, err := c.CreateFolder(ctx, root, "A")
	if err != nil {
		t.Fatal(err)
	}
	a1, err := c.CreateFolder(ctx, a.ID, "A1")
	if err != nil {
		t.Fatal(err)
	}
	a11, err := c.CreateFolder(ctx, a1.ID, "A11")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFolder(ctx, root, "A"); !errors.Is(err, graph.ErrConflict) {
		t.Errorf("duplicate folder name: err = %v, want ErrConflict", err)
	}
	all, err := c.ListFolders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parents := map[string]string{}
	for _, f := range all {
		if f.ID == def.ID {
			t.Errorf("ListFolders lists the default folder")
		}
		parents[f.ID] = f.ParentFolderID
	}
	for _, want := range [][2]string{{root, def.ID}, {a.ID, root}, {a1.ID, a.ID}, {a11.ID, a1.ID}} {
		if p, ok := parents[want[0]]; !ok || p != want[1] {
			t.Errorf("folder %s: listed %v with parent %q, want parent %q", want[0], ok, p, want[1])
		}
	}
	got, err := c.GetFolder(ctx, a11.ID)
	if err != nil || got.DisplayName != "A11" || got.ParentFolderID != a1.ID {
		t.Errorf("GetFolder(deep) = %+v, %v", got, err)
	}
	r, err := c.RenameFolder(ctx, a1.ID, "A1 renamed")
	if err != nil || r.DisplayName != "A1 renamed" || r.ID != a1.ID {
		t.Errorf("RenameFolder = %+v, %v", r, err)
	}
	if err := c.DeleteFolder(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	all, err = c.ListFolders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if f.ID == a.ID || f.ID == a1.ID || f.ID == a11.ID {
			t.Errorf("folder %s (%s) still listed after deleting its ancestor", f.ID, f.DisplayName)
		}
	}
	if _, err := c.ListContacts(ctx, "AAMkAGI2TGuLAAA=", graph.Query{}); err == nil {
		t.Error("listing a folder that does not exist: no error")
	}
}

// fullContact sets every writable property.
func fullContact() *graph.Contact {
	return &graph.Contact{
		DisplayName: "Ada Lovelace", GivenName: "Ada", MiddleName: "King", Surname: "Lovelace",
		Title: "Countess", Generation: "II", Initials: "A.K.L.", NickName: "Ada", FileAs: "Lovelace, Ada",
		YomiGivenName: "エイダ", YomiSurname: "ラブレス", YomiCompanyName: "アナリティカル",
		EmailAddresses:  []graph.EmailAddress{{Name: "Ada", Address: "ada@example.com"}, {Name: "Ada (work)", Address: "ada@engine.example"}},
		BusinessPhones:  []string{"+44 20 7946 0001", "+44 20 7946 0002"},
		HomePhones:      []string{"+44 20 7946 0003"},
		MobilePhone:     "+44 7700 900001",
		IMAddresses:     []string{"sip:ada@example.com"},
		HomeAddress:     &graph.PhysicalAddress{Street: "12 St James's Square\nFlat 1", City: "London", State: "", PostalCode: "SW1Y 4JH", CountryOrRegion: "United Kingdom"},
		BusinessAddress: &graph.PhysicalAddress{Street: "1 Engine Road", City: "London", CountryOrRegion: "UK"},
		CompanyName:     "Analytical Engines", Department: "Programs", JobTitle: "Programmer", OfficeLocation: "Room 1",
		Profession: "Mathematician", Manager: "Charles Babbage", AssistantName: "Mary", BusinessHomePage: "https://engine.example/",
		Birthday: "1815-12-10T11:59:00Z", SpouseName: "William", Children: []string{"Byron", "Anne", "Ralph"},
		PersonalNotes: "Wrote the first program.\nSecond line.", Categories: []string{"Friends"},
	}
}

// writable is c without read-only properties and with Graph's empties
// ({}, []) made nil, for comparing what was written with what is read.
func writable(c graph.Contact) graph.Contact {
	c.ODataETag, c.ID, c.ChangeKey, c.CreatedDateTime, c.LastModifiedDateTime, c.ParentFolderID = "", "", "", "", "", ""
	c.SingleValueExtendedProperties = nil
	for _, a := range []**graph.PhysicalAddress{&c.HomeAddress, &c.BusinessAddress, &c.OtherAddress} {
		if (*a).IsZero() {
			*a = nil
		}
	}
	for _, s := range []*[]string{&c.BusinessPhones, &c.HomePhones, &c.IMAddresses, &c.Children, &c.Categories} {
		if len(*s) == 0 {
			*s = nil
		}
	}
	if len(c.EmailAddresses) == 0 {
		c.EmailAddresses = nil
	}
	return c
}

func diffContacts(t *testing.T, what string, got, want graph.Contact) {
	t.Helper()
	gb, _ := json.Marshal(writable(got))
	wb, _ := json.Marshal(writable(want))
	if g, w := string(gb), string(wb); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func contractCRUD(t *testing.T, c *graph.Client, fid string) {
	ctx := context.Background()
	in := fullContact()
	created, err := c.CreateContact(ctx, fid, in)
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.ChangeKey == "" || created.ODataETag != `W/"`+created.ChangeKey+`"` || created.ParentFolderID != fid {
		t.Errorf("created: id %q changeKey %q etag %q parent %q", created.ID, created.ChangeKey, created.ODataETag, created.ParentFolderID)
	}
	diffContacts(t, "POST answer", *created, *in)
	got, err := c.GetContact(ctx, fid, created.ID, graph.Query{})
	if err != nil {
		t.Fatal(err)
	}
	diffContacts(t, "GET in folder", *got, *in)
	if anyFolder, err := c.GetContact(ctx, "", created.ID, graph.Query{}); err != nil || anyFolder.ID != created.ID {
		t.Errorf("GET /contacts/{id} = %+v, %v", anyFolder, err)
	}
	sel, err := c.GetContact(ctx, fid, created.ID, graph.Query{Select: []string{"givenName"}})
	if err != nil || sel.GivenName != "Ada" || sel.Surname != "" || sel.ID != created.ID {
		t.Errorf("GET $select=givenName = %+v, %v", sel, err)
	}

	// PATCH semantics: change, clear a scalar, clear a collection, replace
	// an address, clear another; displayName kept as sent.
	next := *got
	next.JobTitle = "Enchantress of Number"
	next.Surname = ""
	next.EmailAddresses = nil
	next.Children = []string{"Byron"}
	next.HomeAddress = &graph.PhysicalAddress{City: "Ockham"}
	next.BusinessAddress = nil
	next.DisplayName = "Ada Lovelace"
	p := graph.NewPatch(got, &next)
	updated, err := c.UpdateContact(ctx, fid, created.ID, p, got.ODataETag)
	if err != nil {
		t.Fatalf("PATCH %v: %v", p.Keys(), err)
	}
	if updated.ChangeKey == got.ChangeKey {
		t.Error("changeKey unchanged by PATCH")
	}
	diffContacts(t, "PATCH answer", *updated, next)
	reread, err := c.GetContact(ctx, fid, created.ID, graph.Query{})
	if err != nil {
		t.Fatal(err)
	}
	diffContacts(t, "GET after PATCH", *reread, next)
	if reread.ODataETag != updated.ODataETag {
		t.Errorf("etag of GET %s != etag of PATCH answer %s", reread.ODataETag, updated.ODataETag)
	}

	// If-Match with the stale etag.
	_, err = c.UpdateContact(ctx, fid, created.ID, graph.Patch{"displayName": "x"}, got.ODataETag)
	if !errors.Is(err, graph.ErrPreconditionFailed) {
		t.Errorf("PATCH with a stale If-Match: err = %v, want ErrPreconditionFailed", err)
	}
	if err := c.DeleteContact(ctx, fid, created.ID, got.ODataETag); !errors.Is(err, graph.ErrPreconditionFailed) {
		t.Errorf("DELETE with a stale If-Match: err = %v, want ErrPreconditionFailed", err)
	}
	if err := c.DeleteContact(ctx, fid, created.ID, reread.ODataETag); err != nil {
		t.Fatalf("DELETE with the current If-Match: %v", err)
	}
	if _, err := c.GetContact(ctx, fid, created.ID, graph.Query{}); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("GET after DELETE: err = %v, want ErrNotFound", err)
	}
	if err := c.DeleteContact(ctx, fid, created.ID, ""); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("second DELETE: err = %v, want ErrNotFound", err)
	}
	if _, err := c.GetContact(ctx, fid, "not-an-id", graph.Query{}); !errors.Is(err, graph.ErrBadRequest) {
		t.Errorf("GET of a malformed id: err = %v, want ErrBadRequest (ErrorInvalidIdMalformed)", err)
	}
}

func contractCaps(t *testing.T, c *graph.Client, fid string) {
	ctx := context.Background()
	emails := func(n int) []graph.EmailAddress {
		var out []graph.EmailAddress
		for i := range n {
			out = append(out, graph.EmailAddress{Address: fmt.Sprintf("a%d@example.com", i)})
		}
		return out
	}
	tests := []struct {
		name string
		c    graph.Contact
	}{
		{"4 emails", graph.Contact{GivenName: "e", EmailAddresses: emails(4)}},
		{"3 business phones", graph.Contact{GivenName: "b", BusinessPhones: []string{"1", "2", "3"}}},
		{"3 home phones", graph.Contact{GivenName: "h", HomePhones: []string{"1", "2", "3"}}},
		{"4 IM addresses", graph.Contact{GivenName: "i", IMAddresses: []string{"1", "2", "3", "4"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.CreateContact(ctx, fid, &tc.c); !errors.Is(err, graph.ErrBadRequest) {
				t.Errorf("POST: err = %v, want ErrBadRequest", err)
			}
		})
	}
	ok, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: "max", EmailAddresses: emails(3), BusinessPhones: []string{"1", "2"}})
	if err != nil {
		t.Fatalf("POST at the caps: %v", err)
	}
	if _, err := c.UpdateContact(ctx, fid, ok.ID, graph.Patch{"emailAddresses": emails(4)}, ""); !errors.Is(err, graph.ErrBadRequest) {
		t.Errorf("PATCH with 4 emails: err = %v, want ErrBadRequest", err)
	}
	var ge *graph.Error
	if _, err := c.CreateContact(ctx, fid, &graph.Contact{EmailAddresses: emails(4)}); errors.As(err, &ge) && ge.Message == "" {
		t.Error("the cap error has no message")
	}
}

// Property ids of the contract: one GUID, few names, as Microsoft advises.
const (
	propUID   = "String {5e3f1c2a-7b4d-4e8f-9a10-b2c3d4e5f601} Name contract-uid"
	propOther = "String {5e3f1c2a-7b4d-4e8f-9a10-b2c3d4e5f601} Name contract-other"
)

func contractExtended(t *testing.T, c *graph.Client, fid string) {
	ctx := context.Background()
	in := &graph.Contact{GivenName: "Ext", SingleValueExtendedProperties: []graph.ExtendedProperty{
		{ID: propUID, Value: "urn:uuid:1"}, {ID: propOther, Value: "o n e"},
	}}
	created, err := c.CreateContact(ctx, fid, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(created.SingleValueExtendedProperties) != 0 {
		t.Errorf("POST echoed extended properties %v; Graph documents it does not", created.SingleValueExtendedProperties)
	}
	q := graph.Query{Expand: []string{propUID, propOther, graph.PropHasPicture}}
	got, err := c.GetContact(ctx, fid, created.ID, q)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.ExtendedPropertyValue(propUID); v != "urn:uuid:1" {
		t.Errorf("uid = %q in %v", v, got.SingleValueExtendedProperties)
	}
	if v, _ := got.ExtendedPropertyValue(propOther); v != "o n e" {
		t.Errorf("other = %q", v)
	}
	if v, ok := got.ExtendedPropertyValue(graph.PropHasPicture); ok && v != "false" {
		t.Errorf("has-picture = %q on a contact without a photo", v)
	}
	onlyUID, err := c.GetContact(ctx, fid, created.ID, graph.Query{Expand: []string{propUID}})
	if err != nil || len(onlyUID.SingleValueExtendedProperties) != 1 {
		t.Errorf("$expand of one id gave %v, %v", onlyUID.SingleValueExtendedProperties, err)
	}
	plain, err := c.GetContact(ctx, fid, created.ID, graph.Query{})
	if err != nil || len(plain.SingleValueExtendedProperties) != 0 {
		t.Errorf("GET without $expand gave extended properties %v, %v", plain.SingleValueExtendedProperties, err)
	}

	// Change one value through NewPatch; the other stays.
	next := *got
	next.SingleValueExtendedProperties = []graph.ExtendedProperty{{ID: propUID, Value: "urn:uuid:2"}, {ID: propOther, Value: "o n e"}}
	p := graph.NewPatch(got, &next)
	if _, err := c.UpdateContact(ctx, fid, created.ID, p, ""); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetContact(ctx, fid, created.ID, q)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.ExtendedPropertyValue(propUID); v != "urn:uuid:2" {
		t.Errorf("uid after PATCH = %q", v)
	}
	if v, _ := got.ExtendedPropertyValue(propOther); v != "o n e" {
		t.Errorf("other after PATCH = %q", v)
	}
	list, err := c.ListContacts(ctx, fid, graph.Query{Expand: []string{propUID}})
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if v, _ := list[0].ExtendedPropertyValue(propUID); v != "urn:uuid:2" {
		t.Errorf("uid in a list with $expand = %q", v)
	}
}

func contractPhotos(t *testing.T, c *graph.Client, fid string) {
	ctx := context.Background()
	ct, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: "Photo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPhoto(ctx, ct.ID); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("GetPhoto without a photo: err = %v, want ErrNotFound", err)
	}
	jpeg := tinyJPEG()
	if err := c.PutPhoto(ctx, ct.ID, &graph.Photo{ContentType: "image/jpeg", Data: jpeg}); err != nil {
		t.Fatal(err)
	}
	p, err := c.GetPhoto(ctx, ct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.ContentType, "image/jpeg") || !bytes.Equal(p.Data, jpeg) {
		t.Errorf("GetPhoto = %s, %d bytes; want image/jpeg, %d bytes", p.ContentType, len(p.Data), len(jpeg))
	}
	flag := func() string {
		got, err := c.GetContact(ctx, fid, ct.ID, graph.Query{Expand: []string{graph.PropHasPicture}})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := got.ExtendedPropertyValue(graph.PropHasPicture)
		return strings.ToLower(v)
	}
	if v := flag(); v != "true" {
		t.Errorf("has-picture after PUT = %q, want true", v)
	}
	if err := c.PutPhoto(ctx, ct.ID, nil); err != nil {
		t.Fatalf("clearing the photo: %v", err)
	}
	if _, err := c.GetPhoto(ctx, ct.ID); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("GetPhoto after clearing: err = %v, want ErrNotFound", err)
	}
	if v := flag(); v == "true" {
		t.Errorf("has-picture after clearing = %q", v)
	}
}

// tinyJPEG is a 1×1 baseline JPEG, built by hand for the test.
func tinyJPEG() []byte {
	return []byte{
		0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
		0xFF, 0xDB, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09, 0x09, 0x08, 0x0A, 0x0C,
		0x14, 0x0D, 0x0C, 0x0B, 0x0B, 0x0C, 0x19, 0x12, 0x13, 0x0F, 0x14, 0x1D, 0x1A, 0x1F, 0x1E, 0x1D, 0x1A, 0x1C, 0x1C, 0x20,
		0x24, 0x2E, 0x27, 0x20, 0x22, 0x2C, 0x23, 0x1C, 0x1C, 0x28, 0x37, 0x29, 0x2C, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1F, 0x27,
		0x39, 0x3D, 0x38, 0x32, 0x3C, 0x2E, 0x33, 0x34, 0x32,
		0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00,
		0xFF, 0xC4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09,
		0xFF, 0xC4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x2A, 0x9F, 0xFF, 0xD9,
	}
}

func ids(cs []graph.Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func contractDelta(t *testing.T, env *contractEnv, c *graph.Client, fid string) {
	ctx := context.Background()
	var made []*graph.Contact
	for i := range 5 {
		ct, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: fmt.Sprintf("Delta%d", i), DisplayName: fmt.Sprintf("Delta %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, ct)
	}
	q := graph.Query{Select: []string{"displayName"}, PageSize: 2} // three pages
	r, err := c.ContactsDelta(ctx, fid, "", q)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(r.Changed); len(got) != 5 || !containsAll(got, ids(deref(made))) {
		t.Errorf("initial round changed = %v, want the 5 created", got)
	}
	for _, ct := range r.Changed {
		if ct.DisplayName == "" || ct.GivenName != "" {
			t.Errorf("$select=displayName not applied: %+v", ct)
		}
	}
	if len(r.Removed) != 0 || r.DeltaLink == "" {
		t.Errorf("initial round removed = %v, deltaLink %q", r.Removed, r.DeltaLink)
	}
	if env.emu != nil && !strings.Contains(r.DeltaLink, emuPrefix+"/v1.0/") {
		t.Errorf("deltaLink %s lost the emulator's prefix", r.DeltaLink)
	}

	// Update one, delete one, create one.
	if _, err := c.UpdateContact(ctx, fid, made[0].ID, graph.Patch{"displayName": "Delta zero", "jobTitle": "changed"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteContact(ctx, fid, made[1].ID, ""); err != nil {
		t.Fatal(err)
	}
	added, err := c.CreateContact(ctx, fid, &graph.Contact{DisplayName: "Delta new"})
	if err != nil {
		t.Fatal(err)
	}
	var r2 *graph.DeltaResult
	// Graph may lag a little behind writes [doc]; poll a bounded number of
	// times (the emulator is exact and passes on the first).
	for try := 0; try < 10; try++ {
		r2, err = c.ContactsDelta(ctx, fid, r.DeltaLink, q)
		if err != nil {
			t.Fatal(err)
		}
		if containsAll(ids(r2.Changed), []string{made[0].ID, added.ID}) && slices.Contains(r2.Removed, made[1].ID) {
			break
		}
		if env.emu != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if !containsAll(ids(r2.Changed), []string{made[0].ID, added.ID}) || slices.Contains(ids(r2.Changed), made[1].ID) {
		t.Errorf("second round changed = %v, want %s and %s", ids(r2.Changed), made[0].ID, added.ID)
	}
	if !slices.Equal(r2.Removed, []string{made[1].ID}) {
		t.Errorf("second round removed = %v, want [%s]", r2.Removed, made[1].ID)
	}
	for _, ct := range r2.Changed {
		if ct.ID == made[0].ID && ct.DisplayName != "Delta zero" {
			t.Errorf("updated contact in delta: %+v", ct)
		}
	}
	if env.emu != nil {
		r3, err := c.ContactsDelta(ctx, fid, r2.DeltaLink, q)
		if err != nil || len(r3.Changed)+len(r3.Removed) != 0 || r3.DeltaLink == "" {
			t.Errorf("quiet round = %+v, %v; want nothing", r3, err)
		}
	}

	// A token Graph does not know.
	bogus := r2.DeltaLink
	if i := strings.Index(bogus, "deltatoken="); i >= 0 {
		bogus = bogus[:i] + "deltatoken=AAAAbogusbogusbogus"
	}
	if _, err := c.ContactsDelta(ctx, fid, bogus, q); !errors.Is(err, graph.ErrSyncStateNotFound) {
		t.Errorf("unknown delta token: err = %v, want ErrSyncStateNotFound", err)
	}

	if env.emu == nil {
		return
	}
	env.emu.ExpireDeltaTokens(env.upn)
	_, err = c.ContactsDelta(ctx, fid, r2.DeltaLink, q)
	if !errors.Is(err, graph.ErrSyncStateNotFound) {
		t.Fatalf("expired delta token: err = %v, want ErrSyncStateNotFound", err)
	}
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != 410 {
		t.Errorf("expired delta token: %#v, want a 410 *graph.Error", err)
	}
	fresh, err := c.ContactsDelta(ctx, fid, "", q)
	if err != nil || len(fresh.Changed) != 5 {
		t.Fatalf("fresh round after expiry: %+v, %v; want 5 changed", fresh, err)
	}

	// Every way Graph has been seen to say "start over".
	defer env.emu.SetFaults(graphemu.Faults{})
	for _, mode := range []struct {
		name string
		m    graphemu.ExpiredDeltaMode
	}{{"410", graphemu.ExpiredDelta410}, {"410 with Location", graphemu.ExpiredDeltaReset}, {"400", graphemu.ExpiredDelta400}} {
		env.emu.SetFaults(graphemu.Faults{ExpiredDelta: mode.m})
		r, err := c.ContactsDelta(ctx, fid, "", q)
		if err != nil {
			t.Fatal(err)
		}
		env.emu.ExpireDeltaTokens(env.upn)
		if _, err := c.ContactsDelta(ctx, fid, r.DeltaLink, q); !errors.Is(err, graph.ErrSyncStateNotFound) {
			t.Errorf("expired token answered %s: err = %v, want ErrSyncStateNotFound", mode.name, err)
		}
	}

	// Replayed and reordered items within a round merge to one entry each.
	env.emu.SetFaults(graphemu.Faults{DeltaReplayRate: 0.7, Seed: 9})
	replayed, err := c.ContactsDelta(ctx, fid, "", graph.Query{Select: []string{"displayName"}, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(replayed.Changed); len(got) != 5 || !containsAll(got, ids(fresh.Changed)) {
		t.Errorf("round with replays: changed %v; want the 5 live contacts once", got)
	}
	// A first round may carry tombstones too [doc]; only the deleted one.
	if !containsAll([]string{made[1].ID}, replayed.Removed) {
		t.Errorf("round with replays: removed %v; at most [%s]", replayed.Removed, made[1].ID)
	}
}

func deref(cs []*graph.Contact) []graph.Contact {
	out := make([]graph.Contact, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	return out
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// createMany creates n contacts in fid with four writers.
func createMany(t *testing.T, c *graph.Client, fid string, n int, ext bool) []string {
	t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Bool
	next := atomic.Int32{}
	for range 4 {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				in := &graph.Contact{GivenName: fmt.Sprintf("Many%04d", i), DisplayName: fmt.Sprintf("Many %04d", i)}
				if ext {
					in.SingleValueExtendedProperties = []graph.ExtendedProperty{{ID: propUID, Value: fmt.Sprintf("uid-%d", i)}}
				}
				ct, err := c.CreateContact(context.Background(), fid, in)
				if err != nil {
					failed.Store(true)
					t.Errorf("creating contact %d: %v", i, err)
					return
				}
				out[i] = ct.ID
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		t.FailNow()
	}
	return out
}

func contractBatch(t *testing.T, env *contractEnv, c *graph.Client, fid string) {
	ctx := context.Background()
	made := createMany(t, c, fid, 45, true)
	for _, i := range []int{7, 30} {
		if err := c.DeleteContact(ctx, fid, made[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	before := batchCount(env)
	// Reverse order: the result follows the input, not Graph's order.
	in := slices.Clone(made)
	slices.Reverse(in)
	got, err := c.GetContacts(ctx, in, graph.Query{Select: []string{"displayName"}, Expand: []string{propUID}})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range in {
		if id != made[7] && id != made[30] {
			want = append(want, id)
		}
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("GetContacts ids = %v\nwant %v", ids(got), want)
	}
	for _, ct := range got {
		i := slices.Index(made, ct.ID)
		if v, _ := ct.ExtendedPropertyValue(propUID); v != fmt.Sprintf("uid-%d", i) || ct.DisplayName != fmt.Sprintf("Many %04d", i) {
			t.Errorf("batched contact %d = %+v", i, ct)
			break
		}
	}
	if env.emu != nil {
		if n := batchCount(env) - before; n != 3 {
			t.Errorf("%d $batch requests for 45 ids, want 3", n)
		}
	}
	if got, err := c.GetContacts(ctx, nil, graph.Query{}); err != nil || len(got) != 0 {
		t.Errorf("GetContacts(nil) = %v, %v", got, err)
	}

	t.Run("WithinConcurrencyCap", func(t *testing.T) {
		env.needEmulator(t, "counting throttled requests")
		// Outlook runs 4 items of a batch at once and each counts against
		// the mailbox's 4 concurrent requests: batches beside single GETs
		// must not be throttled when the client keeps the cap.
		env.emu.SetFaults(graphemu.Faults{Latency: 3 * time.Millisecond})
		defer env.emu.SetFaults(graphemu.Faults{})
		cl := env.client(t, graph.Options{MaxConcurrent: 4, MaxRetries: -1})
		before := statusCount(env, 429)
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					_, err = cl.GetContacts(ctx, made[:20], graph.Query{Select: []string{"displayName"}})
				} else {
					_, err = cl.GetContact(ctx, fid, made[i], graph.Query{})
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := statusCount(env, 429) - before; n != 0 {
			t.Errorf("%d requests or items throttled", n)
		}
	})
	t.Run("ThrottledItems", func(t *testing.T) {
		env.needEmulator(t, "throttling batch items")
		// Items inside a batch draw faults like requests do; with half of
		// them throttled every item still arrives through retries.
		env.emu.SetFaults(graphemu.Faults{ThrottleRate: 0.3, RetryAfter: 2 * time.Millisecond, Seed: 7})
		defer env.emu.SetFaults(graphemu.Faults{})
		cl := env.client(t, graph.Options{MaxRetries: 30})
		before := statusCount(env, 429)
		got, err := cl.GetContacts(ctx, made[:20], graph.Query{Select: []string{"displayName"}})
		if err != nil {
			t.Fatal(err)
		}
		if statusCount(env, 429) == before {
			t.Error("nothing was throttled; the fault injection did not happen")
		}
		if len(got) != 19 { // made[7] is gone
			t.Errorf("got %d contacts, want 19", len(got))
		}
	})
}

// batchCount is the number of $batch requests the emulator answered.
func batchCount(env *contractEnv) int {
	if env.emu == nil {
		return 0
	}
	n := 0
	for k, v := range env.emu.Counts() {
		if strings.HasPrefix(k, "batch ") {
			n += v
		}
	}
	return n
}

// statusCount sums the emulator's counts of one HTTP status.
func statusCount(env *contractEnv, status int) int {
	n := 0
	for k, v := range env.emu.Counts() {
		if strings.HasSuffix(k, fmt.Sprintf(" %d", status)) {
			n += v
		}
	}
	return n
}

func contractPaging(t *testing.T, env *contractEnv, c *graph.Client, fid string) {
	ctx := context.Background()
	var made []string
	if env.emu != nil {
		// 2,500 contacts through the emulator's Seed, which fills the
		// default folder; the listing counts what was there before.
		fid = graph.DefaultFolderID
		before, err := c.ListContacts(ctx, fid, graph.Query{Select: []string{"id"}, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if err := env.emu.Seed(env.upn, 2500); err != nil {
			t.Fatal(err)
		}
		all, err := c.ListContacts(ctx, fid, graph.Query{Select: []string{"id"}, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids(all) {
			if !slices.Contains(ids(before), id) {
				made = append(made, id)
			}
		}
		if len(made) != 2500 {
			t.Fatalf("seeded %d contacts, want 2500", len(made))
		}
		made = append(made, ids(before)...)
	} else {
		// Enough for several pages without flooding a live mailbox.
		made = createMany(t, c, fid, 23, false)
	}
	n := len(made)
	sizes := []int{250, 1000}
	if env.emu == nil {
		sizes = []int{7}
	}
	for _, ps := range sizes {
		got, err := c.ListContacts(ctx, fid, graph.Query{Select: []string{"displayName"}, PageSize: ps})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Errorf("$top=%d: listed %d contacts, want %d", ps, len(got), n)
		}
		seen := map[string]bool{}
		for _, ct := range got {
			if seen[ct.ID] {
				t.Errorf("$top=%d: %s listed twice", ps, ct.ID)
			}
			seen[ct.ID] = true
		}
		if !containsAll(ids(got), made) {
			t.Errorf("$top=%d: some contacts were not listed", ps)
		}
	}
	r, err := c.ContactsDelta(ctx, fid, "", graph.Query{Select: []string{"displayName"}, PageSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Changed) != n {
		t.Errorf("delta over %d contacts gave %d", n, len(r.Changed))
	}
}

func contractUnauthorized(t *testing.T, env *contractEnv) {
	ctx := context.Background()
	good := env.token()
	refreshed := &sequenceSource{toks: []string{"expired-or-revoked", good}}
	c := env.client(t, graph.Options{TokenSource: refreshed})
	if _, err := c.DefaultFolder(ctx); err != nil {
		t.Errorf("after a 401 and a refresh: %v", err)
	}
	if n := refreshed.n.Load(); n != 2 {
		t.Errorf("token source asked %d times, want 2", n)
	}
	bad := &sequenceSource{toks: []string{"bad-1", "bad-2"}}
	c = env.client(t, graph.Options{TokenSource: bad})
	_, err := c.DefaultFolder(ctx)
	if !errors.Is(err, graph.ErrUnauthorized) {
		t.Errorf("with bad tokens: err = %v, want ErrUnauthorized", err)
	}
	if err != nil && strings.Contains(err.Error(), "bad-") {
		t.Errorf("error %q shows the token", err)
	}
	if n := bad.n.Load(); n != 2 {
		t.Errorf("token source asked %d times, want 2 (one refresh)", n)
	}
}

func contractThrottling(t *testing.T, env *contractEnv, fid string) {
	env.needEmulator(t, "throttling")
	ctx := context.Background()
	defer env.emu.SetFaults(graphemu.Faults{})

	// Always throttled: the client gives up after MaxRetries with Graph's
	// answer and its Retry-After.
	env.emu.SetFaults(graphemu.Faults{ThrottleRate: 1, RetryAfter: 3 * time.Millisecond})
	before := statusCount(env, 429)
	c := env.client(t, graph.Options{MaxRetries: 2})
	_, err := c.GetFolder(ctx, fid)
	var ge *graph.Error
	if !errors.Is(err, graph.ErrThrottled) || !errors.As(err, &ge) || ge.RetryAfter != 3*time.Millisecond || ge.Code != "TooManyRequests" {
		t.Errorf("err = %#v, want a 429 TooManyRequests with Retry-After 3ms", err)
	}
	if n := statusCount(env, 429) - before; n != 3 {
		t.Errorf("%d throttled attempts, want 3 (1 + MaxRetries)", n)
	}

	// Often throttled: every call still succeeds.
	env.emu.SetFaults(graphemu.Faults{ThrottleRate: 0.5, RetryAfter: time.Millisecond, Seed: 3})
	c = env.client(t, graph.Options{MaxRetries: 30})
	before = statusCount(env, 429)
	for i := range 10 {
		if _, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: fmt.Sprint("T", i)}); err != nil {
			t.Fatalf("create %d under throttling: %v", i, err)
		}
	}
	list, err := c.ListContacts(ctx, fid, graph.Query{PageSize: 3})
	if err != nil || len(list) != 10 {
		t.Errorf("list under throttling: %d, %v", len(list), err)
	}
	if statusCount(env, 429) == before {
		t.Error("no request was throttled; the fault injection did not happen")
	}

	// A Retry-After beyond MaxBackoff is handed back, not slept on.
	env.emu.SetFaults(graphemu.Faults{ThrottleRate: 1, RetryAfter: time.Hour})
	start := time.Now()
	_, err = c.GetFolder(ctx, fid)
	if !errors.As(err, &ge) || ge.RetryAfter != time.Hour {
		t.Errorf("err = %v, want RetryAfter 1h", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Error("the client slept on a Retry-After beyond MaxBackoff")
	}
}

func contractUnavailable(t *testing.T, env *contractEnv, fid string) {
	env.needEmulator(t, "injected 503s")
	ctx := context.Background()
	defer env.emu.SetFaults(graphemu.Faults{})
	env.emu.SetFaults(graphemu.Faults{UnavailableRate: 0.5, RetryAfter: time.Millisecond, Seed: 11})
	before := statusCount(env, 503)
	c := env.client(t, graph.Options{MaxRetries: 30})
	for i := range 10 {
		if _, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: fmt.Sprint("U", i)}); err != nil {
			t.Fatalf("create %d with 503s: %v", i, err)
		}
	}
	env.emu.SetFaults(graphemu.Faults{})
	list, err := c.ListContacts(ctx, fid, graph.Query{})
	if err != nil || len(list) != 10 {
		t.Errorf("after 503s: %d contacts, %v; want exactly 10 (no duplicates from retries)", len(list), err)
	}
	if statusCount(env, 503) == before {
		t.Error("no 503 was injected")
	}
	env.emu.SetFaults(graphemu.Faults{UnavailableRate: 1, RetryAfter: time.Millisecond})
	if _, err := env.client(t, graph.Options{MaxRetries: 2}).GetFolder(ctx, fid); !errors.Is(err, graph.ErrUnavailable) {
		t.Errorf("always 503: err = %v, want ErrUnavailable", err)
	}
}

func contractConcurrency(t *testing.T, env *contractEnv, fid string) {
	env.needEmulator(t, "holding requests")
	ctx := context.Background()
	ct, err := env.client(t, graph.Options{}).CreateContact(ctx, fid, &graph.Contact{GivenName: "C"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, c *graph.Client, callers int, ready func() bool) {
		t.Helper()
		release := env.emu.Hold()
		defer release()
		errs := make(chan error, callers)
		for range callers {
			go func() { _, err := c.GetContact(ctx, fid, ct.ID, graph.Query{}); errs <- err }()
		}
		deadline := time.Now().Add(10 * time.Second)
		for !ready() {
			if time.Now().After(deadline) {
				t.Fatalf("held %d; the expected state was not reached", env.emu.Held())
			}
			time.Sleep(2 * time.Millisecond)
		}
		release()
		for range callers {
			select {
			case err := <-errs:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("a request did not finish")
			}
		}
	}

	t.Run("client cap keeps Graph's", func(t *testing.T) {
		before := statusCount(env, 429)
		c := env.client(t, graph.Options{MaxConcurrent: 4})
		run(t, c, 8, func() bool { return env.emu.Held() == 4 })
		if n := statusCount(env, 429) - before; n != 0 {
			t.Errorf("%d requests throttled with a client cap of 4", n)
		}
	})
	t.Run("over Graph's cap is throttled and retried", func(t *testing.T) {
		before := statusCount(env, 429)
		// ApplicationThrottled comes with a Retry-After the client must
		// be allowed to wait for.
		c := env.client(t, graph.Options{MaxConcurrent: 6, MaxRetries: 10, MaxBackoff: 2 * time.Second})
		run(t, c, 6, func() bool { return env.emu.Held() == 4 && statusCount(env, 429) > before })
	})
}

func contractConflicts(t *testing.T, env *contractEnv, fid string) {
	env.needEmulator(t, "injected 412s")
	ctx := context.Background()
	c := env.client(t, graph.Options{MaxRetries: 30})
	ct, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: "K"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.emu.SetFaults(graphemu.Faults{})
	env.emu.SetFaults(graphemu.Faults{ConflictRate: 0.5, Seed: 5})
	before := statusCount(env, 412)
	// Without If-Match a 412 can only be Exchange's own race: retried.
	for i := range 10 {
		if _, err := c.UpdateContact(ctx, fid, ct.ID, graph.Patch{"jobTitle": fmt.Sprint("J", i)}, ""); err != nil {
			t.Fatalf("PATCH %d without If-Match: %v", i, err)
		}
	}
	if statusCount(env, 412) == before {
		t.Error("no 412 was injected")
	}
	// With If-Match a 412 is the client's answer: not retried.
	env.emu.SetFaults(graphemu.Faults{ConflictRate: 1})
	cur, err := c.GetContact(ctx, fid, ct.ID, graph.Query{})
	if err != nil {
		t.Fatal(err)
	}
	before = statusCount(env, 412)
	if _, err := c.UpdateContact(ctx, fid, ct.ID, graph.Patch{"jobTitle": "x"}, cur.ODataETag); !errors.Is(err, graph.ErrPreconditionFailed) {
		t.Errorf("PATCH with If-Match under conflicts: err = %v, want ErrPreconditionFailed", err)
	}
	if n := statusCount(env, 412) - before; n != 1 {
		t.Errorf("%d attempts of a PATCH with If-Match answered 412, want 1", n)
	}
}

// contractBatchedPhotos fetches the photos of 25 contacts, 3 of which have
// one, through $batch: exact bytes for those, nil for the rest, in two
// batch requests (20 items at most per batch).
func contractBatchedPhotos(t *testing.T, env *contractEnv, c *graph.Client, fid string) {
	ctx := context.Background()
	var ids []string
	want := map[string][]byte{}
	for i := range 25 {
		ct, err := c.CreateContact(ctx, fid, &graph.Contact{GivenName: fmt.Sprintf("Batched %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ct.ID)
		if i%10 == 3 {
			data := append(tinyJPEG(), byte(i)) // a distinct photo each
			if err := c.PutPhoto(ctx, ct.ID, &graph.Photo{ContentType: "image/jpeg", Data: data}); err != nil {
				t.Fatal(err)
			}
			want[ct.ID] = data
		}
	}
	before := batchCount(env)
	got, err := c.GetPhotos(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("GetPhotos answered %d ids of %d", len(got), len(ids))
	}
	for _, id := range ids {
		p := got[id]
		switch w, has := want[id]; {
		case has && (p == nil || !bytes.Equal(p.Data, w) || !strings.HasPrefix(p.ContentType, "image/jpeg")):
			t.Errorf("photo of %s: %+v, want %d bytes of image/jpeg", id, p, len(w))
		case !has && p != nil:
			t.Errorf("contact %s has no photo, GetPhotos gave %d bytes", id, len(p.Data))
		}
	}
	if env.emu != nil {
		if n := batchCount(env) - before; n != 2 {
			t.Errorf("GetPhotos of 25 ids took %d batch requests, want 2", n)
		}
	}
}
