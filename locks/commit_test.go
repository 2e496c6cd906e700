package locks_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
	"github.com/strata-kv/strata/stores/memory"
)

// TestFenceCommit: a deposed holder's commit, arriving after the next
// holder's, is rejected with all its state changes.
func TestFenceCommit(t *testing.T) {
	ctx := t.Context()
	tab := newMemTable()
	lk := &memLocker{tab: tab, opts: locks.Options{DisableRenewal: true}}
	s := memory.New(nil)
	defer s.Close()

	old, err := lk.TryAcquire(ctx, "{job}", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(l locks.Lease, offset string) error {
		return strata.Commit(ctx, s, new(strata.WriteBatch).If(locks.Fence(l)).
			Put([]byte("{job}count"), []byte(offset), 0).Put([]byte("{job}offset"), []byte(offset), 0))
	}
	if err := commit(old, "10"); err != nil {
		t.Fatalf("first holder's commit: %v", err)
	}
	waitDone(t, old) // not renewed: it expires
	next, err := lk.Acquire(ctx, "{job}", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release(ctx)
	if next.Token() <= old.Token() {
		t.Fatalf("tokens %d then %d: not increasing", old.Token(), next.Token())
	}
	if err := commit(next, "20"); err != nil {
		t.Fatalf("next holder's commit: %v", err)
	}
	err = commit(old, "15")
	if !errors.Is(err, strata.ErrFenced) || !errors.Is(err, strata.ErrConflict) {
		t.Fatalf("late commit of the deposed holder = %v, want ErrFenced", err)
	}
	for _, k := range []string{"{job}count", "{job}offset"} {
		if v, _ := s.Get(ctx, []byte(k)); string(v) != "20" {
			t.Fatalf("%s = %q after the rejected commit, want 20", k, v)
		}
	}
	if tok, err := strata.ReadFence(ctx, s, []byte("{job}")); err != nil || tok != next.Token() {
		t.Fatalf("fence = %d, %v; want %d", tok, err, next.Token())
	}
	if c := locks.FenceAt(next, []byte("elsewhere")); string(c.Key) != "elsewhere" || c.Token != next.Token() || c.Kind != strata.CondFence {
		t.Fatalf("FenceAt = %+v", c)
	}
	if !errors.Is(locks.ErrStaleToken, strata.ErrFenced) {
		t.Fatal("ErrStaleToken does not match strata.ErrFenced")
	}
}

func TestContext(t *testing.T) {
	ctx := t.Context()
	lk := &memLocker{tab: newMemTable(), opts: locks.Options{DisableRenewal: true}}

	t.Run("Released", func(t *testing.T) {
		l, err := lk.TryAcquire(ctx, "released", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		lctx, cancel := locks.Context(ctx, l)
		defer cancel()
		if lctx.Err() != nil {
			t.Fatalf("context of a held lease: %v", lctx.Err())
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		<-lctx.Done()
		if cause := context.Cause(lctx); !errors.Is(cause, locks.ErrReleased) {
			t.Fatalf("cause = %v, want ErrReleased", cause)
		}
	})
	t.Run("Lost", func(t *testing.T) {
		l, err := lk.TryAcquire(ctx, "lost", 30*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		lctx, cancel := locks.Context(ctx, l)
		defer cancel()
		<-lctx.Done()
		if cause := context.Cause(lctx); !errors.Is(cause, locks.ErrLost) {
			t.Fatalf("cause = %v, want ErrLost", cause)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		l, err := lk.TryAcquire(ctx, "kept", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
		lctx, cancel := locks.Context(ctx, l)
		cancel()
		cancel() // twice is fine
		if !errors.Is(lctx.Err(), context.Canceled) {
			t.Fatalf("after cancel: %v", lctx.Err())
		}
		select {
		case <-l.Done():
			t.Fatal("cancelling the context ended the lease")
		default:
		}
	})
}

func ExampleFence() {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	lk := &memLocker{tab: newMemTable()}
	lease, err := lk.TryAcquire(ctx, "{job}", time.Minute)
	if err != nil {
		panic(err)
	}
	defer lease.Release(ctx)
	// Stop working when the lease ends.
	ctx, cancel := locks.Context(ctx, lease)
	defer cancel()
	// The state a batch changed and the offset after it, committed together
	// and only while no newer holder has committed.
	b := new(strata.WriteBatch).If(locks.Fence(lease)).
		Put([]byte("{job}window/1"), []byte("42"), 0).
		Put([]byte("{job}offset"), []byte("1000"), 0)
	fmt.Println(strata.Commit(ctx, s, b))
	// Output: <nil>
}
