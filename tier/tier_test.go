package tier_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

func TestNewRejectsBadOptions(t *testing.T) {
	l2 := memory.New(nil)
	defer l2.Close()
	for _, o := range []tier.Options{
		{MaxBytes: -1},
		{MaxBytes: 10},
		{MaxLocalTTL: -time.Second},
		{NegativeTTL: -time.Second},
		{Invalidation: 7},
		{Engine: "lru"},
		{Invalidation: tier.InvalidationRequired}, // the memory store needs no Invalidator and has none
	} {
		if tr, err := tier.New(l2, &o); err == nil {
			tr.Close()
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
	if _, err := tier.New(nil, nil); err == nil {
		t.Error("New(nil L2) succeeded")
	}
}

func TestWriteThrough(t *testing.T) {
	f := newFixture(t, tier.Options{})
	f.put("k", "v1", strata.NoExpiry)
	f.wantHit("k", "v1")
	if got, err := f.l2.Store.Get(f.ctx, []byte("k")); err != nil || string(got) != "v1" {
		t.Fatalf("L2 holds %q, %v; want v1 written through", got, err)
	}
	f.put("k", "v2", time.Hour)
	f.wantHit("k", "v2")
}

// A write the L2 refuses, or may have applied, leaves no L1 entry: the next
// read goes to the L2 and returns whatever the L2 holds.
func TestFailedWriteLeavesNoEntry(t *testing.T) {
	type write struct {
		name string
		run  func(f *fixture) error
		// value the key holds after the write applied ("" + absent)
		after  string
		absent bool
	}
	writes := []write{
		{"Put", func(f *fixture) error { return f.tier.Put(f.ctx, []byte("k"), []byte("new"), strata.NoExpiry) }, "new", false},
		{"PutTTL0", func(f *fixture) error { return f.tier.Put(f.ctx, []byte("k"), []byte("new"), 0) }, "new", false},
		{"Delete", func(f *fixture) error { return f.tier.Delete(f.ctx, []byte("k")) }, "", true},
		{"PutMany", func(f *fixture) error {
			return f.tier.PutMany(f.ctx, []strata.Entry{{Key: []byte("k"), Value: []byte("new"), TTL: strata.NoExpiry}})
		}, "new", false},
		{"DeleteMany", func(f *fixture) error { _, err := f.tier.DeleteMany(f.ctx, [][]byte{[]byte("k")}); return err }, "", true},
		{"CompareAndSwap", func(f *fixture) error {
			_, err := f.tier.CompareAndSwap(f.ctx, []byte("k"), []byte("old"), []byte("new"), strata.NoExpiry)
			return err
		}, "new", false},
		{"GetAndDelete", func(f *fixture) error { _, err := f.tier.GetAndDelete(f.ctx, []byte("k")); return err }, "", true},
	}
	for _, w := range writes {
		for _, mode := range []int32{failBefore, failAfter} {
			t.Run(fmt.Sprintf("%s/mode%d", w.name, mode), func(t *testing.T) {
				f := newFixture(t, tier.Options{NegativeTTL: time.Hour})
				f.put("k", "old", strata.NoExpiry)
				f.wantHit("k", "old")
				f.l2.fail.Store(mode)
				err := w.run(f)
				f.l2.fail.Store(failNone)
				want := strata.ErrUnavailable
				if mode == failAfter {
					want = strata.ErrIndeterminate
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s = %v, want an error matching %v", w.name, err, want)
				}
				if mode == failBefore {
					f.wantL2("k", "old", false)
				} else {
					f.wantL2("k", w.after, w.absent)
				}
			})
		}
	}
	t.Run("NewKey", func(t *testing.T) {
		f := newFixture(t, tier.Options{NegativeTTL: time.Hour})
		f.l2.fail.Store(failBefore)
		if err := f.tier.Put(f.ctx, []byte("k"), []byte("v"), strata.NoExpiry); !errors.Is(err, strata.ErrUnavailable) {
			t.Fatalf("Put = %v, want ErrUnavailable", err)
		}
		f.l2.fail.Store(failNone)
		f.wantL2("k", "", true)
		f.wantHitAbsent("k") // the absence is cached now (NegativeTTL)
	})
}

func (f *fixture) wantHitAbsent(key string) {
	f.t.Helper()
	f.tier.WaitL1()
	before := f.reads()
	f.wantAbsent(key)
	if n := f.reads() - before; n != 0 {
		f.t.Fatalf("Get(%q) reached the L2; want a cached absence", key)
	}
}

// An L1 entry never outlives its L2 entry: fills take the remaining TTL from
// GetWithTTL, writes their own TTL, both capped by MaxLocalTTL.
func TestTTLPropagation(t *testing.T) {
	t.Run("Fill", func(t *testing.T) {
		f := newFixture(t, tier.Options{})
		noErr(t, f.l2.Store.Put(f.ctx, []byte("k"), []byte("v"), 10*time.Second))
		f.clock.Advance(4 * time.Second)
		f.wantL2("k", "v", false)
		f.clock.Advance(6*time.Second - time.Millisecond)
		f.wantHit("k", "v")
		f.clock.Advance(time.Millisecond)
		f.wantL2("k", "", true)
	})
	t.Run("Write", func(t *testing.T) {
		f := newFixture(t, tier.Options{})
		f.put("k", "v", 3*time.Second)
		f.clock.Advance(3*time.Second - time.Millisecond)
		f.wantHit("k", "v")
		f.clock.Advance(time.Millisecond)
		f.wantL2("k", "", true)
	})
	t.Run("MaxLocalTTL", func(t *testing.T) {
		f := newFixture(t, tier.Options{MaxLocalTTL: time.Second})
		f.put("forever", "v", strata.NoExpiry)
		f.put("long", "v", time.Hour)
		noErr(t, f.l2.Store.Put(f.ctx, []byte("filled"), []byte("v"), strata.NoExpiry))
		f.wantL2("filled", "v", false)
		f.clock.Advance(time.Second - time.Millisecond)
		f.wantHit("forever", "v")
		f.wantHit("long", "v")
		f.wantHit("filled", "v")
		f.clock.Advance(time.Millisecond)
		f.wantL2("forever", "v", false)
		f.wantL2("long", "v", false)
		f.wantL2("filled", "v", false)
	})
	t.Run("DefaultTTLOfL2", func(t *testing.T) {
		// ttl 0 means the L2's default, which the tier does not know: the
		// write is not cached; the next read fills with the real TTL.
		clock := newFixture(t, tier.Options{}).clock
		l2 := memory.New(&memory.Options{DefaultTTL: 5 * time.Second, Clock: clock})
		tr, err := tier.New(l2, &tier.Options{Clock: clock})
		noErr(t, err)
		defer tr.Close()
		ctx := t.Context()
		noErr(t, tr.Put(ctx, []byte("k"), []byte("v"), 0))
		tr.WaitL1()
		before := tr.TierStats().L2Reads
		if v, err := tr.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if tr.TierStats().L2Reads != before+1 {
			t.Fatal("a write with ttl 0 was cached in L1; want it read from the L2")
		}
		tr.WaitL1()
		clock.Advance(5*time.Second - time.Millisecond)
		if v, err := tr.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("Get before expiry = %q, %v", v, err)
		}
		if tr.TierStats().L2Reads != before+1 {
			t.Fatal("the filled entry was not served from L1")
		}
		clock.Advance(time.Millisecond)
		if v, err := tr.Get(ctx, []byte("k")); err != strata.ErrNotFound {
			t.Fatalf("Get after the L2 default TTL = %q, %v; want ErrNotFound", v, err)
		}
	})
	t.Run("Negative", func(t *testing.T) {
		f := newFixture(t, tier.Options{NegativeTTL: 2 * time.Second})
		f.wantL2("k", "", true)
		f.wantHitAbsent("k")
		f.clock.Advance(2 * time.Second)
		f.wantL2("k", "", true)
		f.put("k", "v", strata.NoExpiry)
		f.wantHit("k", "v")
		noErr(t, f.tier.Delete(f.ctx, []byte("k")))
		f.wantHitAbsent("k")
	})
}

func noErr(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// Concurrent misses of one key make one L2 read, and every caller gets its
// own copy of the value.
func TestSingleflight(t *testing.T) {
	f := newFixture(t, tier.Options{})
	noErr(t, f.l2.Store.Put(f.ctx, []byte("k"), []byte("value"), strata.NoExpiry))
	const n = 16
	release := make(chan struct{})
	var once sync.Once
	reached := make(chan struct{})
	f.l2.setHooks(func([]byte) {
		once.Do(func() { close(reached) })
		<-release
	}, nil, nil)
	results := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := f.tier.Get(f.ctx, []byte("k"))
			if err != nil {
				t.Errorf("Get: %v", err)
			}
			results[i] = v
		}()
	}
	<-reached
	wait.For(t, 10*time.Second, "all misses to join the first read", func() bool {
		return f.tier.TierStats().SharedReads == n-1
	})
	close(release)
	wg.Wait()
	if got := f.l2.getTTLs.Load(); got != 1 {
		t.Fatalf("%d concurrent misses made %d L2 reads, want 1", n, got)
	}
	results[0][0] = 'X'
	for i, v := range results[1:] {
		if string(v) != "value" {
			t.Fatalf("result %d = %q: callers share memory", i+1, v)
		}
	}
}

// A fill that read the old value before a write must not install it after
// the write: the next read sees the write.
func TestFillRacingWrite(t *testing.T) {
	for _, w := range []struct {
		name   string
		write  func(f *fixture)
		value  string
		absent bool
	}{
		{"Put", func(f *fixture) { f.put("k", "new", strata.NoExpiry) }, "new", false},
		{"PutTTL0", func(f *fixture) { f.put("k", "new", 0) }, "new", false},
		{"Delete", func(f *fixture) { noErr(f.t, f.tier.Delete(f.ctx, []byte("k"))) }, "", true},
		{"CompareAndSwap", func(f *fixture) {
			ok, err := f.tier.CompareAndSwap(f.ctx, []byte("k"), []byte("old"), []byte("new"), 0)
			if err != nil || !ok {
				f.t.Fatalf("CompareAndSwap = %v, %v", ok, err)
			}
		}, "new", false},
	} {
		t.Run(w.name, func(t *testing.T) {
			f := newFixture(t, tier.Options{})
			noErr(t, f.l2.Store.Put(f.ctx, []byte("k"), []byte("old"), strata.NoExpiry))
			reached, release := make(chan struct{}), make(chan struct{})
			var first atomic.Bool
			f.l2.setHooks(func([]byte) {
				if first.CompareAndSwap(false, true) {
					close(reached)
					<-release
				}
			}, nil, nil)
			done := make(chan string)
			go func() {
				v, _ := f.tier.Get(f.ctx, []byte("k"))
				done <- string(v)
			}()
			<-reached // the fill has read "old" and not installed it yet
			w.write(f)
			close(release)
			if v := <-done; v != "old" {
				t.Fatalf("racing Get = %q, want old (it read before the write)", v)
			}
			f.tier.WaitL1()
			if w.absent {
				f.wantAbsent("k")
			} else {
				f.want("k", w.value)
			}
			if f.tier.TierStats().FillsRefused == 0 {
				t.Fatal("FillsRefused = 0; the stale fill was not refused")
			}
		})
	}
}

// While a write is in flight, another write of the key that completes must
// not put its value in L1: the first write may land in the L2 after it.
func TestWriteRacingWrite(t *testing.T) {
	f := newFixture(t, tier.Options{})
	reached, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	f.l2.setHooks(nil, func(key []byte) {
		if first.CompareAndSwap(false, true) {
			close(reached)
			<-release
		}
	}, nil)
	done := make(chan error)
	go func() { done <- f.tier.Put(f.ctx, []byte("k"), []byte("v1"), strata.NoExpiry) }()
	<-reached // W1 is in flight, not applied
	f.put("k", "v2", strata.NoExpiry)
	f.wantL2("k", "v2", false) // W2 did not install: W1 is still in flight
	close(release)
	noErr(t, <-done)
	f.wantL2("k", "v1", false) // W1 lost its install to W2's overlap
	f.wantHit("k", "v1")
}

func TestGetMany(t *testing.T) {
	t.Run("OneL2Call", func(t *testing.T) {
		f := newFixture(t, tier.Options{})
		for i := range 10 {
			noErr(t, f.l2.Store.Put(f.ctx, fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i), strata.NoExpiry))
		}
		for i := range 5 {
			f.want(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
		}
		f.tier.WaitL1()
		var keys [][]byte
		for i := range 12 {
			keys = append(keys, fmt.Appendf(nil, "k%d", i))
		}
		vs, err := f.tier.GetMany(f.ctx, keys)
		noErr(t, err)
		for i, v := range vs {
			want := fmt.Sprintf("v%d", i)
			if i >= 10 {
				want = ""
			}
			if string(v) != want || (i >= 10) != (v == nil) {
				t.Fatalf("GetMany[%d] = %q, want %q", i, v, want)
			}
		}
		if n, k := f.l2.getManys.Load(), f.l2.getManyKeys.Load(); n != 1 || k != 7 {
			t.Fatalf("GetMany made %d L2 GetMany calls for %d keys; want 1 for the 7 misses", n, k)
		}
		if f.l2.gets.Load() != 0 {
			t.Fatal("GetMany fell back to single Gets")
		}
	})
	t.Run("FillsWithBatchExpirer", func(t *testing.T) {
		f := newFixture(t, tier.Options{NegativeTTL: time.Minute})
		noErr(t, f.l2.Store.Put(f.ctx, []byte("a"), []byte("1"), 10*time.Second))
		noErr(t, f.l2.Store.Put(f.ctx, []byte("b"), []byte("2"), strata.NoExpiry))
		vs, err := f.tier.GetMany(f.ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
		noErr(t, err)
		if string(vs[0]) != "1" || string(vs[1]) != "2" || vs[2] != nil {
			t.Fatalf("GetMany = %q", vs)
		}
		f.wantHit("a", "1")
		f.wantHit("b", "2")
		f.wantHitAbsent("c")
		f.clock.Advance(10 * time.Second)
		f.wantL2("a", "", true)
		vs, err = f.tier.GetMany(f.ctx, [][]byte{[]byte("b"), []byte("c")})
		noErr(t, err)
		if string(vs[0]) != "2" || vs[1] != nil || f.l2.getManys.Load() != 1 {
			t.Fatalf("GetMany of cached keys = %q after %d L2 calls; want served by L1", vs, f.l2.getManys.Load())
		}
	})
	t.Run("NoBatchExpirer", func(t *testing.T) {
		// Without GetManyWithTTL the misses are read with one GetMany and
		// not cached: GetMany does not say how long each value has left.
		l2 := newHooked(nil)
		tr, err := tier.New(noBatchTTL{l2, l2, l2}, nil)
		noErr(t, err)
		defer tr.Close()
		noErr(t, l2.Store.Put(t.Context(), []byte("a"), []byte("1"), strata.NoExpiry))
		for range 2 {
			vs, err := tr.GetMany(t.Context(), [][]byte{[]byte("a"), []byte("b")})
			if err != nil || string(vs[0]) != "1" || vs[1] != nil {
				t.Fatalf("GetMany = %q, %v", vs, err)
			}
			tr.WaitL1()
		}
		if n, k := l2.getManys.Load(), l2.getManyKeys.Load(); n != 2 || k != 4 || l2.getTTLs.Load() != 0 {
			t.Fatalf("2 GetMany made %d L2 GetMany calls for %d keys and %d GetWithTTL; want 2 for 4 keys, none cached", n, k, l2.getTTLs.Load())
		}
	})
	t.Run("PrefixViewOverNoBatchExpirer", func(t *testing.T) {
		// A prefix view has GetManyWithTTL as a loop of GetWithTTL when the
		// store under it has none: the tier sees through it and makes one
		// GetMany call.
		l2 := newHooked(nil)
		defer l2.Close() // a view does not close the store under it
		tr, err := tier.New(strata.WithPrefix(noBatchTTL{l2, l2, l2}, []byte("p:")), nil)
		noErr(t, err)
		defer tr.Close()
		_, err = tr.GetMany(t.Context(), [][]byte{[]byte("a"), []byte("b"), []byte("c")})
		noErr(t, err)
		if n, k := l2.getManys.Load(), l2.getManyKeys.Load(); n != 1 || k != 3 || l2.getTTLs.Load() != 0 {
			t.Fatalf("GetMany made %d L2 GetMany calls for %d keys and %d GetWithTTL; want one GetMany", n, k, l2.getTTLs.Load())
		}
	})
}

// bare is a store with no optional capability.
type bare struct{ s strata.Store }

func (b bare) Get(ctx context.Context, k []byte) ([]byte, error) { return b.s.Get(ctx, k) }
func (b bare) Put(ctx context.Context, k, v []byte, ttl time.Duration) error {
	return b.s.Put(ctx, k, v, ttl)
}
func (b bare) Delete(ctx context.Context, k []byte) error { return b.s.Delete(ctx, k) }
func (b bare) Keys(ctx context.Context, p []byte) iter.Seq2[[]byte, error] {
	return b.s.Keys(ctx, p)
}
func (b bare) Close() error { return b.s.Close() }

// Over a store without capabilities the tier behaves as the strata helpers
// do (a loop, or ErrUnsupported), and, with no TTL to go by, caches only
// writes with an explicit TTL.
func TestBareL2(t *testing.T) {
	ctx := t.Context()
	l2 := newHooked(nil)
	tr, err := tier.New(bare{l2}, nil)
	noErr(t, err)
	defer tr.Close()
	_, err = tr.PutIfAbsent(ctx, []byte("k"), []byte("v"), 0)
	if !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("PutIfAbsent = %v, want ErrUnsupported", err)
	}
	if _, err := tr.TTL(ctx, []byte("k")); !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("TTL = %v, want ErrUnsupported", err)
	}
	noErr(t, l2.Store.Put(ctx, []byte("filled"), []byte("v"), strata.NoExpiry))
	for range 2 {
		if _, err := tr.Get(ctx, []byte("filled")); err != nil {
			t.Fatal(err)
		}
		tr.WaitL1()
	}
	if n := l2.gets.Load(); n != 2 {
		t.Fatalf("%d L2 reads for 2 Gets; want 2 (no fill without TTLs)", n)
	}
	noErr(t, tr.Put(ctx, []byte("w"), []byte("v"), time.Hour))
	tr.WaitL1()
	if _, err := tr.Get(ctx, []byte("w")); err != nil || l2.gets.Load() != 2 {
		t.Fatalf("Get of a written key = %v after %d L2 reads; want an L1 hit", err, l2.gets.Load())
	}
	vs, err := tr.GetMany(ctx, [][]byte{[]byte("filled"), []byte("w"), []byte("none")})
	if err != nil || string(vs[0]) != "v" || string(vs[1]) != "v" || vs[2] != nil {
		t.Fatalf("GetMany = %q, %v", vs, err)
	}
}

// Close while other goroutines use the tier: no panic, and every call
// either works or reports ErrClosed.
func TestCloseWhileBusy(t *testing.T) {
	for range 20 {
		l2 := memory.New(nil)
		tr, err := tier.New(l2, &tier.Options{MaxBytes: tier.DefaultEngine.Budget(16, 16, 16)})
		noErr(t, err)
		ctx := context.Background()
		var wg sync.WaitGroup
		var started atomic.Int32
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					k := fmt.Appendf(nil, "k%d", (i+g)%50)
					var err error
					switch i % 3 {
					case 0:
						err = tr.Put(ctx, k, []byte("v"), strata.NoExpiry)
					case 1:
						_, err = tr.Get(ctx, k)
					default:
						err = tr.Delete(ctx, k)
					}
					started.Add(1)
					if errors.Is(err, strata.ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, strata.ErrNotFound) {
						t.Errorf("op: %v", err)
						return
					}
				}
			}()
		}
		wait.For(t, 10*time.Second, "the workers to start", func() bool { return started.Load() > 200 })
		noErr(t, tr.Close())
		wg.Wait()
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t, tier.Options{MaxBytes: tier.DefaultEngine.Budget(20, 16, 200)})
	noErr(t, f.l2.Store.Put(f.ctx, []byte("k"), []byte("12345"), strata.NoExpiry))
	f.wantL2("k", "12345", false)
	f.wantHit("k", "12345")
	f.wantL2("none", "", true)
	s := f.tier.TierStats()
	if s.L1Hits != 1 || s.L1Misses != 2 || s.Fills != 1 || s.L1HitRatio != 1.0/3 || !s.HasL2 || s.L2.Backend != "memory" {
		t.Fatalf("TierStats = %+v", s)
	}
	if s.L1Bytes <= 0 || s.L1Bytes > s.L1MaxBytes {
		t.Fatalf("L1Bytes = %d of %d", s.L1Bytes, s.L1MaxBytes)
	}
	st := f.tier.Stats()
	if st.Backend != "tier" || st.Gets != 3 || st.Hits != 2 || st.Misses != 1 || st.BytesRead != 10 ||
		st.Keys != 1 || st.Gauges["l1_hits_total"] != 1 || st.Gauges["l2_gets_total"] != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	// Fill far past MaxBytes: ristretto evicts, and L1 stays in bounds.
	value := make([]byte, 200)
	for i := range 2000 {
		k := fmt.Appendf(nil, "fill%d", i)
		noErr(t, f.tier.Put(f.ctx, k, value, strata.NoExpiry))
	}
	f.tier.WaitL1()
	s = f.tier.TierStats()
	if s.L1Evictions+s.L1Rejections == 0 || s.L1Bytes > s.L1MaxBytes {
		t.Fatalf("after overfilling: evictions %d, rejections %d, bytes %d of %d", s.L1Evictions, s.L1Rejections, s.L1Bytes, s.L1MaxBytes)
	}
}
