package pebble_test

import (
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/pebble"
)

// TestConformance runs the suite on databases with and without fsync, and
// through a prefixed view (see storetest.Conformance).
func TestConformance(t *testing.T) { storetest.Conformance(t, open) }

// open returns a store in a new directory under tb.TempDir, with no sweep.
// The caller closes it.
func open(tb testing.TB, o conformance.Options, noSync bool) storetest.Store {
	tb.Helper()
	opts := &pebble.Options{NoSync: noSync, SweepInterval: -1, Clock: o.Clock, DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize}
	s, err := pebble.Open(filepath.Join(tb.TempDir(), "db"), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}
