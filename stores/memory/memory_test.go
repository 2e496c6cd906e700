package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(tb testing.TB, o conformance.Options) strata.Store {
	return memory.New(&memory.Options{DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock})
}

func TestConformance(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open:         open,
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
}

func TestConformancePrefixed(t *testing.T) {
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

func BenchmarkStore(b *testing.B) {
	conformance.BenchmarkStore(b, conformance.Harness{Open: open, FakeClock: true})
}
