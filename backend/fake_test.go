package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// fakeAPI is an in-memory ContactsAPI that counts its calls. It keeps a
// journal of changes per folder to answer delta rounds, returns only id and
// changeKey in delta rows (as our $select asks), honours $expand of extended
// properties and If-Match, and can expire every delta link.
type fakeAPI struct {
	mu       sync.Mutex
	defID    string
	folders  []graph.ContactFolder
	contacts map[string]*fakeContact
	journal  []fakeEvent
	seq      int // journal position
	ids      int
	ck       int
	gen      int // delta links of older generations are gone (410)
	calls    map[string]int

	// deltaGate, when set, is received from before each delta round
	// answers, so a test can hold rounds open.
	deltaGate chan struct{}
	// fail makes the named operation fail with the error.
	fail map[string]error
	// lag makes delta rounds report a contact moved away as changed, as a
	// delta that has not caught up with a move would.
	lag bool
	// failOnce makes the next call of the named operation fail.
	failOnce map[string]error
}

type fakeContact struct {
	c      graph.Contact // without extended properties
	folder string
	props  map[string]string // lower-case id → value
	photo  *graph.Photo
}

type fakeEvent struct {
	seq     int
	folder  string
	id      string
	removed bool
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{
		defID:    "AAMkDefaultFolder==",
		contacts: map[string]*fakeContact{},
		calls:    map[string]int{},
		fail:     map[string]error{},
		failOnce: map[string]error{},
	}
}

func (f *fakeAPI) call(op string) error {
	f.calls[op]++
	if err := f.failOnce[op]; err != nil {
		delete(f.failOnce, op)
		return err
	}
	return f.fail[op]
}

// count returns the number of calls of op ("" for all).
func (f *fakeAPI) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op != "" {
		return f.calls[op]
	}
	n := 0
	for _, v := range f.calls {
		n += v
	}
	return n
}

func (f *fakeAPI) resetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
}

func (f *fakeAPI) setFailOnce(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOnce[op] = err
}

func (f *fakeAPI) setFail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = err
}

func (f *fakeAPI) record(folder, id string, removed bool) {
	f.seq++
	f.journal = append(f.journal, fakeEvent{seq: f.seq, folder: folder, id: id, removed: removed})
}

func (f *fakeAPI) bump(fc *fakeContact) {
	f.ck++
	fc.c.ChangeKey = "ck" + strconv.Itoa(f.ck)
	fc.c.ODataETag = `W/"` + fc.c.ChangeKey + `"`
	fc.c.LastModifiedDateTime = fmt.Sprintf("2026-01-01T00:00:%02dZ", f.ck%60)
	if fc.photo != nil {
		fc.props[strings.ToLower(graph.PropHasPicture)] = "true"
	} else {
		delete(fc.props, strings.ToLower(graph.PropHasPicture))
	}
	f.record(fc.folder, fc.c.ID, false)
}

// view returns a contact as Graph would: extended properties only when
// expanded.
func (fc *fakeContact) view(q graph.Query) graph.Contact {
	c := fc.c
	c.ParentFolderID = fc.folder
	for _, id := range q.Expand {
		if v, ok := fc.props[strings.ToLower(id)]; ok {
			c.SingleValueExtendedProperties = append(c.SingleValueExtendedProperties, graph.ExtendedProperty{ID: id, Value: v})
		}
	}
	return c
}

func (f *fakeAPI) hasFolder(id string) bool {
	if id == f.defID {
		return true
	}
	for _, fo := range f.folders {
		if fo.ID == id {
			return true
		}
	}
	return false
}

func notFound(what string) error { return fmt.Errorf("fake: %s: %w", what, graph.ErrNotFound) }

func (f *fakeAPI) DefaultFolder(ctx context.Context) (*graph.ContactFolder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DefaultFolder"); err != nil {
		return nil, err
	}
	return &graph.ContactFolder{ID: f.defID, DisplayName: "Contacts"}, nil
}

func (f *fakeAPI) ListFolders(ctx context.Context) ([]graph.ContactFolder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ListFolders"); err != nil {
		return nil, err
	}
	return append([]graph.ContactFolder(nil), f.folders...), nil
}

func (f *fakeAPI) addFolder(parent, name string) string {
	f.ids++
	id := fmt.Sprintf("AAMkFolder%d==", f.ids)
	f.folders = append(f.folders, graph.ContactFolder{ID: id, DisplayName: name, ParentFolderID: parent})
	return id
}

func (f *fakeAPI) CreateFolder(ctx context.Context, parentID, displayName string) (*graph.ContactFolder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("CreateFolder"); err != nil {
		return nil, err
	}
	for _, fo := range f.folders {
		if fo.ParentFolderID == parentID && fo.DisplayName == displayName {
			return nil, fmt.Errorf("fake: %w", graph.ErrConflict)
		}
	}
	id := f.addFolder(parentID, displayName)
	fo := f.folders[len(f.folders)-1]
	_ = id
	return &fo, nil
}

func (f *fakeAPI) RenameFolder(ctx context.Context, id, displayName string) (*graph.ContactFolder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("RenameFolder"); err != nil {
		return nil, err
	}
	for i := range f.folders {
		if f.folders[i].ID == id {
			f.folders[i].DisplayName = displayName
			fo := f.folders[i]
			return &fo, nil
		}
	}
	return nil, notFound("folder")
}

func (f *fakeAPI) DeleteFolder(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DeleteFolder"); err != nil {
		return err
	}
	for i := range f.folders {
		if f.folders[i].ID == id {
			f.folders = append(f.folders[:i], f.folders[i+1:]...)
			return nil
		}
	}
	return notFound("folder")
}

func (f *fakeAPI) ListContacts(ctx context.Context, folderID string, q graph.Query) ([]graph.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ListContacts"); err != nil {
		return nil, err
	}
	var out []graph.Contact
	for _, fc := range f.sorted() {
		if fc.folder == folderID {
			out = append(out, fc.view(q))
		}
	}
	return out, nil
}

func (f *fakeAPI) sorted() []*fakeContact {
	out := make([]*fakeContact, 0, len(f.contacts))
	for _, fc := range f.contacts {
		out = append(out, fc)
	}
	// Stable order: ids are numbered.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].c.ID < out[j-1].c.ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (f *fakeAPI) GetContact(ctx context.Context, folderID, id string, q graph.Query) (*graph.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("GetContact"); err != nil {
		return nil, err
	}
	fc, ok := f.contacts[id]
	if !ok || (folderID != "" && fc.folder != folderID) {
		return nil, notFound("contact")
	}
	c := fc.view(q)
	return &c, nil
}

func (f *fakeAPI) GetContacts(ctx context.Context, ids []string, q graph.Query) ([]graph.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("GetContacts"); err != nil {
		return nil, err
	}
	var out []graph.Contact
	for _, id := range ids {
		if fc, ok := f.contacts[id]; ok {
			out = append(out, fc.view(q))
		}
	}
	return out, nil
}

func (f *fakeAPI) newContact(folder string, c *graph.Contact) *fakeContact {
	f.ids++
	fc := &fakeContact{c: *c, folder: folder, props: map[string]string{}}
	fc.c.ID = fmt.Sprintf("AAMkContact%06d==", f.ids)
	for _, p := range c.SingleValueExtendedProperties {
		fc.props[strings.ToLower(p.ID)] = p.Value
	}
	fc.c.SingleValueExtendedProperties = nil
	f.contacts[fc.c.ID] = fc
	f.bump(fc)
	return fc
}

func (f *fakeAPI) CreateContact(ctx context.Context, folderID string, c *graph.Contact) (*graph.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("CreateContact"); err != nil {
		return nil, err
	}
	if !f.hasFolder(folderID) {
		return nil, notFound("folder")
	}
	out := f.newContact(folderID, c).c // extended properties are not echoed
	return &out, nil
}

func (f *fakeAPI) UpdateContact(ctx context.Context, folderID, id string, p graph.Patch, ifMatch string) (*graph.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("UpdateContact"); err != nil {
		return nil, err
	}
	fc, ok := f.contacts[id]
	if !ok {
		return nil, notFound("contact")
	}
	if ifMatch != "" && ifMatch != fc.c.ODataETag {
		return nil, fmt.Errorf("fake: %w", graph.ErrPreconditionFailed)
	}
	if err := fc.patch(p); err != nil {
		return nil, err
	}
	f.bump(fc)
	out := fc.c
	return &out, nil
}

// patch applies a Graph PATCH body the way Graph does: omitted keeps, null
// clears, collections replace.
func (fc *fakeContact) patch(p graph.Patch) error {
	var m map[string]any
	data, _ := json.Marshal(fc.c)
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for k, v := range p {
		if k == "singleValueExtendedProperties" {
			data, _ := json.Marshal(v)
			var props []graph.ExtendedProperty
			if err := json.Unmarshal(data, &props); err != nil {
				return fmt.Errorf("fake: bad extended properties: %w", graph.ErrBadRequest)
			}
			for _, ep := range props {
				fc.props[strings.ToLower(ep.ID)] = ep.Value
			}
			continue
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	data, _ = json.Marshal(m)
	var c graph.Contact
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("fake: bad patch: %w", graph.ErrBadRequest)
	}
	fc.c = c
	return nil
}

func (f *fakeAPI) DeleteContact(ctx context.Context, folderID, id, ifMatch string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DeleteContact"); err != nil {
		return err
	}
	fc, ok := f.contacts[id]
	if !ok {
		return notFound("contact")
	}
	if ifMatch != "" && ifMatch != fc.c.ODataETag {
		return fmt.Errorf("fake: %w", graph.ErrPreconditionFailed)
	}
	delete(f.contacts, id)
	f.record(fc.folder, id, true)
	return nil
}

func (f *fakeAPI) ContactsDelta(ctx context.Context, folderID, deltaLink string, q graph.Query) (*graph.DeltaResult, error) {
	f.mu.Lock()
	gate := f.deltaGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ContactsDelta"); err != nil {
		return nil, err
	}
	res := &graph.DeltaResult{DeltaLink: fmt.Sprintf("delta:%s:%d:%d", folderID, f.gen, f.seq)}
	row := func(fc *fakeContact) graph.Contact {
		return graph.Contact{ID: fc.c.ID, ChangeKey: fc.c.ChangeKey}
	}
	if deltaLink == "" {
		for _, fc := range f.sorted() {
			if fc.folder == folderID {
				res.Changed = append(res.Changed, row(fc))
			}
		}
		return res, nil
	}
	parts := strings.Split(deltaLink, ":")
	from, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil || len(parts) != 4 || parts[1] != folderID {
		return nil, fmt.Errorf("fake: bad delta link %q: %w", deltaLink, graph.ErrBadRequest)
	}
	if parts[2] != strconv.Itoa(f.gen) {
		return nil, fmt.Errorf("fake: %w", graph.ErrSyncStateNotFound)
	}
	seen := map[string]bool{}
	for i := len(f.journal) - 1; i >= 0; i-- {
		e := f.journal[i]
		if e.seq <= from {
			break
		}
		if e.folder != folderID || seen[e.id] {
			continue
		}
		seen[e.id] = true
		if fc, ok := f.contacts[e.id]; ok && !e.removed && (fc.folder == folderID || f.lag) {
			res.Changed = append(res.Changed, row(fc))
		} else {
			res.Removed = append(res.Removed, e.id)
		}
	}
	return res, nil
}

func (f *fakeAPI) GetPhoto(ctx context.Context, id string) (*graph.Photo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("GetPhoto"); err != nil {
		return nil, err
	}
	fc, ok := f.contacts[id]
	if !ok || fc.photo == nil {
		return nil, notFound("photo")
	}
	p := *fc.photo
	return &p, nil
}

func (f *fakeAPI) PutPhoto(ctx context.Context, id string, p *graph.Photo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("PutPhoto"); err != nil {
		return err
	}
	fc, ok := f.contacts[id]
	if !ok {
		return notFound("contact")
	}
	if p == nil || len(p.Data) == 0 {
		fc.photo = nil
	} else {
		cp := *p
		fc.photo = &cp
	}
	f.bump(fc)
	return nil
}

// Outlook-side edits, straight into the fake.

func (f *fakeAPI) outlookCreate(folder string, c graph.Contact) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newContact(folder, &c).c.ID
}

func (f *fakeAPI) outlookEdit(id string, edit func(c *graph.Contact)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := f.contacts[id]
	edit(&fc.c)
	f.bump(fc)
}

func (f *fakeAPI) outlookDelete(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := f.contacts[id]
	delete(f.contacts, id)
	f.record(fc.folder, id, true)
}

// outlookCopy copies a contact with its extended properties, as Outlook's
// copy does.
func (f *fakeAPI) outlookCopy(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	src := f.contacts[id]
	c := src.c
	for k, v := range src.props {
		c.SingleValueExtendedProperties = append(c.SingleValueExtendedProperties, graph.ExtendedProperty{ID: k, Value: v})
	}
	return f.newContact(src.folder, &c).c.ID
}

// expireDeltaLinks makes every delta link issued so far answer 410.
func (f *fakeAPI) expireDeltaLinks() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
}

func (f *fakeAPI) props(id string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.contacts[id].props {
		out[k] = v
	}
	return out
}

// batchingFake is a fakeAPI that also fetches photos in batches.
type batchingFake struct{ *fakeAPI }

func (f batchingFake) GetPhotos(ctx context.Context, ids []string) (map[string]*graph.Photo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("GetPhotos"); err != nil {
		return nil, err
	}
	out := map[string]*graph.Photo{}
	for _, id := range ids {
		if fc, ok := f.contacts[id]; ok && fc.photo != nil {
			p := *fc.photo
			out[id] = &p
		} else {
			out[id] = nil
		}
	}
	return out, nil
}

// outlookSetPhoto gives a contact a photo, as Outlook would.
func (f *fakeAPI) outlookSetPhoto(id string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := f.contacts[id]
	fc.photo = &graph.Photo{ContentType: "image/jpeg", Data: data}
	f.bump(fc)
}

// outlookMove moves a contact to another folder; unless quiet, the old
// folder's delta reports it removed (quiet plays a delta that lags).
func (f *fakeAPI) outlookMove(id, folder string, quiet bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := f.contacts[id]
	if !quiet {
		f.record(fc.folder, id, true)
	}
	f.lag = quiet
	fc.folder = folder
	f.bump(fc)
}
