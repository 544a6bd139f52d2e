package graphemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// mailboxMeta is the persisted header of a mailbox.
type mailboxMeta struct {
	UPN         string `json:"upn"`
	UserID      string `json:"userId"`
	DisplayName string `json:"displayName"`
	DefaultID   string `json:"defaultId"`
	RootID      string `json:"rootId"` // msgfolderroot, the default folder's parent
	Seq         uint64 `json:"seq"`    // last change sequence number in the mailbox
	DeltaGen    uint64 `json:"deltaGen"`
	Seeded      bool   `json:"seeded,omitempty"` // Seed ran once
	// Named lists the named properties ever used, "{guid} name" lower-cased.
	Named []string `json:"named,omitempty"`
}

// folder is a contact folder. The default folder is one too.
type folder struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"displayName"`
	Parent      string    `json:"parent"`
	Seq         uint64    `json:"seq"`
	Entered     uint64    `json:"entered"`
	CreatedSeq  uint64    `json:"createdSeq"`
	Modified    time.Time `json:"modified,omitempty"` // created, renamed or moved
}

// tomb records that an item left a folder (deleted or moved out) at Seq,
// having entered it at Entered, so delta can report it exactly once.
type tomb struct {
	ID      string    `json:"id"`
	RegID   string    `json:"regId,omitempty"` // the regular id the item had in the folder
	Folder  string    `json:"folder"`
	Seq     uint64    `json:"seq"`
	Entered uint64    `json:"entered"`
	At      time.Time `json:"at,omitempty"`
}

// mailbox is one user's contacts store, fully in memory, written through to
// bbolt on every mutation.
type mailbox struct {
	mu       sync.Mutex
	meta     mailboxMeta
	folders  map[string]*folder
	contacts map[string]*contact // by immutable id
	regIndex map[string]*contact // by regular id
	byFolder map[string]map[string]*contact
	sorted   map[string][]*contact // folder → contacts by CreatedSeq, rebuilt lazily
	photos   map[string][]byte
	tombs    []tomb // contacts, ascending Seq
	ftombs   []tomb // folders, ascending Seq

	// limits, guarded by Emulator.limMu
	inflight    int
	windowStart time.Time
	windowCount int
	uploadStart time.Time
	uploadBytes int64
}

func newMailbox() *mailbox {
	return &mailbox{
		folders:  map[string]*folder{},
		contacts: map[string]*contact{},
		regIndex: map[string]*contact{},
		byFolder: map[string]map[string]*contact{},
		sorted:   map[string][]*contact{},
		photos:   map[string][]byte{},
	}
}

// next allocates the next change sequence number.
func (mb *mailbox) next() uint64 {
	mb.meta.Seq++
	return mb.meta.Seq
}

// changeKey derives an Exchange-looking change key (standard base64, like
// "EQAAABYAAACd9nJ/tVysQos2hTfspaWRAAADTIa4") from the mailbox and a
// sequence number, so it is new on every write.
func (mb *mailbox) changeKey(seq uint64) string {
	b := make([]byte, 0, 30)
	b = append(b, 0x11, 0, 0, 0, 0x16, 0, 0, 0)
	uid, _ := hex.DecodeString(strings.ReplaceAll(mb.meta.UserID, "-", ""))
	b = append(b, uid...)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	b = append(b, s[2:]...)
	return base64.StdEncoding.EncodeToString(b)
}

// put indexes a new or loaded contact by both its ids and its folder.
func (mb *mailbox) put(c *contact) {
	mb.contacts[c.ID] = c
	if c.RegID != "" {
		mb.regIndex[c.RegID] = c
	}
	mb.addToFolder(c)
}

// entomb records that c leaves its folder at seq (deleted or moved out) and
// returns the write that persists the tombstone.
func (mb *mailbox) entomb(c *contact, seq uint64) op {
	t := tomb{ID: c.ID, RegID: c.RegID, Folder: c.Folder, Seq: seq, Entered: c.Entered, At: time.Now().UTC()}
	mb.tombs = append(mb.tombs, t)
	return op{bucket: bTombs, key: seqKey(t.Seq), val: mustJSON(t)}
}

// drop removes a deleted contact from every index.
func (mb *mailbox) drop(c *contact) {
	delete(mb.contacts, c.ID)
	delete(mb.regIndex, c.RegID)
	delete(mb.photos, c.ID)
	mb.removeFromFolder(c)
}

func (mb *mailbox) addToFolder(c *contact) {
	m := mb.byFolder[c.Folder]
	if m == nil {
		m = map[string]*contact{}
		mb.byFolder[c.Folder] = m
	}
	m[c.ID] = c
	delete(mb.sorted, c.Folder)
}

func (mb *mailbox) removeFromFolder(c *contact) {
	delete(mb.byFolder[c.Folder], c.ID)
	delete(mb.sorted, c.Folder)
}

// inFolder returns the folder's contacts in creation order.
func (mb *mailbox) inFolder(fid string) []*contact {
	if s, ok := mb.sorted[fid]; ok {
		return s
	}
	m := mb.byFolder[fid]
	s := make([]*contact, 0, len(m))
	for _, c := range m {
		s = append(s, c)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].CreatedSeq < s[j].CreatedSeq })
	mb.sorted[fid] = s
	return s
}

// children returns the folder's direct subfolders, by creation.
func (mb *mailbox) children(fid string) []*folder {
	var out []*folder
	for _, f := range mb.folders {
		if f.Parent == fid {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedSeq < out[j].CreatedSeq })
	return out
}

// newItemID returns an opaque, case-sensitive, base64url id shaped like
// Exchange's ("AAMkAD…=").
func newItemID() string {
	b := make([]byte, 46)
	copy(b, []byte{0x00, 0x03, 0x24, 0x00})
	if _, err := rand.Read(b[4:]); err != nil {
		panic(err)
	}
	return base64.URLEncoding.EncodeToString(b)
}

// newImmutableID returns an id shaped like Exchange's immutable ids
// ("AAkALgAAAAAA…").
func newImmutableID() string {
	b := make([]byte, 46)
	copy(b, []byte{0x00, 0x09, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x00})
	if _, err := rand.Read(b[8:]); err != nil {
		panic(err)
	}
	return base64.URLEncoding.EncodeToString(b)
}

// wellFormedID reports whether s could be an id this emulator minted;
// anything else answers 400 ErrorInvalidIdMalformed.
func wellFormedID(s string) bool {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawURLEncoding.DecodeString(s)
	}
	return err == nil && len(b) >= 8 && b[0] == 0
}

func newGUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// store persists mailboxes in bbolt: one bucket per mailbox holding "meta",
// and sub-buckets folders, contacts, photos, tombs and ftombs. A nil store
// (in-memory emulator) persists nothing.
type store struct {
	db *bolt.DB
}

var (
	bMeta     = []byte("meta")
	bFolders  = []byte("folders")
	bContacts = []byte("contacts")
	bPhotos   = []byte("photos")
	bTombs    = []byte("tombs")
	bFTombs   = []byte("ftombs")
)

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "graph.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("graphemu: open store: %w", err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error {
	if s == nil {
		return nil
	}
	return s.db.Close()
}

// op is one write inside a mailbox bucket; a nil val deletes.
type op struct {
	bucket []byte
	key    []byte
	val    []byte
}

func putJSON(bucket []byte, key string, v any) op {
	return op{bucket: bucket, key: []byte(key), val: mustJSON(v)}
}

func del(bucket []byte, key string) op { return op{bucket: bucket, key: []byte(key)} }

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// save writes the mailbox header and ops in one transaction.
func (s *store) save(mb *mailbox, ops ...op) error {
	if s == nil {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists([]byte(strings.ToLower(mb.meta.UPN)))
		if err != nil {
			return err
		}
		if err := root.Put(bMeta, mustJSON(mb.meta)); err != nil {
			return err
		}
		for _, o := range ops {
			b, err := root.CreateBucketIfNotExists(o.bucket)
			if err != nil {
				return err
			}
			if o.val == nil {
				err = b.Delete(o.key)
			} else {
				err = b.Put(o.key, o.val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// load reads every mailbox.
func (s *store) load() (map[string]*mailbox, error) {
	out := map[string]*mailbox{}
	if s == nil {
		return out, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, root *bolt.Bucket) error {
			mb := newMailbox()
			if err := json.Unmarshal(root.Get(bMeta), &mb.meta); err != nil {
				return fmt.Errorf("mailbox %s: %w", name, err)
			}
			each := func(bucket []byte, fn func(k, v []byte) error) error {
				b := root.Bucket(bucket)
				if b == nil {
					return nil
				}
				return b.ForEach(fn)
			}
			if err := each(bFolders, func(_, v []byte) error {
				f := &folder{}
				if err := json.Unmarshal(v, f); err != nil {
					return err
				}
				mb.folders[f.ID] = f
				return nil
			}); err != nil {
				return err
			}
			if err := each(bContacts, func(_, v []byte) error {
				c := &contact{}
				if err := json.Unmarshal(v, c); err != nil {
					return err
				}
				mb.put(c)
				return nil
			}); err != nil {
				return err
			}
			if err := each(bPhotos, func(k, v []byte) error {
				mb.photos[string(k)] = append([]byte(nil), v...)
				return nil
			}); err != nil {
				return err
			}
			for _, t := range []struct {
				b   []byte
				dst *[]tomb
			}{{bTombs, &mb.tombs}, {bFTombs, &mb.ftombs}} {
				if err := each(t.b, func(_, v []byte) error {
					var tb tomb
					if err := json.Unmarshal(v, &tb); err != nil {
						return err
					}
					*t.dst = append(*t.dst, tb) // keys are big-endian seqs: already ascending
					return nil
				}); err != nil {
					return err
				}
			}
			out[strings.ToLower(mb.meta.UPN)] = mb
			return nil
		})
	})
	return out, err
}
