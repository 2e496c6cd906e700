package redistrack_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"
)

// The read-modify-write workload of a stream processor's state: Get a
// key's counter, add one, Put it back, on keys chosen with a Zipf
// distribution (a few hot keys, a long tail), through a tier over Redis.
// Every Put comes back from Redis as a report (the echo of the tier's own
// write); the L1 keeps what the tier wrote only if it tells echoes from
// other clients' writes.

const (
	rmwKeys = 1000
	rmwZipf = 1.1 // the Zipf exponent s
)

// rmwWorkload runs read-modify-write operations on tr.
type rmwWorkload struct {
	tr   *tier.Tier
	keys [][]byte
	zipf *rand.Zipf
}

func newRMW(tr *tier.Tier, seed uint64) *rmwWorkload {
	w := &rmwWorkload{tr: tr, keys: make([][]byte, rmwKeys)}
	for i := range w.keys {
		w.keys[i] = fmt.Appendf(nil, "rmw:%04d", i)
	}
	w.zipf = rand.NewZipf(rand.New(rand.NewPCG(seed, 1)), rmwZipf, 1, rmwKeys-1)
	return w
}

// op makes one read-modify-write.
func (w *rmwWorkload) op(ctx context.Context) error {
	key := w.keys[w.zipf.Uint64()]
	n := 0
	v, err := w.tr.Get(ctx, key)
	switch {
	case errors.Is(err, strata.ErrNotFound):
	case err != nil:
		return err
	default:
		if n, err = strconv.Atoi(string(v)); err != nil {
			return fmt.Errorf("%s holds %q: %w", key, v, err)
		}
	}
	return w.tr.Put(ctx, key, strconv.AppendInt(nil, int64(n+1), 10), strata.NoExpiry)
}

// warm writes every key once, so that the measured operations see the
// steady state rather than first touches.
func (w *rmwWorkload) warm(ctx context.Context) error {
	for _, k := range w.keys {
		if err := w.tr.Put(ctx, k, []byte("0"), strata.NoExpiry); err != nil {
			return err
		}
	}
	return nil
}

// hitRatio returns the L1 hit ratio of the reads since before.
func hitRatio(before, after tier.Stats) float64 {
	hits := after.L1Hits + after.L1NegativeHits - before.L1Hits - before.L1NegativeHits
	reads := hits + after.L1Misses - before.L1Misses
	if reads == 0 {
		return 0
	}
	return float64(hits) / float64(reads)
}

// minRMWHitRatio is the acceptance: a read-modify-write workload through a
// tier over Redis keeps at least this much of its reads in L1.
const minRMWHitRatio = 0.85

// The read-modify-write workload keeps its reads in L1 over Redis,
// standalone and Cluster: the echoes of the tier's own writes do not evict
// what it wrote.
func TestReadModifyWriteHitRatio(t *testing.T) {
	t.Parallel()
	for _, tc := range topologies(t) {
		t.Run(tc.name, func(t *testing.T) {
			tr := openRedisTier(t, tc.target, fmt.Sprintf("rmw%d:", seq.Add(1)), conformance.Options{}, tier.Options{}, 0)
			defer tr.Close()
			w := newRMW(tr, 1)
			if err := w.warm(t.Context()); err != nil {
				t.Fatal(err)
			}
			before := tr.TierStats()
			for range 5000 {
				if err := w.op(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			after := tr.TierStats()
			ratio := hitRatio(before, after)
			t.Logf("L1 hit ratio %.1f%% over 5000 read-modify-writes; reports: %d possible echoes, %d foreign, %d verified, %d corrected, %d failed",
				100*ratio, after.PossibleEchoes, after.ForeignInvalidations, after.Verifications, after.Corrections, after.VerifyFailures)
			if ratio < minRMWHitRatio {
				t.Fatalf("L1 hit ratio %.1f%%, want at least %.0f%%: %+v", 100*ratio, 100*minRMWHitRatio, after)
			}
		})
	}
}

// BenchmarkReadModifyWrite times the read-modify-write workload against
// one Redis: through the Redis store alone, through a tier that obeys every
// report (EchoWindow < 0: its own writes' echoes evict what it wrote), and
// through a tier that verifies possible echoes (the default). The tiers
// report the L1 hit ratio of their reads (L1-hit-%) and the keys the
// verifier read per operation (verified/op).
func BenchmarkReadModifyWrite(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	ctx := context.Background()
	b.Run("Store", func(b *testing.B) {
		client := standalone(r)(b)
		s, err := redis.New(client, &redis.Options{KeyPrefix: "rmw-store:"})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 1)), rmwZipf, 1, rmwKeys-1)
		for b.Loop() {
			key := fmt.Appendf(nil, "rmw:%04d", zipf.Uint64())
			v, err := s.Get(ctx, key)
			if err != nil && !errors.Is(err, strata.ErrNotFound) {
				b.Fatal(err)
			}
			n, _ := strconv.Atoi(string(v))
			if err := s.Put(ctx, key, strconv.AppendInt(nil, int64(n+1), 10), strata.NoExpiry); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name   string
		window time.Duration
	}{{"TierEchoesObeyed", -1}, {"TierEchoesVerified", 0}} {
		b.Run(c.name, func(b *testing.B) {
			tr := openRedisTier(b, standalone(r), fmt.Sprintf("rmw%d:", seq.Add(1)), conformance.Options{}, tier.Options{EchoWindow: c.window}, 0)
			defer tr.Close()
			w := newRMW(tr, 1)
			if err := w.warm(ctx); err != nil {
				b.Fatal(err)
			}
			before := tr.TierStats()
			for b.Loop() {
				if err := w.op(ctx); err != nil {
					b.Fatal(err)
				}
			}
			after := tr.TierStats()
			b.ReportMetric(100*hitRatio(before, after), "L1-hit-%")
			b.ReportMetric(float64(after.Verifications-before.Verifications)/float64(b.N), "verified/op")
		})
	}
}
