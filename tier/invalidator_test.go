package tier_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

// testBackendName is registered once per process (a second registration
// panics); each test sets what it returns in testBackend.
const testBackendName = "tier-test-backend"

var testBackend atomic.Pointer[tier.InvalidatorFunc]

func init() {
	tier.RegisterInvalidator(testBackendName, func(base strata.Store, viewPrefix []byte) (tier.Invalidator, error) {
		return (*testBackend.Load())(base, viewPrefix)
	})
}

// The backend registered with RegisterInvalidator gets the store under
// the tier's prefix views and the views' prefix; the tier starts the
// invalidator, bypasses L1 until it is up, and closes it on Close.
func TestRegisteredInvalidator(t *testing.T) {
	var gotPrefix string
	var gotBase strata.Store
	fake := &fakeInvalidator{}
	open := tier.InvalidatorFunc(func(base strata.Store, viewPrefix []byte) (tier.Invalidator, error) {
		gotBase, gotPrefix = base, string(viewPrefix)
		return fake, nil
	})
	testBackend.Store(&open)
	base := backendStore{memory.New(nil), testBackendName}
	defer base.Close()
	tr, err := tier.New(strata.WithPrefix(strata.WithPrefix(base, []byte("a:")), []byte("b:")), &tier.Options{KeepL2Open: true})
	noErr(t, err)
	if gotBase != strata.Store(base) || gotPrefix != "a:b:" {
		t.Fatalf("the invalidator was made for %T under %q; want the base store under a:b:", gotBase, gotPrefix)
	}
	if started, _ := fake.counts(); started != 1 || tr.Invalidator() != fake {
		t.Fatalf("started %d times; Invalidator() = %v", started, tr.Invalidator())
	}
	if ok, _ := tr.Tracking(); ok || !tr.TierStats().Bypassing {
		t.Fatal("the tier serves from L1 before its invalidator is up")
	}
	cause := errors.New("not yet")
	fake.sink.Down(cause)
	if _, err := tr.Tracking(); err != cause {
		t.Fatalf("Tracking error = %v, want the cause given to Down", err)
	}
	go fake.sink.Up()
	noErr(t, tr.WaitTracking(t.Context()))
	if ok, err := tr.Tracking(); !ok || err != nil || tr.TierStats().Bypassing {
		t.Fatalf("after Up: Tracking = %v, %v", ok, err)
	}
	noErr(t, tr.Close())
	if _, closed := fake.counts(); closed != 1 {
		t.Fatalf("Close closed the invalidator %d times, want 1", closed)
	}

	// InvalidationNone neither asks for nor starts one.
	none := &fakeInvalidator{}
	tr, err = tier.New(base, &tier.Options{Invalidation: tier.InvalidationNone, Invalidator: none, KeepL2Open: true})
	noErr(t, err)
	noErr(t, tr.Close())
	if started, _ := none.counts(); started != 0 || tr.Invalidator() != nil {
		t.Fatal("InvalidationNone started an invalidator")
	}
}

// Flush drops L1, Down flushes and bypasses it, Up serves from it again.
func TestSinkReports(t *testing.T) {
	fake := &fakeInvalidator{upAtStart: true}
	f := newFixture(t, tier.Options{Invalidator: fake})
	f.put("k", "v", strata.NoExpiry)
	f.wantHit("k", "v")
	noErr(t, f.l2.Store.Put(f.ctx, []byte("k"), []byte("changed"), strata.NoExpiry))
	fake.sink.Flush()
	f.wantL2("k", "changed", false)
	f.wantHit("k", "changed")

	fake.sink.Down(errors.New("lost"))
	if s := f.tier.TierStats(); !s.Bypassing || s.TrackingLosses != 1 {
		t.Fatalf("after Down: %+v", s)
	}
	f.wantL2("k", "changed", false)
	f.wantL2("k", "changed", false) // nothing is cached while down
	fake.sink.Up()
	f.wantL2("k", "changed", false)
	f.wantHit("k", "changed")
	if s := f.tier.TierStats(); s.Bypassing || s.TrackingConnects != 2 || s.BypassTime <= 0 {
		t.Fatalf("after Up: %+v", s)
	}
}
