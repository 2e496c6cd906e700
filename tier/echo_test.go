package tier_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/tier"
)

// The tests of own writes and their echoes drive the invalidation reports
// themselves, through a fake Invalidator over the memory store: a report
// stands for Redis's "invalidate" push, an L2 write made around the tier
// for another client's write.

// verifySlack is the scheduling time allowed on top of VerifyTimeout on a
// busy 2-core machine (more under the race detector).
var verifySlack = func() time.Duration {
	if raceEnabled {
		return 2 * time.Second
	}
	return 400 * time.Millisecond
}()

// newEchoFixture is a fixture whose tier has a fake Invalidator, up.
func newEchoFixture(t *testing.T, opts tier.Options) (*fixture, *fakeInvalidator) {
	t.Helper()
	fake := &fakeInvalidator{upAtStart: true}
	opts.Invalidator = fake
	return newFixture(t, opts), fake
}

// foreignPut writes key around the tier, as another client would.
func (f *fixture) foreignPut(key, value string) {
	f.t.Helper()
	noErr(f.t, f.l2.Store.Put(f.ctx, []byte(key), []byte(value), strata.NoExpiry))
}

// eventually waits until Get(key) returns value, failing after within.
func (f *fixture) eventually(within time.Duration, key, value string) {
	f.t.Helper()
	wait.For(f.t, within, "Get("+key+") to return "+value, func() bool {
		v, err := f.tier.Get(f.ctx, []byte(key))
		return err == nil && string(v) == value
	})
}

// The report of the tier's own write is verified, not obeyed: the entry
// the write installed stays in L1.
func TestOwnWriteEchoKeepsEntry(t *testing.T) {
	f, fake := newEchoFixture(t, tier.Options{})
	f.put("k", "own", strata.NoExpiry)
	fake.sink.Invalidate([]byte("k")) // the echo
	wait.For(t, 10*time.Second, "the verification", func() bool { return f.tier.TierStats().Verifications == 1 })
	f.wantHit("k", "own")
	s := f.tier.TierStats()
	if s.Invalidations != 1 || s.PossibleEchoes != 1 || s.ForeignInvalidations != 0 || s.Corrections != 0 || s.VerifyFailures != 0 {
		t.Fatalf("after an echo: %+v", s)
	}
}

// TestOwnWriteThenForeignWrite: another client writes a key right after
// the tier's own write of it; its report looks like the echo of the own
// write (Redis sends one report for both when they fall in one event-loop
// iteration). The tier must not swallow it: within VerifyTimeout it serves
// the foreign value.
func TestOwnWriteThenForeignWrite(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   tier.Options
		write  func(f *fixture)
		absent bool
	}{
		{"Put", tier.Options{}, func(f *fixture) { f.foreignPut("k", "foreign") }, false},
		{"Delete", tier.Options{}, func(f *fixture) { noErr(f.t, f.l2.Store.Delete(f.ctx, []byte("k"))) }, true},
		{"DeleteNegative", tier.Options{NegativeTTL: time.Hour}, func(f *fixture) { noErr(f.t, f.l2.Store.Delete(f.ctx, []byte("k"))) }, true},
		{"Expire", tier.Options{}, func(f *fixture) {
			// A shorter TTL alone (EXPIRE) changes no value.
			noErr(f.t, f.l2.Store.Put(f.ctx, []byte("k"), []byte("own"), time.Second))
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, fake := newEchoFixture(t, c.opts)
			f.put("k", "own", strata.NoExpiry)
			f.wantHit("k", "own")
			c.write(f)
			reported := time.Now()
			fake.sink.Invalidate([]byte("k"))
			bound := tier.DefaultVerifyTimeout + verifySlack
			switch {
			case c.absent:
				wait.For(t, bound, "the foreign delete to show", func() bool {
					_, err := f.tier.Get(f.ctx, []byte("k"))
					return errors.Is(err, strata.ErrNotFound)
				})
			case c.name == "Expire":
				wait.For(t, bound, "the verification", func() bool { return f.tier.TierStats().Verifications == 1 })
				f.wantHit("k", "own")
				f.clock.Advance(time.Second)
				f.wantL2("k", "", true) // the L1 entry expires with the L2's
				return
			default:
				f.eventually(bound, "k", "foreign")
			}
			t.Logf("the foreign write showed %v after its report", time.Since(reported))
			if s := f.tier.TierStats(); s.PossibleEchoes != 1 || s.Corrections != 1 {
				t.Fatalf("want the report taken as a possible echo and the entry corrected: %+v", s)
			}
		})
	}
}

// A report that arrives while the tier's own write of the key is in
// flight (the push often beats the write's reply) does not keep that
// write from caching its value; the verification runs after the write
// ended, and corrects the entry if another client wrote after it.
func TestEchoDuringWriteInFlight(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		name := map[bool]string{false: "Echo", true: "ForeignAfterOwn"}[foreign]
		t.Run(name, func(t *testing.T) {
			f, fake := newEchoFixture(t, tier.Options{})
			// Hold the verification until the write's own install is
			// checked: with an engine that applies sets at once it may
			// otherwise correct the entry first.
			hold := make(chan struct{})
			var released sync.Once
			release := func() { released.Do(func() { close(hold) }) }
			t.Cleanup(release)
			f.l2.setBeforeMany(func([]byte) { <-hold })
			var once atomic.Bool
			f.l2.setHooks(nil, nil, func(key []byte) {
				if !once.CompareAndSwap(false, true) {
					return
				}
				// The own write is applied; its reply is not back yet.
				if foreign {
					f.foreignPut("k", "foreign")
				}
				fake.sink.Invalidate(key)
			})
			f.put("k", "own", strata.NoExpiry)
			// The report during the write did not keep it from installing.
			if s := f.tier.TierStats(); s.Fills != 1 || s.PossibleEchoes != 1 {
				t.Fatalf("after the write: %+v; want its value installed and the report a possible echo", s)
			}
			release()
			want := "own"
			if foreign {
				want = "foreign"
				f.eventually(tier.DefaultVerifyTimeout+verifySlack, "k", want)
			}
			wait.For(t, 10*time.Second, "the verification", func() bool { return f.tier.TierStats().Verifications == 1 })
			f.wantHit("k", want)
		})
	}
}

// A report with no own write of the key's slot in flight or recent is
// another client's write for sure: the entry goes at once.
func TestForeignReportDropsAtOnce(t *testing.T) {
	t.Run("NoOwnWrite", func(t *testing.T) {
		f, fake := newEchoFixture(t, tier.Options{})
		f.foreignPut("k", "v1")
		f.wantL2("k", "v1", false)
		f.wantHit("k", "v1")
		f.foreignPut("k", "v2")
		fake.sink.Invalidate([]byte("k"))
		f.wantL2("k", "v2", false)
		if s := f.tier.TierStats(); s.ForeignInvalidations != 1 || s.PossibleEchoes != 0 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("EchoWindowOff", func(t *testing.T) {
		f, fake := newEchoFixture(t, tier.Options{EchoWindow: -1})
		f.put("k", "own", strata.NoExpiry)
		fake.sink.Invalidate([]byte("k"))
		f.wantL2("k", "own", false)
		if s := f.tier.TierStats(); s.ForeignInvalidations != 1 || s.PossibleEchoes != 0 {
			t.Fatalf("%+v", s)
		}
	})
}

// A key that cannot be verified (the L2 read fails, or an own write of its
// slot stays in flight past VerifyTimeout) is dropped as another client's
// write.
func TestVerificationFailureInvalidates(t *testing.T) {
	t.Run("ReadFails", func(t *testing.T) {
		f, fake := newEchoFixture(t, tier.Options{})
		f.put("k", "own", strata.NoExpiry)
		f.wantHit("k", "own")
		f.l2.failReads.Store(true)
		fake.sink.Invalidate([]byte("k"))
		wait.For(t, tier.DefaultVerifyTimeout+verifySlack, "the failed verification", func() bool {
			return f.tier.TierStats().VerifyFailures == 1
		})
		f.l2.failReads.Store(false)
		f.wantL2("k", "own", false)
	})
	t.Run("WriteInFlightTooLong", func(t *testing.T) {
		const timeout = 50 * time.Millisecond
		f, fake := newEchoFixture(t, tier.Options{VerifyTimeout: timeout})
		f.put("k", "v1", strata.NoExpiry)
		f.wantHit("k", "v1")
		reached, release := make(chan struct{}), make(chan struct{})
		var once atomic.Bool
		f.l2.setHooks(nil, func([]byte) {
			if once.CompareAndSwap(false, true) {
				close(reached)
				<-release
			}
		}, nil)
		done := make(chan error)
		go func() { done <- f.tier.Put(f.ctx, []byte("k"), []byte("v2"), strata.NoExpiry) }()
		<-reached
		reported := time.Now()
		fake.sink.Invalidate([]byte("k"))
		wait.For(t, timeout+verifySlack, "the key to be given up", func() bool { return f.tier.TierStats().VerifyFailures == 1 })
		if d := time.Since(reported); d < timeout {
			t.Fatalf("given up after %v, before VerifyTimeout %v", d, timeout)
		}
		close(release)
		noErr(t, <-done)
		// The write overlapped the report it could not outwait: it did not
		// install, and the next read goes to the L2.
		f.wantL2("k", "v2", false)
	})
}

// A fill that read the L2 before another client's write must not install
// after the report of that write, even when the report is a possible echo
// and the verification kept the entry it found.
func TestFillRacingPossibleEcho(t *testing.T) {
	f, fake := newEchoFixture(t, tier.Options{})
	f.put("k", "y", strata.NoExpiry)
	f.wantHit("k", "y")
	f.foreignPut("k", "x") // its report is late
	reached, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	f.l2.setHooks(func([]byte) {
		if once.CompareAndSwap(false, true) {
			close(reached)
			<-release
		}
	}, nil, nil)
	got := make(chan string)
	go func() {
		v, _, err := f.tier.GetWithTTL(f.ctx, []byte("k")) // reads the L2: x
		noErr(t, err)
		got <- string(v)
	}()
	<-reached
	f.foreignPut("k", "y")
	fake.sink.Invalidate([]byte("k")) // one report for both writes
	wait.For(t, 10*time.Second, "the verification", func() bool { return f.tier.TierStats().Verifications == 1 })
	close(release)
	if v := <-got; v != "x" {
		t.Fatalf("GetWithTTL = %q, want x (what the L2 held when it read)", v)
	}
	f.wantHit("k", "y")
	if s := f.tier.TierStats(); s.Corrections != 0 || s.FillsRefused != 1 {
		t.Fatalf("want the entry kept and the late fill refused: %+v", s)
	}
}
