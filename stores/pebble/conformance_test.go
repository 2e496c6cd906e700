package pebble_test

import (
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/pebble"
)

// open returns a store in a new file under tb.TempDir. The suite closes it.
func open(tb testing.TB, o conformance.Options) strata.Store {
	tb.Helper()
	s, err := pebble.Open(filepath.Join(tb.TempDir(), "db"), &pebble.Options{
		DefaultTTL:   o.DefaultTTL,
		MaxValueSize: o.MaxValueSize,
		Clock:        o.Clock,
		NoSync:       true, // durability has its own tests; the suite tests semantics
	})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open:         open,
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
}

func TestConformanceSync(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s, err := pebble.Open(filepath.Join(tb.TempDir(), "db"), &pebble.Options{
				DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock,
			})
			if err != nil {
				tb.Fatalf("Open: %v", err)
			}
			return s
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
}

func TestConformancePrefixed(t *testing.T) { storetest.RunPrefixed(t, open) }
