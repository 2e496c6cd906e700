package bolt_test

import (
	"testing"

	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/bolt"
)

// TestConformance runs the suite on files with and without fsync, and
// through a prefixed view (see storetest.Conformance).
func TestConformance(t *testing.T) { storetest.Conformance(t, open) }

// open opens a store the way the shared tests ask for.
var open = storetest.Opener(bolt.Open, func(c storetest.Config) *bolt.Options {
	return &bolt.Options{Clock: c.Clock, DefaultTTL: c.DefaultTTL, MaxValueSize: c.MaxValueSize, NoSync: c.NoSync, SweepInterval: c.SweepInterval}
})
