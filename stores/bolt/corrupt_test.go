package bolt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/bolt"
)

// filled writes a store with n keys at path and closes it.
func filled(t *testing.T, path string, n int) {
	t.Helper()
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var entries []strata.Entry
	for i := range n {
		entries = append(entries, strata.Entry{Key: storetest.CrashKey(i), Value: bytes.Repeat([]byte{'v'}, 100)})
	}
	if err := s.PutMany(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// overwrite replaces len(b) bytes of the file at off.
func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenBadFiles opens files that are not usable stores: each must fail
// with a clear error, quickly, and never panic.
func TestOpenBadFiles(t *testing.T) {
	const page = 4096
	cases := []storetest.BadOpen{
		{Name: "random bytes", Make: func(t *testing.T, path string) {
			os.WriteFile(path, storetest.RandomBytes(64<<10), 0o600)
		}, Target: strata.ErrCorrupt},
		{Name: "text file", Make: func(t *testing.T, path string) {
			os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600)
		}, Target: strata.ErrCorrupt},
		{Name: "short file", Make: func(t *testing.T, path string) {
			os.WriteFile(path, []byte("tiny"), 0o600)
		}, Target: strata.ErrCorrupt},
		{Name: "meta pages zeroed", Make: func(t *testing.T, path string) {
			filled(t, path, 100)
			overwrite(t, path, 0, make([]byte, 2*page))
		}, Target: strata.ErrCorrupt},
		{Name: "meta pages scrambled", Make: func(t *testing.T, path string) {
			filled(t, path, 100)
			overwrite(t, path, 16, storetest.RandomBytes(64))
			overwrite(t, path, page+16, storetest.RandomBytes(64))
		}, Target: strata.ErrCorrupt},
		{Name: "directory", Make: func(t *testing.T, path string) {
			os.Mkdir(path, 0o700)
		}}, // any error
		{Name: "foreign bucket", Make: func(t *testing.T, path string) {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bbolt.Tx) error {
				b, _ := tx.CreateBucket([]byte(bolt.DefaultBucket))
				return b.Put([]byte("config"), []byte("x"))
			})
			db.Close()
		}, Target: strata.ErrCorrupt},
	}
	storetest.OpenFails(t, "bad.db", func(path string) (strata.Store, error) {
		return bolt.Open(path, &bolt.Options{OpenTimeout: time.Second})
	}, cases)
}

// TestDamagedPages scrambles the data pages of a store: whatever bbolt
// makes of them, every call returns (an error or a result) and none
// panics, and Verify reports the damage at Open.
func TestDamagedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "damaged.db")
	filled(t, path, 2000)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	db.View(func(tx *bbolt.Tx) error { size = tx.Size(); return nil })
	db.Close()
	// Pages 0-1 are the meta pages; scramble a few of the first half of the
	// rest (leaves: the branch pages and the freelist are written last).
	for off := int64(5 * 4096); off < size/2; off += 8 * 4096 {
		overwrite(t, path, off, storetest.RandomBytes(4096))
	}
	s, err := bolt.Open(path, &bolt.Options{Verify: true})
	if err == nil {
		s.Close()
		t.Fatal("Open with Verify of a damaged file succeeded")
	}
	if !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("Open with Verify: %v, want ErrCorrupt", err)
	}
	t.Logf("Open with Verify: %.200s", err)
	storetest.DamageReported(t, open, path, "file", 2000, 37)
}

// TestMalformedValue stores values without a strata header under the
// store's bucket: every read of them reports ErrCorrupt, and writing or
// deleting repairs them.
func TestMalformedValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	storetest.Malformed(t, open, path, func(values map[string][]byte) {
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bbolt.Tx) error {
			for k, v := range values {
				if err := tx.Bucket([]byte(bolt.DefaultBucket)).Put([]byte(k), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
