package graphemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	prefix = "/t/graph"
	upn    = "alice@contoso.example"
)

// env is an emulator behind an httptest server on 127.0.0.1.
type env struct {
	t     *testing.T
	emu   *graphemu.Emulator
	srv   *httptest.Server
	token string
}

func newEnv(t *testing.T, opts graphemu.Options) *env {
	t.Helper()
	opts.PathPrefix = prefix
	emu, err := graphemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.AddMailbox(upn); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(emu)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		emu.Close()
	})
	return &env{t: t, emu: emu, srv: srv, token: emu.AccessToken(upn)}
}

// base is the Graph root URL.
func (e *env) base() string { return e.srv.URL + prefix + "/v1.0" }

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, r.body, err)
	}
	return m
}

func (r resp) errCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, _ := m["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %s", r.body)
	}
	inner, _ := e["innerError"].(map[string]any)
	if inner == nil || inner["request-id"] == "" || inner["date"] == "" {
		t.Fatalf("error without innerError: %s", r.body)
	}
	return e["code"].(string)
}

// do sends a request; path is relative to /v1.0 unless it starts with http.
func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.base() + path
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		rd = bytes.NewReader(mustMarshal(b))
	}
	u = strings.ReplaceAll(u, " ", "%20")
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (e *env) create(path string, body map[string]any) map[string]any {
	e.t.Helper()
	r := e.do("POST", path, body)
	if r.status != 201 {
		e.t.Fatalf("create: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

func TestContactCRUDShapes(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	c := e.create("/me/contacts", map[string]any{
		"givenName": "Pavel", "surname": "Bansky",
		"emailAddresses": []any{map[string]any{"address": "pavelb@contoso.com", "name": "Pavel Bansky"}},
		"businessPhones": []any{"+1 732 555 0102"},
		"birthday":       "1974-07-22",
		"singleValueExtendedProperties": []any{
			map[string]any{"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name vcard-uid", "value": "uid-1"},
		},
	})
	id := c["id"].(string)
	if !strings.HasPrefix(id, "AAMkA") {
		t.Errorf("id %q not Exchange-shaped", id)
	}
	if c["@odata.etag"] != `W/"`+c["changeKey"].(string)+`"` {
		t.Errorf("etag %v vs changeKey %v", c["@odata.etag"], c["changeKey"])
	}
	if c["displayName"] != "Pavel Bansky" {
		t.Errorf("displayName %v, want generated", c["displayName"])
	}
	if c["birthday"] != "1974-07-22T00:00:00Z" {
		t.Errorf("birthday %v", c["birthday"])
	}
	if _, ok := c["singleValueExtendedProperties"]; ok {
		t.Error("POST echoed extended properties")
	}
	for k, want := range map[string]string{"middleName": "null", "homePhones": "[]", "otherAddress": "{}", "children": "[]", "mobilePhone": "null"} {
		v, ok := c[k]
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		if got := string(mustMarshal(v)); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	if c["parentFolderId"] == nil || c["createdDateTime"] == nil || c["@odata.context"] == nil {
		t.Errorf("missing read-only properties: %v", c)
	}

	// GET by id via /me/contacts and via the folder path by well-known name.
	for _, p := range []string{"/me/contacts/" + id, "/me/contactFolders/contacts/contacts/" + id, "/users/" + upn + "/contacts/" + id} {
		if r := e.do("GET", p, nil); r.status != 200 || r.json(t)["id"] != id {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}
	// Ids are case-sensitive.
	if r := e.do("GET", "/me/contacts/"+strings.ToLower(id), nil); r.status == 200 {
		t.Error("lower-cased id found the contact")
	}
	if r := e.do("GET", "/me/contacts/not-an-id!", nil); r.status != 400 || r.errCode(t) != "ErrorInvalidIdMalformed" {
		t.Errorf("malformed id: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/me/contacts/AAMkADAAAAAAAAAAAAAAAAAA", nil); r.status != 404 || r.errCode(t) != "ErrorItemNotFound" {
		t.Errorf("unknown id: %d %s", r.status, r.body)
	}

	// DELETE 204, then 404.
	if r := e.do("DELETE", "/me/contacts/"+id, nil); r.status != 204 || len(r.body) != 0 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/me/contacts/"+id, nil); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	if n := e.emu.Counts()["contacts.create 201"]; n != 1 {
		t.Errorf("Counts contacts.create 201 = %d", n)
	}
}

func TestPatchSemantics(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	c := e.create("/me/contacts", map[string]any{
		"givenName": "Ann", "surname": "Lee", "jobTitle": "Chef",
		"homePhones":  []any{"1", "2"},
		"homeAddress": map[string]any{"street": "1 Main", "city": "Oslo"},
	})
	id := c["id"].(string)
	ck := c["changeKey"].(string)
	r := e.do("PATCH", "/me/contacts/"+id, map[string]any{
		"jobTitle": nil, "homePhones": []any{"3"}, "homeAddress": map[string]any{"city": "Bergen"}, "surname": "Berg",
	})
	if r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	p := r.json(t)
	tests := []struct{ key, want string }{
		{"jobTitle", "null"},
		{"homePhones", `["3"]`},
		{"homeAddress", `{"city":"Bergen"}`},
		{"givenName", `"Ann"`},
		{"displayName", `"Ann Berg"`},
	}
	for _, tt := range tests {
		if got := string(mustMarshal(p[tt.key])); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.key, got, tt.want)
		}
	}
	if p["changeKey"] == ck {
		t.Error("changeKey unchanged by PATCH")
	}
	// displayName sent explicitly is kept.
	p = e.do("PATCH", "/me/contacts/"+id, map[string]any{"givenName": "Anna", "displayName": "Dr Anna"}).json(t)
	if p["displayName"] != "Dr Anna" {
		t.Errorf("displayName %v", p["displayName"])
	}
	// If-Match with the stale key: 412; with the current one: 200.
	if r := e.do("PATCH", "/me/contacts/"+id, map[string]any{"nickName": "x"}, "If-Match", `W/"`+ck+`"`); r.status != 412 || r.errCode(t) != "ErrorIrresolvableConflict" {
		t.Errorf("stale If-Match: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", "/me/contacts/"+id, map[string]any{"nickName": "x"}, "If-Match", p["@odata.etag"].(string)); r.status != 200 {
		t.Errorf("current If-Match: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/me/contacts/"+id, nil, "If-Match", `W/"`+ck+`"`); r.status != 412 {
		t.Errorf("stale If-Match on DELETE: %d", r.status)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	emails := func(n int) []any {
		var out []any
		for i := 0; i < n; i++ {
			out = append(out, map[string]any{"address": fmt.Sprintf("a%d@x.example", i)})
		}
		return out
	}
	tests := []struct {
		name string
		body map[string]any
		code string
		msg  string
	}{
		{"4 emails", map[string]any{"emailAddresses": emails(4)}, "", "The multi value property EmailAddresses has 4 entries, that exceeds the max allowed value of 3"},
		{"3 business phones", map[string]any{"businessPhones": []any{"1", "2", "3"}}, "", "The multi value property BusinessPhones has 3 entries, that exceeds the max allowed value of 2"},
		{"3 home phones", map[string]any{"homePhones": []any{"1", "2", "3"}}, "", "HomePhones has 3 entries"},
		{"4 IM", map[string]any{"imAddresses": []any{"1", "2", "3", "4"}}, "", "ImAddresses has 4 entries"},
		{"unknown property", map[string]any{"favouriteColour": "blue"}, "RequestBodyRead", "favouriteColour"},
		{"wrong type", map[string]any{"givenName": 7}, "RequestBodyRead", ""},
		{"bad birthday", map[string]any{"birthday": "yesterday"}, "RequestBodyRead", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/me/contacts", tt.body)
			if r.status != 400 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			code := r.errCode(t)
			if tt.code != "" && code != tt.code {
				t.Errorf("code %s, want %s", code, tt.code)
			}
			if !strings.Contains(string(r.body), tt.msg) {
				t.Errorf("body %s lacks %q", r.body, tt.msg)
			}
		})
	}
	// Three emails are fine.
	e.create("/me/contacts", map[string]any{"emailAddresses": emails(3)})
}

func TestListPagingSelectFilterExpand(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	const ep = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name vcard-href"
	for i := 0; i < 25; i++ {
		e.create("/me/contacts", map[string]any{
			"givenName": fmt.Sprintf("P%02d", i), "surname": "Test",
			"emailAddresses":                []any{map[string]any{"address": fmt.Sprintf("p%02d@x.example", i)}},
			"singleValueExtendedProperties": []any{map[string]any{"id": ep, "value": fmt.Sprintf("card-%02d.vcf", i)}},
		})
	}
	// Default page 10, nextLink with $skip, absolute under the prefix.
	var seen int
	next := e.base() + "/me/contacts?$select=displayName"
	for i := 0; i < 10 && next != ""; i++ {
		r := e.do("GET", next, nil)
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		m := r.json(t)
		vals := m["value"].([]any)
		seen += len(vals)
		for _, v := range vals {
			c := v.(map[string]any)
			if _, ok := c["givenName"]; ok {
				t.Fatal("$select not applied")
			}
			if c["id"] == nil || c["@odata.etag"] == nil || c["displayName"] == nil {
				t.Fatalf("selected item lacks id/etag/displayName: %v", c)
			}
		}
		next, _ = m["@odata.nextLink"].(string)
		if next != "" && (!strings.HasPrefix(next, e.base()) || !strings.Contains(next, "$skip=")) {
			t.Fatalf("nextLink %q", next)
		}
	}
	if seen != 25 {
		t.Errorf("paged through %d, want 25", seen)
	}
	m := e.do("GET", "/me/contacts?$top=5&$count=true", nil).json(t)
	if len(m["value"].([]any)) != 5 || m["@odata.count"] != float64(25) {
		t.Errorf("$top/$count: %d items, count %v", len(m["value"].([]any)), m["@odata.count"])
	}

	// Filter on an extended property, with $expand returning it.
	q := fmt.Sprintf("/me/contacts?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '%s' and ep/value eq 'card-07.vcf')&$expand=singleValueExtendedProperties($filter=id eq '%s')", ep, ep)
	m = e.do("GET", q, nil).json(t)
	vals := m["value"].([]any)
	if len(vals) != 1 {
		t.Fatalf("ext filter found %d: %v", len(vals), m)
	}
	c := vals[0].(map[string]any)
	eps := c["singleValueExtendedProperties"].([]any)
	if c["givenName"] != "P07" || len(eps) != 1 || eps[0].(map[string]any)["value"] != "card-07.vcf" {
		t.Errorf("expanded %v", c)
	}
	// Scalar eq and email any().
	for _, f := range []string{"givenName eq 'P11'", "emailAddresses/any(a:a/address eq 'p11@x.example')"} {
		m = e.do("GET", "/me/contacts?$filter="+f, nil).json(t)
		if v := m["value"].([]any); len(v) != 1 || v[0].(map[string]any)["givenName"] != "P11" {
			t.Errorf("filter %s: %v", f, m)
		}
	}
	// GET with $expand of a property the contact lacks: empty array.
	id := c["id"].(string)
	g := e.do("GET", "/me/contacts/"+id+"?$expand=singleValueExtendedProperties($filter=id eq 'String 0x3A24')", nil).json(t)
	if got := string(mustMarshal(g["singleValueExtendedProperties"])); got != "[]" {
		t.Errorf("expand of absent property = %s", got)
	}
	// Without $expand no extended properties.
	if _, ok := e.do("GET", "/me/contacts/"+id, nil).json(t)["singleValueExtendedProperties"]; ok {
		t.Error("extended properties without $expand")
	}
	// A null value deletes the property.
	e.do("PATCH", "/me/contacts/"+id, map[string]any{"singleValueExtendedProperties": []any{map[string]any{"id": ep, "value": nil}}})
	g = e.do("GET", "/me/contacts/"+id+"?$expand=singleValueExtendedProperties($filter=id eq '"+ep+"')", nil).json(t)
	if got := string(mustMarshal(g["singleValueExtendedProperties"])); got != "[]" {
		t.Errorf("after null: %s", got)
	}
}

func TestFolders(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	def := e.do("GET", "/me/contactFolders/contacts", nil).json(t)
	defID := def["id"].(string)
	if def["displayName"] != "Contacts" {
		t.Errorf("default folder %v", def)
	}
	if r := e.do("GET", "/me/contactFolders/"+defID, nil); r.status != 200 {
		t.Errorf("default by id: %d", r.status)
	}
	work := e.create("/me/contactFolders", map[string]any{"displayName": "Work"})
	if work["parentFolderId"] != defID {
		t.Errorf("new folder parent %v, want %s", work["parentFolderId"], defID)
	}
	if r := e.do("POST", "/me/contactFolders", map[string]any{"displayName": "work"}); r.status != 409 || r.errCode(t) != "ErrorFolderExists" {
		t.Errorf("duplicate: %d %s", r.status, r.body)
	}
	wid := work["id"].(string)
	team := e.create("/me/contactFolders/"+wid+"/childFolders", map[string]any{"displayName": "Team"})
	tid := team["id"].(string)
	deep := e.create("/me/contactFolders/"+wid+"/childFolders/"+tid+"/childFolders", map[string]any{"displayName": "Deep"})
	did := deep["id"].(string)

	// The list holds the default folder's children only.
	list := e.do("GET", "/me/contactFolders", nil).json(t)["value"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != wid {
		t.Errorf("contactFolders: %v", list)
	}
	if l := e.do("GET", "/me/contactFolders/"+wid+"/childFolders", nil).json(t)["value"].([]any); len(l) != 1 {
		t.Errorf("childFolders: %v", l)
	}
	// A deep id works directly and through the chain.
	for _, p := range []string{"/me/contactFolders/" + did, "/me/contactFolders/" + wid + "/childFolders/" + tid + "/childFolders/" + did} {
		if r := e.do("GET", p, nil); r.status != 200 {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	c := e.create("/me/contactFolders/"+wid+"/childFolders/"+tid+"/childFolders/"+did+"/contacts", map[string]any{"givenName": "Deep"})
	if c["parentFolderId"] != did {
		t.Errorf("contact parent %v", c["parentFolderId"])
	}
	// Rename and move.
	if r := e.do("PATCH", "/me/contactFolders/"+tid, map[string]any{"displayName": "Team B", "parentFolderId": defID}); r.status != 200 || r.json(t)["parentFolderId"] != defID {
		t.Errorf("rename/move: %d %s", r.status, r.body)
	}
	// The default folder cannot be deleted.
	if r := e.do("DELETE", "/me/contactFolders/contacts", nil); r.status != 400 || r.errCode(t) != "ErrorDeleteDistinguishedFolder" {
		t.Errorf("delete default: %d %s", r.status, r.body)
	}
	// Deleting a folder deletes its subfolders and their contacts.
	if r := e.do("DELETE", "/me/contactFolders/"+tid, nil); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/me/contacts/"+c["id"].(string), nil); r.status != 404 {
		t.Errorf("contact of deleted folder: %d", r.status)
	}
	if r := e.do("GET", "/me/contactFolders/"+did, nil); r.status != 404 {
		t.Errorf("subfolder of deleted folder: %d", r.status)
	}
}

// deltaRound follows a delta round to its deltaLink.
func (e *env) deltaRound(start string, maxPage int) (items []map[string]any, deltaLink string, pages int) {
	e.t.Helper()
	next := start
	for i := 0; i < 1000 && next != ""; i++ {
		var hdr []string
		if maxPage > 0 {
			hdr = []string{"Prefer", fmt.Sprintf("odata.maxpagesize=%d", maxPage)}
		}
		r := e.do("GET", next, nil, hdr...)
		if r.status != 200 {
			e.t.Fatalf("delta %s: %d %s", next, r.status, r.body)
		}
		m := r.json(e.t)
		pages++
		for _, v := range m["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		next, _ = m["@odata.nextLink"].(string)
		if next != "" && !strings.Contains(next, "$skiptoken=") {
			e.t.Fatalf("nextLink without $skiptoken: %s", next)
		}
		if dl, ok := m["@odata.deltaLink"].(string); ok {
			if !strings.Contains(dl, "$deltatoken=") || !strings.HasPrefix(dl, e.base()) {
				e.t.Fatalf("deltaLink %s", dl)
			}
			return items, dl, pages
		}
	}
	e.t.Fatal("delta round without a deltaLink")
	return nil, "", 0
}

func TestDelta(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	f := e.create("/me/contactFolders", map[string]any{"displayName": "Book"})
	fid := f["id"].(string)
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, e.create("/me/contactFolders/"+fid+"/contacts", map[string]any{"givenName": fmt.Sprintf("N%d", i), "jobTitle": "x"})["id"].(string))
	}
	e.create("/me/contacts", map[string]any{"givenName": "elsewhere"})

	items, dl, pages := e.deltaRound(e.base()+"/me/contactFolders/"+fid+"/contacts/delta?$select=givenName", 3)
	if len(items) != 7 || pages != 3 {
		t.Fatalf("initial round: %d items in %d pages", len(items), pages)
	}
	for _, it := range items {
		if it["@odata.type"] != "#microsoft.graph.contact" || it["givenName"] == nil {
			t.Fatalf("item %v", it)
		}
		if _, ok := it["jobTitle"]; ok {
			t.Fatalf("$select not applied: %v", it)
		}
	}

	// Nothing changed: empty round.
	items, dl, _ = e.deltaRound(dl, 0)
	if len(items) != 0 {
		t.Fatalf("quiet round: %v", items)
	}

	// Update one, delete one, create+delete one, move one out.
	e.do("PATCH", "/me/contacts/"+ids[0], map[string]any{"givenName": "Changed"})
	e.do("DELETE", "/me/contacts/"+ids[1], nil)
	tmp := e.create("/me/contactFolders/"+fid+"/contacts", map[string]any{"givenName": "tmp"})["id"].(string)
	e.do("DELETE", "/me/contacts/"+tmp, nil)
	if r := e.do("PATCH", "/me/contacts/"+ids[2], map[string]any{"parentFolderId": "contacts"}); r.status != 200 {
		t.Fatalf("move: %d %s", r.status, r.body)
	}
	items, dl, _ = e.deltaRound(dl, 0) // the $select is baked into the link
	got := map[string]string{}
	for _, it := range items {
		id := it["id"].(string)
		if _, ok := it["@removed"]; ok {
			got[id] = "removed"
			if it["@removed"].(map[string]any)["reason"] != "deleted" {
				t.Errorf("reason %v", it["@removed"])
			}
		} else {
			got[id] = it["givenName"].(string)
			if _, ok := it["jobTitle"]; ok {
				t.Error("$select lost in deltaLink")
			}
		}
	}
	want := map[string]string{ids[0]: "Changed", ids[1]: "removed", ids[2]: "removed"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("round 2 = %v, want %v", got, want)
	}

	// /me/contacts/delta is the default folder's.
	items, _, _ = e.deltaRound(e.base()+"/me/contacts/delta", 0)
	if len(items) != 2 {
		t.Errorf("default folder delta: %d items", len(items))
	}

	// Expiry: the saved link answers 410 SyncStateNotFound.
	e.emu.ExpireDeltaTokens(upn)
	if r := e.do("GET", dl, nil); r.status != 410 || r.errCode(t) != "SyncStateNotFound" {
		t.Errorf("expired: %d %s", r.status, r.body)
	}
	if r := e.do("GET", e.base()+"/me/contacts/delta?$deltatoken=garbage", nil); r.status != 410 {
		t.Errorf("garbage token: %d", r.status)
	}
	e.emu.SetFaults(graphemu.Faults{ExpiredDelta: graphemu.ExpiredDeltaReset})
	r := e.do("GET", dl, nil)
	if loc := r.header.Get("Location"); r.status != 410 || !strings.HasSuffix(loc, "/contacts/delta?$select=givenName") {
		t.Errorf("reset: %d Location %q", r.status, loc)
	}
	e.emu.SetFaults(graphemu.Faults{ExpiredDelta: graphemu.ExpiredDelta400})
	if r := e.do("GET", dl, nil); r.status != 400 || r.errCode(t) != "ErrorInvalidSyncStateData" {
		t.Errorf("400 mode: %d %s", r.status, r.body)
	}
}

func TestFolderDelta(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	a := e.create("/me/contactFolders", map[string]any{"displayName": "A"})["id"].(string)
	e.create("/me/contactFolders/"+a+"/childFolders", map[string]any{"displayName": "A1"})
	items, dl, _ := e.deltaRound(e.base()+"/me/contactFolders/delta", 0)
	if len(items) != 2 {
		t.Fatalf("folder delta: %v", items)
	}
	e.do("DELETE", "/me/contactFolders/"+a, nil)
	items, _, _ = e.deltaRound(dl, 0)
	if len(items) != 2 || items[0]["@removed"] == nil {
		t.Errorf("after delete: %v", items)
	}
}

func TestPhotos(t *testing.T) {
	e := newEnv(t, graphemu.Options{Limits: graphemu.Limits{MaxPhotoBytes: 1000}})
	c := e.create("/me/contacts", map[string]any{"givenName": "Pic"})
	id := c["id"].(string)
	flag := "/me/contacts/" + id + "?$expand=singleValueExtendedProperties($filter=id eq 'Boolean {00062004-0000-0000-C000-000000000046} Id 0x8015')"
	if r := e.do("GET", "/me/contacts/"+id+"/photo/$value", nil); r.status != 404 || r.errCode(t) != "ErrorItemNotFound" {
		t.Errorf("no photo: %d %s", r.status, r.body)
	}
	jpeg := tinyJPEG(t)
	if r := e.do("PUT", "/me/contacts/"+id+"/photo/$value", jpeg, "Content-Type", "image/jpeg"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	r := e.do("GET", "/me/contacts/"+id+"/photo/$value", nil)
	if r.status != 200 || !bytes.Equal(r.body, jpeg) || r.header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("get photo: %d %s", r.status, r.header.Get("Content-Type"))
	}
	meta := e.do("GET", "/me/contacts/"+id+"/photo", nil).json(t)
	if meta["@odata.mediaContentType"] != "image/jpeg" || meta["width"] != float64(2) {
		t.Errorf("meta %v", meta)
	}
	g := e.do("GET", flag, nil).json(t)
	if g["changeKey"] == c["changeKey"] {
		t.Error("photo did not change the changeKey")
	}
	if eps := g["singleValueExtendedProperties"].([]any); len(eps) != 1 || eps[0].(map[string]any)["value"] != "true" {
		t.Errorf("flag after put: %v", eps)
	}
	if r := e.do("DELETE", "/me/contacts/"+id+"/photo/$value", nil); r.status != 405 {
		t.Errorf("DELETE photo: %d", r.status)
	}
	if r := e.do("PUT", "/me/contacts/"+id+"/photo/$value", bytes.Repeat([]byte{1}, 1001), "Content-Type", "image/jpeg"); r.status != 413 {
		t.Errorf("oversized: %d", r.status)
	}
	if r := e.do("PUT", "/me/contacts/"+id+"/photo/$value", []byte{}, "Content-Type", "image/jpeg"); r.status != 200 {
		t.Errorf("clear: %d", r.status)
	}
	if r := e.do("GET", "/me/contacts/"+id+"/photo/$value", nil); r.status != 404 {
		t.Errorf("after clear: %d", r.status)
	}
	if eps := e.do("GET", flag, nil).json(t)["singleValueExtendedProperties"].([]any); len(eps) != 1 || eps[0].(map[string]any)["value"] != "false" {
		t.Errorf("flag after clear: %v", eps)
	}
}

func TestAuthAndErrors(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	for _, tok := range []string{"", "bogus"} {
		e.token = tok
		r := e.do("GET", "/me/contacts", nil, "client-request-id", "abc")
		if r.status != 401 || r.errCode(t) != "InvalidAuthenticationToken" {
			t.Errorf("token %q: %d %s", tok, r.status, r.body)
		}
		if r.header.Get("request-id") == "" || r.header.Get("client-request-id") != "abc" {
			t.Errorf("headers %v", r.header)
		}
	}
	e.token = e.emu.AccessToken(upn)
	m := e.do("GET", "/me", nil).json(t)
	if m["userPrincipalName"] != upn || m["id"] == nil || m["mail"] != upn {
		t.Errorf("/me = %v", m)
	}
	if r := e.do("GET", "/users/bob@contoso.example/contacts", nil); r.status != 403 {
		t.Errorf("other user's mailbox: %d", r.status)
	}
	for _, p := range []string{"/me/events", "/me/contacts/x/y/z", "/me/people"} {
		if r := e.do("GET", p, nil); r.status != 501 || r.errCode(t) != "NotImplemented" {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	// Outside the prefix: not Graph either.
	if r := e.do("GET", e.srv.URL+"/v1.0/me/contacts", nil); r.status != 501 {
		t.Errorf("unprefixed: %d", r.status)
	}
	// The counts endpoint is plain JSON.
	r := e.do("GET", e.srv.URL+prefix+"/_emulator/counts", nil)
	var counts map[string]int
	if err := json.Unmarshal(r.body, &counts); err != nil || counts["me 200"] != 1 {
		t.Errorf("counts %s", r.body)
	}
}

func TestBatch(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	c := e.create("/me/contacts", map[string]any{"givenName": "B"})
	id := c["id"].(string)
	body := map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/me/contacts/" + id + "?$select=givenName"},
		map[string]any{"id": "2", "method": "POST", "url": "/me/contacts", "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"givenName": "New"}},
		map[string]any{"id": "3", "method": "GET", "url": "/me/contacts/AAMkADAAAAAAAAAAAAAAAAAA"},
		map[string]any{"id": "4", "method": "DELETE", "url": "/me/contacts/" + id, "dependsOn": []string{"3"}},
		map[string]any{"id": "5", "method": "PATCH", "url": "/me/contacts/" + id, "dependsOn": []string{"1"}, "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"surname": "Z"}},
	}}
	r := e.do("POST", "/$batch", body)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	status := map[string]float64{}
	for _, x := range r.json(t)["responses"].([]any) {
		it := x.(map[string]any)
		status[it["id"].(string)] = it["status"].(float64)
	}
	want := map[string]float64{"1": 200, "2": 201, "3": 404, "4": 424, "5": 200}
	if fmt.Sprint(status) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", status, want)
	}
	// 21 requests: 400.
	var many []any
	for i := 0; i < 21; i++ {
		many = append(many, map[string]any{"id": fmt.Sprint(i), "method": "GET", "url": "/me/contacts"})
	}
	if r := e.do("POST", "/$batch", map[string]any{"requests": many}); r.status != 400 {
		t.Errorf("21 items: %d", r.status)
	}
	// A throttled item carries its own 429 and Retry-After.
	e.emu.SetFaults(graphemu.Faults{ThrottleRate: 1, RetryAfter: 250 * time.Millisecond})
	r = e.do("POST", "/$batch", map[string]any{"requests": []any{map[string]any{"id": "1", "method": "GET", "url": "/me/contacts"}}})
	it := r.json(t)["responses"].([]any)[0].(map[string]any)
	if it["status"] != float64(429) || it["headers"].(map[string]any)["Retry-After"] != "0.25" {
		t.Errorf("throttled item %v", it)
	}
}

func TestThrottling(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	release := e.emu.Hold()
	defer release()
	done := make(chan int, 4)
	for i := 0; i < 4; i++ {
		go func() {
			req, _ := http.NewRequest("GET", e.base()+"/me/contacts", nil)
			req.Header.Set("Authorization", "Bearer "+e.token)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				done <- 0
				return
			}
			res.Body.Close()
			done <- res.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.emu.Held() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r := e.do("GET", "/me/contacts", nil)
	if r.status != 429 || r.errCode(t) != "ApplicationThrottled" || r.header.Get("Retry-After") == "" {
		t.Errorf("fifth request: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), "MailboxConcurrency") {
		t.Errorf("message: %s", r.body)
	}
	release()
	for i := 0; i < 4; i++ {
		if s := <-done; s != 200 {
			t.Errorf("held request: %d", s)
		}
	}

	// The window budget.
	e2 := newEnv(t, graphemu.Options{Limits: graphemu.Limits{RequestsPerWindow: 2, Window: time.Hour}})
	e2.do("GET", "/me/contacts", nil)
	e2.do("GET", "/me/contacts", nil)
	if r := e2.do("GET", "/me/contacts", nil); r.status != 429 || r.errCode(t) != "TooManyRequests" {
		t.Errorf("over budget: %d %s", r.status, r.body)
	}

	// The upload budget.
	e3 := newEnv(t, graphemu.Options{Limits: graphemu.Limits{UploadBytes: 100, UploadWindow: time.Hour}})
	big := map[string]any{"personalNotes": strings.Repeat("x", 60)}
	if r := e3.do("POST", "/me/contacts", big); r.status != 201 {
		t.Errorf("first upload: %d", r.status)
	}
	if r := e3.do("POST", "/me/contacts", big); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("over upload budget: %d %v", r.status, r.header)
	}

	// Injected faults.
	e.emu.SetFaults(graphemu.Faults{UnavailableRate: 1})
	if r := e.do("GET", "/me/contacts", nil); r.status != 503 || r.header.Get("Retry-After") != "1" {
		t.Errorf("unavailable: %d %v", r.status, r.header)
	}
	e.emu.SetFaults(graphemu.Faults{ConflictRate: 1})
	if r := e.do("GET", "/me/contacts", nil); r.status != 200 {
		t.Errorf("conflict fault on a read: %d", r.status)
	}
	if r := e.do("POST", "/me/contacts", map[string]any{"givenName": "x"}); r.status != 412 {
		t.Errorf("conflict fault on a write: %d", r.status)
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	e1, err := graphemu.New(graphemu.Options{DataDir: dir, PathPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e1)
	e := &env{t: t, emu: e1, srv: srv, token: e1.AccessToken(upn)}
	f := e.create("/me/contactFolders", map[string]any{"displayName": "Kept"})["id"].(string)
	c := e.create("/me/contactFolders/"+f+"/contacts", map[string]any{"givenName": "Kept",
		"singleValueExtendedProperties": []any{map[string]any{"id": "String 0x3A24", "value": "fax"}}})
	id := c["id"].(string)
	e.do("PUT", "/me/contacts/"+id+"/photo/$value", tinyJPEG(t), "Content-Type", "image/jpeg")
	gone := e.create("/me/contactFolders/"+f+"/contacts", map[string]any{"givenName": "Gone"})["id"].(string)
	_, dl, _ := e.deltaRound(e.base()+"/me/contactFolders/"+f+"/contacts/delta", 0)
	e.do("DELETE", "/me/contacts/"+gone, nil)
	before := e.do("GET", "/me/contacts/"+id, nil).json(t)
	srv.Close()
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2, err := graphemu.New(graphemu.Options{DataDir: dir, PathPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	srv2 := httptest.NewServer(e2)
	defer srv2.Close()
	e = &env{t: t, emu: e2, srv: srv2, token: e2.AccessToken(upn)}
	after := e.do("GET", "/me/contacts/"+id, nil).json(t)
	if after["changeKey"] != before["changeKey"] || after["givenName"] != "Kept" {
		t.Errorf("after restart: %v", after)
	}
	if r := e.do("GET", "/me/contacts/"+id+"/photo/$value", nil); r.status != 200 {
		t.Errorf("photo after restart: %d", r.status)
	}
	g := e.do("GET", "/me/contacts/"+id+"?$expand=singleValueExtendedProperties($filter=id eq 'String 0x3A24')", nil).json(t)
	if eps := g["singleValueExtendedProperties"].([]any); len(eps) != 1 {
		t.Errorf("ext after restart: %v", eps)
	}
	// The pre-restart deltaLink still works and reports the deletion.
	dl = strings.Replace(dl, srv.URL, srv2.URL, 1)
	items, _, _ := e.deltaRound(dl, 0)
	if len(items) != 1 || items[0]["id"] != gone || items[0]["@removed"] == nil {
		t.Errorf("delta after restart: %v", items)
	}
	// New writes continue the sequence: a new changeKey differs.
	p := e.do("PATCH", "/me/contacts/"+id, map[string]any{"nickName": "k"}).json(t)
	if p["changeKey"] == before["changeKey"] {
		t.Error("changeKey reused after restart")
	}
}

func TestDistListsShortenPages(t *testing.T) {
	e := newEnv(t, graphemu.Options{DistListEvery: 4})
	if err := e.emu.Seed(upn, 20); err != nil {
		t.Fatal(err)
	}
	m := e.do("GET", "/me/contacts?$top=10&$count=true", nil).json(t)
	if m["@odata.count"] != float64(25) || len(m["value"].([]any)) >= 10 || m["@odata.nextLink"] == nil {
		t.Errorf("first page: count %v, %d items, next %v", m["@odata.count"], len(m["value"].([]any)), m["@odata.nextLink"])
	}
	var seen int
	next := e.base() + "/me/contacts?$top=10"
	for i := 0; i < 10 && next != ""; i++ {
		m := e.do("GET", next, nil).json(t)
		seen += len(m["value"].([]any))
		next, _ = m["@odata.nextLink"].(string)
	}
	if seen != 20 {
		t.Errorf("listed %d contacts, want 20", seen)
	}
	if items, _, _ := e.deltaRound(e.base()+"/me/contacts/delta", 0); len(items) != 20 {
		t.Errorf("delta shows %d, want 20", len(items))
	}
}

func TestNamedPropertyQuota(t *testing.T) {
	e := newEnv(t, graphemu.Options{Limits: graphemu.Limits{NamedProps: 2}})
	ep := func(name string) map[string]any {
		return map[string]any{"singleValueExtendedProperties": []any{
			map[string]any{"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name " + name, "value": "v"},
			map[string]any{"id": "String 0x3A24", "value": "proptags do not count"},
		}}
	}
	tests := []struct {
		name   string
		status int
	}{{"a", 201}, {"A", 201}, {"b", 201}, {"c", 500}, {"a", 201}}
	for _, tt := range tests {
		if r := e.do("POST", "/me/contacts", ep(tt.name)); r.status != tt.status {
			t.Errorf("name %s: %d %s", tt.name, r.status, r.body)
		}
	}
	if got := e.emu.NamedProperties(upn); len(got) != 2 || got[0] != "{66f5a359-4659-4830-9070-00047ec6ac6e} a" {
		t.Errorf("NamedProperties = %v", got)
	}
}

func TestFolderCommitTime(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	const q = "/me/contactFolders/contacts?$expand=singleValueExtendedProperties($filter=id eq 'SystemTime 0x670A')"
	stamp := func() string {
		t.Helper()
		eps := e.do("GET", q, nil).json(t)["singleValueExtendedProperties"].([]any)
		if len(eps) != 1 {
			t.Fatalf("expanded %v", eps)
		}
		return eps[0].(map[string]any)["value"].(string)
	}
	s0 := stamp()
	id := e.create("/me/contacts", map[string]any{"givenName": "T"})["id"].(string)
	s1 := stamp()
	e.do("DELETE", "/me/contacts/"+id, nil)
	s2 := stamp()
	if !(s0 < s1 && s1 < s2) || stamp() != s2 {
		t.Errorf("commit times %s, %s, %s", s0, s1, s2)
	}
}

func TestSeed(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	for i := 0; i < 2; i++ { // the second call is a no-op
		if err := e.emu.Seed(upn, 30); err != nil {
			t.Fatal(err)
		}
	}
	m := e.do("GET", "/me/contacts?$top=100&$count=true", nil).json(t)
	if m["@odata.count"] != float64(30) {
		t.Errorf("seeded %v", m["@odata.count"])
	}
	if l := e.do("GET", "/me/contactFolders", nil).json(t)["value"].([]any); len(l) < 1 {
		t.Errorf("seeded folders: %v", l)
	}
	var photos int
	for _, v := range m["value"].([]any) {
		id := v.(map[string]any)["id"].(string)
		if e.do("GET", "/me/contacts/"+id+"/photo/$value", nil).status == 200 {
			photos++
		}
	}
	if photos == 0 {
		t.Error("no seeded photos")
	}
}

func tinyJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 2, 2))
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestIDsOnMove(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	const imm = `IdType="ImmutableId"`
	f := e.create("/me/contactFolders", map[string]any{"displayName": "Other"})["id"].(string)

	// Without the preference the regular id changes on a move.
	c := e.create("/me/contacts", map[string]any{"givenName": "Reg"})
	old := c["id"].(string)
	r := e.do("PATCH", "/me/contacts/"+old, map[string]any{"parentFolderId": f})
	moved := r.json(t)["id"].(string)
	if r.status != 200 || moved == old {
		t.Fatalf("move: %d, id %s → %s", r.status, old, moved)
	}
	if r := e.do("GET", "/me/contacts/"+old, nil); r.status != 404 {
		t.Errorf("old regular id after move: %d", r.status)
	}

	// With it the id survives the move.
	r = e.do("POST", "/me/contacts", map[string]any{"givenName": "Imm"}, "Prefer", imm)
	if r.header.Get("Preference-Applied") != imm {
		t.Errorf("Preference-Applied %q", r.header.Get("Preference-Applied"))
	}
	id := r.json(t)["id"].(string)
	if !strings.HasPrefix(id, "AAkALg") {
		t.Errorf("immutable id %q", id)
	}
	r = e.do("PATCH", "/me/contacts/"+id, map[string]any{"parentFolderId": f}, "Prefer", imm)
	if got := r.json(t)["id"]; got != id {
		t.Errorf("immutable id changed: %s → %v", id, got)
	}
	if r := e.do("GET", "/me/contactFolders/"+f+"/contacts/"+id, nil, "Prefer", imm); r.status != 200 {
		t.Errorf("immutable id after move: %d", r.status)
	}
	with, without := e.emu.ImmutableIDRequests()
	if with != 3 || without < 3 {
		t.Errorf("ImmutableIDRequests = %d, %d", with, without)
	}
}

func TestAppOnlyToken(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	e.token = e.emu.Authority().Mint(oauthemu.Principal{App: true}, time.Minute)
	if r := e.do("GET", "/me/contacts", nil); r.status != 400 {
		t.Errorf("/me with an app token: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/users/"+upn+"/contacts", map[string]any{"givenName": "X"}); r.status != 201 {
		t.Errorf("/users/{upn} with an app token: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/users/nobody@contoso.example/contacts", nil); r.status != 404 || r.errCode(t) != "ErrorInvalidUser" {
		t.Errorf("unknown user: %d %s", r.status, r.body)
	}
	e.token = e.emu.Authority().Mint(oauthemu.Principal{User: upn}, time.Nanosecond)
	time.Sleep(time.Millisecond)
	if r := e.do("GET", "/me/contacts", nil); r.status != 401 || !strings.Contains(string(r.body), "expired") {
		t.Errorf("expired token: %d %s", r.status, r.body)
	}
}

// TestOAuthMount gets an app-only token from the emulator's own token
// endpoint under the prefix and uses it on /users/{upn}.
func TestOAuthMount(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	cc := clientcredentials.Config{
		ClientID:     "11111111-2222-3333-4444-555555555555",
		ClientSecret: "secret",
		TokenURL:     e.srv.URL + prefix + "/contoso.example/oauth2/v2.0/token",
		Scopes:       []string{"https://graph.microsoft.com/.default"},
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client())
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok.AccessToken
	if r := e.do("GET", "/users/"+upn+"/contactFolders/contacts", nil); r.status != 200 {
		t.Errorf("app token from the mounted endpoint: %d %s", r.status, r.body)
	}
}

func TestOrderByAndFolderFilter(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	for _, n := range []string{"Carol", "alice", "Bob"} {
		e.create("/me/contacts", map[string]any{"givenName": n})
	}
	tests := []struct{ orderby, want string }{
		{"displayName", "alice Bob Carol"},
		{"displayName desc", "Carol Bob alice"},
		{"createdDateTime", "Carol alice Bob"},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range e.do("GET", "/me/contacts?$orderby="+tt.orderby, nil).json(t)["value"].([]any) {
			got = append(got, v.(map[string]any)["givenName"].(string))
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("$orderby=%s: %v", tt.orderby, got)
		}
	}
	if r := e.do("GET", "/me/contacts?$orderby=displayName,surname", nil); r.status != 501 {
		t.Errorf("two-key orderby: %d", r.status)
	}
	if r := e.do("GET", "/me/contacts?$search=bob", nil); r.status != 501 {
		t.Errorf("$search: %d", r.status)
	}

	a := e.create("/me/contactFolders", map[string]any{"displayName": "A"})["id"].(string)
	b := e.create("/me/contactFolders", map[string]any{"displayName": "B"})["id"].(string)
	l := e.do("GET", "/me/contactFolders?$filter=displayName eq 'b'", nil).json(t)["value"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["id"] != b {
		t.Errorf("folder filter: %v", l)
	}
	tests2 := []struct {
		name   string
		path   string
		body   map[string]any
		status int
		code   string
	}{
		{"rename onto a sibling", "/me/contactFolders/" + a, map[string]any{"displayName": "B"}, 409, "ErrorFolderExists"},
		{"into itself", "/me/contactFolders/" + a, map[string]any{"parentFolderId": a}, 400, "ErrorMoveCopyFailed"},
		{"move the default", "/me/contactFolders/contacts", map[string]any{"parentFolderId": a}, 400, "ErrorMoveDistinguishedFolder"},
		{"unknown property", "/me/contactFolders/" + a, map[string]any{"colour": "red"}, 400, "RequestBodyRead"},
		{"empty name", "/me/contactFolders/" + a, map[string]any{"displayName": ""}, 400, "ErrorInvalidRequest"},
		{"unknown parent", "/me/contactFolders/" + a, map[string]any{"parentFolderId": "AAMkADAAAAAAAAAAAAAAAAAA"}, 404, "ErrorItemNotFound"},
		{"rename", "/me/contactFolders/" + a, map[string]any{"displayName": "A2"}, 200, ""},
		{"nest", "/me/contactFolders/" + a, map[string]any{"parentFolderId": b}, 200, ""},
	}
	for _, tt := range tests2 {
		r := e.do("PATCH", tt.path, tt.body)
		if r.status != tt.status || (tt.code != "" && r.errCode(t) != tt.code) {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
	}
	if l := e.do("GET", "/me/contactFolders/"+b+"/childFolders", nil).json(t)["value"].([]any); len(l) != 1 || l[0].(map[string]any)["displayName"] != "A2" {
		t.Errorf("after nest: %v", l)
	}
}

func TestDeltaCoalescingAndReplay(t *testing.T) {
	e := newEnv(t, graphemu.Options{})
	const imm = `IdType="ImmutableId"`
	f := e.create("/me/contactFolders", map[string]any{"displayName": "F"})["id"].(string)
	id := e.do("POST", "/me/contactFolders/"+f+"/contacts", map[string]any{"givenName": "Yo"}, "Prefer", imm).json(t)["id"].(string)
	start := e.base() + "/me/contactFolders/" + f + "/contacts/delta"
	r := e.do("GET", start, nil, "Prefer", imm)
	dl := r.json(t)["@odata.deltaLink"].(string)
	// Out and back in: one upsert, no removal, with immutable ids.
	e.do("PATCH", "/me/contacts/"+id, map[string]any{"parentFolderId": "contacts"}, "Prefer", imm)
	if r := e.do("PATCH", "/me/contacts/"+id, map[string]any{"parentFolderId": f}, "Prefer", imm); r.status != 200 {
		t.Fatalf("move back: %d %s", r.status, r.body)
	}
	v := e.do("GET", dl, nil, "Prefer", imm).json(t)["value"].([]any)
	if len(v) != 1 || v[0].(map[string]any)["@removed"] != nil || v[0].(map[string]any)["id"] != id {
		t.Errorf("out and back in: %v", v)
	}

	// With regular ids the same trip shows the old id removed and the new
	// one present.
	r = e.do("GET", start, nil)
	dl = r.json(t)["@odata.deltaLink"].(string)
	reg := r.json(t)["value"].([]any)[0].(map[string]any)["id"].(string)
	e.do("PATCH", "/me/contacts/"+id, map[string]any{"parentFolderId": "contacts"}, "Prefer", imm)
	e.do("PATCH", "/me/contacts/"+id, map[string]any{"parentFolderId": f}, "Prefer", imm)
	v = e.do("GET", dl, nil).json(t)["value"].([]any)
	if len(v) != 2 {
		t.Fatalf("regular ids, out and back in: %v", v)
	}
	for _, x := range v {
		m := x.(map[string]any)
		if removed := m["@removed"] != nil; removed != (m["id"] == reg) {
			t.Errorf("regular ids, out and back in: %v", v)
		}
	}

	// Replays: every item at least once, some twice, same set.
	for i := 0; i < 20; i++ {
		e.create("/me/contactFolders/"+f+"/contacts", map[string]any{"givenName": fmt.Sprint(i)})
	}
	e.emu.SetFaults(graphemu.Faults{DeltaReplayRate: 0.5, Seed: 1})
	items, _, _ := e.deltaRound(start, 7)
	uniq := map[string]bool{}
	for _, it := range items {
		uniq[it["id"].(string)] = true
	}
	if len(uniq) != 21 || len(items) <= 21 {
		t.Errorf("replay: %d items, %d distinct", len(items), len(uniq))
	}
}
