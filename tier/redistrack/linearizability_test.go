package redistrack_test

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/lincheck"
	"github.com/strata-kv/strata/tier"
)

// TestLinearizableRedis records concurrent histories of Get, Put and Delete
// through a tier over Redis (standalone and Cluster) with tracking on: the
// tier's own writes come back as reports while it reads. With a foreign
// writer, another client writes the same keys with SET and DEL at the same
// time; the check then allows a read to return what such a write replaced
// for the documented staleness bound after the write, and nothing else.
func TestLinearizableRedis(t *testing.T) {
	t.Parallel()
	for _, tc := range topologies(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, run := range linRuns() {
				foreign := run.foreign
				t.Run(run.name, func(t *testing.T) {
					prefix := fmt.Sprintf("lin%d:", seq.Add(1))
					tr := openRedisTier(t, tc.target, prefix, conformance.Options{}, tier.Options{MaxBytes: run.engine.Budget(4, 16, 16), Engine: run.engine}, 0)
					defer tr.Close()
					other := tc.target(t)
					for round := range 3 {
						w := lincheck.Workload{Clients: 8, Ops: 250, Keys: lincheck.RoundKeys(round, 6)}
						if foreign {
							w.Foreign, w.ForeignOps, w.Stale = foreignWriter(other, prefix), 300, staleBound
						}
						lincheck.Check(t, w.Record(t, tr))
					}
					s := tr.TierStats()
					t.Logf("L1: %d hits, %d misses, %d fills, %d refused, %d evictions; reports: %d foreign, %d possible echoes, %d verified, %d corrected, %d failed",
						s.L1Hits, s.L1Misses, s.Fills, s.FillsRefused, s.L1Evictions,
						s.ForeignInvalidations, s.PossibleEchoes, s.Verifications, s.Corrections, s.VerifyFailures)
					if s.L1Hits == 0 || s.L1Evictions == 0 || s.Invalidations == 0 || s.Verifications == 0 {
						t.Fatalf("the run did not exercise hits, evictions, reports and verifications: %+v", s)
					}
				})
			}
		})
	}
}

// linRun is one history recording of TestLinearizableRedis: an engine, and
// with or without a foreign writer.
type linRun struct {
	name    string
	engine  tier.Engine
	foreign bool
}

func linRuns() []linRun {
	var out []linRun
	for _, e := range tier.Engines() {
		out = append(out, linRun{string(e) + "/Own", e, false}, linRun{string(e) + "/ForeignWriter", e, true})
	}
	return out
}

// foreignWriter writes with SET and DEL through client, around the tier.
func foreignWriter(client goredis.UniversalClient, prefix string) func(ctx context.Context, key, value string) error {
	return func(ctx context.Context, key, value string) error {
		if value == "" {
			return client.Del(ctx, prefix+key).Err()
		}
		return client.Set(ctx, prefix+key, value, 0).Err()
	}
}
