package bolt_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
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
		entries = append(entries, strata.Entry{Key: crashKey(i), Value: bytes.Repeat([]byte{'v'}, 100)})
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

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// TestOpenBadFiles opens files that are not usable stores: each must fail
// with a clear error, quickly, and never panic.
func TestOpenBadFiles(t *testing.T) {
	const page = 4096
	cases := []struct {
		name   string
		make   func(t *testing.T, path string)
		target error // nil: any error
	}{
		{"random bytes", func(t *testing.T, path string) {
			os.WriteFile(path, randomBytes(64<<10), 0o600)
		}, strata.ErrCorrupt},
		{"text file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600)
		}, strata.ErrCorrupt},
		{"short file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("tiny"), 0o600)
		}, strata.ErrCorrupt},
		{"meta pages zeroed", func(t *testing.T, path string) {
			filled(t, path, 100)
			overwrite(t, path, 0, make([]byte, 2*page))
		}, strata.ErrCorrupt},
		{"meta pages scrambled", func(t *testing.T, path string) {
			filled(t, path, 100)
			overwrite(t, path, 16, randomBytes(64))
			overwrite(t, path, page+16, randomBytes(64))
		}, strata.ErrCorrupt},
		{"directory", func(t *testing.T, path string) {
			os.Mkdir(path, 0o700)
		}, nil},
		{"foreign bucket", func(t *testing.T, path string) {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bbolt.Tx) error {
				b, _ := tx.CreateBucket([]byte(bolt.DefaultBucket))
				return b.Put([]byte("config"), []byte("x"))
			})
			db.Close()
		}, strata.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.db")
			c.make(t, path)
			start := time.Now()
			s, err := bolt.Open(path, &bolt.Options{OpenTimeout: time.Second})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if c.target != nil && !errors.Is(err, c.target) {
				t.Fatalf("Open: %v, want an error matching %v", err, c.target)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Open took %v", took)
			}
			t.Logf("Open: %v", err)
		})
	}
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
		overwrite(t, path, off, randomBytes(4096))
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
	s, err = bolt.Open(path, nil)
	if err != nil {
		if !errors.Is(err, strata.ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		t.Logf("Open without Verify: %.200s", err)
		return
	}
	defer s.Close()
	ctx := t.Context()
	var errs int
	check := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, strata.ErrNotFound) {
			return
		}
		errs++
		if !errors.Is(err, strata.ErrCorrupt) {
			t.Errorf("%s on a damaged file: %v, want ErrCorrupt", what, err)
		}
	}
	for i := 0; i < 2000; i += 37 {
		_, err := s.Get(ctx, crashKey(i))
		check("Get", err)
	}
	for _, err := range s.Keys(ctx, nil) {
		if err != nil {
			check("Keys", err)
			break
		}
	}
	if errs == 0 {
		t.Fatal("no call on the damaged file reported the damage")
	}
	// The store stays usable for what is intact: Close works.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestMalformedValue stores a value without a strata header under the
// store's bucket: every read of it reports ErrCorrupt, and Delete removes
// it.
func TestMalformedValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Put(ctx, []byte("a"), []byte("good"), strata.NoExpiry); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(bolt.DefaultBucket))
		bad := ttlval.Encode(0, []byte("x"))
		bad[0] = 7 // an unknown header version
		if err := b.Put([]byte("b"), []byte("short")); err != nil {
			return err
		}
		return b.Put([]byte("c"), bad)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("Open (the first value is good): %v", err)
	}
	defer s.Close()
	for _, k := range []string{"b", "c"} {
		key := []byte(k)
		_, err := s.Get(ctx, key)
		wantCorrupt(t, "Get", err)
		_, err = s.TTL(ctx, key)
		wantCorrupt(t, "TTL", err)
		_, err = s.GetMany(ctx, [][]byte{[]byte("a"), key})
		wantCorrupt(t, "GetMany", err)
		_, err = s.GetAndDelete(ctx, key)
		wantCorrupt(t, "GetAndDelete", err)
		_, err = s.CompareAndSwap(ctx, key, nil, []byte("v"), 0)
		wantCorrupt(t, "CompareAndSwap", err)
		_, err = s.PutIfAbsent(ctx, key, []byte("v"), 0)
		wantCorrupt(t, "PutIfAbsent", err)
	}
	var last error
	for _, err := range s.Keys(ctx, nil) {
		last = err
	}
	wantCorrupt(t, "Keys", last)
	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last = nil
	for _, err := range sn.Entries(ctx, nil) {
		last = err
	}
	sn.Close()
	wantCorrupt(t, "Entries", last)
	// Writing over or deleting a damaged value repairs it.
	if err := s.Put(ctx, []byte("b"), []byte("fixed"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, err := range s.Keys(ctx, nil) {
		if err != nil {
			t.Fatalf("Keys after the repair: %v", err)
		}
		keys = append(keys, string(k))
	}
	if strings.Join(keys, ",") != "a,b" {
		t.Fatalf("Keys after the repair = %q", keys)
	}
}

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, strata.ErrCorrupt) {
		t.Errorf("%s of a malformed value: %v, want ErrCorrupt", what, err)
	}
	var oe *strata.OpError
	if err != nil && !errors.As(err, &oe) {
		t.Errorf("%s: %v is not wrapped in a *strata.OpError", what, err)
	}
}
