package tier_test

import (
	"errors"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/tier"
)

// A commit writes through: the last write of each key is cached, a delete
// as an absence (NegativeTTL), a fence key and a write with ttl 0 are not.
func TestCommitWriteThrough(t *testing.T) {
	f := newFixture(t, tier.Options{NegativeTTL: time.Hour})
	f.put("gone", "x", strata.NoExpiry)
	// ristretto drops a second Set of a key while the first is still in
	// its buffer: let the first one land (otter applies sets at once).
	f.tier.WaitL1()
	b := new(strata.WriteBatch).IfFence([]byte("fence"), 7).IfAbsent([]byte("new")).
		Put([]byte("k"), []byte("first"), strata.NoExpiry).
		Put([]byte("k"), []byte("last"), time.Hour).
		Put([]byte("new"), []byte("n"), strata.NoExpiry).
		Put([]byte("ttl0"), []byte("t"), 0).
		Delete([]byte("gone"))
	noErr(t, f.tier.Commit(f.ctx, b))
	f.wantHit("k", "last")
	f.wantHit("new", "n")
	f.wantHitAbsent("gone")
	f.wantL2("ttl0", "t", false)
	f.wantL2("fence", string(storekit.FenceValue(7, nil)), false)
	if st := f.tier.Stats(); st.Puts != 3+1 || st.Deletes != 1 {
		t.Fatalf("Stats after a commit of 3 puts and a delete (and one Put before): puts %d, deletes %d", st.Puts, st.Deletes)
	}
}

// A commit that fails, or may have been applied, or succeeds without
// applying anything (a retry recognised by its fence and ID), caches
// nothing: the next read goes to the L2.
func TestCommitCachesNothingUnlessApplied(t *testing.T) {
	t.Run("Conflict", func(t *testing.T) {
		f := newFixture(t, tier.Options{})
		f.put("k", "old", strata.NoExpiry)
		f.wantHit("k", "old")
		err := f.tier.Commit(f.ctx, new(strata.WriteBatch).IfAbsent([]byte("k")).Put([]byte("k"), []byte("new"), strata.NoExpiry))
		if !errors.Is(err, strata.ErrConflict) {
			t.Fatalf("Commit = %v, want ErrConflict", err)
		}
		f.wantL2("k", "old", false)
	})
	for _, mode := range []int32{failBefore, failAfter} {
		t.Run([]string{"", "Unavailable", "Indeterminate"}[mode], func(t *testing.T) {
			f := newFixture(t, tier.Options{})
			f.put("k", "old", strata.NoExpiry)
			f.wantHit("k", "old")
			f.l2.fail.Store(mode)
			err := f.tier.Commit(f.ctx, new(strata.WriteBatch).Put([]byte("k"), []byte("new"), strata.NoExpiry))
			f.l2.fail.Store(failNone)
			if err == nil {
				t.Fatal("Commit succeeded under a failing L2")
			}
			want := map[int32]string{failBefore: "old", failAfter: "new"}[mode]
			f.wantL2("k", want, false)
		})
	}
	t.Run("RetryRecognised", func(t *testing.T) {
		f := newFixture(t, tier.Options{})
		b := new(strata.WriteBatch).IfFence([]byte("fence"), 1).Put([]byte("k"), []byte("batch"), strata.NoExpiry)
		b.ID = []byte("offset-10")
		noErr(t, f.tier.Commit(f.ctx, b))
		f.put("k", "changed later", strata.NoExpiry)
		noErr(t, f.tier.Commit(f.ctx, b)) // applied before: nothing happens
		f.wantL2("k", "changed later", false)
	})
}

// A fenced batch with an ID the tier sends for the first time was applied
// by its success: its writes are cached like any commit's.
func TestCommitFreshIDCached(t *testing.T) {
	f := newFixture(t, tier.Options{})
	b := &strata.WriteBatch{ID: []byte("offset-10")}
	b.IfFence([]byte("fence"), 1).Put([]byte("k"), []byte("batch"), strata.NoExpiry)
	noErr(t, f.tier.Commit(f.ctx, b))
	f.tier.WaitL1()
	f.wantHit("k", "batch")
	b2 := &strata.WriteBatch{ID: []byte("offset-20")}
	b2.IfFence([]byte("fence"), 1).Put([]byte("k"), []byte("next"), strata.NoExpiry)
	noErr(t, f.tier.Commit(f.ctx, b2))
	f.tier.WaitL1()
	f.wantHit("k", "next")
}

// Over an L2 without a Committer, Commit fails with ErrUnsupported and
// leaves L1 alone.
func TestCommitUnsupported(t *testing.T) {
	l2 := newHooked(nil)
	tr, err := tier.New(bare{l2}, nil)
	noErr(t, err)
	defer tr.Close()
	noErr(t, tr.Put(t.Context(), []byte("k"), []byte("v"), time.Hour))
	tr.WaitL1()
	err = tr.Commit(t.Context(), new(strata.WriteBatch).Put([]byte("k"), []byte("w"), 0))
	if !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("Commit = %v, want ErrUnsupported", err)
	}
	if v, err := tr.Get(t.Context(), []byte("k")); err != nil || string(v) != "v" || l2.gets.Load() != 0 {
		t.Fatalf("Get = %q, %v after %d L2 reads; want v from L1", v, err, l2.gets.Load())
	}
}

// A GetMany whose L1 hit is overtaken by a commit before its L2 read of
// the misses does not return part of the commit: it reads all the keys
// from the L2 again.
func TestGetManyNotTornByCommit(t *testing.T) {
	f := newFixture(t, tier.Options{})
	f.put("a", "old", strata.NoExpiry)
	noErr(t, f.l2.Store.Put(f.ctx, []byte("b"), []byte("old"), strata.NoExpiry))
	f.wantHit("a", "old")
	var once bool
	f.l2.setBeforeMany(func([]byte) {
		if !once {
			once = true
			noErr(t, f.tier.Commit(f.ctx, new(strata.WriteBatch).
				Put([]byte("a"), []byte("new"), strata.NoExpiry).Put([]byte("b"), []byte("new"), strata.NoExpiry)))
		}
	})
	vs, err := f.tier.GetMany(f.ctx, [][]byte{[]byte("a"), []byte("b")})
	noErr(t, err)
	if string(vs[0]) != "new" || string(vs[1]) != "new" {
		t.Fatalf("GetMany = %q; want both keys new (the L1 hit of a was overtaken)", vs)
	}
	if n := f.l2.getManys.Load(); n != 2 {
		t.Fatalf("%d L2 GetManyWithTTL calls; want 2 (the misses, then all keys)", n)
	}
	s := f.tier.TierStats()
	if s.L1Hits != 1 || s.L1Misses != 2 {
		t.Fatalf("hits %d, misses %d; want the hit of wantHit only, and both keys of GetMany as misses", s.L1Hits, s.L1Misses)
	}
}

// GetManyWithTTL reads the L2 (L1 knows only a lower bound of TTLs) and
// fills L1 like GetMany's misses.
func TestGetManyWithTTL(t *testing.T) {
	f := newFixture(t, tier.Options{NegativeTTL: time.Minute})
	noErr(t, f.l2.Store.Put(f.ctx, []byte("a"), []byte("1"), 10*time.Second))
	f.put("b", "2", strata.NoExpiry)
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	es, err := f.tier.GetManyWithTTL(f.ctx, keys)
	noErr(t, err)
	if len(es) != 3 || string(es[0].Value) != "1" || es[0].TTL != 10*time.Second || string(es[1].Value) != "2" ||
		es[1].TTL != strata.NoExpiry || es[2].Value != nil || string(es[2].Key) != "c" {
		t.Fatalf("GetManyWithTTL = %+v", es)
	}
	if n := f.l2.getManys.Load(); n != 1 {
		t.Fatalf("%d L2 calls, want 1 (b is cached, but its TTL is read from the L2)", n)
	}
	f.wantHit("a", "1")
	f.wantHitAbsent("c")
	f.clock.Advance(10 * time.Second)
	f.wantL2("a", "", true)
}
