package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"

	govcard "github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	gocarddav "github.com/emersion/go-webdav/carddav"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/carddav"
)

// oneUser authenticates a single user onto one Backend.
type oneUser struct {
	user, pass string
	b          *Backend
}

func (a *oneUser) Authenticate(r *http.Request, user, pass string) (carddav.Backend, error) {
	if user != a.user || pass != a.pass {
		return nil, carddav.ErrUnauthorized
	}
	return a.b, nil
}

// TestEndToEnd drives the whole stack: go-webdav's CardDAV client → the
// carddav handler → this backend → graph.Client → the Graph emulator, with
// a second graph.Client playing Outlook.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	x := newEmuEnv(t)
	outlook := x.client(t)
	be := newEmuBackend(t, x, store.NewMemory())
	srv := httptest.NewServer(carddav.NewHandler(carddav.Options{Auth: &oneUser{"ada", "pw", be}, Logger: quietLogger()}))
	t.Cleanup(srv.Close)

	oc, err := outlook.CreateContact(ctx, "", &graph.Contact{DisplayName: "Olga Outlook", GivenName: "Olga", Surname: "Outlook"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gocarddav.NewClient(webdav.HTTPClientWithBasicAuth(http.DefaultClient, "ada", "pw"), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	home, err := c.FindAddressBookHomeSet(ctx, "/ada/")
	if err != nil {
		t.Fatal(err)
	}
	books, err := c.FindAddressBooks(ctx, home)
	if err != nil || len(books) != 1 || books[0].Path != "/ada/contacts/default/" {
		t.Fatalf("FindAddressBooks() = %+v, %v", books, err)
	}
	bookPath := books[0].Path
	initial, err := c.SyncCollection(ctx, bookPath, &gocarddav.SyncQuery{})
	if err != nil || len(initial.Updated) != 1 || initial.Updated[0].Path != bookPath+derivedName(oc.ID) {
		t.Fatalf("initial sync = %+v, %v", initial, err)
	}

	cd := govcard.Card{}
	cd.SetValue(govcard.FieldVersion, "3.0")
	cd.SetValue(govcard.FieldUID, "6E1F-client-uid")
	cd.SetValue(govcard.FieldFormattedName, "Ann Example")
	cd.SetName(&govcard.Name{FamilyName: "Example", GivenName: "Ann"})
	cd.SetValue(govcard.FieldEmail, "ann@example.com")
	path := bookPath + "6E1F-client.vcf"
	ao, err := c.PutAddressObject(ctx, path, cd)
	if err != nil {
		t.Fatalf("PutAddressObject() = %v", err)
	}
	objs, err := c.MultiGetAddressBook(ctx, bookPath, &gocarddav.AddressBookMultiGet{
		Paths:       []string{path},
		DataRequest: gocarddav.AddressDataRequest{AllProp: true},
	})
	if err != nil || len(objs) != 1 {
		t.Fatalf("MultiGetAddressBook() = %v, %v", objs, err)
	}
	if objs[0].Card.Value(govcard.FieldUID) != "6E1F-client-uid" || objs[0].Card.Value(govcard.FieldFormattedName) != "Ann Example" {
		t.Errorf("served card %v", objs[0].Card)
	}
	if ao.ETag != "" && ao.ETag != objs[0].ETag {
		t.Errorf("PUT ETag %q, multiget ETag %q", ao.ETag, objs[0].ETag)
	}

	// Outlook renames Olga; the next sync carries her and our new card.
	next := *oc
	next.Surname = "Renamed"
	next.DisplayName = "Olga Renamed"
	if _, err := outlook.UpdateContact(ctx, "", oc.ID, graph.NewPatch(oc, &next), ""); err != nil {
		t.Fatal(err)
	}
	staleBackend(be)
	incr, err := c.SyncCollection(ctx, bookPath, &gocarddav.SyncQuery{SyncToken: initial.SyncToken})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range incr.Updated {
		got = append(got, o.Path)
	}
	sort.Strings(got)
	want := []string{bookPath + "6E1F-client.vcf", bookPath + derivedName(oc.ID)}
	sort.Strings(want)
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] || len(incr.Deleted) != 0 {
		t.Errorf("incremental sync = %+v, want updated %v", incr, want)
	}

	if err := c.RemoveAll(ctx, path); err != nil {
		t.Fatalf("RemoveAll() = %v", err)
	}
	del, err := c.SyncCollection(ctx, bookPath, &gocarddav.SyncQuery{SyncToken: incr.SyncToken})
	if err != nil || len(del.Deleted) != 1 || del.Deleted[0] != path || len(del.Updated) != 0 {
		t.Fatalf("sync after delete = %+v, %v", del, err)
	}
}
