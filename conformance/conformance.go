// Package conformance proves that a strata.Store keeps the contract. Run it
// from a store's own test file:
//
//	func TestConformance(t *testing.T) {
//		conformance.RunStore(t, conformance.Harness{
//			Open: func(tb testing.TB, o conformance.Options) strata.Store {
//				return mystore.New(o.DefaultTTL, o.MaxValueSize, o.Clock)
//			},
//			Capabilities: conformance.AllCapabilities,
//			FakeClock:    true,
//		})
//	}
//
// Every rule of the contract is a named subtest. No subtest is skipped: a
// capability the harness does not declare is tested through the strata
// helpers' fallbacks (a loop, or ErrUnsupported) instead. [BenchmarkStore]
// measures the same store, and [RunLocker] does the same for locks.
//
// A store keeps the contract most easily with the tools of package
// storekit, which the built-in stores use: for example
//
//	func (s *Store) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
//		if err := ctx.Err(); err != nil {
//			return err
//		}
//		ttl, err := storekit.CheckEntry(key, value, ttl, s.defaultTTL, s.maxValueSize)
//		if err != nil {
//			return storekit.NewOpError("put", "mystore", key, err) // wrapped once
//		}
//		exp := storekit.ExpiryMillis(s.clock.Now(), ttl) // 0: never
//		...
//		s.stats.Put(1, len(key)+len(value)) // a storekit.Counters
//		return nil
//	}
//
// thirdparty_test.go in this package is a whole store written that way,
// with only the required methods, and its conformance test.
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
	"github.com/strata-kv/strata/internal/wait"
)

// Capabilities is a set of optional interfaces a store implements.
type Capabilities uint

// The capabilities, one per optional interface of package strata.
const (
	Batch       Capabilities = 1 << iota // strata.Batcher
	Atomic                               // strata.Atomic
	Expiry                               // strata.Expirer
	Snapshot                             // strata.Snapshotter
	Ping                                 // strata.Pinger
	Stats                                // strata.StatsReporter
	Commit                               // strata.Committer
	BatchExpiry                          // strata.BatchExpirer

	AllCapabilities = Batch | Atomic | Expiry | Snapshot | Ping | Stats | Commit | BatchExpiry
)

// Has reports whether c includes every capability in o.
func (c Capabilities) Has(o Capabilities) bool { return c&o == o }

// String lists the capabilities by name, such as "Batch|Atomic".
func (c Capabilities) String() string {
	names := []string{"Batch", "Atomic", "Expiry", "Snapshot", "Ping", "Stats", "Commit", "BatchExpiry"}
	var out []string
	for i, n := range names {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// capabilitiesOf returns the capabilities s implements.
func capabilitiesOf(s strata.Store) Capabilities {
	var c Capabilities
	if _, ok := s.(strata.Batcher); ok {
		c |= Batch
	}
	if _, ok := s.(strata.Atomic); ok {
		c |= Atomic
	}
	if _, ok := s.(strata.Expirer); ok {
		c |= Expiry
	}
	if _, ok := s.(strata.Snapshotter); ok {
		c |= Snapshot
	}
	if _, ok := s.(strata.Pinger); ok {
		c |= Ping
	}
	if _, ok := s.(strata.StatsReporter); ok {
		c |= Stats
	}
	if _, ok := s.(strata.Committer); ok {
		c |= Commit
	}
	if _, ok := s.(strata.BatchExpirer); ok {
		c |= BatchExpiry
	}
	return c
}

// Options configure a store the suite asks the harness for.
type Options struct {
	// DefaultTTL is the store's TTL for writes with ttl == 0 (0: none).
	DefaultTTL time.Duration
	// MaxValueSize is the store's value limit in bytes (0: the store's own
	// default).
	MaxValueSize int
	// Clock is the clock the store must use for expiry when the harness
	// declares FakeClock; nil otherwise.
	Clock strata.Clock
}

// Harness describes a store to the suite.
type Harness struct {
	// Open returns a new, empty store configured with o. Keys written
	// through one store returned by Open must not be visible through
	// another. The suite closes every store it opens; Open registers any
	// further cleanup with tb.Cleanup.
	Open func(tb testing.TB, o Options) strata.Store

	// Capabilities lists the optional interfaces the store implements. The
	// suite fails if the store implements a different set, and tests the
	// helpers' fallbacks for the ones it lacks.
	Capabilities Capabilities

	// FakeClock declares that the store measures expiry with Options.Clock,
	// which the suite then moves forward by hand. Without it, the suite uses
	// short real TTLs and waits for them to pass.
	FakeClock bool

	// UnorderedKeys declares that Keys may yield keys in any order and more
	// than once (Redis SCAN). Without it, Keys must yield each key exactly
	// once, in byte order.
	UnorderedKeys bool

	// LiveSnapshots declares that a Snapshot is not point-in-time: writes
	// made after it was taken may show through.
	LiveSnapshots bool

	// RealTTL is the TTL used against a real clock. Default 150ms.
	RealTTL time.Duration

	// MaxKeyLen is the longest key the store accepts. Default
	// strata.MaxKeyLen; a view that adds a prefix accepts that much less.
	MaxKeyLen int

	// SingleSlotCommits declares that every key of a commit must hash to
	// one slot (Redis Cluster): the suite then checks that a batch across
	// slots fails with ErrInvalidKey before any I/O. The commit subtests
	// keep each batch in one slot with the hash tag {j} either way.
	SingleSlotCommits bool

	// CommitRounds is how many commits the NoPartialReads subtest makes
	// while readers check them. Default 10000.
	CommitRounds int
}

// suite is one run of the conformance tests.
type suite struct {
	h Harness
}

// RunStore runs every conformance subtest against the store h describes.
func RunStore(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("conformance: Harness.Open is nil")
	}
	if h.RealTTL <= 0 {
		h.RealTTL = 150 * time.Millisecond
	}
	if h.MaxKeyLen <= 0 {
		h.MaxKeyLen = strata.MaxKeyLen
	}
	s := &suite{h: h}
	t.Run("Capabilities", s.testCapabilities)
	t.Run("Basic", s.testBasic)
	t.Run("Keys", s.testKeys)
	t.Run("Values", s.testValues)
	t.Run("TTL", s.testTTL)
	t.Run("Ownership", s.testOwnership)
	t.Run("List", s.testList)
	t.Run("Batch", s.testBatch)
	t.Run("Atomic", s.testAtomic)
	t.Run("Expirer", s.testExpirer)
	t.Run("Snapshot", s.testSnapshot)
	t.Run("Ping", s.testPing)
	t.Run("Stats", s.testStats)
	t.Run("Commit", s.testCommit)
	t.Run("Close", s.testClose)
	t.Run("Context", s.testContext)
	t.Run("Errors", s.testErrors)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("Model", s.testModel)
}

// env is what a subtest works with: a store, its clock and the suite.
type env struct {
	t     *testing.T
	s     strata.Store
	clock *Clock // nil with a real clock
	h     Harness
	ctx   context.Context
}

// open returns a new store with o (its Clock filled in when fake).
func (s *suite) open(t *testing.T, o Options) *env {
	t.Helper()
	e := &env{t: t, h: s.h, ctx: t.Context()}
	if s.h.FakeClock {
		e.clock = NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		o.Clock = e.clock
	}
	e.s = s.h.Open(t, o)
	if e.s == nil {
		t.Fatal("conformance: Harness.Open returned nil")
	}
	t.Cleanup(func() {
		if err := e.s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// store opens a store with default options.
func (s *suite) store(t *testing.T) *env { return s.open(t, Options{}) }

// has reports whether the harness declares c.
func (e *env) has(c Capabilities) bool { return e.h.Capabilities.Has(c) }

// ttl is a TTL long enough to outlive the subtest with either clock.
const longTTL = time.Hour

// shortTTL is a TTL the subtest then lets pass with elapse.
func (e *env) shortTTL() time.Duration {
	if e.clock != nil {
		return 10 * time.Second
	}
	return e.h.RealTTL
}

// elapse lets d pass: moves the fake clock, or waits until key is gone from
// the store (a real clock cannot be moved).
func (e *env) elapse(d time.Duration, key []byte) {
	e.t.Helper()
	if e.clock != nil {
		e.clock.Advance(d)
		return
	}
	e.waitFor(func() bool {
		_, err := e.s.Get(e.ctx, key)
		return errors.Is(err, strata.ErrNotFound)
	}, d+5*time.Second, fmt.Sprintf("key %q to expire after %v", key, d))
}

// waitFor polls cond until it holds or timeout passes.
func (e *env) waitFor(cond func() bool, timeout time.Duration, what string) {
	e.t.Helper()
	waitFor(e.t, cond, timeout, what)
}

func waitFor(t testing.TB, cond func() bool, timeout time.Duration, what string) {
	t.Helper()
	wait.For(t, timeout, what, cond)
}

func (e *env) put(key, value string, ttl time.Duration) {
	e.t.Helper()
	if err := e.s.Put(e.ctx, []byte(key), []byte(value), ttl); err != nil {
		e.t.Fatalf("Put(%q): %v", key, err)
	}
}

// wantValue fails unless key holds value.
func (e *env) wantValue(key, value string) {
	e.t.Helper()
	got, err := e.s.Get(e.ctx, []byte(key))
	if err != nil {
		e.t.Fatalf("Get(%q): %v, want %q", key, err, value)
	}
	if string(got) != value {
		e.t.Fatalf("Get(%q) = %q, want %q", key, got, value)
	}
	if got == nil {
		e.t.Fatalf("Get(%q) returned a nil slice for a present value", key)
	}
}

// wantAbsent fails unless Get(key) reports ErrNotFound.
func (e *env) wantAbsent(key string) {
	e.t.Helper()
	got, err := e.s.Get(e.ctx, []byte(key))
	if !errors.Is(err, strata.ErrNotFound) {
		e.t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// wantErr fails unless err matches target.
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one matching %v", what, err, target)
	}
}

func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// keys collects Keys(prefix); with UnorderedKeys it sorts and removes
// duplicates so that results compare as sets.
func (e *env) keys(prefix string) []string {
	e.t.Helper()
	got, err := collectKeys(e.ctx, e.s, []byte(prefix))
	if err != nil {
		e.t.Fatalf("Keys(%q): %v", prefix, err)
	}
	if e.h.UnorderedKeys {
		got = sortUnique(got)
	}
	return got
}

func collectKeys(ctx context.Context, s strata.Store, prefix []byte) ([]string, error) {
	var out []string
	for k, err := range s.Keys(ctx, prefix) {
		if err != nil {
			return out, err
		}
		out = append(out, string(k))
	}
	return out, nil
}

// race runs f in n goroutines released together and waits for them.
func race(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			f(i)
		}()
	}
	start.Done()
	done.Wait()
}
