package checkpoint_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
)

// commitAt commits count under offset with fence token.
func commitAt(t *testing.T, s strata.Store, token uint64, offset int) {
	t.Helper()
	b := new(strata.WriteBatch).IfFence([]byte("fence"), token).
		Put([]byte("count"), []byte(strconv.Itoa(offset)), strata.NoExpiry).
		Put([]byte("offset"), []byte(strconv.Itoa(offset)), strata.NoExpiry)
	if err := strata.Commit(t.Context(), s, b); err != nil {
		t.Fatalf("commit at %d under %d: %v", offset, token, err)
	}
}

func TestAligned(t *testing.T) {
	ctx := t.Context()
	clock := fakeClock()
	s := newMem(t, clock)
	c := newCoordinator(t, s, checkpoint.Options{Aligned: true, Interval: time.Minute, MinInterval: 10 * time.Second, Clock: clock})
	if err := c.Start(ctx); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("Start of an aligned Coordinator = %v, want ErrInvalidConfig", err)
	}
	if !c.Due() {
		t.Fatal("no checkpoint yet, but Due is false")
	}
	commitAt(t, s, 5, 100)
	m, err := c.CheckpointAt(ctx, checkpoint.Cut{Offset: "100", FenceKey: []byte("fence"), Token: 5})
	if err != nil {
		t.Fatal(err)
	}
	if m.Cut == nil || m.Cut.Offset != "100" || string(m.Cut.FenceKey) != "fence" || m.Cut.Token != 5 {
		t.Fatalf("manifest cut = %+v", m.Cut)
	}
	if c.Due() {
		t.Fatal("Due right after a checkpoint")
	}
	clock.Advance(59 * time.Second)
	if c.Due() {
		t.Fatal("Due before Interval")
	}
	clock.Advance(time.Second)
	if !c.Due() {
		t.Fatal("not Due after Interval")
	}
	infos, err := c.List()
	if err != nil || len(infos) != 1 || infos[0].Manifest.Cut == nil || infos[0].Manifest.Cut.Token != 5 {
		t.Fatalf("List = %+v, %v", infos, err)
	}
	// Shutdown of an aligned Coordinator takes no checkpoint of its own.
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, _ := c.List(); len(infos) != 1 {
		t.Fatalf("%d checkpoints after Shutdown, want 1", len(infos))
	}
	if _, err := c.CheckpointAt(ctx, checkpoint.Cut{Offset: "x"}); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("CheckpointAt after Shutdown = %v", err)
	}
}

// TestRestoreStale: a checkpoint of a job's cut is not restored over
// state that a newer holder of the job's lease committed, unless forced.
func TestRestoreStale(t *testing.T) {
	ctx := t.Context()
	s := newMem(t, nil)
	dir := t.TempDir()
	c := newCoordinator(t, s, checkpoint.Options{Dir: dir, Aligned: true})
	commitAt(t, s, 5, 100)
	if _, err := c.CheckpointAt(ctx, checkpoint.Cut{Offset: "100", FenceKey: []byte("fence"), Token: 5}); err != nil {
		t.Fatal(err)
	}
	commitAt(t, s, 5, 150) // same holder, later: restoring rolls back consistently
	rep, err := c.RestoreLatest(ctx)
	if err != nil {
		t.Fatalf("restore under the same token: %v", err)
	}
	if v, _ := s.Get(ctx, []byte("offset")); string(v) != "100" || rep.Manifest.Cut.Offset != "100" {
		t.Fatalf("offset after restore = %q", v)
	}
	commitAt(t, s, 6, 200) // a newer holder
	_, err = c.RestoreLatest(ctx)
	if !errors.Is(err, checkpoint.ErrStale) || !errors.Is(err, strata.ErrFenced) {
		t.Fatalf("restore over a newer fence = %v, want ErrStale", err)
	}
	for _, k := range []string{"count", "offset"} {
		if v, _ := s.Get(ctx, []byte(k)); string(v) != "200" {
			t.Fatalf("%s = %q after a refused restore, want 200", k, v)
		}
	}
	infos, _ := c.List()
	path := infos[0].Path
	if _, err := checkpoint.RestoreFile(ctx, path, s, nil); !errors.Is(err, checkpoint.ErrStale) {
		t.Fatalf("RestoreFile over a newer fence = %v, want ErrStale", err)
	}
	if _, err := checkpoint.RestoreFile(ctx, path, s, &checkpoint.RestoreOptions{Force: true}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	if tok, _ := strata.ReadFence(ctx, s, []byte("fence")); tok != 5 {
		t.Fatalf("fence after a forced restore = %d, want the checkpoint's 5", tok)
	}
}
