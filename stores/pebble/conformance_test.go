package pebble_test

import (
	"testing"

	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/pebble"
)

// TestConformance runs the suite on databases with and without fsync, and
// through a prefixed view (see storetest.Conformance).
func TestConformance(t *testing.T) { storetest.Conformance(t, open) }

// open opens a store the way the shared tests ask for.
var open = storetest.Opener(pebble.Open, func(c storetest.Config) *pebble.Options {
	return &pebble.Options{NoSync: c.NoSync, SweepInterval: c.SweepInterval, Clock: c.Clock, DefaultTTL: c.DefaultTTL, MaxValueSize: c.MaxValueSize}
})
