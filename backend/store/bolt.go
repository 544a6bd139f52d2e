package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is the persistent Store: one bbolt file in the data folder,
// namespaced by user, so sync tokens survive restarts.
//
// Layout: users/<user>/slugs/<slug> = folder id, and
// users/<user>/books/<book>/{meta, members, log, names, tombs} where log maps
// seq → change, names maps name → seq of its live log entry and tombs maps
// seq → name for live tombstones, oldest first, for retention.
type BoltStore struct {
	cfg config
	db  *bolt.DB
}

var (
	bUsers   = []byte("users")
	bSlugs   = []byte("slugs")
	bBooks   = []byte("books")
	bMeta    = []byte("meta")
	bMembers = []byte("members")
	bLog     = []byte("log")
	bNames   = []byte("names")
	bTombs   = []byte("tombs")

	kEpoch = []byte("epoch")
	kSeq   = []byte("seq")
	kFloor = []byte("floor")
	kCount = []byte("tombs")
	kDelta = []byte("delta")
)

// OpenBolt opens or creates the store file at path.
func OpenBolt(path string, opts ...Option) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bUsers)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	return &BoltStore{cfg: newConfig(opts), db: db}, nil
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func userBucket(tx *bolt.Tx, user string, create bool) (*bolt.Bucket, error) {
	root := tx.Bucket(bUsers)
	if !create {
		return root.Bucket([]byte(user)), nil
	}
	return root.CreateBucketIfNotExists([]byte(user))
}

// bookBucket returns a book's bucket, or nil when it does not exist and
// create is false.
func bookBucket(tx *bolt.Tx, user, book string, create bool) (*bolt.Bucket, error) {
	ub, err := userBucket(tx, user, create)
	if ub == nil || err != nil {
		return nil, err
	}
	if !create {
		books := ub.Bucket(bBooks)
		if books == nil {
			return nil, nil
		}
		return books.Bucket([]byte(book)), nil
	}
	books, err := ub.CreateBucketIfNotExists(bBooks)
	if err != nil {
		return nil, err
	}
	if bb := books.Bucket([]byte(book)); bb != nil {
		return bb, nil
	}
	bb, err := books.CreateBucket([]byte(book))
	if err != nil {
		return nil, err
	}
	for _, name := range [][]byte{bMeta, bMembers, bLog, bNames, bTombs} {
		if _, err := bb.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	return bb, bb.Bucket(bMeta).Put(kEpoch, u64(newEpoch()))
}

func readBook(bb *bolt.Bucket) Book {
	meta := bb.Bucket(bMeta)
	return Book{
		Epoch:     getU64(meta, kEpoch),
		Seq:       getU64(meta, kSeq),
		Floor:     getU64(meta, kFloor),
		DeltaLink: string(meta.Get(kDelta)),
	}
}

// Slugs implements Store.
func (s *BoltStore) Slugs(_ context.Context, user string) (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		ub, _ := userBucket(tx, user, false)
		if ub == nil || ub.Bucket(bSlugs) == nil {
			return nil
		}
		return ub.Bucket(bSlugs).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	return out, wrap(err)
}

// SetSlug implements Store.
func (s *BoltStore) SetSlug(_ context.Context, user, slug, folderID string) error {
	return wrap(s.db.Update(func(tx *bolt.Tx) error {
		ub, err := userBucket(tx, user, true)
		if err != nil {
			return err
		}
		sb, err := ub.CreateBucketIfNotExists(bSlugs)
		if err != nil {
			return err
		}
		return sb.Put([]byte(slug), []byte(folderID))
	}))
}

// DeleteSlug implements Store.
func (s *BoltStore) DeleteSlug(_ context.Context, user, slug string) error {
	return wrap(s.db.Update(func(tx *bolt.Tx) error {
		ub, _ := userBucket(tx, user, false)
		if ub == nil || ub.Bucket(bSlugs) == nil {
			return nil
		}
		return ub.Bucket(bSlugs).Delete([]byte(slug))
	}))
}

// Book implements Store.
func (s *BoltStore) Book(_ context.Context, user, book string) (Book, error) {
	var b Book
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		bb, err := bookBucket(tx, user, book, false)
		if bb != nil {
			b, found = readBook(bb), true
		}
		return err
	})
	if err != nil || found {
		return b, wrap(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		bb, err := bookBucket(tx, user, book, true)
		if err != nil {
			return err
		}
		b = readBook(bb)
		return nil
	})
	return b, wrap(err)
}

// Members implements Store.
func (s *BoltStore) Members(_ context.Context, user, book string) ([]Member, error) {
	var out []Member
	err := s.db.View(func(tx *bolt.Tx) error {
		bb, err := bookBucket(tx, user, book, false)
		if bb == nil || err != nil {
			return err
		}
		mb := bb.Bucket(bMembers)
		out = make([]Member, 0, mb.Stats().KeyN)
		return mb.ForEach(func(k, v []byte) error {
			var m Member
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("member %q: %w", k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	return out, wrap(err)
}

// logEntry is a change as stored under its seq.
type logEntry struct {
	Name    string `json:"n"`
	ETag    string `json:"e,omitempty"`
	Deleted bool   `json:"d,omitempty"`
}

// Apply implements Store.
func (s *BoltStore) Apply(_ context.Context, user, book string, u Update) (Book, error) {
	var b Book
	err := s.db.Update(func(tx *bolt.Tx) error {
		bb, err := bookBucket(tx, user, book, true)
		if err != nil {
			return err
		}
		a := boltApply{bb: bb, meta: bb.Bucket(bMeta), seq: getU64(bb.Bucket(bMeta), kSeq)}
		mb := bb.Bucket(bMembers)
		for _, name := range u.Delete {
			if mb.Get([]byte(name)) == nil {
				continue
			}
			if err := mb.Delete([]byte(name)); err != nil {
				return err
			}
			if err := a.append(logEntry{Name: name, Deleted: true}); err != nil {
				return err
			}
		}
		for _, m := range u.Put {
			if old := mb.Get([]byte(m.Name)); old != nil {
				var om Member
				if json.Unmarshal(old, &om) == nil && om.ETag == m.ETag && om.ID == m.ID {
					if om != m {
						if err := putJSON(mb, []byte(m.Name), m); err != nil {
							return err
						}
					}
					continue
				}
			}
			if err := putJSON(mb, []byte(m.Name), m); err != nil {
				return err
			}
			if err := a.append(logEntry{Name: m.Name, ETag: m.ETag}); err != nil {
				return err
			}
		}
		if u.DeltaLink != nil {
			if err := a.meta.Put(kDelta, []byte(*u.DeltaLink)); err != nil {
				return err
			}
		}
		if err := a.retain(s.cfg.retention); err != nil {
			return err
		}
		if err := a.meta.Put(kSeq, u64(a.seq)); err != nil {
			return err
		}
		b = readBook(bb)
		return nil
	})
	return b, wrap(err)
}

type boltApply struct {
	bb, meta *bolt.Bucket
	seq      uint64
}

// append logs one change, superseding the name's previous entry.
func (a *boltApply) append(e logEntry) error {
	lb, nb, tb := a.bb.Bucket(bLog), a.bb.Bucket(bNames), a.bb.Bucket(bTombs)
	tombs := getU64(a.meta, kCount)
	if prev := nb.Get([]byte(e.Name)); prev != nil {
		if tb.Get(prev) != nil {
			if err := tb.Delete(prev); err != nil {
				return err
			}
			tombs--
		}
		if err := lb.Delete(prev); err != nil {
			return err
		}
	}
	a.seq++
	k := u64(a.seq)
	if err := putJSON(lb, k, e); err != nil {
		return err
	}
	if err := nb.Put([]byte(e.Name), k); err != nil {
		return err
	}
	if e.Deleted {
		if err := tb.Put(k, []byte(e.Name)); err != nil {
			return err
		}
		tombs++
	}
	return a.meta.Put(kCount, u64(tombs))
}

// retain drops the oldest tombstones beyond n and raises the floor past them.
func (a *boltApply) retain(n int) error {
	tombs := getU64(a.meta, kCount)
	if tombs <= uint64(n) {
		return nil
	}
	lb, nb, tb := a.bb.Bucket(bLog), a.bb.Bucket(bNames), a.bb.Bucket(bTombs)
	floor := getU64(a.meta, kFloor)
	var drop [][2][]byte
	c := tb.Cursor()
	for k, v := c.First(); k != nil && tombs > uint64(n); k, v = c.Next() {
		drop = append(drop, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
		tombs--
	}
	for _, d := range drop {
		for _, err := range []error{tb.Delete(d[0]), lb.Delete(d[0]), nb.Delete(d[1])} {
			if err != nil {
				return err
			}
		}
		floor = max(floor, binary.BigEndian.Uint64(d[0]))
	}
	if err := a.meta.Put(kFloor, u64(floor)); err != nil {
		return err
	}
	return a.meta.Put(kCount, u64(tombs))
}

// Changes implements Store.
func (s *BoltStore) Changes(_ context.Context, user, book string, epoch, seq uint64, limit int) ([]Change, error) {
	var out []Change
	err := s.db.View(func(tx *bolt.Tx) error {
		bb, err := bookBucket(tx, user, book, false)
		if err != nil {
			return err
		}
		if bb == nil {
			return ErrExpired
		}
		if err := checkPosition(readBook(bb), epoch, seq); err != nil {
			return err
		}
		c := bb.Bucket(bLog).Cursor()
		for k, v := c.Seek(u64(seq + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) == limit {
				break
			}
			var e logEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("log entry %x: %w", k, err)
			}
			out = append(out, Change{Seq: binary.BigEndian.Uint64(k), Name: e.Name, ETag: e.ETag, Deleted: e.Deleted})
		}
		return nil
	})
	return out, wrap(err)
}

// DeleteBook implements Store.
func (s *BoltStore) DeleteBook(_ context.Context, user, book string) error {
	return wrap(s.db.Update(func(tx *bolt.Tx) error {
		ub, _ := userBucket(tx, user, false)
		if ub == nil || ub.Bucket(bBooks) == nil || ub.Bucket(bBooks).Bucket([]byte(book)) == nil {
			return nil
		}
		return ub.Bucket(bBooks).DeleteBucket([]byte(book))
	}))
}

// Books implements Store.
func (s *BoltStore) Books(_ context.Context, user string) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		ub, _ := userBucket(tx, user, false)
		if ub == nil || ub.Bucket(bBooks) == nil {
			return nil
		}
		return ub.Bucket(bBooks).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, wrap(err) // bbolt iterates keys in byte order: sorted
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

func wrap(err error) error {
	if err == nil || errors.Is(err, ErrExpired) {
		return err
	}
	return fmt.Errorf("store: %w", err)
}
