package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/bolt"
)

// TestConformance runs the suite on files with and without fsync, and
// through a prefixed view (see storetest.Conformance).
func TestConformance(t *testing.T) { storetest.Conformance(t, open) }

// open returns a store in a new file under tb.TempDir, with no sweep. The
// caller closes it.
func open(tb testing.TB, o conformance.Options, noSync bool) storetest.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "state.db")
	s, err := bolt.Open(path, &bolt.Options{DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock, NoSync: noSync, SweepInterval: -1})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}
