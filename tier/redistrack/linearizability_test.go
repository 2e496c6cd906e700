package redistrack_test

import (
	"fmt"
	"testing"

	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/lincheck"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/tier"
)

// TestLinearizableRedis records concurrent histories of Get, Put and Delete
// through a tier over Redis (standalone and Cluster) with tracking on: the
// tier's own writes come back as invalidations while it reads.
func TestLinearizableRedis(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	for _, tc := range []struct {
		name   string
		target redisTarget
	}{{"Standalone", standalone(r)}, {"Cluster", cluster(c)}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := openRedisTier(t, tc.target, fmt.Sprintf("lin%d:", seq.Add(1)), conformance.Options{},
				tier.Options{MaxBytes: 4 * tier.EntryOverhead}, 0)
			defer tr.Close()
			for round := range 3 {
				w := lincheck.Workload{Clients: 8, Ops: 250, Keys: lincheck.RoundKeys(round, 6)}
				lincheck.Check(t, w.Record(t, tr))
			}
			s := tr.TierStats()
			t.Logf("L1: %d hits, %d misses, %d fills, %d refused, %d evictions, %d invalidations",
				s.L1Hits, s.L1Misses, s.Fills, s.FillsRefused, s.L1Evictions, s.Invalidations)
			if s.L1Hits == 0 || s.L1Evictions == 0 || s.Invalidations == 0 {
				t.Fatalf("the run did not exercise hits, evictions and invalidations: %+v", s)
			}
		})
	}
}
