package locks_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/locks"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/stores/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memTable is an in-process lock table: the reference Locker the
// conformance suite is checked against here, and a way to drive the lease
// machinery through every path.
type memTable struct {
	mu    sync.Mutex
	down  bool
	locks map[string]memHold
	fence map[string]uint64
	owner int
}

type memHold struct {
	owner  int
	expiry time.Time
}

func newMemTable() *memTable {
	return &memTable{locks: map[string]memHold{}, fence: map[string]uint64{}}
}

var errDown = errors.New("mem: backend down")

type memLocker struct {
	tab     *memTable
	opts    locks.Options
	crashed atomic.Bool
}

func (lk *memLocker) Acquire(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	if _, err := check(name, ttl); err != nil {
		return nil, err
	}
	return locks.Retry(ctx, name, &lk.opts, func(ctx context.Context) (locks.Lease, error) {
		return lk.TryAcquire(ctx, name, ttl)
	})
}

func check(name string, ttl time.Duration) (time.Duration, error) {
	return locks.CheckRequest("mem", name, ttl)
}

func (lk *memLocker) TryAcquire(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	ttl, err := check(name, ttl)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if lk.crashed.Load() {
		return nil, strata.ErrClosed
	}
	t := lk.tab
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return nil, storekit.NewOpError("acquire", "mem", []byte(name), errors.Join(strata.ErrUnavailable, errDown))
	}
	sent := time.Now()
	if h, ok := t.locks[name]; ok && sent.Before(h.expiry) {
		return nil, locks.ErrHeld
	}
	t.owner++
	t.fence[name]++
	t.locks[name] = memHold{owner: t.owner, expiry: sent.Add(ttl)}
	return locks.NewLease(locks.LeaseConfig{
		Name: name, Token: t.fence[name], TTL: ttl, Sent: sent, Backend: "mem",
		Lock: &memLease{lk: lk, name: name, owner: t.owner}, Options: &lk.opts,
	}), nil
}

type memLease struct {
	lk    *memLocker
	name  string
	owner int
}

func (l *memLease) op(release bool, ttl time.Duration) error {
	if l.lk.crashed.Load() {
		return strata.ErrClosed
	}
	t := l.lk.tab
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return errDown
	}
	h, ok := t.locks[l.name]
	if !ok || h.owner != l.owner || !time.Now().Before(h.expiry) {
		return locks.ErrLost
	}
	if release {
		delete(t.locks, l.name)
	} else {
		t.locks[l.name] = memHold{owner: l.owner, expiry: time.Now().Add(ttl)}
	}
	return nil
}

func (l *memLease) Renew(_ context.Context, ttl time.Duration) error { return l.op(false, ttl) }
func (l *memLease) Release(context.Context) error                    { return l.op(true, 0) }
func (l *memLease) Abandon()                                         {}

// TestConformance runs the lock suite against the in-process Locker: it
// checks the suite and the lease machinery without a server.
func TestConformance(t *testing.T) {
	tab := newMemTable()
	conformance.RunLocker(t, conformance.LockerHarness{
		NewLocker: func(t *testing.T, o locks.Options) locks.Locker {
			return &memLocker{tab: tab, opts: o}
		},
		NewCrashable: func(t *testing.T, o locks.Options) (locks.Locker, func()) {
			lk := &memLocker{tab: tab, opts: o}
			return lk, func() { lk.crashed.Store(true) }
		},
		KillBackend: func(t *testing.T, name string) func() {
			tab.mu.Lock()
			tab.down = true
			tab.locks = map[string]memHold{} // no persistence; the fence survives
			tab.mu.Unlock()
			return func() {
				tab.mu.Lock()
				tab.down = false
				tab.mu.Unlock()
			}
		},
		TTL: 500 * time.Millisecond,
	})
}

// scripted is a LeaseBackend whose answers the test sets.
type scripted struct {
	mu        sync.Mutex
	renewErrs []error // returned in order by Renew, then nil
	renews    int
	release   error
	releases  int
	abandons  int
	hold      chan struct{} // if set, Release waits for it to close
}

func (s *scripted) Renew(context.Context, time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renews++
	if len(s.renewErrs) > 0 {
		err := s.renewErrs[0]
		s.renewErrs = s.renewErrs[1:]
		return err
	}
	return nil
}

func (s *scripted) Release(context.Context) error {
	s.mu.Lock()
	s.releases++
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.release
}

func (s *scripted) Abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abandons++
}

func (s *scripted) counts() (renews, releases, abandons int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renews, s.releases, s.abandons
}

func newScripted(b *scripted, ttl time.Duration, o *locks.Options) *locks.ManagedLease {
	return locks.NewLease(locks.LeaseConfig{Name: "n", Token: 7, TTL: ttl, Backend: "test", Lock: b, Options: o})
}

func waitDone(t *testing.T, l locks.Lease) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("lease did not end")
	}
}

func TestLeaseLose(t *testing.T) {
	b := &scripted{}
	l := newScripted(b, time.Minute, nil)
	cause := errors.New("connection reset")
	l.Lose(cause)
	waitDone(t, l)
	if err := l.Err(); !errors.Is(err, locks.ErrLost) || !errors.Is(err, cause) {
		t.Fatalf("Err() = %v, want ErrLost wrapping the cause", err)
	}
	wait.For(t, 10*time.Second, "Abandon", func() bool { _, _, a := b.counts(); return a == 1 })
	l.Lose(cause) // twice: no effect
	if err := l.Release(context.Background()); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Release after loss = %v", err)
	}
	if err := l.Extend(context.Background(), time.Second); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Extend after loss = %v", err)
	}
	if _, rel, ab := b.counts(); rel != 0 || ab != 1 {
		t.Fatalf("backend Release called %d times, Abandon %d; want 0 and 1", rel, ab)
	}
}

func TestLeaseRenewalRetries(t *testing.T) {
	// Two transient failures, then success: the lease survives.
	b := &scripted{renewErrs: []error{errDown, errDown}}
	l := newScripted(b, 300*time.Millisecond, nil)
	wait.For(t, 10*time.Second, "4 renewals", func() bool { r, _, _ := b.counts(); return r >= 4 })
	select {
	case <-l.Done():
		t.Fatalf("lease lost after transient failures: %v", l.Err())
	default:
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ab := b.counts(); ab != 0 {
		t.Fatal("Abandon called after Release")
	}
}

func TestLeaseRenewalFailsPastTTL(t *testing.T) {
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = errDown
	}
	b := &scripted{renewErrs: errs}
	start := time.Now()
	l := newScripted(b, 200*time.Millisecond, nil)
	waitDone(t, l)
	if since := time.Since(start); since < 200*time.Millisecond {
		t.Fatalf("lease lost after %v, before its TTL", since)
	}
	if err := l.Err(); !errors.Is(err, locks.ErrLost) || !errors.Is(err, errDown) {
		t.Fatalf("Err() = %v, want ErrLost with the last renewal error", err)
	}
	wait.For(t, 10*time.Second, "Abandon", func() bool { _, _, a := b.counts(); return a == 1 })
}

func TestLeaseRenewalLost(t *testing.T) {
	b := &scripted{renewErrs: []error{locks.ErrLost}}
	l := newScripted(b, 150*time.Millisecond, nil)
	waitDone(t, l)
	if !errors.Is(l.Err(), locks.ErrLost) {
		t.Fatalf("Err() = %v", l.Err())
	}
	if r, _, _ := b.counts(); r != 1 {
		t.Fatalf("%d renewals, want 1", r)
	}
}

func TestLeaseNoRenewal(t *testing.T) {
	b := &scripted{}
	l := newScripted(b, 100*time.Millisecond, &locks.Options{DisableRenewal: true})
	waitDone(t, l)
	if r, _, _ := b.counts(); r != 0 {
		t.Fatalf("%d renewals with renewal disabled", r)
	}
	if !errors.Is(l.Err(), locks.ErrLost) {
		t.Fatalf("Err() = %v", l.Err())
	}
}

func TestLeaseExtend(t *testing.T) {
	ctx := context.Background()
	b := &scripted{}
	l := newScripted(b, time.Minute, &locks.Options{DisableRenewal: true})
	if err := l.Extend(ctx, -time.Second); !errors.Is(err, strata.ErrInvalidTTL) {
		t.Fatalf("Extend(-1s) = %v", err)
	}
	if err := l.Extend(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.renewErrs = []error{errDown, locks.ErrLost}
	b.mu.Unlock()
	if err := l.Extend(ctx, time.Hour); !errors.Is(err, errDown) {
		t.Fatalf("Extend with a transient failure = %v", err)
	}
	if l.Err() != nil {
		t.Fatal("a transient Extend failure ended the lease")
	}
	if err := l.Extend(ctx, time.Hour); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Extend of a lost lock = %v", err)
	}
	waitDone(t, l)
}

func TestLeaseRelease(t *testing.T) {
	ctx := context.Background()
	b := &scripted{}
	l := newScripted(b, time.Minute, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Release(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, rel, ab := b.counts(); rel != 1 || ab != 0 {
		t.Fatalf("backend Release %d times, Abandon %d; want 1 and 0", rel, ab)
	}
	if !errors.Is(l.Err(), locks.ErrReleased) || !errors.Is(l.Err(), strata.ErrClosed) {
		t.Fatalf("Err() = %v", l.Err())
	}

	// A failed release gives the lease up all the same.
	b2 := &scripted{release: errDown}
	l2 := newScripted(b2, time.Minute, nil)
	if err := l2.Release(ctx); !errors.Is(err, errDown) {
		t.Fatalf("Release = %v", err)
	}
	waitDone(t, l2)
	if !errors.Is(l2.Err(), errDown) {
		t.Fatalf("Err() = %v", l2.Err())
	}
	if err := l2.Release(ctx); !errors.Is(err, errDown) {
		t.Fatalf("second Release = %v", err)
	}
}

// TestLeaseExpiresDuringRelease: a Release stuck in the backend does not
// hold Done open past the lease's validity.
func TestLeaseExpiresDuringRelease(t *testing.T) {
	ctx := context.Background()
	b := &scripted{hold: make(chan struct{})}
	l := newScripted(b, 200*time.Millisecond, &locks.Options{DisableRenewal: true})
	first := make(chan error, 1)
	go func() { first <- l.Release(ctx) }()
	wait.For(t, 10*time.Second, "Release to reach the backend", func() bool { _, r, _ := b.counts(); return r == 1 })
	waitDone(t, l)
	if err := l.Err(); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Err() = %v, want ErrLost", err)
	}
	if err := l.Release(ctx); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("second Release = %v, want ErrLost", err)
	}
	select {
	case err := <-first:
		t.Fatalf("Release returned (%v) before the backend answered", err)
	default:
	}
	close(b.hold)
	if err := <-first; !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Release = %v, want ErrLost", err)
	}
	if !errors.Is(l.Err(), locks.ErrLost) {
		t.Fatalf("Err() after Release = %v, want ErrLost still", l.Err())
	}
	if _, rel, ab := b.counts(); rel != 1 || ab != 0 {
		t.Fatalf("backend Release %d times, Abandon %d; want 1 and 0", rel, ab)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	calls := 0
	_, err := locks.Retry(ctx, "n", nil, func(context.Context) (locks.Lease, error) {
		calls++
		return nil, boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Retry on a hard error = %v after %d calls", err, calls)
	}
	calls = 0
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = locks.Retry(short, "n", &locks.Options{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond},
		func(context.Context) (locks.Lease, error) {
			calls++
			return nil, locks.ErrHeld
		})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, locks.ErrHeld) || calls < 3 {
		t.Fatalf("Retry until the deadline = %v after %d calls", err, calls)
	}
	calls = 0
	l, err := locks.Retry(ctx, "n", nil, func(context.Context) (locks.Lease, error) {
		calls++
		if calls < 3 {
			return nil, storekit.NewOpError("acquire", "x", nil, errors.Join(strata.ErrUnavailable, errDown))
		}
		return newScripted(&scripted{}, time.Minute, nil), nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Retry through unavailability = %v after %d calls", err, calls)
	}
	_ = l.Release(ctx)
}

// TestRetryBadOptions: Retry is exported and takes options directly; bad
// backoff is an error, never a panic (rand.N panics on a bound <= 0).
func TestRetryBadOptions(t *testing.T) {
	for _, o := range []locks.Options{
		{MinBackoff: -10 * time.Millisecond},
		{MinBackoff: time.Millisecond, MaxBackoff: -time.Second},
		{MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		calls := 0
		_, err := locks.Retry(context.Background(), "n", &o, func(context.Context) (locks.Lease, error) {
			calls++
			return nil, locks.ErrHeld
		})
		if !errors.Is(err, strata.ErrInvalidConfig) || calls != 0 {
			t.Errorf("Retry with %+v = %v after %d attempts, want ErrInvalidConfig before any", o, err, calls)
		}
	}
}

func TestOptions(t *testing.T) {
	var o locks.Options
	o.EnsureDefaults()
	if o.MinBackoff != locks.DefaultMinBackoff || o.MaxBackoff != locks.DefaultMaxBackoff || o.Validate() != nil {
		t.Fatalf("defaults = %+v", o)
	}
	o = locks.Options{MinBackoff: time.Second, MaxBackoff: time.Millisecond}
	if err := o.Validate(); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("MinBackoff > MaxBackoff: %v, want ErrInvalidConfig", err)
	}
	if err := locks.CheckName(""); !errors.Is(err, strata.ErrInvalidKey) {
		t.Fatal(err)
	}
	if ttl, err := locks.CheckTTL(1500 * time.Microsecond); err != nil || ttl != 2*time.Millisecond {
		t.Fatalf("CheckTTL(1.5ms) = %v, %v", ttl, err)
	}
	if _, err := locks.CheckTTL(strata.NoExpiry); !errors.Is(err, strata.ErrInvalidTTL) {
		t.Fatal(err)
	}
}

// storeOnly hides every capability of a store.
type storeOnly struct{ strata.Store }

func TestFenced(t *testing.T) {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	key := []byte("resource")
	if _, _, err := locks.FencedGet(ctx, s, key); !errors.Is(err, strata.ErrNotFound) {
		t.Fatal(err)
	}
	for _, step := range []struct {
		tok uint64
		ok  bool
	}{{5, true}, {5, true}, {4, false}, {1 << 63, true}, {1<<63 - 1, false}} {
		err := locks.FencedPut(ctx, s, key, step.tok, []byte{byte(step.tok)}, strata.NoExpiry)
		if step.ok != (err == nil) || (!step.ok && !errors.Is(err, locks.ErrStaleToken)) {
			t.Fatalf("FencedPut(%d) = %v, want accepted=%v", step.tok, err, step.ok)
		}
	}
	if v, tok, err := locks.FencedGet(ctx, s, key); err != nil || tok != 1<<63 || len(v) != 1 {
		t.Fatalf("FencedGet = %v, %d, %v", v, tok, err)
	}
	if err := s.Put(ctx, []byte("plain"), []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := locks.FencedPut(ctx, s, []byte("plain"), 1, nil, 0); !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("FencedPut over a foreign value = %v", err)
	}
	if _, _, err := locks.FencedGet(ctx, s, []byte("plain")); !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("FencedGet of a foreign value = %v", err)
	}
	if err := locks.FencedPut(ctx, storeOnly{s}, key, 9, nil, 0); !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("FencedPut on a store without Atomic = %v", err)
	}

	// Racing writers: the register ends with the highest token, and a
	// writer whose token is below one already stored is always rejected.
	race := []byte("race")
	var wg sync.WaitGroup
	for tok := uint64(1); tok <= 32; tok++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := locks.FencedPut(ctx, s, race, tok, []byte{byte(tok)}, 0)
			if err != nil && !errors.Is(err, locks.ErrStaleToken) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v, tok, err := locks.FencedGet(ctx, s, race); err != nil || tok != 32 || v[0] != 32 {
		t.Fatalf("after the race: %v, %d, %v; want token 32", v, tok, err)
	}
}

// ExampleFencedPut protects a value in any strata store with the lease's
// fencing token.
func ExampleFencedPut() {
	ctx := context.Background()
	store := memory.New(nil)
	defer store.Close()

	// Holder 1 writes with token 41; holder 2 took over with token 42.
	_ = locks.FencedPut(ctx, store, []byte("report"), 41, []byte("old"), strata.NoExpiry)
	_ = locks.FencedPut(ctx, store, []byte("report"), 42, []byte("new"), strata.NoExpiry)
	// Holder 1 wakes from a pause and writes again: rejected.
	err := locks.FencedPut(ctx, store, []byte("report"), 41, []byte("stale"), strata.NoExpiry)
	v, tok, _ := locks.FencedGet(ctx, store, []byte("report"))
	fmt.Println(errors.Is(err, locks.ErrStaleToken), string(v), tok)
	// Output: true new 42
}

func TestInstrument(t *testing.T) {
	ctx := t.Context()
	l := locks.Instrument(&memLocker{tab: newMemTable()})
	a, err := l.TryAcquire(ctx, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.TryAcquire(ctx, "job", time.Minute); !errors.Is(err, locks.ErrHeld) {
		t.Fatalf("second TryAcquire = %v", err)
	}
	if _, err := l.TryAcquire(ctx, "", time.Minute); err == nil {
		t.Fatal("TryAcquire with an empty name succeeded")
	}
	if st := l.Stats(); st.Acquired != 1 || st.Contended != 1 || st.Failed != 1 || st.Held != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "Stats to count the release", func() bool {
		return l.Stats().Released == 1 && l.Stats().Held == 0
	})
}

// TestLeaseErrAfterPause: a lease whose validity ran out while the process
// did not run (SIGSTOP, a long GC pause) reports ErrLost from Err at once,
// before its expiry timer gets to fire.
func TestLeaseErrAfterPause(t *testing.T) {
	b := &scripted{}
	// Acquired an hour ago for a minute: the validity has run out, and the
	// timer that would notice has not run yet.
	l := locks.NewLease(locks.LeaseConfig{Name: "n", Token: 7, TTL: time.Minute, Backend: "test", Lock: b,
		Sent: time.Now().Add(-time.Hour), Options: &locks.Options{DisableRenewal: true}})
	if err := l.Err(); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Err() of a lease past its validity = %v, want ErrLost", err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Err reported the loss but Done is open")
	}
	wait.For(t, 10*time.Second, "Abandon", func() bool { _, _, a := b.counts(); return a == 1 })
}
