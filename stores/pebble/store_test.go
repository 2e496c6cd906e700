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

func openAt(t *testing.T, dir string, o *pebble.Options) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestReopen checks that values and absolute expiries survive a close and
// reopen.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	storetest.Reopen(t, clock, func(t *testing.T) storetest.Store {
		return openAt(t, dir, &pebble.Options{Clock: clock})
	})
}

// TestSweep checks that expired keys are deleted, by Sweep and by the
// background sweep, in chunks, and that live keys stay.
func TestSweep(t *testing.T) {
	storetest.Sweep(t, func(t *testing.T, clock strata.Clock, interval time.Duration) (storetest.Sweeper, func() int) {
		s := openAt(t, filepath.Join(t.TempDir(), "db"), &pebble.Options{Clock: clock, SweepInterval: interval, NoSync: true})
		return s, func() int { return pebble.RawKeyCount(s) }
	})
}

// TestURL opens stores through strata.Open and checks that the opener
// rejects what it does not understand.
func TestURL(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := strata.Open(ctx, "pebble://"+filepath.Join(dir, "a")+"?no_sync=true&cache_size=1048576&default_ttl=1m&max_value_size=10&sweep_interval=5s")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Put(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ttl, err := strata.TTL(ctx, s, []byte("k")); err != nil || ttl <= 0 || ttl > time.Minute+time.Millisecond {
		t.Fatalf("TTL with default_ttl=1m: %v, %v", ttl, err)
	}
	if err := s.Put(ctx, []byte("k"), make([]byte, 11), 0); !errors.Is(err, strata.ErrValueTooLarge) {
		t.Fatalf("Put over max_value_size: %v", err)
	}
	storetest.URLsRejected(t,
		"pebble://"+filepath.Join(dir, "b")+"?cache=1",
		"pebble://"+filepath.Join(dir, "b")+"?no_sync=maybe",
		"pebble://"+filepath.Join(dir, "b")+"?cache_size=-1",
		"pebble://"+filepath.Join(dir, "b")+"?default_ttl=forever",
		"pebble://host/dir",
		"pebble://",
	)
	if _, err := os.Stat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a rejected URL created its directory: %v", err)
	}
	// A relative path: pebble:name.
	t.Chdir(dir)
	rel, err := strata.Open(ctx, "pebble:relative")
	if err != nil {
		t.Fatalf("Open of a relative path: %v", err)
	}
	rel.Close()
	if fi, err := os.Stat(filepath.Join(dir, "relative")); err != nil || !fi.IsDir() {
		t.Fatalf("pebble:relative: %v", err)
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
	s := openAt(t, filepath.Join(t.TempDir(), "db"), &pebble.Options{
		CacheSize: 3 << 20,
		Configure: func(o *pebbledb.Options) {
			seen = o.CacheSize
			o.MemTableSize = 1 << 20
		},
	})
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
	s := openAt(t, filepath.Join(t.TempDir(), "db"), nil)
	ctx := t.Context()
	if err := s.Put(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	sn.Close()
	for _, g := range []string{"disk_usage_bytes", "memtable_size_bytes", "compactions_total", "compaction_debt_bytes",
		"flushes_total", "read_amplification", "block_cache_size_bytes", "snapshots_open", "wal_size_bytes"} {
		if _, ok := st.Gauges[g]; !ok {
			t.Errorf("gauge %s missing from %v", g, st.Gauges)
		}
	}
	if st.Gauges["snapshots_open"] != 1 || st.Gauges["memtable_size_bytes"] <= 0 || st.Gauges["disk_usage_bytes"] <= 0 {
		t.Fatalf("gauges with one snapshot open: %v", st.Gauges)
	}
	if st.Backend != "pebble" || st.Puts != 1 || st.Keys != -1 {
		t.Fatalf("stats = %+v", st)
	}
	if st := s.Stats(); st.Gauges["snapshots_open"] != 0 {
		t.Fatalf("snapshots_open after Close = %v", st.Gauges["snapshots_open"])
	}
}
