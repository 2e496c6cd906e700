package pebble_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/stores/pebble"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// filled writes a store with n keys in dir, flushed to tables, and closes
// it.
func filled(t *testing.T, dir string, n int) {
	t.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for i := range n {
		b.Set(crashKey(i), ttlval.Encode(0, bytes.Repeat([]byte{'v'}, 100)), nil)
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// files returns the names in dir that start with prefix or end with suffix.
func files(t *testing.T, dir, prefix, suffix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if (prefix != "" && strings.HasPrefix(e.Name(), prefix)) || (suffix != "" && strings.HasSuffix(e.Name(), suffix)) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s*%s file in %s", prefix, suffix, dir)
	}
	return out
}

// scramble overwrites the middle of the file at path with random bytes.
func scramble(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(data) / 4
	copy(data[mid:], randomBytes(len(data)/2))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenBadDirs opens paths that are not usable stores: each must fail
// with a clear error, quickly, and never panic.
func TestOpenBadDirs(t *testing.T) {
	cases := []struct {
		name   string
		make   func(t *testing.T, dir string)
		target error // nil: any error
	}{
		{"regular file", func(t *testing.T, dir string) {
			os.WriteFile(dir, randomBytes(4096), 0o600)
		}, strata.ErrCorrupt},
		{"directory of other files", func(t *testing.T, dir string) {
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o600)
		}, strata.ErrCorrupt},
		{"scrambled manifest", func(t *testing.T, dir string) {
			filled(t, dir, 1000)
			for _, f := range files(t, dir, "MANIFEST-", "") {
				scramble(t, f)
			}
		}, strata.ErrCorrupt},
		{"truncated manifest", func(t *testing.T, dir string) {
			filled(t, dir, 1000)
			for _, f := range files(t, dir, "MANIFEST-", "") {
				os.Truncate(f, 10)
			}
		}, strata.ErrCorrupt},
		{"missing table", func(t *testing.T, dir string) {
			filled(t, dir, 1000)
			for _, f := range files(t, dir, "", ".sst") {
				os.Remove(f)
			}
		}, strata.ErrCorrupt},
		{"foreign database", func(t *testing.T, dir string) {
			db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
			if err != nil {
				t.Fatal(err)
			}
			db.Set([]byte("config"), []byte("x"), pebbledb.Sync)
			db.Close()
		}, strata.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			c.make(t, dir)
			start := time.Now()
			s, err := pebble.Open(dir, nil)
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
			t.Logf("Open: %.300v", err)
		})
	}
}

// TestDamagedTable scrambles the data of a table file: reads of it report
// ErrCorrupt, and none panics.
func TestDamagedTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	filled(t, dir, 5000)
	for _, f := range files(t, dir, "", ".sst") {
		scramble(t, f)
	}
	s, err := pebble.Open(dir, nil)
	if err != nil {
		if !errors.Is(err, strata.ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		t.Logf("Open: %.300v", err)
		return
	}
	defer s.Close()
	ctx := t.Context()
	errs := 0
	check := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, strata.ErrNotFound) {
			return
		}
		errs++
		if !errors.Is(err, strata.ErrCorrupt) {
			t.Errorf("%s on a damaged table: %v, want ErrCorrupt", what, err)
		}
	}
	for i := 0; i < 5000; i += 97 {
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
		t.Fatal("no call on the damaged table reported the damage")
	}
	t.Logf("%d calls failed", errs)
}

// TestMalformedValue stores a value without a strata header: every read of
// it reports ErrCorrupt, and Delete removes it.
func TestMalformedValue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s, err := pebble.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Put(ctx, []byte("a"), []byte("good"), strata.NoExpiry); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	bad := ttlval.Encode(0, []byte("x"))
	bad[0] = 7 // an unknown header version
	db.Set([]byte("b"), []byte("short"), pebbledb.Sync)
	db.Set([]byte("c"), bad, pebbledb.Sync)
	db.Close()
	s, err = pebble.Open(dir, nil)
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
