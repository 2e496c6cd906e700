package bolt_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
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

// TestReopen checks that values and absolute expiries survive a close and
// reopen, and that a second bucket in the same file is separate.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := t.Context()
	s := storetest.Reopen(t, clock, func(t *testing.T) storetest.Store {
		return openAt(t, path, &bolt.Options{Clock: clock})
	})
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
	storetest.Sweep(t, func(t *testing.T, clock strata.Clock, interval time.Duration) (storetest.Sweeper, func() int) {
		s := openAt(t, filepath.Join(t.TempDir(), "s.db"), &bolt.Options{Clock: clock, SweepInterval: interval, NoSync: true})
		return s, func() int { return bolt.RawKeyCount(s) }
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
	storetest.URLsRejected(t,
		"bolt://"+filepath.Join(dir, "b.db")+"?bukket=x",
		"bolt://"+filepath.Join(dir, "b.db")+"?no_sync=maybe",
		"bolt://"+filepath.Join(dir, "b.db")+"?open_timeout=soon",
		"bolt://"+filepath.Join(dir, "b.db")+"?file_mode=rw",
		"bolt://host/path.db",
		"bolt://",
	)
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
