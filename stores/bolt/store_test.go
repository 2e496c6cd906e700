package bolt_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/bolt"
)

// TestReopen checks that values and absolute expiries survive a close and
// reopen, and that a second bucket in the same file is separate.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := storetest.Reopen(t, open, path, clock)
	s.Close()
	for _, other := range []struct{ path, bucket string }{{path + ".other", "other"}, {path, "second"}} {
		b, err := bolt.Open(other.path, &bolt.Options{Bucket: other.bucket, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Get(t.Context(), []byte("forever"))
		b.Close()
		if !errors.Is(err, strata.ErrNotFound) {
			t.Fatalf("Get from bucket %q of %s: %v, want ErrNotFound", other.bucket, other.path, err)
		}
	}
}

// TestSweep checks that expired keys are removed from the file, by Sweep
// and by the background sweep, in chunks, and that live keys stay.
func TestSweep(t *testing.T) {
	storetest.Sweep(t, open, func(s storetest.Store) int { return bolt.RawKeyCount(s.(*bolt.Store)) })
}

// TestURL opens stores through strata.Open and checks that the opener
// rejects what it does not understand.
func TestURL(t *testing.T) {
	dir := storetest.URL(t, "bolt", "a.db", "bucket=app&no_sync=true&open_timeout=2s&default_ttl=1m&max_value_size=10&sweep_interval=5s&file_mode=0640&initial_mmap_size=1048576&verify=true",
		"?bukket=x", "?no_sync=maybe", "?open_timeout=soon", "?file_mode=rw")
	if fi, err := os.Stat(filepath.Join(dir, "a.db")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("file mode: %v, %v", fi.Mode(), err)
	}
}

// TestWritesWhileSnapshotOpen grows the file by several MiB while a
// snapshot is open: with the default mapping, no write waits for the
// snapshot, and the snapshot still sees its instant.
func TestWritesWhileSnapshotOpen(t *testing.T) {
	s := storetest.OpenTemp(t, open, storetest.Config{NoSync: true})
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
	g := storetest.Stats(t, open, "bolt", "file_size_bytes", "read_tx_total", "read_tx_open", "tx_writes_total", "free_pages")
	if g["read_tx_open"] < 1 || g["file_size_bytes"] <= 0 {
		t.Fatalf("gauges with one snapshot open: %v", g)
	}
}

// TestURLWithUserInfo checks that a server-like URL given the bolt scheme
// is refused without its password reaching the error, and that a path
// holding "@" after its first "/" still opens.
func TestURLWithUserInfo(t *testing.T) {
	ctx := t.Context()
	for _, raw := range []string{"bolt:user:hunter2@host:1/0", "bolt://user:hunter2@/x.db"} {
		_, err := strata.Open(ctx, raw)
		if !errors.Is(err, strata.ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) = %v, want ErrInvalidConfig without the password", raw, err)
		}
	}
	t.Chdir(t.TempDir())
	if err := os.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := strata.Open(ctx, "bolt:./d/state@v2.db")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat("d/state@v2.db"); err != nil {
		t.Fatal(err)
	}
}
