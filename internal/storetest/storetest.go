// Package storetest holds the tests and benchmarks that the store packages
// (stores/bolt, stores/pebble, stores/memory) share beyond the conformance
// suite: checks that need a store's concrete extras (an on-demand sweep, a
// reopen of the same files, a raw view of its database), the child-process
// harness of the crash and locking tests ([Process]), the checks on damaged
// files, and the benchmarks that compare a store with its raw database
// ([Bench]).
//
// Every helper takes the store, or a function that opens one, from the
// store's own test file, which keeps what is specific to its backend: how
// to damage its files, how to check them after a crash, how to drive its
// raw database.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/wait"
)

// Store is a store with the capabilities the shared tests use: batches,
// atomic operations, TTLs and snapshots.
type Store interface {
	strata.Store
	strata.Batcher
	strata.Atomic
	strata.Expirer
	strata.Snapshotter
}

// Sweeper is a Store with an on-demand sweep of expired keys, as the
// embedded stores have.
type Sweeper interface {
	Store
	// Sweep removes every expired key now and returns how many.
	Sweep(ctx context.Context) (int, error)
}

// Config is what the shared tests set when they open an embedded store:
// the options that every one of them has, meaning what the fields of the
// same name in its Options mean.
type Config struct {
	Clock         strata.Clock
	DefaultTTL    time.Duration
	MaxValueSize  int
	NoSync        bool
	SweepInterval time.Duration
}

// Open opens the store at path (a new name in a temporary directory, or a
// path a store was opened at before) with the options of c: each store's
// tests give the shared ones its own.
type Open func(path string, c Config) (Store, error)

// openAt opens the store at path, failing tb on an error. The caller
// closes it.
func openAt(tb testing.TB, open Open, path string, c Config) Store {
	tb.Helper()
	s, err := open(path, c)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

// OpenTemp opens a new store in a temporary directory with the options of
// c, and closes it when tb ends.
func OpenTemp(tb testing.TB, open Open, c Config) Store {
	tb.Helper()
	s := openAt(tb, open, filepath.Join(tb.TempDir(), "db"), c)
	tb.Cleanup(func() { s.Close() })
	return s
}

// harnessOpen adapts open to the conformance suite: a new store in a
// temporary directory, writes synced unless noSync, no background sweep.
func harnessOpen(open Open, noSync bool) func(tb testing.TB, o conformance.Options) strata.Store {
	return func(tb testing.TB, o conformance.Options) strata.Store {
		c := Config{Clock: o.Clock, DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, NoSync: noSync, SweepInterval: -1}
		return openAt(tb, open, filepath.Join(tb.TempDir(), "db"), c)
	}
}

// Conformance runs the conformance suite, with every capability, on the
// stores open makes: without fsync ("NoSync"), with it ("Sync"), and
// through strata.WithPrefix ("Prefixed", see [RunPrefixed]). With fsync,
// the NoPartialReads subtest makes 500 commits instead of 10000: each
// costs an fsync, and the run without fsync makes the full count.
func Conformance(t *testing.T, open Open) {
	for _, c := range []struct {
		name    string
		noSync  bool
		commits int
	}{{"NoSync", true, 0}, {"Sync", false, 500}} {
		t.Run(c.name, func(t *testing.T) {
			conformance.RunStore(t, conformance.Harness{
				Open:         harnessOpen(open, c.noSync),
				Capabilities: conformance.AllCapabilities,
				FakeClock:    true,
				CommitRounds: c.commits,
			})
		})
	}
	t.Run("Prefixed", func(t *testing.T) { RunPrefixed(t, harnessOpen(open, true)) })
}

// URL checks the URL opener of scheme. scheme://DIR/name?params (params
// set default_ttl=1m and max_value_size=10) must open a store that applies
// both; scheme://DIR/b followed by each of rejected, a URL with a host and
// one without a path must fail with strata.ErrInvalidConfig without
// creating b; scheme:relative must open "relative" in the working
// directory. URL returns DIR.
func URL(t *testing.T, scheme, name, params string, rejected ...string) string {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := strata.Open(ctx, scheme+"://"+filepath.Join(dir, name)+"?"+params)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Put(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ttl, err := strata.TTL(ctx, s, []byte("k")); err != nil || ttl <= 0 || ttl > time.Minute+time.Millisecond {
		t.Fatalf("TTL with default_ttl=1m: %v, %v", ttl, err)
	}
	if err := s.Put(ctx, []byte("k"), make([]byte, 11), 0); !errors.Is(err, strata.ErrValueTooLarge) {
		t.Fatalf("Put over max_value_size: %v", err)
	}
	bad := []string{scheme + "://host/path", scheme + "://"}
	for _, r := range rejected {
		bad = append(bad, scheme+"://"+filepath.Join(dir, "b")+r)
	}
	URLsRejected(t, bad...)
	if _, err := os.Stat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a rejected URL created b: %v", err)
	}
	t.Chdir(dir)
	rel, err := strata.Open(ctx, scheme+":relative")
	if err != nil {
		t.Fatalf("Open of a relative path: %v", err)
	}
	rel.Close()
	if _, err := os.Stat(filepath.Join(dir, "relative")); err != nil {
		t.Fatalf("%s:relative: %v", scheme, err)
	}
	return dir
}

// Stats checks the counters and gauges of a new store of kind backend: after one Put and with one snapshot open, Stats has Puts 1, Keys
// -1, snapshots_open 1 and every gauge of gauges; once the snapshot is
// closed, snapshots_open is 0. It returns the gauges read with the
// snapshot open.
func Stats(t *testing.T, open Open, backend string, gauges ...string) map[string]float64 {
	t.Helper()
	ctx := t.Context()
	s := OpenTemp(t, open, Config{})
	if err := s.Put(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := s.(strata.StatsReporter).Stats()
	sn.Close()
	for _, g := range append(gauges, "snapshots_open") {
		if _, ok := st.Gauges[g]; !ok {
			t.Errorf("gauge %s missing from %v", g, st.Gauges)
		}
	}
	if st.Gauges["snapshots_open"] != 1 {
		t.Fatalf("snapshots_open with one snapshot open = %v", st.Gauges["snapshots_open"])
	}
	if st.Backend != backend || st.Puts != 1 || st.Keys != -1 {
		t.Fatalf("stats = %+v", st)
	}
	if after := s.(strata.StatsReporter).Stats(); after.Gauges["snapshots_open"] != 0 {
		t.Fatalf("snapshots_open after Close = %v", after.Gauges["snapshots_open"])
	}
	return st.Gauges
}

// WaitFor polls cond until it holds, failing t after 10 seconds.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.For(t, 10*time.Second, what, cond)
}

// RunPrefixed runs the conformance suite on strata.WithPrefix over the
// stores open makes, with a prefix that holds a 0xff byte.
func RunPrefixed(t *testing.T, open func(testing.TB, conformance.Options) strata.Store) {
	const prefix = "ns\xff:"
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			inner := open(tb, o)
			tb.Cleanup(func() { inner.Close() })
			return strata.WithPrefix(inner, []byte(prefix))
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
		MaxKeyLen:    strata.MaxKeyLen - len(prefix),
	})
}

// Reopen checks that values and absolute expiries survive a close and
// reopen of the store at path: it opens it on clock, writes, closes it,
// advances clock by 30 minutes and returns the store reopened at path,
// closed when t ends.
func Reopen(t *testing.T, open Open, path string, clock *conformance.Clock) Store {
	t.Helper()
	ctx := t.Context()
	s := openAt(t, open, path, Config{Clock: clock})
	if err := s.Put(ctx, []byte("forever"), []byte("f"), strata.NoExpiry); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("hour"), []byte("h"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	s = openAt(t, open, path, Config{Clock: clock})
	t.Cleanup(func() { s.Close() })
	if v, err := s.Get(ctx, []byte("forever")); err != nil || string(v) != "f" {
		t.Fatalf("Get(forever) after reopen = %q, %v", v, err)
	}
	if ttl, err := s.TTL(ctx, []byte("hour")); err != nil || ttl != 30*time.Minute {
		t.Fatalf("TTL(hour) after reopen and 30m = %v, %v; want 30m (the expiry is absolute)", ttl, err)
	}
	return s
}

// Sweep checks that expired keys are removed from the database, by Sweep
// and by the background sweep, in chunks, and that live keys stay.
// rawKeys counts the keys the database of a store open opened holds,
// expired ones included.
func Sweep(t *testing.T, open Open, rawKeys func(s Store) int) {
	clock := conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ctx := t.Context()
	fill := func(s Sweeper) {
		var entries []strata.Entry
		for i := range 3000 { // three sweep chunks
			ttl := 10 * time.Second
			if i%100 == 0 {
				ttl = strata.NoExpiry
			}
			entries = append(entries, strata.Entry{Key: fmt.Appendf(nil, "k%05d", i), Value: []byte("v"), TTL: ttl})
		}
		if err := s.PutMany(ctx, entries); err != nil {
			t.Fatal(err)
		}
	}
	sweeper := func(t *testing.T, interval time.Duration) (Sweeper, func() int) {
		s := OpenTemp(t, open, Config{Clock: clock, SweepInterval: interval, NoSync: true})
		return s.(Sweeper), func() int { return rawKeys(s) }
	}
	t.Run("Manual", func(t *testing.T) {
		s, rawKeys := sweeper(t, -1)
		fill(s)
		if n, err := s.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("Sweep before expiry = %d, %v; want 0", n, err)
		}
		clock.Advance(10 * time.Second)
		if n, err := s.Sweep(ctx); err != nil || n != 2970 {
			t.Fatalf("Sweep after expiry = %d, %v; want 2970", n, err)
		}
		if n := rawKeys(); n != 30 {
			t.Fatalf("%d keys left in the database, want 30", n)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Sweep(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sweep with a cancelled context: %v", err)
		}
	})
	t.Run("Background", func(t *testing.T) {
		s, rawKeys := sweeper(t, time.Millisecond)
		fill(s)
		clock.Advance(10 * time.Second)
		WaitFor(t, "the background sweep", func() bool { return rawKeys() == 30 })
		n := 0
		for _, err := range s.Keys(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 30 {
			t.Fatalf("Keys after the sweep = %d, want 30", n)
		}
	})
}

// URLsRejected checks that strata.Open refuses each of urls with an error
// matching strata.ErrInvalidConfig.
func URLsRejected(t *testing.T, urls ...string) {
	t.Helper()
	for _, bad := range urls {
		s, err := strata.Open(t.Context(), bad)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", bad)
		}
		if !errors.Is(err, strata.ErrInvalidConfig) {
			t.Fatalf("Open(%q): %v, want ErrInvalidConfig", bad, err)
		}
	}
}

// KeysOwnership checks that Keys and Entries copy the prefix they are given
// when called (a caller may reuse its buffer, before the loop or in its
// body, and later chunks must still use the prefix it passed), and that the
// keys they yield are the caller's: appending to one never writes into
// another. s must be empty.
func KeysOwnership(t *testing.T, s Store) {
	ctx := t.Context()
	const n = 300 // more than the first chunk of Keys
	var entries []strata.Entry
	for i := range n {
		for _, p := range []string{"a", "b"} {
			k := fmt.Appendf(nil, "%s%03d", p, i)
			entries = append(entries, strata.Entry{Key: k, Value: k})
		}
	}
	if err := s.PutMany(ctx, entries); err != nil {
		t.Fatal(err)
	}

	prefix := []byte("a")
	keys := s.Keys(ctx, prefix)
	prefix[0] = 'b' // after Keys returned, before the loop
	var got [][]byte
	for k, err := range keys {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if len(got) != n || got[0][0] != 'a' {
		t.Fatalf("Keys(a) with the prefix changed before the loop: %d keys, first %q; want %d under a", len(got), got[0], n)
	}
	// Append to every key: none may change another.
	for i := range got {
		got[i] = append(got[i], '!')
	}
	for i, k := range got {
		if want := fmt.Sprintf("a%03d!", i); string(k) != want {
			t.Fatalf("key %d after appending to each = %q, want %q", i, k, want)
		}
	}

	prefix = []byte("a")
	count := 0
	for k, err := range s.Keys(ctx, prefix) {
		if err != nil {
			t.Fatal(err)
		}
		prefix[0] = 'b' // in the loop body
		if k[0] != 'a' {
			t.Fatalf("Keys(a) yielded %q", k)
		}
		count++
	}
	if count != n {
		t.Fatalf("Keys(a) with the prefix changed in the loop body: %d keys, want %d", count, n)
	}

	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	prefix = []byte("a")
	seq := snap.Entries(ctx, prefix)
	prefix[0] = 'b'
	count = 0
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if e.Key[0] != 'a' || !bytes.Equal(e.Key, e.Value) {
			t.Fatalf("Entries(a) with the prefix changed before the loop yielded %q=%q", e.Key, e.Value)
		}
		count++
	}
	if count != n {
		t.Fatalf("Entries(a) with the prefix changed before the loop: %d entries, want %d", count, n)
	}
}

// Opener makes the Open of a store package from its own Open function and
// options makes its options from a Config.
func Opener[S Store, O any](openStore func(path string, opts O) (S, error), options func(c Config) O) Open {
	return func(path string, c Config) (Store, error) {
		s, err := openStore(path, options(c))
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}
