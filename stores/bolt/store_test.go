package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/bolt"
)

func openAt(t *testing.T, path string, o *bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, o)
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
// reopen, and that a second bucket in the same file is separate.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := t.Context()
	s, err := bolt.Open(path, &bolt.Options{Clock: clock})
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
	s = openAt(t, path, &bolt.Options{Clock: clock})
	if v, err := s.Get(ctx, []byte("forever")); err != nil || string(v) != "f" {
		t.Fatalf("Get(forever) after reopen = %q, %v", v, err)
	}
	if ttl, err := s.TTL(ctx, []byte("hour")); err != nil || ttl != 30*time.Minute {
		t.Fatalf("TTL(hour) after reopen and 30m = %v, %v; want 30m (the expiry is absolute)", ttl, err)
	}
	other := openAt(t, path+".other", &bolt.Options{Bucket: "other"})
	if _, err := other.Get(ctx, []byte("forever")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("Get from another file: %v", err)
	}
	s.Close()
	b2 := openAt(t, path, &bolt.Options{Bucket: "second", Clock: clock})
	if _, err := b2.Get(ctx, []byte("forever")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("Get from a second bucket of the same file: %v, want ErrNotFound", err)
	}
}

// TestSweep checks that expired keys are removed from the file, by Sweep
// and by the background sweep, in chunks, and that live keys stay.
func TestSweep(t *testing.T) {
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := t.Context()
	fill := func(s *bolt.Store) {
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
		s := openAt(t, filepath.Join(t.TempDir(), "s.db"), &bolt.Options{Clock: clock, SweepInterval: -1, NoSync: true})
		fill(s)
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("Sweep before expiry = %d, %v; want 0", n, err)
		}
		clock.Advance(10 * time.Second)
		if n, err := s.Sweep(ctx); err != nil || n != 2970 {
			t.Fatalf("Sweep after expiry = %d, %v; want 2970", n, err)
		}
		if n := bolt.RawKeyCount(s); n != 30 {
			t.Fatalf("%d keys left in the file, want 30", n)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Sweep(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sweep with a cancelled context: %v", err)
		}
	})
	t.Run("Background", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "s.db"), &bolt.Options{Clock: clock, SweepInterval: time.Millisecond, NoSync: true})
		fill(s)
		clock.Advance(10 * time.Second)
		waitFor(t, "the background sweep", func() bool { return bolt.RawKeyCount(s) == 30 })
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
	s, err := strata.Open(ctx, "bolt://"+filepath.Join(dir, "a.db")+"?bucket=app&no_sync=true&open_timeout=2s&default_ttl=1m&max_value_size=10&sweep_interval=5s&file_mode=0640&initial_mmap_size=1048576&verify=true")
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
	if fi, err := os.Stat(filepath.Join(dir, "a.db")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("file mode: %v, %v", fi.Mode(), err)
	}
	for _, bad := range []string{
		"bolt://" + filepath.Join(dir, "b.db") + "?bukket=x",
		"bolt://" + filepath.Join(dir, "b.db") + "?no_sync=maybe",
		"bolt://" + filepath.Join(dir, "b.db") + "?open_timeout=soon",
		"bolt://" + filepath.Join(dir, "b.db") + "?file_mode=rw",
		"bolt://host/path.db",
		"bolt://",
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
	if _, err := os.Stat(filepath.Join(dir, "b.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a rejected URL created its file: %v", err)
	}
	// A relative path: bolt:name.
	t.Chdir(dir)
	rel, err := strata.Open(ctx, "bolt:relative.db")
	if err != nil {
		t.Fatalf("Open of a relative path: %v", err)
	}
	rel.Close()
	if _, err := os.Stat(filepath.Join(dir, "relative.db")); err != nil {
		t.Fatalf("bolt:relative.db: %v", err)
	}
}

// TestWritesWhileSnapshotOpen grows the file by several MiB while a
// snapshot is open: with the default mapping, no write waits for the
// snapshot, and the snapshot still sees its instant.
func TestWritesWhileSnapshotOpen(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "s.db"), &bolt.Options{NoSync: true})
	ctx := t.Context()
	if err := s.Put(ctx, []byte("before"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	done := make(chan error, 1)
	go func() {
		big := make([]byte, 64<<10)
		for i := range 160 { // 10 MiB
			if err := s.Put(ctx, fmt.Appendf(nil, "big%04d", i), big, 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("writes blocked behind an open snapshot")
	}
	n := 0
	for en, err := range sn.Entries(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if string(en.Key) != "before" {
			t.Fatalf("snapshot sees %q, written after it", en.Key)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("snapshot yielded %d entries, want 1", n)
	}
}

// TestStats checks the bbolt gauges.
func TestStats(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "s.db"), nil)
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
	for _, g := range []string{"file_size_bytes", "read_tx_total", "read_tx_open", "tx_writes_total", "snapshots_open", "free_pages"} {
		if _, ok := st.Gauges[g]; !ok {
			t.Errorf("gauge %s missing from %v", g, st.Gauges)
		}
	}
	if st.Gauges["snapshots_open"] != 1 || st.Gauges["read_tx_open"] < 1 || st.Gauges["file_size_bytes"] <= 0 {
		t.Fatalf("gauges with one snapshot open: %v", st.Gauges)
	}
	if st.Backend != "bolt" || st.Puts != 1 || st.Keys != -1 {
		t.Fatalf("stats = %+v", st)
	}
	if st := s.Stats(); st.Gauges["snapshots_open"] != 0 {
		t.Fatalf("snapshots_open after Close = %v", st.Gauges["snapshots_open"])
	}
}
