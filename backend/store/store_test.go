package store_test

import (
	"path/filepath"
	"testing"

	"github.com/contactsdav/contactsdav/backend/store"
	"github.com/contactsdav/contactsdav/backend/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(store.Retention(3))
	})
}

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenBolt(filepath.Join(t.TempDir(), "sync.db"), store.Retention(3))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync.db")
	storetest.RunReopen(t, func(t *testing.T) store.Store {
		s, err := store.OpenBolt(path, store.Retention(3))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
