package carddav_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	gocarddav "github.com/emersion/go-webdav/carddav"
)

// TestGoWebDAVClient drives the handler with go-webdav's own CardDAV client:
// discovery, a PUT, multiget and an initial and incremental sync.
func TestGoWebDAVClient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	hc := webdav.HTTPClientWithBasicAuth(http.DefaultClient, alice, alicePwd)
	c, err := gocarddav.NewClient(hc, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HasSupport(ctx); err != nil {
		t.Fatalf("HasSupport() = %v", err)
	}
	principal, err := c.FindCurrentUserPrincipal(ctx)
	if err != nil || principal != "/alice@example.com/" {
		t.Fatalf("FindCurrentUserPrincipal() = %q, %v", principal, err)
	}
	home, err := c.FindAddressBookHomeSet(ctx, principal)
	if err != nil || home != "/alice@example.com/contacts/" {
		t.Fatalf("FindAddressBookHomeSet() = %q, %v", home, err)
	}
	books, err := c.FindAddressBooks(ctx, home)
	if err != nil || len(books) != 1 {
		t.Fatalf("FindAddressBooks() = %v, %v", books, err)
	}
	b := books[0]
	if b.Path != "/alice@example.com/contacts/default/" || b.Name != "Contacts" || b.MaxResourceSize <= 0 {
		t.Errorf("book = %+v", b)
	}
	if !b.SupportsAddressData(vcard.MIMEType, "3.0") || !b.SupportsAddressData(vcard.MIMEType, "4.0") {
		t.Errorf("supported address data = %+v", b.SupportedAddressData)
	}

	initial, err := c.SyncCollection(ctx, b.Path, &gocarddav.SyncQuery{})
	if err != nil {
		t.Fatalf("SyncCollection(initial) = %v", err)
	}
	if initial.SyncToken == "" || len(initial.Updated) != 0 || len(initial.Deleted) != 0 {
		t.Fatalf("initial sync = %+v", initial)
	}

	cd := vcard.Card{}
	cd.SetValue(vcard.FieldVersion, "3.0")
	cd.SetValue(vcard.FieldUID, "u1")
	cd.SetValue(vcard.FieldFormattedName, "Ann Example")
	cd.SetName(&vcard.Name{FamilyName: "Example", GivenName: "Ann"})
	path := b.Path + "u1.vcf"
	ao, err := c.PutAddressObject(ctx, path, cd)
	if err != nil || ao.ETag == "" {
		t.Fatalf("PutAddressObject() = %+v, %v", ao, err)
	}

	objs, err := c.MultiGetAddressBook(ctx, b.Path, &gocarddav.AddressBookMultiGet{
		Paths:       []string{path},
		DataRequest: gocarddav.AddressDataRequest{AllProp: true},
	})
	if err != nil || len(objs) != 1 {
		t.Fatalf("MultiGetAddressBook() = %v, %v", objs, err)
	}
	if got := objs[0].Card.Value(vcard.FieldFormattedName); got != "Ann Example" || objs[0].ETag != ao.ETag {
		t.Errorf("multiget FN = %q, etag %q, want %q", got, objs[0].ETag, ao.ETag)
	}

	got, err := c.GetAddressObject(ctx, path)
	if err != nil || got.Card.Value(vcard.FieldUID) != "u1" {
		t.Fatalf("GetAddressObject() = %+v, %v", got, err)
	}

	incr, err := c.SyncCollection(ctx, b.Path, &gocarddav.SyncQuery{SyncToken: initial.SyncToken})
	if err != nil {
		t.Fatalf("SyncCollection(incremental) = %v", err)
	}
	if len(incr.Updated) != 1 || incr.Updated[0].Path != path || incr.Updated[0].ETag != ao.ETag || incr.SyncToken == initial.SyncToken {
		t.Fatalf("incremental sync = %+v", incr)
	}

	if err := c.RemoveAll(ctx, path); err != nil {
		t.Fatalf("RemoveAll() = %v", err)
	}
	del, err := c.SyncCollection(ctx, b.Path, &gocarddav.SyncQuery{SyncToken: incr.SyncToken})
	if err != nil || len(del.Deleted) != 1 || del.Deleted[0] != path {
		t.Fatalf("sync after delete = %+v, %v", del, err)
	}

	q, err := c.QueryAddressBook(ctx, b.Path, &gocarddav.AddressBookQuery{
		PropFilters: []gocarddav.PropFilter{{Name: vcard.FieldFormattedName, TextMatches: []gocarddav.TextMatch{{Text: "ann"}}}},
	})
	if err != nil || len(q) != 0 {
		t.Fatalf("QueryAddressBook() = %v, %v", q, err)
	}
}
