package main

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	gocarddav "github.com/emersion/go-webdav/carddav"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// davClient is go-webdav's own CardDAV client, logged in as the demo user.
func davClient(t *testing.T, base string) *gocarddav.Client {
	t.Helper()
	c, err := gocarddav.NewClient(webdav.HTTPClientWithBasicAuth(http.DefaultClient, "demo", "secret-pw"), base)
	must(t, err)
	return c
}

// The whole path through go-webdav's client: discovery from the bare host,
// listing, multiget, then sync-collection after edits made in Outlook, after
// Graph expired the gateway's delta token, and across a server restart — the
// client's token stays valid throughout and each answer is exact.
func TestGoWebDAVClientSyncsThroughOutlookEditsExpiryAndRestart(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	srv, base, stop := startTestServer(t, serveConfig{loginFlags: loginFlags{data: data}, seedContacts: 8})
	dav := davClient(t, base)

	principal, err := dav.FindCurrentUserPrincipal(ctx)
	must(t, err)
	if principal != "/demo/" {
		t.Fatalf("principal %q, want /demo/", principal)
	}
	home, err := dav.FindAddressBookHomeSet(ctx, principal)
	must(t, err)
	books, err := dav.FindAddressBooks(ctx, home)
	must(t, err)
	if len(books) < 2 || books[0].Path != "/demo/contacts/default/" {
		t.Fatalf("address books: %+v", books)
	}
	book := books[0].Path

	// Initial sync lists every member; multiget returns them all as vCard 3.0.
	initial, err := dav.SyncCollection(ctx, book, &gocarddav.SyncQuery{})
	must(t, err)
	outlook := outlookClient(t, srv)
	inGraph, err := outlook.ListContacts(ctx, "contacts", graph.Query{})
	must(t, err)
	if len(initial.Updated) != len(inGraph) || len(initial.Deleted) != 0 || initial.SyncToken == "" {
		t.Fatalf("initial sync: %d updated, %d deleted, token %q; Graph has %d", len(initial.Updated), len(initial.Deleted), initial.SyncToken, len(inGraph))
	}
	var paths []string
	for _, o := range initial.Updated {
		paths = append(paths, o.Path)
	}
	objs, err := dav.MultiGetAddressBook(ctx, book, &gocarddav.AddressBookMultiGet{Paths: paths, DataRequest: gocarddav.AddressDataRequest{AllProp: true}})
	must(t, err)
	if len(objs) != len(paths) {
		t.Fatalf("multiget returned %d of %d", len(objs), len(paths))
	}
	for _, o := range objs {
		if o.ETag == "" || o.Card.Value(vcard.FieldVersion) != "3.0" || o.Card.Value(vcard.FieldUID) == "" {
			t.Fatalf("multiget object %s: etag %q version %q uid %q", o.Path, o.ETag, o.Card.Value(vcard.FieldVersion), o.Card.Value(vcard.FieldUID))
		}
	}
	token := initial.SyncToken

	// syncExpect runs an incremental sync and checks it names exactly the
	// changed and deleted members.
	byID := func(id string) string {
		t.Helper()
		c, err := outlook.GetContact(ctx, "contacts", id, graph.Query{})
		must(t, err)
		for _, o := range objs {
			if o.Card.Value(vcard.FieldFormattedName) == c.DisplayName {
				return o.Path
			}
		}
		t.Fatalf("no card for contact %s", c.DisplayName)
		return ""
	}
	syncExpect := func(step string, updated, deleted []string) {
		t.Helper()
		res, err := davClient(t, base).SyncCollection(ctx, book, &gocarddav.SyncQuery{SyncToken: token})
		if err != nil {
			t.Fatalf("%s: sync-collection with the previous token: %v", step, err)
		}
		var gotU []string
		for _, o := range res.Updated {
			gotU = append(gotU, o.Path)
		}
		sort.Strings(gotU)
		sort.Strings(updated)
		gotD := append([]string(nil), res.Deleted...)
		sort.Strings(gotD)
		sort.Strings(deleted)
		if strings.Join(gotU, " ") != strings.Join(updated, " ") || strings.Join(gotD, " ") != strings.Join(deleted, " ") {
			t.Fatalf("%s: updated %v deleted %v; want updated %v deleted %v", step, gotU, gotD, updated, deleted)
		}
		token = res.SyncToken
	}

	// Nothing changed: nothing reported.
	syncExpect("idle", nil, nil)

	// Edits in Outlook appear exactly.
	a, b := inGraph[0], inGraph[1]
	_, err = outlook.UpdateContact(ctx, "contacts", a.ID, graph.Patch{"jobTitle": "Night Auditor", "displayName": a.DisplayName}, "")
	must(t, err)
	pathA, pathB := byID(a.ID), byID(b.ID)
	must(t, outlook.DeleteContact(ctx, "contacts", b.ID, ""))
	syncExpect("after Outlook edits", []string{pathA}, []string{pathB})
	got, err := dav.GetAddressObject(ctx, pathA)
	must(t, err)
	if got.Card.Value(vcard.FieldTitle) != "Night Auditor" {
		t.Fatalf("edited card TITLE %q", got.Card.Value(vcard.FieldTitle))
	}

	// Graph expires the gateway's delta token: the client's token still works
	// and the next change is reported exactly.
	srv.emu.ExpireDeltaTokens("demo@contoso.example")
	c := inGraph[2]
	_, err = outlook.UpdateContact(ctx, "contacts", c.ID, graph.Patch{"nickName": "Cee", "displayName": c.DisplayName}, "")
	must(t, err)
	syncExpect("after Graph expired the delta token", []string{byID(c.ID)}, nil)

	// The server restarts; an edit made while it was down is reported
	// against the token issued before.
	stop()
	d := inGraph[3]
	srv, base, _ = startTestServer(t, serveConfig{loginFlags: loginFlags{data: data}})
	outlook = outlookClient(t, srv)
	_, err = outlook.UpdateContact(ctx, "contacts", d.ID, graph.Patch{"officeLocation": "Room 101", "displayName": d.DisplayName}, "")
	must(t, err)
	syncExpect("after a restart", []string{byID(d.ID)}, nil)
	syncExpect("idle after a restart", nil, nil)
}
