package memory_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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

// The suite again through strata.WithTracing, with spans recorded: the
// wrapper forwards every capability and changes no result.
func TestConformanceTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			return strata.WithTracing(open(tb, o), tp)
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
	if len(rec.Ended()) == 0 {
		t.Fatal("no spans")
	}
}
