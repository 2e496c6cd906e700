package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestReopen checks that values and absolute expiries survive a close and
// reopen.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := t.Context()
	s, err := pebble.Open(dir, &pebble.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("forever"), []byte("f"), strata.NoExpiry); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("hour"), []byte("h"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	s = openAt(t, dir, &pebble.Options{Clock: clock})
	if v, err := s.Get(ctx, []byte("forever")); err != nil || string(v) != "f" {
		t.Fatalf("Get(forever) after reopen = %q, %v", v, err)
	}
	if ttl, err := s.TTL(ctx, []byte("hour")); err != nil || ttl != 30*time.Minute {
		t.Fatalf("TTL(hour) after reopen and 30m = %v, %v; want 30m (the expiry is absolute)", ttl, err)
	}
}

// TestSweep checks that expired keys are deleted, by Sweep and by the
// background sweep, in chunks, and that live keys stay.
func TestSweep(t *testing.T) {
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := t.Context()
	fill := func(s *pebble.Store) {
		var entries []strata.Entry
		for i := range 3000 { // three sweep chunks
			ttl := 10 * time.Second
			if i%100 == 0 {
				ttl = strata.NoExpiry
			}
			entries = append(entries, strata.Entry{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("v"), TTL: ttl})
		}
		if err := s.PutMany(ctx, entries); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("Manual", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "db"), &pebble.Options{Clock: clock, SweepInterval: -1, NoSync: true})
		fill(s)
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("Sweep before expiry = %d, %v; want 0", n, err)
		}
		clock.Advance(10 * time.Second)
		if n, err := s.Sweep(ctx); err != nil || n != 2970 {
			t.Fatalf("Sweep after expiry = %d, %v; want 2970", n, err)
		}
		if n := pebble.RawKeyCount(s); n != 30 {
			t.Fatalf("%d keys left, want 30", n)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Sweep(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sweep with a cancelled context: %v", err)
		}
	})
	t.Run("Background", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "db"), &pebble.Options{Clock: clock, SweepInterval: time.Millisecond, NoSync: true})
		fill(s)
		clock.Advance(10 * time.Second)
		waitFor(t, "the background sweep", func() bool { return pebble.RawKeyCount(s) == 30 })
		n := 0
		for _, err := range s.Keys(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 30 {
			t.Fatalf("Keys after the sweep = %d, want 30", n)
		}
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
	for _, bad := range []string{
		"pebble://" + filepath.Join(dir, "b") + "?cache=1",
		"pebble://" + filepath.Join(dir, "b") + "?no_sync=maybe",
		"pebble://" + filepath.Join(dir, "b") + "?cache_size=-1",
		"pebble://" + filepath.Join(dir, "b") + "?default_ttl=forever",
		"pebble://host/dir",
		"pebble://",
	} {
		s, err := strata.Open(ctx, bad)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", bad)
		}
		if !errors.Is(err, strata.ErrInvalidConfig) {
			t.Fatalf("Open(%q): %v, want ErrInvalidConfig", bad, err)
		}
	}
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
	waitFor(t, "a memtable flush", func() bool { return s.Stats().Gauges["flushes_total"] > 0 })
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
