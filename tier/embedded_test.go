package tier_test

import (
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/bolt"
	"github.com/strata-kv/strata/stores/pebble"
	"github.com/strata-kv/strata/tier"
)

func TestConformanceBolt(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s, err := bolt.Open(filepath.Join(tb.TempDir(), "state.db"), &bolt.Options{
				DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock, NoSync: true,
			})
			if err != nil {
				tb.Fatal(err)
			}
			return newTier(tb, s, o, tier.Options{})
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
}

func TestConformancePebble(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s, err := pebble.Open(filepath.Join(tb.TempDir(), "db"), &pebble.Options{
				DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock, NoSync: true,
			})
			if err != nil {
				tb.Fatal(err)
			}
			return newTier(tb, s, o, tier.Options{})
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
}
