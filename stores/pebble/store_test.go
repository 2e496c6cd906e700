package pebble_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/pebble"
)

// TestReopen checks that values and absolute expiries survive a close and
// reopen.
func TestReopen(t *testing.T) {
	storetest.Reopen(t, open, filepath.Join(t.TempDir(), "db"), conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
}

// TestSweep checks that expired keys are deleted, by Sweep and by the
// background sweep, in chunks, and that live keys stay.
func TestSweep(t *testing.T) {
	storetest.Sweep(t, open, func(s storetest.Store) int { return pebble.RawKeyCount(s.(*pebble.Store)) })
}

// TestURL opens stores through strata.Open and checks that the opener
// rejects what it does not understand.
func TestURL(t *testing.T) {
	dir := storetest.URL(t, "pebble", "a", "no_sync=true&cache_size=1048576&default_ttl=1m&max_value_size=10&sweep_interval=5s",
		"?cache=1", "?no_sync=maybe", "?cache_size=-1", "?default_ttl=forever")
	if fi, err := os.Stat(filepath.Join(dir, "relative")); err != nil || !fi.IsDir() {
		t.Fatalf("pebble:relative is not a directory: %v", err)
	}
}

// TestComparerRefused checks that Configure cannot change the key order.
func TestComparerRefused(t *testing.T) {
	reverse := *pebbledb.DefaultComparer
	reverse.Name = "reverse"
	reverse.Compare = func(a, b []byte) int { return pebbledb.DefaultComparer.Compare(b, a) }
	s, err := pebble.Open(filepath.Join(t.TempDir(), "db"), &pebble.Options{
		Configure: func(o *pebbledb.Options) { o.Comparer = &reverse },
	})
	if err == nil {
		s.Close()
		t.Fatal("Open with another Comparer succeeded")
	}
	if !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("Open with another Comparer: %v, want ErrInvalidConfig", err)
	}
}

// TestConfigure checks that the Configure hook sees strata's options and
// that its changes reach Pebble.
func TestConfigure(t *testing.T) {
	var seen int64
	s, err := pebble.Open(filepath.Join(t.TempDir(), "db"), &pebble.Options{
		CacheSize: 3 << 20,
		Configure: func(o *pebbledb.Options) {
			seen = o.CacheSize
			o.MemTableSize = 1 << 20
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seen != 3<<20 {
		t.Fatalf("Configure saw CacheSize %d, want %d", seen, 3<<20)
	}
	ctx := t.Context()
	big := make([]byte, 64<<10)
	for i := range 64 { // 4 MiB through a 1 MiB memtable: flushes
		if err := s.Put(ctx, fmt.Appendf(nil, "k%03d", i), big, 0); err != nil {
			t.Fatal(err)
		}
	}
	storetest.WaitFor(t, "a memtable flush", func() bool { return s.Stats().Gauges["flushes_total"] > 0 })
}

// TestStats checks the Pebble gauges.
func TestStats(t *testing.T) {
	g := storetest.Stats(t, open, "pebble", "disk_usage_bytes", "memtable_size_bytes", "compactions_total", "compaction_debt_bytes",
		"flushes_total", "read_amplification", "block_cache_size_bytes", "wal_size_bytes")
	if g["memtable_size_bytes"] <= 0 || g["disk_usage_bytes"] <= 0 {
		t.Fatalf("gauges after a write: %v", g)
	}
}
