package graphemu

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	_ "image/gif" // DecodeConfig of uploaded photos
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
)

// route is the shape of a mailbox request, known before any data is read.
type route struct {
	target    string   // folders, folder, folderDelta, contacts, delta, contact, photo, photoValue
	folders   []string // folder id chain after contactFolders; empty = default folder
	contactID string
}

// parseRoute maps the segments after /me or /users/{id} to a route.
func parseRoute(segs []string) (route, bool) {
	if len(segs) == 0 {
		return route{}, false
	}
	var rt route
	switch strings.ToLower(segs[0]) {
	case "contacts":
		return contactsRoute(rt, segs[1:])
	case "contactfolders":
		if len(segs) == 1 {
			rt.target = "folders"
			return rt, true
		}
		if len(segs) == 2 && strings.EqualFold(segs[1], "delta") {
			rt.target = "folderDelta"
			return rt, true
		}
		rt.folders = []string{segs[1]}
		i := 2
		for i+1 < len(segs) && strings.EqualFold(segs[i], "childFolders") {
			rt.folders = append(rt.folders, segs[i+1])
			i += 2
		}
		rest := segs[i:]
		switch {
		case len(rest) == 0:
			rt.target = "folder"
			return rt, true
		case len(rest) == 1 && strings.EqualFold(rest[0], "childFolders"):
			rt.target = "folders"
			return rt, true
		case strings.EqualFold(rest[0], "contacts"):
			return contactsRoute(rt, rest[1:])
		}
	}
	return rt, false
}

func contactsRoute(rt route, rest []string) (route, bool) {
	switch {
	case len(rest) == 0:
		rt.target = "contacts"
	case len(rest) == 1 && strings.EqualFold(rest[0], "delta"):
		rt.target = "delta"
	case len(rest) == 1:
		rt.target, rt.contactID = "contact", rest[0]
	case len(rest) == 2 && strings.EqualFold(rest[1], "photo"):
		rt.target, rt.contactID = "photo", rest[0]
	case len(rest) == 3 && strings.EqualFold(rest[1], "photo") && rest[2] == "$value":
		rt.target, rt.contactID = "photoValue", rest[0]
	default:
		return rt, false
	}
	return rt, true
}

// routeOps names each route target's operations by method, for Counts.
var routeOps = map[string]map[string]string{
	"folders":     {"GET": "folders.list", "POST": "folders.create"},
	"folder":      {"GET": "folders.get", "PATCH": "folders.update", "DELETE": "folders.delete"},
	"folderDelta": {"GET": "folders.delta"},
	"contacts":    {"GET": "contacts.list", "POST": "contacts.create"},
	"delta":       {"GET": "contacts.delta"},
	"contact":     {"GET": "contacts.get", "PATCH": "contacts.update", "DELETE": "contacts.delete"},
	"photo":       {"GET": "photo.meta"},
	"photoValue":  {"GET": "photo.get", "PUT": "photo.put", "PATCH": "photo.put", "DELETE": "photo.delete"},
}

// opName names the operation for Counts; "" when the method is not modelled.
func (rt route) opName(method string) string { return routeOps[rt.target][method] }

// call carries one Graph request through its handler.
type call struct {
	e    *Emulator
	w    http.ResponseWriter
	r    *http.Request
	ri   reqInfo
	mb   *mailbox
	base string // absolute URL of the service root, …/v1.0
	who  string // "me" or "users('upn')" for @odata.context

	immutable bool // Prefer: IdType="ImmutableId" was sent
}

func (c *call) fail(ae *apiError) { c.e.writeError(c.w, c.ri, ae) }

// serveGraph serves one request below /v1.0 and returns its operation name.
func (e *Emulator) serveGraph(w http.ResponseWriter, r *http.Request, gpath string, ri reqInfo, inBatch bool) string {
	segs := strings.Split(strings.Trim(gpath, "/"), "/")
	p, aerr := e.authenticate(r)
	if aerr != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		e.writeError(w, ri, aerr)
		return "auth"
	}
	if len(segs) == 1 && segs[0] == "$batch" {
		if inBatch || r.Method != http.MethodPost {
			e.writeError(w, ri, errf(400, "BadRequest", "Batch requests cannot be nested and must be POSTed."))
			return "batch"
		}
		e.serveBatch(w, r, ri, p)
		return "batch"
	}
	c := &call{e: e, w: w, r: r, ri: ri, base: origin(r) + e.prefix + "/v1.0"}
	var mb *mailbox
	switch strings.ToLower(segs[0]) {
	case "me":
		if p.App {
			c.fail(errf(400, "BadRequest", "/me request is only valid with delegated authentication flow."))
			return "me"
		}
		var err error
		if mb, err = e.mailbox(p.User, true); err != nil {
			c.fail(errf(500, "InternalServerError", "%v", err))
			return "me"
		}
		c.who = "users('" + url.PathEscape(p.User) + "')"
		segs = segs[1:]
	case "users":
		if len(segs) < 2 {
			break
		}
		who := segs[1]
		if !p.App && !strings.EqualFold(who, p.User) {
			if own, _ := e.mailbox(p.User, false); own == nil || own.meta.UserID != who {
				c.fail(errf(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."))
				return "users"
			}
		}
		mb = e.mailboxByUser(who)
		if mb == nil && !p.App {
			mb, _ = e.mailbox(p.User, true) // a delegated user's own mailbox exists on first use
		}
		if mb == nil {
			c.fail(errf(404, "ErrorInvalidUser", "The requested user '%s' is invalid.", who))
			return "users"
		}
		c.who = "users('" + url.PathEscape(who) + "')"
		segs = segs[2:]
	default:
		c.fail(notModelled(r))
		return "unmodelled"
	}
	if mb == nil {
		c.fail(notModelled(r))
		return "unmodelled"
	}
	c.mb = mb
	if len(segs) == 0 {
		if r.Method != http.MethodGet {
			c.fail(notModelled(r))
			return "unmodelled"
		}
		c.serveUser()
		return "me"
	}
	rt, ok := parseRoute(segs)
	op := rt.opName(r.Method)
	if !ok || op == "" {
		c.fail(notModelled(r))
		return "unmodelled"
	}
	immutable := false
	for _, v := range r.Header.Values("Prefer") {
		immutable = immutable || strings.Contains(strings.ToLower(v), `idtype="immutableid"`)
	}
	c.immutable = immutable
	e.countMu.Lock()
	if immutable {
		e.immutable[1]++
	} else {
		e.immutable[0]++
	}
	e.countMu.Unlock()
	if immutable {
		w.Header().Add("Preference-Applied", `IdType="ImmutableId"`)
	}
	write := r.Method != http.MethodGet
	release, ok := e.admit(r.Context(), w, ri, mb, write)
	if !ok {
		return op
	}
	defer release()

	var body []byte
	if write {
		limit := int64(e.limits.MaxPhotoBytes) + 1
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, limit))
		if err != nil {
			c.fail(errf(400, "BadRequest", "Could not read the request body."))
			return op
		}
		if int64(len(body)) >= limit {
			// The 4 MB request cap is documented; 413 and the code are [inf].
			c.fail(errf(413, "ErrorRequestEntityTooLarge", "The request body exceeds the maximum of %d bytes.", e.limits.MaxPhotoBytes))
			return op
		}
		if r.Method != http.MethodDelete && !e.chargeUpload(w, ri, mb, len(body)) {
			return op
		}
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	c.dispatch(rt, body)
	return op
}

func notModelled(r *http.Request) *apiError {
	return errf(501, "NotImplemented", "The Graph emulator does not model %s %s.", r.Method, r.URL.Path)
}

func (e *Emulator) authenticate(r *http.Request) (oauthemu.Principal, *apiError) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return oauthemu.Principal{}, errf(401, "InvalidAuthenticationToken", "Access token is empty.")
	}
	p, err := e.auth.Validate(strings.TrimSpace(tok))
	switch {
	case errors.Is(err, oauthemu.ErrExpiredToken):
		return p, errf(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
	case err != nil:
		return p, errf(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
	case !p.App && p.User == "":
		return p, errf(401, "InvalidAuthenticationToken", "Access token validation failure.")
	}
	return p, nil
}

// mailboxByUser finds a mailbox by UPN or user id.
func (e *Emulator) mailboxByUser(who string) *mailbox {
	if mb, _ := e.mailbox(who, false); mb != nil {
		return mb
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, mb := range e.mailboxes {
		if mb.meta.UserID == who {
			return mb
		}
	}
	return nil
}

func (c *call) serveUser() {
	m := c.mb.meta
	body := map[string]any{
		"@odata.context":    c.base + "/$metadata#users/$entity",
		"id":                m.UserID,
		"userPrincipalName": m.UPN,
		"displayName":       m.DisplayName,
		"mail":              m.UPN,
	}
	writeJSON(c.w, 200, mustJSON(body))
}

func (c *call) dispatch(rt route, body []byte) {
	m := c.r.Method
	if rt.target == "folderDelta" {
		c.folderDelta()
		return
	}
	f, aerr := c.resolveFolder(rt.folders)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	switch rt.target {
	case "folders":
		if m == "GET" {
			c.listFolders(f)
		} else {
			c.createFolder(f, body)
		}
		return
	case "folder":
		switch m {
		case "GET":
			c.getFolder(f)
		case "PATCH":
			c.updateFolder(f, body)
		case "DELETE":
			c.deleteFolder(f)
		}
		return
	case "contacts":
		if m == "GET" {
			c.listContacts(f)
		} else {
			c.createContact(f, body)
		}
		return
	case "delta":
		c.contactDelta(f)
		return
	}
	ct, aerr := c.findContact(rt.contactID)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	switch rt.target {
	case "contact":
		switch m {
		case "GET":
			c.getContact(ct)
		case "PATCH":
			c.updateContact(ct, body)
		case "DELETE":
			c.deleteContact(ct)
		}
	case "photo":
		c.photoMeta(ct)
	case "photoValue":
		switch m {
		case "GET":
			c.getPhoto(ct)
		case "DELETE":
			c.deletePhoto(ct)
		default:
			c.putPhoto(ct, body)
		}
	}
}

// resolveFolder walks a contactFolders/{id}/childFolders/{id}… chain. The
// well-known name "contacts" stands for the default folder.
func (c *call) resolveFolder(chain []string) (*folder, *apiError) {
	mb := c.mb
	f := mb.folders[mb.meta.DefaultID]
	for i, id := range chain {
		var next *folder
		if strings.EqualFold(id, "contacts") {
			next = mb.folders[mb.meta.DefaultID]
		} else if !wellFormedID(id) {
			return nil, errMalformed()
		} else {
			next = mb.folders[id]
		}
		if next == nil || (i > 0 && next.Parent != f.ID) {
			return nil, errNotFound()
		}
		f = next
	}
	return f, nil
}

func (c *call) findContact(id string) (*contact, *apiError) {
	if !wellFormedID(id) {
		return nil, errMalformed()
	}
	// Graph finds a contact by id in any folder of the mailbox, whichever
	// folder path the request names (documented for /me/contacts/{id};
	// the same for folder-scoped paths is [inf]). Either kind of id is
	// accepted whatever the Prefer header says [inf]; a regular id from
	// before a move is gone.
	ct := c.mb.contacts[id]
	if ct == nil {
		ct = c.mb.regIndex[id]
	}
	if ct == nil || ct.DistList {
		return nil, errNotFound()
	}
	return ct, nil
}

func (c *call) persist(ops ...op) bool {
	if err := c.e.st.save(c.mb, ops...); err != nil {
		c.e.log.Error("graphemu: persist", "err", err)
		c.fail(errf(500, "InternalServerError", "The emulator could not write its store."))
		return false
	}
	return true
}

// ---- folders ----

// folderOut is the contactFolder resource in Graph's property order.
type folderOut struct {
	ID             string `json:"id"`
	DisplayName    string `json:"displayName"`
	ParentFolderID string `json:"parentFolderId"`
}

func (c *call) folderJSON(f *folder) folderOut {
	return folderOut{ID: f.ID, DisplayName: f.DisplayName, ParentFolderID: f.Parent}
}

func (c *call) writeFolder(status int, f *folder) {
	c.writeFolderExt(status, f, nil, false)
}

func (c *call) writeFolderExt(status int, f *folder, ext []extProp, withExt bool) {
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	b.Write(mustJSON(c.base + "/$metadata#" + c.who + "/contactFolders/$entity"))
	fmt.Fprintf(&b, `,"id":%s,"displayName":%s,"parentFolderId":%s`, mustJSON(f.ID), mustJSON(f.DisplayName), mustJSON(f.Parent))
	if withExt {
		if ext == nil {
			ext = []extProp{}
		}
		b.WriteString(`,"singleValueExtendedProperties":`)
		b.Write(mustJSON(ext))
	}
	b.WriteByte('}')
	writeJSON(c.w, status, b.Bytes())
}

// getFolder answers GET of one folder. Its $expand models the two computed
// MAPI properties DavMail reads as a cheap folder "ctag":
// PR_LOCAL_COMMIT_TIME_MAX (SystemTime 0x670A), the time of the last change
// to the folder's contents, and PR_LAST_MODIFICATION_TIME (SystemTime
// 0x3008). Both are the same instant here, in .NET's round-trip format
// [inf: the value format and 0x3008's exact meaning].
func (c *call) getFolder(f *folder) {
	exp, ef, aerr := parseExpand(c.r.URL.Query().Get("$expand"))
	if aerr != nil {
		c.fail(aerr)
		return
	}
	if !exp {
		c.writeFolder(200, f)
		return
	}
	last := f.Modified
	for _, ct := range c.mb.byFolder[f.ID] {
		if ct.Modified.After(last) {
			last = ct.Modified
		}
	}
	for _, t := range c.mb.tombs {
		if t.Folder == f.ID && t.At.After(last) {
			last = t.At
		}
	}
	v := last.UTC().Format("2006-01-02T15:04:05.0000000Z")
	var ext []extProp
	for _, ep := range []extProp{{ID: "SystemTime 0x3008", Value: v}, {ID: "SystemTime 0x670A", Value: v}} {
		ep := ep
		if ef == nil || ef.eval(&filterEnv{ep: &ep}) {
			ext = append(ext, ep)
		}
	}
	c.writeFolderExt(200, f, ext, true)
}

func (c *call) listFolders(parent *folder) {
	q := c.r.URL.Query()
	var filter filterNode
	if s := q.Get("$filter"); s != "" {
		var aerr *apiError
		if filter, aerr = parseFilter(s, true); aerr != nil {
			c.fail(aerr)
			return
		}
	}
	var items []json.RawMessage
	for _, f := range c.mb.children(parent.ID) {
		if filter != nil {
			probe := &contact{ID: f.ID, Folder: f.Parent, Props: map[string]json.RawMessage{"displayName": mustJSON(f.DisplayName)}}
			if !filter.eval(&filterEnv{c: probe}) {
				continue
			}
		}
		items = append(items, mustJSON(c.folderJSON(f)))
	}
	c.writePage(c.base+"/$metadata#"+c.who+"/contactFolders", items, len(items), false)
}

// writePage answers a collection with $top/$skip paging over all.
func (c *call) writePage(ctx string, all []json.RawMessage, total int, countAsked bool) {
	top, skip, aerr := c.topSkip()
	if aerr != nil {
		c.fail(aerr)
		return
	}
	end := min(skip+top, len(all))
	c.writeCollection(ctx, total, countAsked, nextSkip(end, len(all)), func(b *bytes.Buffer) {
		for i, it := range all[min(skip, len(all)):end] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(it)
		}
	})
}

// writeCollection writes a collection's envelope around the items value
// writes, with a nextLink to $skip=next unless next is -1.
func (c *call) writeCollection(ctx string, total int, countAsked bool, next int, value func(*bytes.Buffer)) {
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	b.Write(mustJSON(ctx))
	if countAsked {
		fmt.Fprintf(&b, `,"@odata.count":%d`, total)
	}
	b.WriteString(`,"value":[`)
	value(&b)
	b.WriteByte(']')
	if next >= 0 {
		b.WriteString(`,"@odata.nextLink":`)
		b.Write(mustJSON(c.nextSkipLink(next)))
	}
	b.WriteByte('}')
	writeJSON(c.w, 200, b.Bytes())
}

// topSkip reads $top (default 10, at most 1000) and $skip.
func (c *call) topSkip() (top, skip int, aerr *apiError) {
	q := c.r.URL.Query()
	top = 10
	if s := q.Get("$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, errf(400, "BadRequest", "Invalid value '%s' for $top.", s)
		}
		top = min(n, 1000) // the 1000 ceiling is documented; clamping is [inf]
	}
	if s := q.Get("$skip"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, errf(400, "BadRequest", "Invalid value '%s' for $skip.", s)
		}
		skip = n
	}
	return top, skip, nil
}

// nextSkip is the $skip of the page after one ending at end of n items, or
// -1 when that page was the last.
func nextSkip(end, n int) int {
	if end < n {
		return end
	}
	return -1
}

// nextSkipLink is the request's absolute URL with $skip replaced.
func (c *call) nextSkipLink(skip int) string {
	var parts []string
	for _, kv := range strings.Split(c.r.URL.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == "$skip" {
			continue
		}
		parts = append(parts, kv)
	}
	parts = append(parts, "$skip="+strconv.Itoa(skip))
	return c.absPath() + "?" + strings.Join(parts, "&")
}

// absPath is the absolute URL of the request path.
func (c *call) absPath() string { return origin(c.r) + c.r.URL.EscapedPath() }

// origin is the request's scheme and host, "http://host:port".
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

type folderBody struct {
	DisplayName    *string `json:"displayName"`
	ParentFolderID *string `json:"parentFolderId"`
}

func parseFolderBody(body []byte) (*folderBody, *apiError) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, badBody("Invalid JSON. A JSON object was expected in the request body.")
	}
	var fb folderBody
	for k, v := range raw {
		switch k {
		case "displayName":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, badBody("Cannot convert the literal '%s' to the expected type of property 'displayName'.", truncate(string(v), 40))
			}
			fb.DisplayName = &s
		case "parentFolderId":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, badBody("Cannot convert the literal '%s' to the expected type of property 'parentFolderId'.", truncate(string(v), 40))
			}
			fb.ParentFolderID = &s
		case "id", "@odata.type", "@odata.etag", "@odata.context":
		default:
			return nil, badBody("The property '%s' does not exist on type 'microsoft.graph.contactFolder'. Make sure to only use property names that are defined by the type or mark the type as open type.", k)
		}
	}
	return &fb, nil
}

// siblingNamed reports a folder under parent with the name (ignoring case).
func (c *call) siblingNamed(parent, name, except string) bool {
	for _, f := range c.mb.children(parent) {
		if f.ID != except && strings.EqualFold(f.DisplayName, name) {
			return true
		}
	}
	return false
}

func errFolderExists() *apiError {
	// The code is Exchange's; the 409 status is [inf].
	return errf(409, "ErrorFolderExists", "A folder with the specified name already exists.")
}

func (c *call) createFolder(parent *folder, body []byte) {
	fb, aerr := parseFolderBody(body)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	if fb.DisplayName == nil || strings.TrimSpace(*fb.DisplayName) == "" {
		c.fail(errf(400, "ErrorInvalidRequest", "The folder's displayName is required."))
		return
	}
	if c.siblingNamed(parent.ID, *fb.DisplayName, "") {
		c.fail(errFolderExists())
		return
	}
	seq := c.mb.next()
	f := &folder{ID: newItemID(), DisplayName: *fb.DisplayName, Parent: parent.ID, Seq: seq, Entered: seq, CreatedSeq: seq, Modified: time.Now().UTC()}
	c.mb.folders[f.ID] = f
	if !c.persist(putJSON(bFolders, f.ID, f)) {
		return
	}
	c.writeFolder(201, f)
}

func (c *call) isDescendant(id, of string) bool {
	for i := 0; i < 1000 && id != ""; i++ { // depth bound guards against a corrupt store
		if id == of {
			return true
		}
		f := c.mb.folders[id]
		if f == nil {
			return false
		}
		id = f.Parent
	}
	return false
}

func (c *call) updateFolder(f *folder, body []byte) {
	fb, aerr := parseFolderBody(body)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	name, parent := f.DisplayName, f.Parent
	if fb.DisplayName != nil {
		if strings.TrimSpace(*fb.DisplayName) == "" {
			c.fail(errf(400, "ErrorInvalidRequest", "The folder's displayName cannot be empty."))
			return
		}
		name = *fb.DisplayName
	}
	if fb.ParentFolderID != nil && *fb.ParentFolderID != f.Parent {
		if f.ID == c.mb.meta.DefaultID {
			c.fail(errf(400, "ErrorMoveDistinguishedFolder", "Distinguished folders cannot be moved."))
			return
		}
		target, aerr := c.resolveFolder([]string{*fb.ParentFolderID})
		if aerr != nil {
			c.fail(aerr)
			return
		}
		if c.isDescendant(target.ID, f.ID) {
			c.fail(errf(400, "ErrorMoveCopyFailed", "A folder cannot be moved into itself or one of its subfolders."))
			return
		}
		parent = target.ID
	}
	if c.siblingNamed(parent, name, f.ID) {
		c.fail(errFolderExists())
		return
	}
	f.DisplayName, f.Parent = name, parent
	f.Seq, f.Modified = c.mb.next(), time.Now().UTC()
	if !c.persist(putJSON(bFolders, f.ID, f)) {
		return
	}
	c.writeFolder(200, f)
}

func (c *call) deleteFolder(f *folder) {
	mb := c.mb
	if f.ID == mb.meta.DefaultID {
		// Refusing is documented; the status and code (Exchange's) are [inf].
		c.fail(errf(400, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted."))
		return
	}
	// Collect the subtree, children before parents.
	var order []*folder
	var walk func(*folder, int)
	walk = func(x *folder, depth int) {
		if depth > 1000 {
			return
		}
		for _, ch := range mb.children(x.ID) {
			walk(ch, depth+1)
		}
		order = append(order, x)
	}
	walk(f, 0)
	var ops []op
	for _, x := range order {
		for _, ct := range mb.inFolder(x.ID) {
			if ct.DistList {
				mb.drop(ct)
				ops = append(ops, del(bContacts, ct.ID))
				continue
			}
			ops = append(ops, mb.entomb(ct, mb.next()), del(bContacts, ct.ID), del(bPhotos, ct.ID))
			mb.drop(ct)
		}
		delete(mb.byFolder, x.ID)
		delete(mb.sorted, x.ID)
		delete(mb.folders, x.ID)
		t := tomb{ID: x.ID, Folder: x.Parent, Seq: mb.next(), Entered: x.Entered, At: time.Now().UTC()}
		mb.ftombs = append(mb.ftombs, t)
		ops = append(ops, del(bFolders, x.ID), op{bucket: bFTombs, key: seqKey(t.Seq), val: mustJSON(t)})
	}
	if !c.persist(ops...) {
		return
	}
	c.w.WriteHeader(204)
}

// ---- contacts ----

func ifMatchOK(h string, ck string) bool {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return true
	}
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		t = strings.Trim(t, `"`)
		if t == ck {
			return true
		}
	}
	return false
}

func (c *call) entityContext() string {
	return c.base + "/$metadata#" + c.who + "/contacts/$entity"
}

func (c *call) writeContact(status int, ct *contact, sel map[string]bool, expand bool, ef filterNode) {
	var b bytes.Buffer
	var ext []extProp
	if expand {
		ext = ct.expandedExt(ef)
	}
	ct.render(&b, [][2]string{{"@odata.context", c.entityContext()}}, ct.idFor(c.immutable), sel, ext, expand)
	writeJSON(c.w, status, b.Bytes())
}

func (c *call) createContact(f *folder, body []byte) {
	w, aerr := parseContactWrite(body)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	// A parentFolderId in a POST body is ignored: the folder is the one in
	// the path [inf].
	mb := c.mb
	if aerr := c.useNamed(w); aerr != nil {
		c.fail(aerr)
		return
	}
	seq := mb.next()
	now := time.Now().UTC()
	ct := &contact{ID: newImmutableID(), RegID: newItemID(), Folder: f.ID, Props: map[string]json.RawMessage{}, Created: now, Modified: now,
		Seq: seq, Entered: seq, CreatedSeq: seq, ChangeKey: mb.changeKey(seq)}
	ct.applyWrite(w)
	mb.put(ct)
	if !c.persist(putJSON(bContacts, ct.ID, ct)) {
		return
	}
	// Extended properties sent in the POST body are stored but not echoed [doc].
	c.writeContact(201, ct, nil, false, nil)
}

// useNamed records the named properties a write uses, refusing it when they
// would overflow the mailbox's quota. The failure's status and code are
// [inf]; the MAPI exception name is what Exchange reports.
func (c *call) useNamed(w *contactWrite) *apiError {
	mb := c.mb
	known := make(map[string]bool, len(mb.meta.Named))
	for _, n := range mb.meta.Named {
		known[n] = true
	}
	var fresh []string
	for _, ep := range w.ext {
		parts := strings.Fields(ep.ID)
		if len(parts) < 4 || !strings.EqualFold(parts[2], "Name") {
			continue
		}
		key := strings.ToLower(parts[1] + " " + strings.Join(parts[3:], " "))
		if !known[key] {
			known[key] = true
			fresh = append(fresh, key)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if len(mb.meta.Named)+len(fresh) > c.e.limits.NamedProps {
		return errf(500, "ErrorInternalServerError", "MapiExceptionNamedPropsQuotaExceeded: the mailbox's named-property quota of %d is used up.", c.e.limits.NamedProps)
	}
	mb.meta.Named = append(mb.meta.Named, fresh...) // saved with the write
	return nil
}

func (c *call) getContact(ct *contact) {
	q := c.r.URL.Query()
	sel, aerr := parseSelect(q.Get("$select"))
	if aerr != nil {
		c.fail(aerr)
		return
	}
	exp, ef, aerr := parseExpand(q.Get("$expand"))
	if aerr != nil {
		c.fail(aerr)
		return
	}
	c.writeContact(200, ct, sel, exp, ef)
}

func (c *call) updateContact(ct *contact, body []byte) {
	if !ifMatchOK(c.r.Header.Get("If-Match"), ct.ChangeKey) {
		c.fail(errIrresolvable())
		return
	}
	w, aerr := parseContactWrite(body)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	mb := c.mb
	if aerr := c.useNamed(w); aerr != nil {
		c.fail(aerr)
		return
	}
	var ops []op
	seq := mb.next()
	if w.parentID != nil && *w.parentID != ct.Folder {
		// A move (the documented way is recreating; PATCH is accepted).
		target, aerr := c.resolveFolder([]string{*w.parentID})
		if aerr != nil {
			c.fail(aerr)
			return
		}
		if target.ID != ct.Folder {
			ops = append(ops, mb.entomb(ct, seq))
			mb.removeFromFolder(ct)
			delete(mb.regIndex, ct.RegID)
			// A move gives the item a new regular id; the immutable id
			// stays (learn: outlook-immutable-id).
			ct.Folder, ct.Entered, ct.RegID = target.ID, seq, newItemID()
			mb.put(ct)
		}
	}
	ct.applyWrite(w)
	ct.Seq, ct.ChangeKey, ct.Modified = seq, mb.changeKey(seq), time.Now().UTC()
	ops = append(ops, putJSON(bContacts, ct.ID, ct))
	if !c.persist(ops...) {
		return
	}
	c.writeContact(200, ct, nil, false, nil)
}

func (c *call) deleteContact(ct *contact) {
	if !ifMatchOK(c.r.Header.Get("If-Match"), ct.ChangeKey) {
		c.fail(errIrresolvable())
		return
	}
	mb := c.mb
	tombOp := mb.entomb(ct, mb.next())
	mb.drop(ct)
	if !c.persist(del(bContacts, ct.ID), del(bPhotos, ct.ID), tombOp) {
		return
	}
	c.w.WriteHeader(204)
}

func (c *call) listContacts(f *folder) {
	q := c.r.URL.Query()
	for k := range q {
		switch k {
		case "$top", "$skip", "$select", "$filter", "$expand", "$count", "$orderby":
		default:
			if strings.HasPrefix(k, "$") {
				c.fail(errf(501, "NotImplemented", "The emulator does not model the query option %s on contacts.", k))
				return
			}
		}
	}
	sel, aerr := parseSelect(q.Get("$select"))
	if aerr != nil {
		c.fail(aerr)
		return
	}
	exp, ef, aerr := parseExpand(q.Get("$expand"))
	if aerr != nil {
		c.fail(aerr)
		return
	}
	var filter filterNode
	if s := q.Get("$filter"); s != "" {
		if filter, aerr = parseFilter(s, true); aerr != nil {
			c.fail(aerr)
			return
		}
	}
	top, skip, aerr := c.topSkip()
	if aerr != nil {
		c.fail(aerr)
		return
	}
	all := c.mb.inFolder(f.ID)
	if filter != nil || q.Get("$orderby") != "" {
		var kept []*contact
		for _, ct := range all {
			if filter == nil || filter.eval(&filterEnv{c: ct, immutable: c.immutable}) {
				kept = append(kept, ct)
			}
		}
		if ob := q.Get("$orderby"); ob != "" {
			if aerr := orderBy(kept, ob); aerr != nil {
				c.fail(aerr)
				return
			}
		}
		all = kept
	}
	end := min(skip+top, len(all))
	countAsked := strings.EqualFold(q.Get("$count"), "true")
	c.writeCollection(c.base+"/$metadata#"+c.who+"/contacts", len(all), countAsked, nextSkip(end, len(all)), func(b *bytes.Buffer) {
		first := true
		for _, ct := range all[min(skip, len(all)):end] {
			if ct.DistList {
				continue // counted, not shown
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			var ext []extProp
			if exp {
				ext = ct.expandedExt(ef)
			}
			ct.render(b, nil, ct.idFor(c.immutable), sel, ext, exp)
		}
	})
}

// orderBy sorts by one string or timestamp property, asc or desc.
func orderBy(cs []*contact, ob string) *apiError {
	name, dir, _ := strings.Cut(strings.TrimSpace(ob), " ")
	desc := strings.EqualFold(strings.TrimSpace(dir), "desc")
	canon, ok := selectable[strings.ToLower(name)]
	if !ok || strings.Contains(ob, ",") {
		return errf(501, "NotImplemented", "The emulator does not model $orderby=%s.", ob)
	}
	key := func(ct *contact) string {
		switch canon {
		case "createdDateTime":
			return ct.Created.Format(time.RFC3339Nano)
		case "lastModifiedDateTime":
			return ct.Modified.Format(time.RFC3339Nano)
		case "id":
			return ct.ID
		}
		if f, ok := schemaByName[canon]; ok && f.kind == kDate {
			return string(ct.Props[canon])
		}
		return strings.ToLower(ct.propString(canon))
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if desc {
			return key(cs[i]) > key(cs[j])
		}
		return key(cs[i]) < key(cs[j])
	})
	return nil
}

// ---- delta ----

// deltaToken is the state behind $skiptoken and $deltatoken: the mailbox,
// the folder ("" for folder delta), the sequence number up to which the
// caller has seen changes, the $select, and the sync-state generation.
type deltaToken struct {
	M string `json:"m"`
	F string `json:"f"`
	C uint64 `json:"c"`
	S string `json:"s,omitempty"`
	G uint64 `json:"g"`
}

func (t deltaToken) encode() string {
	return base64.RawURLEncoding.EncodeToString(mustJSON(t))
}

func errSyncState(gen, highest uint64) *apiError {
	return errf(410, "SyncStateNotFound", "The sync state generation is not found; generation=%d;[highest=%d]", gen, highest)
}

// deltaStart reads the round's token (or starts a round) and the page size.
func (c *call) deltaStart(folderID string) (deltaToken, int, *apiError) {
	q := c.r.URL.Query()
	mb := c.mb
	tok := deltaToken{M: mb.meta.UserID, F: folderID, G: mb.meta.DeltaGen}
	raw := q.Get("$skiptoken")
	if raw == "" {
		raw = q.Get("$deltatoken")
	}
	for k := range q {
		switch k {
		case "$skiptoken", "$deltatoken", "$select":
		default:
			if strings.HasPrefix(k, "$") {
				return tok, 0, errf(501, "NotImplemented", "The emulator does not model %s on delta.", k)
			}
		}
	}
	if raw != "" {
		b, err := base64.RawURLEncoding.DecodeString(raw)
		var t deltaToken
		if err != nil || json.Unmarshal(b, &t) != nil || t.M != mb.meta.UserID || t.F != folderID || t.G != mb.meta.DeltaGen {
			return tok, 0, c.expiredToken(t)
		}
		tok = t
	} else {
		sel, aerr := parseSelect(q.Get("$select"))
		if aerr != nil {
			return tok, 0, aerr
		}
		tok.S = selectString(sel)
	}
	size := 10 // Graph's default delta page size for contacts is [inf]
	for _, p := range c.r.Header.Values("Prefer") {
		for _, part := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && strings.EqualFold(k, "odata.maxpagesize") {
				if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n > 0 {
					size = min(n, 1000) // the ceiling is [inf]
					c.w.Header().Add("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(size))
				}
			}
		}
	}
	return tok, size, nil
}

// expiredToken answers a delta or skip token that is expired or unknown, as
// Faults.ExpiredDelta says.
func (c *call) expiredToken(t deltaToken) *apiError {
	c.e.faultMu.Lock()
	mode := c.e.faults.ExpiredDelta
	c.e.faultMu.Unlock()
	switch mode {
	case ExpiredDelta400:
		return errf(400, "ErrorInvalidSyncStateData", "The sync state data is corrupt or otherwise invalid.")
	case ExpiredDeltaReset:
		fresh := c.absPath()
		if t.S != "" {
			fresh += "?$select=" + t.S
		}
		c.w.Header().Set("Location", fresh)
	}
	return errSyncState(t.G, c.mb.meta.DeltaGen)
}

// deltaItem is one change to report.
type deltaItem struct {
	seq    uint64
	render func(*bytes.Buffer)
}

// tombsAfter returns the tombstones with Seq > c (ts ascends by Seq).
func tombsAfter(ts []tomb, c uint64) []tomb {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].Seq > c })
	return ts[i:]
}

func (c *call) contactDelta(f *folder) {
	tok, size, aerr := c.deltaStart(f.ID)
	if aerr != nil {
		c.fail(aerr)
		return
	}
	sel, _ := parseSelect(tok.S)
	var items []deltaItem
	for _, ct := range c.mb.byFolder[f.ID] {
		if ct.Seq > tok.C && !ct.DistList {
			ct := ct
			items = append(items, deltaItem{ct.Seq, func(b *bytes.Buffer) {
				ct.render(b, [][2]string{{"@odata.type", "#microsoft.graph.contact"}}, ct.idFor(c.immutable), sel, nil, false)
			}})
		}
	}
	// Graph reports an item's latest state once per round, so removals
	// are coalesced: one per id shown, none when the same id is back in
	// the folder (its current state is reported instead).
	latest := map[string]tomb{}
	for _, t := range tombsAfter(c.mb.tombs, tok.C) {
		// An item the caller cannot have seen (it entered the folder after
		// the caller's position) is not reported as removed.
		if t.Folder != f.ID || t.Entered > tok.C {
			continue
		}
		id := t.ID
		if !c.immutable && t.RegID != "" {
			id = t.RegID
		}
		if cur := c.mb.byFolder[f.ID][t.ID]; cur != nil && cur.idFor(c.immutable) == id {
			continue
		}
		latest[id] = t
	}
	for id, t := range latest {
		id := id
		items = append(items, deltaItem{t.Seq, func(b *bytes.Buffer) {
			fmt.Fprintf(b, `{"@odata.type":"#microsoft.graph.contact","id":%s,"@removed":{"reason":"deleted"}}`, mustJSON(id))
		}})
	}
	c.writeDelta(tok, size, items)
}

func (c *call) writeDelta(tok deltaToken, size int, items []deltaItem) {
	sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	b.Write(mustJSON(c.base + "/$metadata#Collection(" + map[bool]string{true: "contactFolder", false: "contact"}[tok.F == ""] + ")"))
	page := items
	next := tok
	link := "@odata.deltaLink"
	param := "$deltatoken"
	if len(items) > size {
		page = items[:size]
		next.C = page[len(page)-1].seq
		link, param = "@odata.nextLink", "$skiptoken"
	} else {
		next.C = c.mb.meta.Seq
	}
	page = c.e.disorder(page)
	fmt.Fprintf(&b, `,%s:%s`, mustJSON(link), mustJSON(c.absPath()+"?"+param+"="+next.encode()))
	b.WriteString(`,"value":[`)
	for i, it := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		it.render(&b)
	}
	b.WriteString("]}")
	writeJSON(c.w, 200, b.Bytes())
}

// folderDelta reports the folders below the default folder, at any depth,
// flattened with parentFolderId; that the default folder itself is left
// out, like the contactFolders list, is [inf].
func (c *call) folderDelta() {
	tok, size, aerr := c.deltaStart("")
	if aerr != nil {
		c.fail(aerr)
		return
	}
	mb := c.mb
	var items []deltaItem
	for _, f := range mb.folders {
		if f.ID == mb.meta.DefaultID || !c.isDescendant(f.ID, mb.meta.DefaultID) || f.Seq <= tok.C {
			continue
		}
		body := mustJSON(c.folderJSON(f))
		items = append(items, deltaItem{f.Seq, func(b *bytes.Buffer) {
			b.WriteString(`{"@odata.type":"#microsoft.graph.contactFolder",`)
			b.Write(body[1:])
		}})
	}
	for _, t := range tombsAfter(mb.ftombs, tok.C) {
		if t.Entered <= tok.C {
			id := t.ID
			items = append(items, deltaItem{t.Seq, func(b *bytes.Buffer) {
				fmt.Fprintf(b, `{"@odata.type":"#microsoft.graph.contactFolder","id":%s,"@removed":{"reason":"deleted"}}`, mustJSON(id))
			}})
		}
	}
	c.writeDelta(tok, size, items)
}

// ---- photos ----

func (c *call) photoMeta(ct *contact) {
	if ct.Photo == nil {
		c.fail(errNotFound()) // the code for contacts is [inf]
		return
	}
	p := ct.Photo
	body := map[string]any{
		"@odata.context":          c.base + "/$metadata#" + c.who + "/contacts('" + ct.idFor(c.immutable) + "')/photo/$entity",
		"@odata.mediaContentType": p.ContentType,
		"@odata.mediaEtag":        p.ETag,
		"id":                      fmt.Sprintf("%dX%d", p.Width, p.Height), // shaped like user photos' ids [inf]
		"width":                   p.Width,
		"height":                  p.Height,
	}
	writeJSON(c.w, 200, mustJSON(body))
}

func (c *call) getPhoto(ct *contact) {
	if ct.Photo == nil {
		c.fail(errNotFound())
		return
	}
	c.w.Header().Set("Content-Type", ct.Photo.ContentType)
	c.w.Header().Set("ETag", ct.Photo.ETag)
	c.w.Header().Set("Content-Length", strconv.Itoa(len(c.mb.photos[ct.ID])))
	c.w.WriteHeader(200)
	_, _ = c.w.Write(c.mb.photos[ct.ID])
}

func (c *call) deletePhoto(ct *contact) {
	if !c.e.photoDelete {
		// Documented as unsupported for contact photos.
		c.fail(errf(405, "ErrorInvalidRequest", "The DELETE method is not supported on a contact's photo; PUT an empty body to remove it."))
		return
	}
	c.setPhoto(ct, nil, "")
}

func (c *call) putPhoto(ct *contact, body []byte) {
	ctype := c.r.Header.Get("Content-Type")
	if ctype == "" || strings.HasPrefix(ctype, "application/octet-stream") {
		ctype = "image/jpeg"
	}
	c.setPhoto(ct, body, ctype)
}

// setPhoto stores or (empty data) clears the photo, keeps PidLidHasPicture
// in step and gives the contact a new changeKey: the picture is an
// attachment of the item, so changing it modifies the item [inf].
func (c *call) setPhoto(ct *contact, data []byte, ctype string) {
	mb := c.mb
	ops := []op{}
	if ct.Ext == nil {
		ct.Ext = map[string]extProp{}
	}
	key := strings.ToLower(hasPhotoProp)
	if len(data) == 0 {
		ct.Photo = nil
		delete(mb.photos, ct.ID)
		ct.Ext[key] = extProp{ID: hasPhotoProp, Value: "false"}
		ops = append(ops, del(bPhotos, ct.ID))
	} else {
		p := &photoMeta{ContentType: ctype, Size: len(data), ETag: fmt.Sprintf(`"%08X"`, crc32.ChecksumIEEE(data))}
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
			p.Width, p.Height = cfg.Width, cfg.Height
		}
		ct.Photo = p
		mb.photos[ct.ID] = append([]byte(nil), data...)
		ct.Ext[key] = extProp{ID: hasPhotoProp, Value: "true"}
		ops = append(ops, op{bucket: bPhotos, key: []byte(ct.ID), val: data})
	}
	seq := mb.next()
	ct.Seq, ct.ChangeKey, ct.Modified = seq, mb.changeKey(seq), time.Now().UTC()
	ops = append(ops, putJSON(bContacts, ct.ID, ct))
	if !c.persist(ops...) {
		return
	}
	c.w.WriteHeader(200)
}
