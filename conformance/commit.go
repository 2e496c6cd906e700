package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// ck names a key of the commit tests. Every one carries the hash tag {j},
// so that a whole batch lives in one Redis Cluster slot.
func ck(name string) []byte { return []byte("{j}" + name) }

func (e *env) wantCommitted(key, value string) {
	e.t.Helper()
	e.wantValue(string(ck(key)), value)
}

func (e *env) wantNotCommitted(key string) {
	e.t.Helper()
	e.wantAbsent(string(ck(key)))
}

func (e *env) commit(b *strata.WriteBatch) error { return strata.Commit(e.ctx, e.s, b) }

// wantConflict fails unless err is a *ConflictError for condition index
// that matches ErrConflict, and ErrFenced exactly for a fence.
func wantConflict(t testing.TB, err error, index int, kind strata.ConditionKind) *strata.ConflictError {
	t.Helper()
	var ce *strata.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, strata.ErrConflict) {
		t.Fatalf("Commit = %v, want a *strata.ConflictError matching ErrConflict", err)
	}
	if ce.Index != index || ce.Condition.Kind != kind {
		t.Fatalf("conflict on condition %d (%v), want %d (%v): %v", ce.Index, ce.Condition.Kind, index, kind, err)
	}
	if errors.Is(err, strata.ErrFenced) != (kind == strata.CondFence) {
		t.Fatalf("errors.Is(%v, ErrFenced) = %v for a %v condition", err, !(kind == strata.CondFence), kind)
	}
	return ce
}

func (s *suite) testCommit(t *testing.T) {
	if !s.h.Capabilities.Has(Commit) {
		t.Run("Unsupported", func(t *testing.T) {
			e := s.store(t)
			err := e.commit(new(strata.WriteBatch).Put(ck("a"), []byte("1"), 0))
			wantErr(t, "Commit", err, strata.ErrUnsupported)
			e.wantNotCommitted("a")
		})
		return
	}
	t.Run("Basic", s.testCommitBasic)
	t.Run("Order", s.testCommitOrder)
	t.Run("AllOrNothing", s.testCommitAllOrNothing)
	t.Run("Fence", s.testCommitFence)
	t.Run("Idempotent", s.testCommitIdempotent)
	t.Run("TTL", s.testCommitTTL)
	t.Run("Invalid", s.testCommitInvalid)
	t.Run("Racers", s.testCommitRacers)
	t.Run("NoPartialReads", s.testCommitNoPartialReads)
	if s.h.SingleSlotCommits {
		t.Run("CrossSlot", s.testCommitCrossSlot)
	}
}

func (s *suite) testCommitBasic(t *testing.T) {
	e := s.store(t)
	e.put(string(ck("gone")), "x", 0)
	e.put(string(ck("offset")), "7", 0)
	b := new(strata.WriteBatch).
		IfEqual(ck("offset"), []byte("7")).
		IfAbsent(ck("new")).
		Put(ck("a"), []byte("1"), 0).
		Put(ck("empty"), []byte{}, 0).
		Put(ck("new"), []byte("n"), 0).
		Delete(ck("gone")).
		Delete(ck("never-there")).
		Put(ck("offset"), []byte("8"), 0)
	noErr(t, "Commit", e.commit(b))
	e.wantCommitted("a", "1")
	e.wantCommitted("empty", "")
	e.wantCommitted("new", "n")
	e.wantCommitted("offset", "8")
	e.wantNotCommitted("gone")
	e.wantNotCommitted("never-there")

	// The same batch again: the offset no longer holds 7.
	wantConflict(t, e.commit(b), 0, strata.CondEqual)
	noErr(t, "empty Commit", e.commit(new(strata.WriteBatch)))
}

func (s *suite) testCommitOrder(t *testing.T) {
	e := s.store(t)
	b := new(strata.WriteBatch).
		Put(ck("k"), []byte("first"), 0).
		Put(ck("k"), []byte("last"), 0).
		Put(ck("d"), []byte("x"), 0).
		Delete(ck("d")).
		Delete(ck("p")).
		Put(ck("p"), []byte("after delete"), 0)
	noErr(t, "Commit", e.commit(b))
	e.wantCommitted("k", "last")
	e.wantNotCommitted("d")
	e.wantCommitted("p", "after delete")
}

func (s *suite) testCommitAllOrNothing(t *testing.T) {
	e := s.store(t)
	e.put(string(ck("present")), "v", 0)
	e.put(string(ck("fence")), string(storekit.FenceValue(9, nil)), strata.NoExpiry)
	writes := func(b *strata.WriteBatch) *strata.WriteBatch {
		for i := range 20 {
			b.Put(ck("w"+strconv.Itoa(i)), []byte("x"), 0)
		}
		return b.Delete(ck("present"))
	}
	cases := []struct {
		name  string
		b     *strata.WriteBatch
		index int
		kind  strata.ConditionKind
	}{
		{"EqualMismatch", new(strata.WriteBatch).IfAbsent(ck("nothing")).IfEqual(ck("present"), []byte("other")), 1, strata.CondEqual},
		{"EqualAbsent", new(strata.WriteBatch).IfEqual(ck("nothing"), []byte("v")), 0, strata.CondEqual},
		{"EqualEmptyVsAbsent", new(strata.WriteBatch).IfEqual(ck("nothing"), []byte{}), 0, strata.CondEqual},
		{"AbsentPresent", new(strata.WriteBatch).IfEqual(ck("present"), []byte("v")).IfAbsent(ck("present")), 1, strata.CondAbsent},
		{"FenceLower", new(strata.WriteBatch).IfFence(ck("fence"), 8).IfEqual(ck("present"), []byte("v")), 0, strata.CondFence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ce := wantConflict(t, e.commit(writes(c.b)), c.index, c.kind)
			if !bytes.Equal(ce.Condition.Key, c.b.Conditions[c.index].Key) {
				t.Fatalf("conflict names key %q, want %q", ce.Condition.Key, c.b.Conditions[c.index].Key)
			}
			if c.kind == strata.CondFence && ce.Token != 9 {
				t.Fatalf("conflict reports fence token %d, want 9", ce.Token)
			}
			for i := range 20 {
				e.wantNotCommitted("w" + strconv.Itoa(i))
			}
			e.wantCommitted("present", "v")
			if tok, err := strata.ReadFence(e.ctx, e.s, ck("fence")); err != nil || tok != 9 {
				t.Fatalf("fence after a failed commit = %d, %v; want 9", tok, err)
			}
		})
	}
}

func (s *suite) testCommitFence(t *testing.T) {
	e := s.store(t)
	fence := ck("fence")
	commit := func(token uint64, v string) error {
		return e.commit(new(strata.WriteBatch).IfFence(fence, token).Put(ck("state"), []byte(v), 0))
	}
	wantToken := func(want uint64) {
		t.Helper()
		got, err := strata.ReadFence(e.ctx, e.s, fence)
		if err != nil || got != want {
			t.Fatalf("ReadFence = %d, %v; want %d", got, err, want)
		}
	}
	wantToken(0)
	noErr(t, "commit with token 5 on an absent fence", commit(5, "five"))
	wantToken(5)
	e.wantCommitted("state", "five")
	noErr(t, "commit with the same token", commit(5, "five again"))
	e.wantCommitted("state", "five again")
	noErr(t, "commit with a higher token", commit(6, "six"))
	wantToken(6)
	ce := wantConflict(t, commit(5, "late"), 0, strata.CondFence)
	if ce.Token != 6 || ce.Condition.Token != 5 {
		t.Fatalf("conflict = %+v, want found token 6, condition token 5", ce)
	}
	e.wantCommitted("state", "six")
	wantToken(6)

	// A fence key that holds something else is corrupt, not a conflict.
	e.put(string(ck("junk")), "not a fence", 0)
	err := e.commit(new(strata.WriteBatch).IfFence(ck("junk"), 1).Put(ck("state"), []byte("x"), 0))
	wantErr(t, "commit over a damaged fence", err, strata.ErrCorrupt)
	e.wantCommitted("state", "six")
}

func (s *suite) testCommitIdempotent(t *testing.T) {
	e := s.store(t)
	b := &strata.WriteBatch{ID: []byte("offset-100")}
	b.IfFence(ck("fence"), 3).IfAbsent(ck("once")).Put(ck("once"), []byte("1"), 0).Put(ck("state"), []byte("a"), 0)
	noErr(t, "Commit", e.commit(b))
	e.put(string(ck("state")), "changed later", 0)
	// A retry of the applied batch (after ErrIndeterminate, say) is
	// recognised by its fence: nothing is written again, and its IfAbsent
	// does not fail.
	noErr(t, "Commit retried", e.commit(b))
	e.wantCommitted("state", "changed later")
	// Another batch under the same token is applied.
	b2 := &strata.WriteBatch{ID: []byte("offset-200")}
	b2.IfFence(ck("fence"), 3).Put(ck("state"), []byte("b"), 0)
	noErr(t, "next Commit", e.commit(b2))
	e.wantCommitted("state", "b")
	// Without an ID, a batch is applied each time.
	b3 := new(strata.WriteBatch).IfFence(ck("fence"), 3).Put(ck("state"), []byte("c"), 0)
	noErr(t, "Commit without ID", e.commit(b3))
	e.put(string(ck("state")), "d", 0)
	noErr(t, "Commit without ID again", e.commit(b3))
	e.wantCommitted("state", "c")
}

func (s *suite) testCommitTTL(t *testing.T) {
	e := s.store(t)
	short := e.shortTTL()
	b := new(strata.WriteBatch).
		Put(ck("short"), []byte("s"), short).
		Put(ck("forever"), []byte("f"), strata.NoExpiry).
		Put(ck("long"), []byte("l"), longTTL)
	noErr(t, "Commit", e.commit(b))
	if e.has(Expiry) {
		ttl, err := strata.TTL(e.ctx, e.s, ck("short"))
		if err == nil && (ttl <= 0 || ttl > short) {
			t.Fatalf("TTL of a committed entry = %v, want in (0, %v]", ttl, short)
		}
		ttl, err = strata.TTL(e.ctx, e.s, ck("forever"))
		if err != nil || ttl != strata.NoExpiry {
			t.Fatalf("TTL of a NoExpiry entry = %v, %v", ttl, err)
		}
	}
	e.elapse(short, ck("short"))
	e.wantNotCommitted("short")
	e.wantCommitted("forever", "f")
	e.wantCommitted("long", "l")
	// An expired key is absent for a condition.
	noErr(t, "Commit over an expired key", e.commit(new(strata.WriteBatch).IfAbsent(ck("short")).Put(ck("short"), []byte("again"), 0)))
	e.wantCommitted("short", "again")

	if e.clock == nil {
		return // the default TTL needs a store opened with one; the fake-clock run covers it
	}
	d := s.open(t, Options{DefaultTTL: time.Minute})
	noErr(t, "Commit with the default TTL", strata.Commit(d.ctx, d.s, new(strata.WriteBatch).Put(ck("dflt"), []byte("v"), 0)))
	d.clock.Advance(time.Minute)
	d.wantAbsent(string(ck("dflt")))
}

func (s *suite) testCommitInvalid(t *testing.T) {
	e := s.store(t)
	e.put(string(ck("keep")), "v", 0)
	ok := func() *strata.WriteBatch {
		return new(strata.WriteBatch).Put(ck("a"), []byte("1"), 0).Delete(ck("keep"))
	}
	cases := []struct {
		name string
		b    *strata.WriteBatch
		want error
	}{
		{"EmptyKey", ok().Put(nil, []byte("v"), 0), strata.ErrInvalidKey},
		{"EmptyDeleteKey", ok().Delete([]byte{}), strata.ErrInvalidKey},
		{"LongKey", ok().Put(bytes.Repeat([]byte("k"), e.h.MaxKeyLen+1), nil, 0), strata.ErrInvalidKey},
		{"EmptyConditionKey", ok().IfAbsent(nil), strata.ErrInvalidKey},
		{"BadTTL", ok().Put(ck("b"), []byte("v"), -5), strata.ErrInvalidTTL},
		{"FenceWritten", ok().IfFence(ck("f"), 1).Put(ck("f"), []byte("x"), 0), strata.ErrInvalidKey},
		{"UnknownCondition", ok().IfAbsent(ck("x")), strata.ErrInvalidKey},
	}
	cases[len(cases)-1].b.Conditions[0].Kind = 99
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, "Commit", e.commit(c.b), c.want)
			e.wantNotCommitted("a")
			e.wantCommitted("keep", "v")
		})
	}
	t.Run("ValueTooLarge", func(t *testing.T) {
		small := s.open(t, Options{MaxValueSize: 16})
		err := strata.Commit(small.ctx, small.s, new(strata.WriteBatch).Put(ck("a"), []byte("1"), 0).Put(ck("big"), make([]byte, 17), 0))
		wantErr(t, "Commit", err, strata.ErrValueTooLarge)
		small.wantAbsent(string(ck("a")))
	})
}

func (s *suite) testCommitRacers(t *testing.T) {
	e := s.store(t)
	const n = 8
	var won atomic.Int32
	race(n, func(i int) {
		err := e.commit(new(strata.WriteBatch).IfAbsent(ck("leader")).
			Put(ck("leader"), []byte(strconv.Itoa(i)), 0).
			Put(ck("term-"+strconv.Itoa(i)), []byte("x"), 0))
		switch {
		case err == nil:
			won.Add(1)
		case !errors.Is(err, strata.ErrConflict):
			t.Errorf("racer %d: %v", i, err)
		}
	})
	if won.Load() != 1 {
		t.Fatalf("%d racers committed IfAbsent(leader), want exactly 1", won.Load())
	}
	leader, err := e.s.Get(e.ctx, ck("leader"))
	noErr(t, "Get leader", err)
	for i := range n {
		_, err := e.s.Get(e.ctx, ck("term-"+strconv.Itoa(i)))
		if (string(leader) == strconv.Itoa(i)) != (err == nil) {
			t.Fatalf("leader %s, yet term-%d: %v (only the winner's writes may land)", leader, i, err)
		}
	}

	// Counters by compare-and-commit: every increment lands exactly once.
	const per = 25
	var retries atomic.Int64
	race(4, func(int) {
		for range per {
			for {
				cur, err := e.s.Get(e.ctx, ck("counter"))
				b := new(strata.WriteBatch)
				var next uint64
				switch {
				case errors.Is(err, strata.ErrNotFound):
					b.IfAbsent(ck("counter"))
					next = 1
				case err != nil:
					t.Errorf("Get counter: %v", err)
					return
				default:
					b.IfEqual(ck("counter"), cur)
					next = binary.BigEndian.Uint64(cur) + 1
				}
				err = e.commit(b.Put(ck("counter"), binary.BigEndian.AppendUint64(nil, next), 0))
				if err == nil {
					break
				}
				if !errors.Is(err, strata.ErrConflict) {
					t.Errorf("Commit counter: %v", err)
					return
				}
				retries.Add(1)
			}
		}
	})
	v, err := e.s.Get(e.ctx, ck("counter"))
	noErr(t, "Get counter", err)
	if got := binary.BigEndian.Uint64(v); got != 4*per {
		t.Fatalf("counter = %d after %d increments (%d retries)", got, 4*per, retries.Load())
	}
}

// testCommitNoPartialReads commits batches that keep an invariant while
// readers check it with GetMany: the offset names a generation, and every
// key of the group holds that generation, or (every seventh generation,
// when the offset starts with "d") is absent. A reader that sees anything
// else saw part of a commit.
func (s *suite) testCommitNoPartialReads(t *testing.T) {
	e := s.store(t)
	const keys = 8
	commits := s.h.CommitRounds
	if commits <= 0 {
		commits = 10000
	}
	group := make([][]byte, keys+1)
	for i := range keys {
		group[i] = ck("g" + strconv.Itoa(i))
	}
	offset := ck("offset")
	group[keys] = offset
	check := func(vs [][]byte) error {
		off := vs[keys]
		if off == nil {
			for i := range keys {
				if vs[i] != nil {
					return fmt.Errorf("no offset yet, but %q holds %q", group[i], vs[i])
				}
			}
			return nil
		}
		deleted := off[0] == 'd'
		for i := range keys {
			if deleted && vs[i] != nil || !deleted && !bytes.Equal(vs[i], off) {
				return fmt.Errorf("a read saw part of a commit: offset %q, %q holds %q", off, group[i], vs[i])
			}
		}
		return nil
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				vs, err := strata.GetMany(e.ctx, e.s, group)
				if err == nil {
					err = check(vs)
				}
				if err != nil {
					errc <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	var prev []byte
	for gen := range commits {
		b := new(strata.WriteBatch)
		if prev == nil {
			b.IfAbsent(offset)
		} else {
			b.IfEqual(offset, prev)
		}
		v := []byte(strconv.Itoa(gen))
		if gen%7 == 6 {
			v = append([]byte("d"), v...)
		}
		for _, k := range group[:keys] {
			if v[0] == 'd' {
				b.Delete(k)
			} else {
				b.Put(k, v, 0)
			}
		}
		b.Put(offset, v, 0)
		if err := e.commit(b); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("commit %d: %v", gen, err)
		}
		prev = v
		if len(errc) > 0 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Fatal("the readers made no read")
	}
}

func (s *suite) testCommitCrossSlot(t *testing.T) {
	e := s.store(t)
	b := new(strata.WriteBatch).Put([]byte("{a}x"), []byte("1"), 0).Put([]byte("{b}y"), []byte("2"), 0)
	err := e.commit(b)
	wantErr(t, "Commit across slots", err, strata.ErrInvalidKey)
	if !bytes.Contains([]byte(err.Error()), []byte("{b}y")) {
		t.Fatalf("cross-slot error %q does not name the offending key", err)
	}
	e.wantAbsent("{a}x")
	err = e.commit(new(strata.WriteBatch).IfAbsent([]byte("{c}z")).Put([]byte("{a}x"), []byte("1"), 0))
	wantErr(t, "Commit with a condition in another slot", err, strata.ErrInvalidKey)
	noErr(t, "Commit in one slot", e.commit(new(strata.WriteBatch).IfAbsent([]byte("{a}z")).Put([]byte("{a}x"), []byte("1"), 0)))
}
