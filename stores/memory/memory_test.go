package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
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

func TestConformancePrefixed(t *testing.T) { storetest.RunPrefixed(t, open) }

func BenchmarkStore(b *testing.B) {
	conformance.BenchmarkStore(b, conformance.Harness{Open: open, FakeClock: true})
}
