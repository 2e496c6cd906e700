package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
)

// LockerHarness describes a locks.Locker implementation to [RunLocker]:
//
//	func TestLockerConformance(t *testing.T) {
//		conformance.RunLocker(t, conformance.LockerHarness{
//			NewLocker:    func(t *testing.T, o locks.Options) locks.Locker { ... },
//			NewCrashable: func(t *testing.T, o locks.Options) (locks.Locker, func()) { ... },
//			KillBackend:  func(t *testing.T, name string) func() { ... },
//		})
//	}
type LockerHarness struct {
	// NewLocker returns a Locker configured with o that has its own
	// connections to the backend. Every Locker the harness returns during
	// one RunLocker call must share the same locks (one server, one
	// database, one key prefix). One Locker must be able to hold 32 leases
	// at once (a Postgres pool of at least that many connections). Register
	// cleanup (closing clients and pools) with t.Cleanup: the suite
	// releases its leases before that cleanup runs. Required.
	NewLocker func(t *testing.T, o locks.Options) locks.Locker

	// NewCrashable returns a Locker like NewLocker, and a crash func that
	// makes it vanish as if its process had died: its connections are
	// gone and nothing it holds is released politely (Redis: close its
	// client; Postgres: terminate its sessions from another connection).
	// A crashed holder's lock must become available again: once its TTL
	// has run out, or as soon as the server sees its session end. Required.
	NewCrashable func(t *testing.T, o locks.Options) (locks.Locker, func())

	// KillBackend stops the backend that serves the lock name, as a crash
	// would, and returns a func that starts it again and returns once it
	// serves requests. The suite calls restart before it returns, even on
	// failure. Nil skips the BackendLost subtest (with a message).
	KillBackend func(t *testing.T, name string) (restart func())

	// TTL is the lease TTL of the subtests that wait for real time to pass
	// (renewal, expiry, crashes). Default 1s; raise it on a slow machine
	// or backend.
	TTL time.Duration
}

// RunLocker runs the lock conformance subtests against the Locker h
// describes: Basic, Names, Context, AcquireWaits, MutualExclusion (16
// contenders checked by a fenced register), NonOwnerRelease, Renewal,
// Extend, CrashedHolder and BackendLost. Subtests run one after the other,
// since BackendLost stops the backend.
func RunLocker(t *testing.T, h LockerHarness) {
	t.Helper()
	if h.NewLocker == nil || h.NewCrashable == nil {
		t.Fatal("conformance: LockerHarness.NewLocker and NewCrashable are required")
	}
	if h.TTL <= 0 {
		h.TTL = time.Second
	}
	s := &lockerSuite{h: h}
	t.Run("Basic", s.testBasic)
	t.Run("Names", s.testNames)
	t.Run("Context", s.testContext)
	t.Run("AcquireWaits", s.testAcquireWaits)
	t.Run("MutualExclusion", s.testMutualExclusion)
	t.Run("NonOwnerRelease", s.testNonOwnerRelease)
	t.Run("Renewal", s.testRenewal)
	t.Run("Extend", s.testExtend)
	t.Run("CrashedHolder", s.testCrashedHolder)
	t.Run("BackendLost", s.testBackendLost)
}

// lockerSuite is one run of RunLocker.
type lockerSuite struct {
	h LockerHarness
}

// lockerSlack bounds how late an event that is due may come (scheduling,
// a loaded machine, a server restart).
const lockerSlack = 15 * time.Second

// fast returns options with short backoff, for subtests that contend.
func lockerFast() locks.Options {
	return locks.Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func (s *lockerSuite) locker(t *testing.T) locks.Locker {
	t.Helper()
	l := s.h.NewLocker(t, lockerFast())
	if l == nil {
		t.Fatal("conformance: LockerHarness.NewLocker returned nil")
	}
	return l
}

// lockerName returns a lock name no other subtest or run uses.
func lockerName(t *testing.T, suffix string) string {
	return fmt.Sprintf("conformance/%s/%d/%s", t.Name(), time.Now().UnixNano(), suffix)
}

// lockerMustAcquire takes name with TryAcquire and releases it when t ends.
func lockerMustAcquire(t *testing.T, lk locks.Locker, name string, ttl time.Duration) locks.Lease {
	t.Helper()
	l, err := lk.TryAcquire(t.Context(), name, ttl)
	if err != nil {
		t.Fatalf("TryAcquire(%q): %v", name, err)
	}
	lockerCleanup(t, l)
	return l
}

// lockerCleanup releases l when t ends (a no-op if it already ended).
func lockerCleanup(t *testing.T, l locks.Lease) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), lockerSlack)
		defer cancel()
		_ = l.Release(ctx)
	})
}

// lockerWantHeld fails unless TryAcquire on name fails fast with ErrHeld.
func lockerWantHeld(t *testing.T, lk locks.Locker, name string) {
	t.Helper()
	type result struct {
		l   locks.Lease
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// No deadline: a TryAcquire that waited for the holder would hang.
		l, err := lk.TryAcquire(context.Background(), name, time.Minute)
		ch <- result{l, err}
	}()
	select {
	case r := <-ch:
		if r.err == nil {
			_ = r.l.Release(context.Background())
			t.Fatalf("TryAcquire(%q) on a held lock succeeded (token %d)", name, r.l.Token())
		}
		if !errors.Is(r.err, locks.ErrHeld) {
			t.Fatalf("TryAcquire(%q) on a held lock: %v, want ErrHeld", name, r.err)
		}
	case <-time.After(lockerSlack):
		t.Fatalf("TryAcquire(%q) on a held lock did not return within %v: it must not wait", name, lockerSlack)
	}
}

// lockerWantOpen fails if l has ended.
func lockerWantOpen(t *testing.T, l locks.Lease, what string) {
	t.Helper()
	select {
	case <-l.Done():
		t.Fatalf("%s: lease %q ended: %v", what, l.Name(), l.Err())
	default:
	}
	if err := l.Err(); err != nil {
		t.Fatalf("%s: Err() = %v while Done is open", what, err)
	}
}

// lockerWaitDone waits until l ends, for at most timeout.
func lockerWaitDone(t *testing.T, l locks.Lease, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(timeout):
		t.Fatalf("%s: lease %q did not end within %v", what, l.Name(), timeout)
	}
}

func (s *lockerSuite) testBasic(t *testing.T) {
	ctx := t.Context()
	a, b := s.locker(t), s.locker(t)
	name := lockerName(t, "basic")

	l := lockerMustAcquire(t, a, name, time.Minute)
	if l.Name() != name {
		t.Errorf("Name() = %q, want %q", l.Name(), name)
	}
	if l.Token() == 0 {
		t.Error("Token() = 0; tokens must be positive")
	}
	lockerWantOpen(t, l, "after TryAcquire")
	lockerWantHeld(t, b, name) // another Locker
	lockerWantHeld(t, a, name) // the same Locker: no reentrancy

	if err := l.Extend(ctx, 2*time.Minute); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Done is open after Release returned")
	}
	if err := l.Err(); !errors.Is(err, locks.ErrReleased) || !errors.Is(err, strata.ErrClosed) {
		t.Errorf("Err() after Release = %v, want ErrReleased (matching strata.ErrClosed)", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Errorf("second Release = %v, want nil", err)
	}
	if err := l.Extend(ctx, time.Minute); !errors.Is(err, locks.ErrReleased) {
		t.Errorf("Extend after Release = %v, want ErrReleased", err)
	}

	l2 := lockerMustAcquire(t, b, name, time.Minute)
	if l2.Token() <= l.Token() {
		t.Errorf("token after release = %d, not above the previous %d", l2.Token(), l.Token())
	}
	lockerWantHeld(t, a, name)
	if err := l2.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l3, err := a.Acquire(ctx, name, time.Minute)
	if err != nil {
		t.Fatalf("Acquire of a free lock: %v", err)
	}
	lockerCleanup(t, l3)
	if l3.Token() <= l2.Token() {
		t.Errorf("token = %d, not above the previous %d", l3.Token(), l2.Token())
	}
	if err := l3.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func (s *lockerSuite) testNames(t *testing.T) {
	ctx := t.Context()
	a, b := s.locker(t), s.locker(t)
	base := lockerName(t, "")

	for _, bad := range []string{"", strings.Repeat("n", locks.MaxNameLen+1)} {
		if _, err := a.TryAcquire(ctx, bad, time.Minute); !errors.Is(err, strata.ErrInvalidKey) {
			t.Errorf("TryAcquire(name of %d bytes) = %v, want ErrInvalidKey", len(bad), err)
		}
		if _, err := a.Acquire(ctx, bad, time.Minute); !errors.Is(err, strata.ErrInvalidKey) {
			t.Errorf("Acquire(name of %d bytes) = %v, want ErrInvalidKey", len(bad), err)
		}
	}
	for _, ttl := range []time.Duration{0, -1, -time.Second} {
		if _, err := a.TryAcquire(ctx, base+"ttl", ttl); !errors.Is(err, strata.ErrInvalidTTL) {
			t.Errorf("TryAcquire(ttl %v) = %v, want ErrInvalidTTL", ttl, err)
		}
		if _, err := a.Acquire(ctx, base+"ttl", ttl); !errors.Is(err, strata.ErrInvalidTTL) {
			t.Errorf("Acquire(ttl %v) = %v, want ErrInvalidTTL", ttl, err)
		}
	}

	// Names that a careless encoding would merge, split across hash
	// slots, or reject. Each must be its own lock.
	suffixes := []string{
		"a", "{a}", "a}", "}a", "{", "}", "{}", "}{", "%7B", "%7D", "%25", "%", "{{a}}",
		"a:fence", "\x00", "\x00\x01", "\xff\xfe", "a\nb", "é", "*", "?", "[x]", " ",
		strings.Repeat("{", 300) + strings.Repeat("}", 300),
	}
	names := make([]string, 0, len(suffixes)+2)
	for _, sfx := range suffixes {
		names = append(names, base+sfx)
	}
	names = append(names, "}"+base, "{"+base+"}", strings.Repeat("\xff", locks.MaxNameLen-len(base))+base)
	leases := make([]locks.Lease, len(names))
	for i, n := range names {
		leases[i] = lockerMustAcquire(t, a, n, time.Minute)
	}
	for i, n := range names {
		lockerWantHeld(t, b, n)
		if leases[i].Name() != n {
			t.Errorf("Name() = %q, want %q", leases[i].Name(), n)
		}
	}
	for i, l := range leases {
		if err := l.Release(ctx); err != nil {
			t.Errorf("Release(%q): %v", names[i], err)
		}
	}
	for _, n := range names {
		l := lockerMustAcquire(t, b, n, time.Minute)
		if err := l.Release(ctx); err != nil {
			t.Errorf("Release(%q): %v", n, err)
		}
	}
}

func (s *lockerSuite) testContext(t *testing.T) {
	a, b := s.locker(t), s.locker(t)
	name := lockerName(t, "ctx")
	lockerMustAcquire(t, a, name, time.Minute)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.TryAcquire(cancelled, lockerName(t, "free"), time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("TryAcquire with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := b.Acquire(cancelled, name, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled context = %v, want context.Canceled", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	done := make(chan error, 1)
	go func() {
		l, err := b.Acquire(short, name, time.Minute)
		if err == nil {
			_ = l.Release(context.Background())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire of a held lock past its deadline = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(lockerSlack):
		t.Fatal("Acquire did not return when its context expired")
	}
}

func (s *lockerSuite) testAcquireWaits(t *testing.T) {
	ctx := t.Context()
	a, b := s.locker(t), s.locker(t)
	name := lockerName(t, "wait")
	first := lockerMustAcquire(t, a, name, time.Minute)

	type result struct {
		l   locks.Lease
		err error
	}
	ch := make(chan result, 1)
	wctx, cancel := context.WithTimeout(ctx, lockerSlack)
	defer cancel()
	go func() {
		l, err := b.Acquire(wctx, name, time.Minute)
		ch <- result{l, err}
	}()
	// Let the waiter try a few times while the lock is held.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case r := <-ch:
			if r.err == nil {
				lockerCleanup(t, r.l)
			}
			t.Fatalf("Acquire returned while the lock was held: lease=%v err=%v", r.l != nil, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := first.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("Acquire after the holder released: %v", r.err)
	}
	lockerCleanup(t, r.l)
	if r.l.Token() <= first.Token() {
		t.Errorf("waiter's token %d is not above the previous holder's %d", r.l.Token(), first.Token())
	}
	if err := r.l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func (s *lockerSuite) testMutualExclusion(t *testing.T) {
	const contenders, lockers, rounds = 16, 4, 4
	name := lockerName(t, "mutex")
	lks := make([]locks.Locker, lockers)
	for i := range lks {
		lks[i] = s.locker(t)
	}
	reg := newLockerRegister()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, contenders*rounds)
	for c := range contenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lk := lks[c%lockers]
			for range rounds {
				if err := lockerCritical(ctx, lk, name, c, reg); err != nil {
					errs <- fmt.Errorf("contender %d: %w", c, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, v := range reg.violations() {
		t.Error(v)
	}
	if got := reg.entries(); got != contenders*rounds && !t.Failed() {
		t.Errorf("%d critical sections, want %d", got, contenders*rounds)
	}
}

// lockerCritical takes the lock, writes to the register while holding it,
// and releases it.
func lockerCritical(ctx context.Context, lk locks.Locker, name string, who int, reg *lockerRegister) error {
	l, err := lk.Acquire(ctx, name, 30*time.Second)
	if err != nil {
		return fmt.Errorf("Acquire: %w", err)
	}
	defer l.Release(context.WithoutCancel(ctx)) //nolint:errcheck // checked below on the normal path
	reg.enter(who, l.Token())
	for i := range 3 {
		if !reg.write(who, l.Token(), i) {
			return fmt.Errorf("fenced write with token %d rejected while holding the lease", l.Token())
		}
	}
	select {
	case <-l.Done():
		return fmt.Errorf("lease ended inside the critical section: %w", l.Err())
	default:
	}
	reg.exit(who)
	if err := l.Release(ctx); err != nil {
		return fmt.Errorf("Release: %w", err)
	}
	return nil
}

func (s *lockerSuite) testNonOwnerRelease(t *testing.T) {
	ctx := t.Context()
	ttl := s.h.TTL
	noRenew := lockerFast()
	noRenew.DisableRenewal = true
	a := s.h.NewLocker(t, noRenew)
	b, c := s.locker(t), s.locker(t)
	name := lockerName(t, "owner")

	old := lockerMustAcquire(t, a, name, ttl)
	lockerWaitDone(t, old, ttl+lockerSlack, "a lease without renewal after its TTL")
	if err := old.Err(); !errors.Is(err, locks.ErrLost) {
		t.Fatalf("Err() of an expired lease = %v, want ErrLost", err)
	}
	wctx, cancel := context.WithTimeout(ctx, lockerSlack)
	defer cancel()
	cur, err := b.Acquire(wctx, name, time.Minute)
	if err != nil {
		t.Fatalf("Acquire after the previous lease expired: %v", err)
	}
	lockerCleanup(t, cur)
	if cur.Token() <= old.Token() {
		t.Errorf("new token %d is not above the expired lease's %d", cur.Token(), old.Token())
	}

	if err := old.Release(ctx); !errors.Is(err, locks.ErrLost) {
		t.Errorf("Release of a lost lease = %v, want ErrLost", err)
	}
	if err := old.Extend(ctx, time.Minute); !errors.Is(err, locks.ErrLost) {
		t.Errorf("Extend of a lost lease = %v, want ErrLost", err)
	}
	// The stale release must not have freed the new holder's lock.
	lockerWantHeld(t, c, name)
	lockerWantOpen(t, cur, "after a stale Release")
	if err := cur.Extend(ctx, time.Minute); err != nil {
		t.Errorf("the holder's Extend after a stale Release: %v", err)
	}
	if err := cur.Release(ctx); err != nil {
		t.Errorf("the holder's Release: %v", err)
	}
}

func (s *lockerSuite) testRenewal(t *testing.T) {
	ctx := t.Context()
	ttl := s.h.TTL
	a, b := s.locker(t), s.locker(t)
	name := lockerName(t, "renew")
	l := lockerMustAcquire(t, a, name, ttl)

	// Real time is what is under test: the lease must outlive 4 TTLs.
	end := time.After(4 * ttl)
	check := time.NewTicker(ttl / 2)
	defer check.Stop()
	for waiting := true; waiting; {
		select {
		case <-l.Done():
			t.Fatalf("a renewing lease ended before 4 TTLs: %v", l.Err())
		case <-check.C:
			lockerWantHeld(t, b, name)
		case <-end:
			waiting = false
		}
	}
	lockerWantOpen(t, l, "after 4 TTLs")
	lockerWantHeld(t, b, name)
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	lockerMustAcquire(t, b, name, ttl)
}

func (s *lockerSuite) testExtend(t *testing.T) {
	ctx := t.Context()
	ttl := s.h.TTL
	noRenew := lockerFast()
	noRenew.DisableRenewal = true
	a := s.h.NewLocker(t, noRenew)
	b := s.locker(t)
	name := lockerName(t, "extend")
	l := lockerMustAcquire(t, a, name, ttl)

	if err := l.Extend(ctx, 0); !errors.Is(err, strata.ErrInvalidTTL) {
		t.Errorf("Extend(0) = %v, want ErrInvalidTTL", err)
	}
	// Extending by hand keeps a lease without renewal alive past its TTL.
	end := time.Now().Add(3 * ttl)
	for time.Now().Before(end) {
		select {
		case <-l.Done():
			t.Fatalf("an extended lease ended: %v", l.Err())
		case <-time.After(ttl / 4):
		}
		if err := l.Extend(ctx, ttl); err != nil {
			t.Fatalf("Extend: %v", err)
		}
	}
	lockerWantHeld(t, b, name)
	// Then it runs out.
	lockerWaitDone(t, l, ttl+lockerSlack, "a lease no longer extended")
	if !errors.Is(l.Err(), locks.ErrLost) {
		t.Errorf("Err() = %v, want ErrLost", l.Err())
	}
	wctx, cancel := context.WithTimeout(ctx, lockerSlack)
	defer cancel()
	next, err := b.Acquire(wctx, name, ttl)
	if err != nil {
		t.Fatalf("Acquire after the lease ran out: %v", err)
	}
	lockerCleanup(t, next)
	if next.Token() <= l.Token() {
		t.Errorf("token %d is not above the expired lease's %d", next.Token(), l.Token())
	}
}

func (s *lockerSuite) testCrashedHolder(t *testing.T) {
	ctx := t.Context()
	ttl := s.h.TTL
	victim, crash := s.h.NewCrashable(t, lockerFast())
	b := s.locker(t)
	name := lockerName(t, "crash")
	held := lockerMustAcquire(t, victim, name, ttl)
	lockerWantHeld(t, b, name)

	crash()
	wctx, cancel := context.WithTimeout(ctx, ttl+lockerSlack)
	defer cancel()
	next, err := b.Acquire(wctx, name, time.Minute)
	if err != nil {
		t.Fatalf("Acquire after the holder crashed: %v", err)
	}
	lockerCleanup(t, next)
	if next.Token() <= held.Token() {
		t.Errorf("token %d is not above the crashed holder's %d", next.Token(), held.Token())
	}
	// The crashed holder's lease (were its process still running) ends too.
	lockerWaitDone(t, held, ttl+lockerSlack, "the crashed holder's lease")
	if !errors.Is(held.Err(), locks.ErrLost) {
		t.Errorf("crashed holder's Err() = %v, want ErrLost", held.Err())
	}
	if err := held.Release(ctx); !errors.Is(err, locks.ErrLost) {
		t.Errorf("crashed holder's Release = %v, want ErrLost", err)
	}
	lockerWantOpen(t, next, "after the crashed holder's Release")
	lockerWantHeld(t, b, name)
}

func (s *lockerSuite) testBackendLost(t *testing.T) {
	if s.h.KillBackend == nil {
		t.Skip("conformance: LockerHarness.KillBackend is nil; not testing the loss of the backend")
	}
	ctx := t.Context()
	ttl := s.h.TTL
	a := s.locker(t)
	name := lockerName(t, "backend")
	l := lockerMustAcquire(t, a, name, ttl)

	restart := s.h.KillBackend(t, name)
	restarted := false
	defer func() {
		if !restarted {
			restart()
		}
	}()
	lockerWaitDone(t, l, ttl+lockerSlack, "a lease whose backend was killed")
	if !errors.Is(l.Err(), locks.ErrLost) {
		t.Errorf("Err() after the backend died = %v, want ErrLost", l.Err())
	}
	restart()
	restarted = true

	wctx, cancel := context.WithTimeout(ctx, lockerSlack)
	defer cancel()
	next, err := a.Acquire(wctx, name, ttl)
	if err != nil {
		t.Fatalf("Acquire after the backend restarted: %v", err)
	}
	lockerCleanup(t, next)
	if next.Token() <= l.Token() {
		t.Errorf("token after the restart %d is not above %d from before", next.Token(), l.Token())
	}
	if err := l.Release(ctx); !errors.Is(err, locks.ErrLost) {
		t.Errorf("Release of the lost lease = %v, want ErrLost", err)
	}
	lockerWantOpen(t, next, "after restart")
	if err := next.Release(ctx); err != nil {
		t.Errorf("Release after restart: %v", err)
	}
}
