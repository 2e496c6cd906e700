package pebble_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/stores/pebble"
)

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
		b.Set(storetest.CrashKey(i), ttlval.Encode(0, bytes.Repeat([]byte{'v'}, 100)), nil)
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
	copy(data[mid:], storetest.RandomBytes(len(data)/2))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenBadDirs opens paths that are not usable stores: each must fail
// with a clear error, quickly, and never panic.
func TestOpenBadDirs(t *testing.T) {
	cases := []storetest.BadOpen{
		{Name: "regular file", Make: func(t *testing.T, dir string) {
			os.WriteFile(dir, storetest.RandomBytes(4096), 0o600)
		}, Target: strata.ErrCorrupt},
		{Name: "directory of other files", Make: func(t *testing.T, dir string) {
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o600)
		}, Target: strata.ErrCorrupt},
		{Name: "scrambled manifest", Make: func(t *testing.T, dir string) {
			filled(t, dir, 1000)
			for _, f := range files(t, dir, "MANIFEST-", "") {
				scramble(t, f)
			}
		}, Target: strata.ErrCorrupt},
		{Name: "truncated manifest", Make: func(t *testing.T, dir string) {
			filled(t, dir, 1000)
			for _, f := range files(t, dir, "MANIFEST-", "") {
				os.Truncate(f, 10)
			}
		}, Target: strata.ErrCorrupt},
		{Name: "missing table", Make: func(t *testing.T, dir string) {
			filled(t, dir, 1000)
			for _, f := range files(t, dir, "", ".sst") {
				os.Remove(f)
			}
		}, Target: strata.ErrCorrupt},
		{Name: "foreign database", Make: func(t *testing.T, dir string) {
			db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
			if err != nil {
				t.Fatal(err)
			}
			db.Set([]byte("config"), []byte("x"), pebbledb.Sync)
			db.Close()
		}, Target: strata.ErrCorrupt},
	}
	storetest.OpenFails(t, "db", func(dir string) (strata.Store, error) {
		return pebble.Open(dir, nil)
	}, cases)
}

// TestDamagedTable scrambles the data of a table file: reads of it report
// ErrCorrupt, and none panics.
func TestDamagedTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	filled(t, dir, 5000)
	for _, f := range files(t, dir, "", ".sst") {
		scramble(t, f)
	}
	t.Logf("%d calls failed", storetest.DamageReported(t, open, dir, "table", 5000, 97))
}

// TestMalformedValue stores values without a strata header: every read of
// them reports ErrCorrupt, and writing or deleting repairs them.
func TestMalformedValue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	storetest.Malformed(t, open, dir, func(values map[string][]byte) {
		db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range values {
			db.Set([]byte(k), v, pebbledb.Sync)
		}
		db.Close()
	})
}
