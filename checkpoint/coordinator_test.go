package checkpoint_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/wait"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newCoordinator(t *testing.T, s strata.Store, o checkpoint.Options) *checkpoint.Coordinator {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	if o.Dir == "" && o.Location == "" {
		o.Dir = t.TempDir()
	}
	c, err := checkpoint.New(s, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func setValue(t *testing.T, s strata.Store, key, value string) {
	t.Helper()
	put(t, s, strata.Entry{Key: []byte(key), Value: []byte(value), TTL: strata.NoExpiry})
}

func TestCoordinator(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{MaxCheckpoints: 3})
	var ids []string
	for i := range 5 {
		setValue(t, s, "v", strconv.Itoa(i))
		setValue(t, s, "k"+strconv.Itoa(i), "x")
		m, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Entries != int64(i+2) || m.Source != "memory" {
			t.Fatalf("manifest %+v", m)
		}
		ids = append(ids, m.ID)
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("ids not in creation order: %v", ids)
	}
	// Retention kept the newest three.
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, in := range list {
		if in.Err != nil || in.Manifest.ID != in.ID || in.Size <= 0 {
			t.Fatalf("List: %+v", in)
		}
		listed = append(listed, in.ID)
	}
	if !slices.Equal(listed, ids[2:]) {
		t.Fatalf("List %v, want %v", listed, ids[2:])
	}
	if _, err := c.Verify(ctx, ids[3]); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := c.Verify(ctx, ids[0]); !errors.Is(err, checkpoint.ErrNoCheckpoint) || !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("Verify of a deleted checkpoint: %v", err)
	}

	// Restore an older one, then the latest.
	rep, err := c.Restore(ctx, ids[3])
	if err != nil || rep.ID != ids[3] {
		t.Fatalf("Restore: %+v, %v", rep, err)
	}
	if v, _ := s.Get(ctx, []byte("v")); string(v) != "3" {
		t.Fatalf("restored v=%q, want 3", v)
	}
	if _, err := s.Get(ctx, []byte("k4")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("replace kept k4: %v", err)
	}
	rep, err = c.RestoreLatest(ctx)
	if err != nil || rep.ID != ids[4] || len(rep.Skipped) != 0 {
		t.Fatalf("RestoreLatest: %+v, %v", rep, err)
	}
	st := c.Stats()
	if st.Created != 5 || st.Failures != 0 || st.Restores != 2 || st.LastID != ids[4] || st.TotalBytes == 0 || st.LastDuration <= 0 || st.LastTime.IsZero() {
		t.Fatalf("stats %+v", st)
	}

	// A new Coordinator on the directory continues the sequence.
	c2 := newCoordinator(t, s, checkpoint.Options{Dir: c.Dir()})
	m, err := c2.Checkpoint(ctx)
	if err != nil || m.ID <= ids[4] {
		t.Fatalf("next id %q after %q: %v", m.ID, ids[4], err)
	}
}

// corruptFile flips one byte in the middle of path.
func corruptFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreLatestFallback(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{})
	var ids []string
	for i := range 3 {
		for j := range 500 {
			setValue(t, s, "k"+strconv.Itoa(j), strconv.Itoa(i*j))
		}
		setValue(t, s, "gen", strconv.Itoa(i))
		m, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Damage the newest (one byte) and truncate the middle one.
	p2, _ := c.Path(ids[2])
	corruptFile(t, p2)
	p1, _ := c.Path(ids[1])
	if err := os.Truncate(p1, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, ids[2]); !errors.Is(err, strata.ErrCorrupt) || !strings.Contains(err.Error(), ids[2]) {
		t.Fatalf("Verify of the damaged file: %v (want ErrCorrupt naming it)", err)
	}
	dst := newMem(t, nil)
	setValue(t, dst, "stale", "x")
	c2 := newCoordinator(t, dst, checkpoint.Options{Dir: c.Dir()})
	// Restoring the damaged one by id writes nothing.
	if _, err := c2.Restore(ctx, ids[2]); !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("Restore of the damaged file: %v", err)
	}
	if v, err := dst.Get(ctx, []byte("stale")); err != nil || string(v) != "x" {
		t.Fatalf("a failed restore changed the store: %q, %v", v, err)
	}
	rep, err := c2.RestoreLatest(ctx)
	if err != nil || rep.ID != ids[0] {
		t.Fatalf("RestoreLatest: %+v, %v; want %s", rep, err, ids[0])
	}
	if len(rep.Skipped) != 2 || rep.Skipped[0].ID != ids[2] || rep.Skipped[1].ID != ids[1] ||
		!errors.Is(rep.Skipped[0].Err, strata.ErrCorrupt) || !errors.Is(rep.Skipped[1].Err, strata.ErrCorrupt) {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	if v, _ := dst.Get(ctx, []byte("gen")); string(v) != "0" {
		t.Fatalf("restored generation %q, want 0", v)
	}
	if _, err := dst.Get(ctx, []byte("stale")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatal("replace kept a stale key")
	}
	st := c2.Stats()
	if st.Skipped != 2 || len(st.LastSkipped) != 2 || st.Restores != 1 || st.RestoreFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
	// List still shows all three; the truncated one without a manifest.
	list, _ := c2.List()
	if len(list) != 3 || list[1].Err == nil || !errors.Is(list[1].Err, strata.ErrCorrupt) || list[0].Err != nil {
		t.Fatalf("List: %+v", list)
	}

	// With every checkpoint damaged, the error says so and names each.
	p0, _ := c.Path(ids[0])
	corruptFile(t, p0)
	_, err = c2.RestoreLatest(ctx)
	if !errors.Is(err, checkpoint.ErrNoCheckpoint) || !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("RestoreLatest with no valid checkpoint: %v", err)
	}
	for _, id := range ids {
		if !strings.Contains(err.Error(), id) {
			t.Fatalf("error does not name %s: %v", id, err)
		}
	}
}

// TestRetentionKeepsNewest: even with MaxCheckpoints 1 and newer-sorting
// files around, the checkpoint just published is never deleted.
func TestRetentionKeepsNewest(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, nil)
	dir := t.TempDir()
	// A foreign checkpoint whose id sorts after the Coordinator's.
	if err := os.WriteFile(filepath.Join(dir, "zzz.ckpt"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCoordinator(t, s, checkpoint.Options{Dir: dir, MaxCheckpoints: 1})
	setValue(t, s, "a", "1")
	m, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, m.ID); err != nil {
		t.Fatalf("the new checkpoint was deleted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "zzz.ckpt")); err != nil {
		t.Fatalf("the newest-sorting file was deleted: %v", err)
	}
}

// TestSequenceAcrossWriters: a second Coordinator on the same directory
// (the strata checkpoint command next to the application's own) publishes
// checkpoints meanwhile. The next id of the first must still sort after
// them, or RestoreLatest would restore the other's older state and
// retention would delete the first one's newer checkpoints.
func TestSequenceAcrossWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	app := newMem(t, nil)
	cli := newMem(t, nil)
	ca := newCoordinator(t, app, checkpoint.Options{Dir: dir, MaxCheckpoints: 3})
	cb := newCoordinator(t, cli, checkpoint.Options{Dir: dir, MaxCheckpoints: 3})
	setValue(t, cli, "v", "other writer")
	for range 3 {
		if _, err := cb.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setValue(t, app, "v", "newest")
	m, err := ca.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := ca.List()
	if err != nil {
		t.Fatal(err)
	}
	if last := list[len(list)-1].ID; last != m.ID {
		t.Fatalf("newest checkpoint %s does not sort last (last is %s)", m.ID, last)
	}
	dst := newMem(t, nil)
	rc := newCoordinator(t, dst, checkpoint.Options{Dir: dir})
	rep, err := rc.RestoreLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ID != m.ID {
		t.Fatalf("RestoreLatest restored %s, want the newest %s", rep.ID, m.ID)
	}
	if got := dump(t, dst)["v"].Value; got != "newest" {
		t.Fatalf("restored v = %q, want %q", got, "newest")
	}
}

func TestMinInterval(t *testing.T) {
	ctx := context.Background()
	clock := fakeClock()
	s := newMem(t, clock)
	c := newCoordinator(t, s, checkpoint.Options{MinInterval: 10 * time.Second, Clock: clock})
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(9 * time.Second)
	if _, err := c.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrTooSoon) {
		t.Fatalf("second checkpoint after 9s: %v, want ErrTooSoon", err)
	}
	clock.Advance(time.Second)
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatalf("after 10s: %v", err)
	}
	// Shutdown's final checkpoint ignores the minimum.
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Created != 3 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStartShutdown(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{Interval: 5 * time.Millisecond, MaxCheckpoints: 2})
	setValue(t, s, "a", "1")
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Fatal("Start twice succeeded")
	}
	wait.For(t, 30*time.Second, "two periodic checkpoints", func() bool { return c.Stats().Created >= 2 })
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n := c.Stats().Created
	list, _ := c.List()
	if len(list) != 2 || list[1].ID != c.Stats().LastID {
		t.Fatalf("after Shutdown: %d checkpoints, last %q, want the final one %q", len(list), list[len(list)-1].ID, c.Stats().LastID)
	}
	if err := c.Shutdown(ctx); err != nil || c.Stats().Created != n {
		t.Fatalf("second Shutdown: %v, created %d -> %d", err, n, c.Stats().Created)
	}
	for name, err := range map[string]error{
		"Checkpoint": func() error { _, err := c.Checkpoint(ctx); return err }(),
		"Restore":    func() error { _, err := c.Restore(ctx, list[0].ID); return err }(),
		"Latest":     func() error { _, err := c.RestoreLatest(ctx); return err }(),
		"Start":      c.Start(ctx),
	} {
		if !errors.Is(err, strata.ErrClosed) {
			t.Errorf("%s after Shutdown: %v", name, err)
		}
	}
	if _, err := c.Verify(ctx, list[0].ID); err != nil {
		t.Errorf("Verify after Shutdown: %v", err)
	}
}

// TestStartContext: the loop also ends with its context.
func TestStartContext(t *testing.T) {
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "a periodic checkpoint", func() bool { return c.Stats().Created >= 1 })
	cancel()
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointFailure(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{})
	s.Close()
	if _, err := c.Checkpoint(ctx); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("checkpoint of a closed store: %v", err)
	}
	st := c.Stats()
	if st.Failures != 1 || st.Created != 0 || !errors.Is(st.LastError, strata.ErrClosed) {
		t.Fatalf("stats %+v", st)
	}
	des, _ := os.ReadDir(c.Dir())
	if len(des) != 0 {
		t.Fatalf("a failed checkpoint left %v", des)
	}
}

// TestTempFiles: temporary files of dead processes are removed, those of
// live ones are not, and neither is ever listed.
func TestTempFiles(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadTmp := filepath.Join(dir, ".000000000007-x."+strconv.Itoa(dead.Process.Pid)+".tmp")
	liveTmp := filepath.Join(dir, ".000000000008-x.1.tmp") // pid 1 lives
	for _, p := range []string{deadTmp, liveTmp} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := newCoordinator(t, newMem(t, nil), checkpoint.Options{Dir: dir})
	if _, err := os.Stat(deadTmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file of a dead process kept: %v", err)
	}
	if _, err := os.Stat(liveTmp); err != nil {
		t.Fatalf("temporary file of a live process removed: %v", err)
	}
	if l, _ := c.List(); len(l) != 0 {
		t.Fatalf("List shows temporary files: %+v", l)
	}
	if _, err := c.RestoreLatest(context.Background()); !errors.Is(err, checkpoint.ErrNoCheckpoint) {
		t.Fatalf("RestoreLatest on a directory of temporary files: %v", err)
	}
	if st := c.Stats(); st.RestoreFailures != 0 {
		t.Fatalf("an empty directory counted as a restore failure: %+v", st)
	}
}

func TestInvalidIDs(t *testing.T) {
	ctx := context.Background()
	c := newCoordinator(t, newMem(t, nil), checkpoint.Options{})
	for _, id := range []string{"", "..", "../x", "a/b", "/etc/passwd", `a\b`, ".hidden", "a..b", "a\x00b", "sp ace", strings.Repeat("a", 129)} {
		for name, err := range map[string]error{
			"ValidateID": checkpoint.ValidateID(id),
			"Verify":     func() error { _, err := c.Verify(ctx, id); return err }(),
			"Restore":    func() error { _, err := c.Restore(ctx, id); return err }(),
			"Path":       func() error { _, err := c.Path(id); return err }(),
		} {
			if !errors.Is(err, checkpoint.ErrInvalidID) || !errors.Is(err, strata.ErrInvalidConfig) {
				t.Errorf("%s(%q): %v, want ErrInvalidID", name, id, err)
			}
		}
	}
	for _, id := range []string{"a", "000000000001-20250102T030405.000Z", "my_ckpt.v2"} {
		if err := checkpoint.ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q): %v", id, err)
		}
	}
}

func TestOptions(t *testing.T) {
	s := newMem(t, nil)
	for _, o := range []*checkpoint.Options{
		nil,
		{},
		{Dir: "x", Interval: -1},
		{Dir: "x", MaxCheckpoints: -1},
		{Dir: "x", MinInterval: -1},
		{Dir: "x", Level: 99},
		{Dir: "x", Mode: 7},
		{Dir: "x", Compression: 9},
	} {
		if _, err := checkpoint.New(s, o); !errors.Is(err, strata.ErrInvalidConfig) {
			t.Errorf("New(%+v): %v, want ErrInvalidConfig", o, err)
		}
	}
}

// RestoreProgress hears of a restore before it changes the target, then
// after every batch cleared or written, with the checkpoint's id and size.
func TestRestoreProgress(t *testing.T) {
	ctx := context.Background()
	src := newMem(t, nil)
	put(t, src, sampleEntries(1000)...)
	c := newCoordinator(t, src, checkpoint.Options{})
	m, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dst := newMem(t, nil)
	put(t, dst, sampleEntries(300)[200:]...) // 100 keys to clear
	var seen []checkpoint.Progress
	rc := newCoordinator(t, dst, checkpoint.Options{Dir: c.Dir(), BatchSize: 128, RestoreProgress: func(p checkpoint.Progress) {
		if p.Cleared == 0 && p.Restored == 0 {
			if got := len(dump(t, dst)); got != 100 {
				t.Errorf("a progress report at the start found %d keys in the target, want the 100 not yet cleared", got)
			}
		}
		seen = append(seen, p)
	}})
	rep, err := rc.Restore(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 2+1000/128 {
		t.Fatalf("%d progress reports for 1 clearing batch and 8 written ones: %+v", len(seen), seen)
	}
	first, last := seen[0], seen[len(seen)-1]
	if first != (checkpoint.Progress{ID: m.ID, Entries: 1000}) {
		t.Errorf("first report = %+v, want the id and size with nothing done", first)
	}
	if last.ID != m.ID || last.Entries != 1000 || last.Cleared != 100 || last.Restored != rep.Restored || last.Expired != rep.Expired || rep.Restored+rep.Expired != 1000 {
		t.Errorf("last report = %+v, report %+v", last, rep)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Restored < seen[i-1].Restored || seen[i].Cleared < seen[i-1].Cleared {
			t.Fatalf("progress went back: %+v then %+v", seen[i-1], seen[i])
		}
	}
}
