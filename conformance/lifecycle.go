package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
)

func (s *suite) testSnapshot(t *testing.T) {
	t.Run("Content", func(t *testing.T) {
		e := s.store(t)
		e.put("a", "1", time.Hour)
		e.put("b", "2", strata.NoExpiry)
		e.put("c/x", "", 0)
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		defer sn.Close()
		got := entries(t, e.ctx, sn, "")
		if e.h.UnorderedKeys {
			slices.SortFunc(got, func(a, b strata.Entry) int { return compareStrings(string(a.Key), string(b.Key)) })
		}
		if len(got) != 3 || string(got[0].Key) != "a" || string(got[0].Value) != "1" ||
			string(got[1].Key) != "b" || string(got[1].Value) != "2" || got[1].TTL != strata.NoExpiry ||
			string(got[2].Key) != "c/x" || got[2].Value == nil || len(got[2].Value) != 0 {
			t.Fatalf("entries = %+v", got)
		}
		if e.has(Expiry) {
			if ttl := got[0].TTL; ttl <= time.Hour-time.Minute || ttl > time.Hour {
				t.Fatalf("entry TTL = %v, want just under 1h", ttl)
			}
		}
		if p := entries(t, e.ctx, sn, "c/"); len(p) != 1 || string(p[0].Key) != "c/x" {
			t.Fatalf("entries under c/ = %+v", p)
		}
		if again := entries(t, e.ctx, sn, ""); len(again) != 3 {
			t.Fatalf("second Entries call yielded %d entries, want 3", len(again))
		}
	})
	t.Run("PointInTime", func(t *testing.T) {
		e := s.store(t)
		e.put("a", "1", 0)
		e.put("b", "old", 0)
		e.put("same", "s", 0)
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		defer sn.Close()
		e.put("b", "new", 0)
		e.put("c", "3", 0)
		noErr(t, "Delete", e.s.Delete(e.ctx, []byte("a")))
		got := map[string]string{}
		for _, en := range entries(t, e.ctx, sn, "") {
			got[string(en.Key)] = string(en.Value)
		}
		if got["same"] != "s" {
			t.Fatalf("snapshot lost an untouched key: %q", got)
		}
		if e.h.LiveSnapshots || !e.has(Snapshot) {
			return
		}
		if want := map[string]string{"a": "1", "b": "old", "same": "s"}; !mapsEqual(got, want) {
			t.Fatalf("snapshot = %q, want the state when taken %q", got, want)
		}
	})
	t.Run("Expiry", func(t *testing.T) {
		e := s.store(t)
		e.put("short", "v", e.shortTTL())
		e.put("keep", "v", 0)
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		defer sn.Close()
		e.elapse(e.shortTTL(), []byte("short"))
		got := entries(t, e.ctx, sn, "")
		if len(got) != 1 || string(got[0].Key) != "keep" {
			t.Fatalf("entries after an expiry = %+v, want only keep", got)
		}
	})
	t.Run("Close", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		noErr(t, "Close", sn.Close())
		noErr(t, "second Close", sn.Close())
		if !e.has(Snapshot) {
			return
		}
		for _, err := range sn.Entries(e.ctx, nil) {
			wantErr(t, "Entries after Close", err, strata.ErrClosed)
			return
		}
		t.Fatal("Entries after Close yielded nothing, want ErrClosed")
	})
	t.Run("StoreCloseWithOpenSnapshot", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		defer sn.Close()
		e.within(10*time.Second, "Close with an open snapshot", e.s.Close)
	})
}

func entries(t *testing.T, ctx context.Context, sn strata.Snapshot, prefix string) []strata.Entry {
	t.Helper()
	var out []strata.Entry
	for en, err := range sn.Entries(ctx, []byte(prefix)) {
		noErr(t, "Entries", err)
		out = append(out, en)
	}
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (s *suite) testPing(t *testing.T) {
	e := s.store(t)
	noErr(t, "Ping", strata.Ping(e.ctx, e.s))
	noErr(t, "Close", e.s.Close())
	wantErr(t, "Ping after Close", strata.Ping(e.ctx, e.s), strata.ErrClosed)
}

func (s *suite) testStats(t *testing.T) {
	e := s.store(t)
	st, ok := strata.StatsOf(e.s)
	if ok != e.has(Stats) {
		t.Fatalf("StatsOf reports %v, harness declares Stats %v", ok, e.has(Stats))
	}
	if !ok {
		return
	}
	if st.Backend == "" {
		t.Fatal("Stats.Backend is empty")
	}
	e.put("a", "12345", 0)
	e.put("b", "x", 0)
	e.wantValue("a", "12345")
	e.wantAbsent("nope")
	noErr(t, "Delete", e.s.Delete(e.ctx, []byte("b")))
	after, _ := strata.StatsOf(e.s)
	d := func(name string, a, b uint64, min uint64) {
		t.Helper()
		if b-a < min {
			t.Errorf("Stats.%s grew by %d, want at least %d", name, b-a, min)
		}
	}
	d("Puts", st.Puts, after.Puts, 2)
	d("Gets", st.Gets, after.Gets, 2)
	d("Hits", st.Hits, after.Hits, 1)
	d("Misses", st.Misses, after.Misses, 1)
	d("Deletes", st.Deletes, after.Deletes, 1)
	d("BytesWritten", st.BytesWritten, after.BytesWritten, 7)
	d("BytesRead", st.BytesRead, after.BytesRead, 5)
	if after.Keys != -1 && after.Keys != 1 {
		t.Errorf("Stats.Keys = %d, want 1 live key (or -1 for unknown)", after.Keys)
	}
	if hr := after.HitRate(); hr <= 0 || hr >= 1 {
		t.Errorf("HitRate = %v after one hit and one miss", hr)
	}
}

// call is one store operation, used to check a rule on every method.
type call struct {
	name string
	run  func(ctx context.Context) error
}

// allCalls returns every operation of the store and its declared
// capabilities.
func (e *env) allCalls() []call {
	s, k, v := e.s, []byte("k"), []byte("v")
	calls := []call{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, k); return err }},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, k, v, 0) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, k) }},
		{"Keys", func(ctx context.Context) error {
			for _, err := range s.Keys(ctx, nil) {
				return err
			}
			return errors.New("Keys yielded nothing")
		}},
		{"GetMany", func(ctx context.Context) error { _, err := strata.GetMany(ctx, s, [][]byte{k}); return err }},
		{"PutMany", func(ctx context.Context) error { return strata.PutMany(ctx, s, []strata.Entry{{Key: k, Value: v}}) }},
		{"DeleteMany", func(ctx context.Context) error { _, err := strata.DeleteMany(ctx, s, [][]byte{k}); return err }},
		{"Ping", func(ctx context.Context) error { return strata.Ping(ctx, s) }},
		{"Snapshot", func(ctx context.Context) error {
			sn, err := strata.SnapshotOf(ctx, s)
			if err != nil {
				return err
			}
			defer sn.Close()
			for _, err := range sn.Entries(ctx, nil) {
				return err
			}
			return errors.New("Entries yielded nothing")
		}},
	}
	if e.has(Atomic) {
		calls = append(calls,
			call{"PutIfAbsent", func(ctx context.Context) error { _, err := strata.PutIfAbsent(ctx, s, k, v, 0); return err }},
			call{"GetAndDelete", func(ctx context.Context) error { _, err := strata.GetAndDelete(ctx, s, k); return err }},
			call{"CompareAndSwap", func(ctx context.Context) error { _, err := strata.CompareAndSwap(ctx, s, k, v, v, 0); return err }},
		)
	}
	if e.has(Expiry) {
		calls = append(calls,
			call{"TTL", func(ctx context.Context) error { _, err := strata.TTL(ctx, s, k); return err }},
			call{"GetWithTTL", func(ctx context.Context) error { _, _, err := strata.GetWithTTL(ctx, s, k); return err }},
		)
	}
	return calls
}

func (s *suite) testClose(t *testing.T) {
	t.Run("Twice", func(t *testing.T) {
		e := s.store(t)
		noErr(t, "Close", e.s.Close())
		noErr(t, "second Close", e.s.Close())
	})
	t.Run("UseAfterClose", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		noErr(t, "Close", e.s.Close())
		for _, c := range e.allCalls() {
			wantErr(t, c.name+" after Close", c.run(e.ctx), strata.ErrClosed)
		}
	})
}

func (s *suite) testContext(t *testing.T) {
	t.Run("Cancelled", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		for _, c := range e.allCalls() {
			wantErr(t, c.name+" with a cancelled context", c.run(ctx), context.Canceled)
		}
		e.wantValue("k", "v")
	})
	t.Run("DeadlineExceeded", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		ctx, cancel := context.WithDeadline(e.ctx, time.Now().Add(-time.Second))
		defer cancel()
		for _, c := range e.allCalls() {
			wantErr(t, c.name+" past the deadline", c.run(ctx), context.DeadlineExceeded)
		}
	})
	t.Run("CancelDuringKeys", func(t *testing.T) {
		e := s.store(t)
		var entries []strata.Entry
		for i := range 2000 {
			entries = append(entries, strata.Entry{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("v")})
		}
		noErr(t, "PutMany", strata.PutMany(e.ctx, e.s, entries))
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		n := 0
		var last error
		for _, err := range e.s.Keys(ctx, nil) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 1 {
				cancel()
			}
		}
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("Keys after cancel yielded %d keys and ended with %v, want context.Canceled", n, last)
		}
	})
}

func (s *suite) testErrors(t *testing.T) {
	e := s.open(t, Options{MaxValueSize: valueLimit})
	cases := []struct {
		name   string
		err    error
		target error
	}{
		{"empty key", e.s.Put(e.ctx, nil, []byte("v"), 0), strata.ErrInvalidKey},
		{"long key", e.s.Put(e.ctx, make([]byte, e.h.MaxKeyLen+1), []byte("v"), 0), strata.ErrInvalidKey},
		{"large value", e.s.Put(e.ctx, []byte("k"), make([]byte, valueLimit+1), 0), strata.ErrValueTooLarge},
		{"negative TTL", e.s.Put(e.ctx, []byte("k"), []byte("v"), -5), strata.ErrInvalidTTL},
	}
	_, err := e.s.Get(e.ctx, []byte("absent"))
	cases = append(cases, struct {
		name   string
		err    error
		target error
	}{"absent key", err, strata.ErrNotFound})
	for _, c := range cases {
		wantErr(t, c.name, c.err, c.target)
		if n := opErrors(c.err); n > 1 {
			t.Errorf("%s: error %q wraps %d *strata.OpError, want at most one", c.name, c.err, n)
		}
		for _, other := range []error{strata.ErrNotFound, strata.ErrInvalidKey, strata.ErrValueTooLarge, strata.ErrInvalidTTL, strata.ErrClosed, strata.ErrUnavailable, strata.ErrIndeterminate} {
			if other != c.target && errors.Is(c.err, other) {
				t.Errorf("%s: error %q also matches %v", c.name, c.err, other)
			}
		}
	}
}

// opErrors counts the *strata.OpError values in err's chain.
func opErrors(err error) int {
	n := 0
	for err != nil {
		if _, ok := err.(*strata.OpError); ok {
			n++
		}
		err = errors.Unwrap(err)
	}
	return n
}

func (s *suite) testConcurrency(t *testing.T) {
	t.Run("ParallelOwners", func(t *testing.T) {
		e := s.store(t)
		const workers, keys = 8, 40
		race(workers, func(w int) {
			for round := range 3 {
				for i := range keys {
					k := fmt.Appendf(nil, "w%d/%d", w, i)
					v := fmt.Appendf(nil, "%d", round)
					if err := e.s.Put(e.ctx, k, v, 0); err != nil {
						t.Errorf("Put: %v", err)
						return
					}
					got, err := e.s.Get(e.ctx, k)
					if err != nil || string(got) != string(v) {
						t.Errorf("Get(%s) = %q, %v; want %q (the owner's last write)", k, got, err, v)
						return
					}
					if i%3 == 0 {
						if err := e.s.Delete(e.ctx, k); err != nil {
							t.Errorf("Delete: %v", err)
							return
						}
					}
				}
			}
		})
		if got := len(e.keys("")); got != workers*(keys-(keys+2)/3) {
			t.Fatalf("%d keys left, want %d", got, workers*(keys-(keys+2)/3))
		}
	})
	t.Run("KeysLiveThroughout", func(t *testing.T) {
		e := s.store(t)
		var stable []string
		for i := range 300 {
			k := fmt.Sprintf("s%04d", i)
			stable = append(stable, k)
			e.put(k, "v", 0)
		}
		ctx, cancel := context.WithCancel(e.ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// Churn keys interleaved with the stable ones.
				k := fmt.Appendf(nil, "s%04d-%d", i%300, i)
				if err := e.s.Put(ctx, k, []byte("x"), 0); err != nil && ctx.Err() == nil {
					t.Errorf("Put: %v", err)
					return
				}
				if err := e.s.Delete(ctx, k); err != nil && ctx.Err() == nil {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		}()
		for range 5 {
			seen := map[string]bool{}
			for k, err := range e.s.Keys(e.ctx, []byte("s")) {
				noErr(t, "Keys", err)
				seen[string(k)] = true
			}
			for _, k := range stable {
				if !seen[k] {
					cancel()
					wg.Wait()
					t.Fatalf("Keys missed %q, live throughout the iteration", k)
				}
			}
		}
		cancel()
		wg.Wait()
	})
}
