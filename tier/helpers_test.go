package tier_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

// Failure modes of hooked writes.
const (
	failNone   = iota
	failBefore // the write is refused: nothing applied (ErrUnavailable)
	failAfter  // the write is applied, then reported failed (ErrIndeterminate)
)

// hooked is a real memory store with counters, failures on demand and hooks
// around reads and writes, to steer the tier into the interleavings under
// test. It is not a mock: every call reaches the memory store.
type hooked struct {
	*memory.Store
	fail      atomic.Int32
	failReads atomic.Bool // GetManyWithTTL fails (ErrUnavailable)

	gets, getTTLs, getManys, getManyKeys atomic.Int64

	mu          sync.Mutex
	afterRead   func(key []byte) // runs after GetWithTTL has read, before it returns
	beforeWrite func(key []byte) // runs before a Put is applied
	afterWrite  func(key []byte) // runs after a Put is applied, before it returns
	beforeMany  func(key []byte) // runs before GetManyWithTTL reads (with its first key)
}

func newHooked(clock strata.Clock) *hooked {
	return &hooked{Store: memory.New(&memory.Options{Clock: clock})}
}

func (s *hooked) hook(f *func([]byte)) func([]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *f
}

func (s *hooked) setHooks(afterRead, beforeWrite, afterWrite func([]byte)) {
	s.mu.Lock()
	s.afterRead, s.beforeWrite, s.afterWrite = afterRead, beforeWrite, afterWrite
	s.mu.Unlock()
}

// write runs apply under the failure mode.
func (s *hooked) write(op string, key []byte, apply func() error) error {
	mode := s.fail.Load()
	if mode == failBefore {
		return storekit.NewOpError(op, "hooked", key, strata.ErrUnavailable)
	}
	if err := apply(); err != nil {
		return err
	}
	if mode == failAfter {
		return storekit.NewOpError(op, "hooked", key, strata.ErrIndeterminate)
	}
	return nil
}

func (s *hooked) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *hooked) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	s.getTTLs.Add(1)
	v, ttl, err := s.Store.GetWithTTL(ctx, key)
	if f := s.hook(&s.afterRead); f != nil {
		f(key)
	}
	return v, ttl, err
}

func (s *hooked) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	s.getManys.Add(1)
	s.getManyKeys.Add(int64(len(keys)))
	return s.Store.GetMany(ctx, keys)
}

func (s *hooked) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	return s.write("put", key, func() error {
		if f := s.hook(&s.beforeWrite); f != nil {
			f(key)
		}
		err := s.Store.Put(ctx, key, value, ttl)
		if f := s.hook(&s.afterWrite); f != nil {
			f(key)
		}
		return err
	})
}

func (s *hooked) Delete(ctx context.Context, key []byte) error {
	return s.write("delete", key, func() error { return s.Store.Delete(ctx, key) })
}

func (s *hooked) PutMany(ctx context.Context, entries []strata.Entry) error {
	return s.write("put_many", nil, func() error { return s.Store.PutMany(ctx, entries) })
}

func (s *hooked) DeleteMany(ctx context.Context, keys [][]byte) (n int, err error) {
	err = s.write("delete_many", nil, func() error {
		n, err = s.Store.DeleteMany(ctx, keys)
		return err
	})
	return n, err
}

func (s *hooked) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (ok bool, err error) {
	err = s.write("put_if_absent", key, func() error {
		ok, err = s.Store.PutIfAbsent(ctx, key, value, ttl)
		return err
	})
	return ok, err
}

func (s *hooked) GetAndDelete(ctx context.Context, key []byte) (v []byte, err error) {
	err = s.write("get_and_delete", key, func() error {
		v, err = s.Store.GetAndDelete(ctx, key)
		return err
	})
	return v, err
}

func (s *hooked) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (ok bool, err error) {
	err = s.write("compare_and_swap", key, func() error {
		ok, err = s.Store.CompareAndSwap(ctx, key, old, new, ttl)
		return err
	})
	return ok, err
}

func (s *hooked) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	s.getManys.Add(1)
	s.getManyKeys.Add(int64(len(keys)))
	if f := s.hook(&s.beforeMany); f != nil && len(keys) > 0 {
		f(keys[0])
	}
	if s.failReads.Load() {
		return nil, storekit.NewOpError("get_many_with_ttl", "hooked", nil, strata.ErrUnavailable)
	}
	return s.Store.GetManyWithTTL(ctx, keys)
}

func (s *hooked) setBeforeMany(f func([]byte)) {
	s.mu.Lock()
	s.beforeMany = f
	s.mu.Unlock()
}

func (s *hooked) Commit(ctx context.Context, b *strata.WriteBatch) error {
	return s.write("commit", nil, func() error { return s.Store.Commit(ctx, b) })
}

// noBatchTTL is a hooked store without GetManyWithTTL: GetMany does not
// say how long each value has left.
type noBatchTTL struct {
	strata.Store
	strata.Batcher
	strata.Expirer
}

// fixture is a tier over a hooked memory store sharing a fake clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *conformance.Clock
	l2    *hooked
	tier  *tier.Tier
}

func newFixture(t *testing.T, opts tier.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: t.Context(), clock: conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	f.l2 = newHooked(f.clock)
	opts.Clock = f.clock
	tr, err := tier.New(f.l2, &opts)
	if err != nil {
		t.Fatal(err)
	}
	f.tier = tr
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func (f *fixture) put(key, value string, ttl time.Duration) {
	f.t.Helper()
	if err := f.tier.Put(f.ctx, []byte(key), []byte(value), ttl); err != nil {
		f.t.Fatalf("Put(%q): %v", key, err)
	}
}

// want fails unless Get(key) returns value ("" with absent=true: ErrNotFound).
func (f *fixture) want(key, value string) {
	f.t.Helper()
	got, err := f.tier.Get(f.ctx, []byte(key))
	if err != nil || string(got) != value {
		f.t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, value)
	}
}

func (f *fixture) wantAbsent(key string) {
	f.t.Helper()
	got, err := f.tier.Get(f.ctx, []byte(key))
	if err != strata.ErrNotFound {
		f.t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// reads returns how many single-key reads reached the L2.
func (f *fixture) reads() int64 { return f.l2.gets.Load() + f.l2.getTTLs.Load() }

// wantHit fails unless Get(key) returns value without reaching the L2.
func (f *fixture) wantHit(key, value string) {
	f.t.Helper()
	f.tier.WaitL1()
	before := f.reads()
	f.want(key, value)
	if n := f.reads() - before; n != 0 {
		f.t.Fatalf("Get(%q) reached the L2 (%d reads); want an L1 hit", key, n)
	}
}

// wantL2 fails unless Get(key) returns value (or ErrNotFound for absent)
// from the L2.
func (f *fixture) wantL2(key, value string, absent bool) {
	f.t.Helper()
	f.tier.WaitL1()
	before := f.reads()
	if absent {
		f.wantAbsent(key)
	} else {
		f.want(key, value)
	}
	if n := f.reads() - before; n != 1 {
		f.t.Fatalf("Get(%q) made %d L2 reads; want 1 (an L1 miss)", key, n)
	}
}

// fakeInvalidator is an Invalidator the test drives through its sink.
type fakeInvalidator struct {
	upAtStart bool // call sink.Up from Start

	mu      sync.Mutex
	sink    *tier.Sink
	started int
	closed  int
}

func (f *fakeInvalidator) Start(s *tier.Sink) error {
	f.mu.Lock()
	f.sink = s
	f.started++
	f.mu.Unlock()
	if f.upAtStart {
		s.Up()
	}
	return nil
}

func (f *fakeInvalidator) Close() error {
	f.mu.Lock()
	f.closed++
	f.mu.Unlock()
	return nil
}

// counts returns how often the tier started and closed f.
func (f *fakeInvalidator) counts() (started, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started, f.closed
}

// backendStore is a memory store that reports another backend name.
type backendStore struct {
	*memory.Store
	backend string
}

func (s backendStore) Stats() strata.Stats {
	st := s.Store.Stats()
	st.Backend = s.backend
	return st
}
