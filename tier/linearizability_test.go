package tier_test

import (
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/lincheck"
	"github.com/strata-kv/strata/tier"
)

// smallL1 stands for the budget of an L1 of 4 entries of the engine.
const smallL1 = -1

// TestLinearizableMemory checks recorded concurrent histories of Get, Put
// and Delete on a few keys, through a tier whose L1 is small enough to
// evict, over the memory store, with scheduling jitter injected in the L2.
func TestLinearizableMemory(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  tier.Options
		evict bool // the L1 is small enough that evictions must happen
	}{
		{"SmallL1", tier.Options{MaxBytes: smallL1}, true},
		{"SmallL1Negative", tier.Options{MaxBytes: smallL1, NegativeTTL: time.Hour}, true},
		{"LargeL1", tier.Options{}, false},
	} {
		for _, e := range tier.Engines() {
			t.Run(string(e)+"/"+c.name, func(t *testing.T) {
				l2 := newHooked(nil)
				jitter := func([]byte) { lincheck.Jitter() }
				l2.setHooks(jitter, jitter, jitter)
				opts := c.opts
				opts.Engine = e
				if opts.MaxBytes == smallL1 {
					opts.MaxBytes = e.Budget(4, 16, 16) // room for 4 entries
				}
				tr, err := tier.New(l2, &opts)
				noErr(t, err)
				defer tr.Close()
				for round := range 5 {
					// Fresh keys each round: the model starts from empty registers.
					w := lincheck.Workload{Clients: 8, Ops: 400, Keys: lincheck.RoundKeys(round, 6)}
					lincheck.Check(t, w.Record(t, tr))
				}
				s := tr.TierStats()
				t.Logf("L1: %d hits, %d misses, %d fills, %d refused, %d evictions, %d rejections",
					s.L1Hits+s.L1NegativeHits, s.L1Misses, s.Fills, s.FillsRefused, s.L1Evictions, s.L1Rejections)
				if (c.evict && s.L1Evictions == 0) || s.L1Hits == 0 || s.FillsRefused == 0 {
					t.Fatalf("the run did not exercise evictions, hits and refused fills: %+v", s)
				}
			})
		}
	}
}
