package tier_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openMemory(o conformance.Options) *memory.Store {
	return memory.New(&memory.Options{DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock})
}

// newTier wraps l2 in a tier with opts (Clock filled from o), failing tb on
// error.
func newTier(tb testing.TB, l2 strata.Store, o conformance.Options, opts tier.Options) *tier.Tier {
	tb.Helper()
	opts.Clock = o.Clock
	t, err := tier.New(l2, &opts)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// forEachEngine runs f as one subtest per L1 engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e tier.Engine)) {
	for _, e := range tier.Engines() {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

func TestConformanceMemory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e tier.Engine) {
		conformance.RunStore(t, conformance.Harness{
			Open: func(tb testing.TB, o conformance.Options) strata.Store {
				return newTier(tb, openMemory(o), o, tier.Options{Engine: e})
			},
			Capabilities: conformance.AllCapabilities,
			FakeClock:    true,
		})
	})
}

// A small L1 with a local TTL cap and negative caching: evictions happen,
// absences are cached, and the contract must still hold.
func TestConformanceMemorySmallL1(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e tier.Engine) {
		conformance.RunStore(t, conformance.Harness{
			Open: func(tb testing.TB, o conformance.Options) strata.Store {
				return newTier(tb, openMemory(o), o, tier.Options{
					MaxBytes: e.Budget(20, 16, 16), MaxLocalTTL: time.Minute, NegativeTTL: 5 * time.Second, Engine: e,
				})
			},
			Capabilities: conformance.AllCapabilities,
			FakeClock:    true,
		})
	})
}

func TestConformanceOverPrefix(t *testing.T) {
	const prefix = "ns\xff:"
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			inner := openMemory(o)
			tb.Cleanup(func() { inner.Close() })
			return newTier(tb, strata.WithPrefix(inner, []byte(prefix)), o, tier.Options{})
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
		MaxKeyLen:    strata.MaxKeyLen - len(prefix),
	})
}

func TestConformancePrefixOverTier(t *testing.T) {
	const prefix = "p/"
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			tr := newTier(tb, openMemory(o), o, tier.Options{})
			tb.Cleanup(func() { tr.Close() })
			return strata.WithPrefix(tr, []byte(prefix))
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
		MaxKeyLen:    strata.MaxKeyLen - len(prefix),
	})
}
