package redis

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata"
)

// Stats are the store's counters with latency
// percentiles. Counters only grow for the life of the store.
type Stats struct {
	Gets, Puts, Deletes uint64 // keys read, written, deleted (batches count per key)
	Hits, Misses        uint64 // reads that found a live key, and that did not
	Pipelines           uint64 // round trips of an operation's batch of more than one command
	AutoPipelined       uint64 // operations whose commands shared a round trip with another operation's
	Retries             uint64 // commands the store's hook sent again
	Errors              uint64 // operations that failed, other than bad input or a miss
	BytesRead           uint64 // value bytes returned
	BytesWritten        uint64 // key and value bytes written

	// Operations is the number of timed operations (each batch is one) and
	// AvgLatency their mean duration, retries included.
	Operations uint64
	AvgLatency time.Duration
	// P50, P99 and P999 are latency percentiles from a histogram with
	// buckets at most 6.25% wide.
	P50, P99, P999 time.Duration

	// ActiveConns is the number of connections of the client's pool in
	// use now (all pools of a cluster client).
	ActiveConns int
}

// HitRate returns Hits/(Hits+Misses), or 0 before the first read.
func (s Stats) HitRate() float64 {
	n := s.Hits + s.Misses
	if n == 0 {
		return 0
	}
	return float64(s.Hits) / float64(n)
}

// RedisStats returns the store's counters. It does no I/O.
func (s *Store) RedisStats() Stats {
	c := s.stats.Stats(backend, -1)
	out := Stats{
		Gets: c.Gets, Puts: c.Puts, Deletes: c.Deletes, Hits: c.Hits, Misses: c.Misses,
		Pipelines: s.pipelines.Load(), AutoPipelined: s.autoPipelined.Load(), Retries: s.retries.Load(), Errors: c.Errors,
		BytesRead: c.BytesRead, BytesWritten: c.BytesWritten,
	}
	out.Operations, out.AvgLatency = s.latency.mean()
	out.P50 = s.latency.quantile(0.50)
	out.P99 = s.latency.quantile(0.99)
	out.P999 = s.latency.quantile(0.999)
	if ps := s.c.PoolStats(); ps != nil && !s.closed.Load() {
		out.ActiveConns = max(int(ps.TotalConns)-int(ps.IdleConns), 0)
	}
	return out
}

// Stats returns the common counters, with the Redis-specific readings in
// Gauges: pipelines_total, auto_pipelined_total, retries_total, operations_total,
// latency_avg_seconds, latency_p50_seconds, latency_p99_seconds,
// latency_p999_seconds and active_connections. Keys is -1 (unknown without
// I/O; see KeyCount).
func (s *Store) Stats() strata.Stats {
	r := s.RedisStats()
	st := s.stats.Stats(backend, -1)
	st.Gauges = map[string]float64{
		"pipelines_total":      float64(r.Pipelines),
		"auto_pipelined_total": float64(r.AutoPipelined),
		"retries_total":        float64(r.Retries),
		"operations_total":     float64(r.Operations),
		"latency_avg_seconds":  r.AvgLatency.Seconds(),
		"latency_p50_seconds":  r.P50.Seconds(),
		"latency_p99_seconds":  r.P99.Seconds(),
		"latency_p999_seconds": r.P999.Seconds(),
		"active_connections":   float64(r.ActiveConns),
	}
	return st
}

// histogram counts durations in log-linear buckets: 16 per power of two
// of nanoseconds (each at most 6.25% wide), lock-free.
type histogram struct {
	count, sum atomic.Uint64
	buckets    [64 * subBuckets]atomic.Uint64
}

const subBits = 4
const subBuckets = 1 << subBits

func bucketOf(ns uint64) int {
	if ns < subBuckets {
		return int(ns)
	}
	exp := bits.Len64(ns) - 1 // >= subBits
	mant := (ns >> (exp - subBits)) & (subBuckets - 1)
	return (exp-subBits+1)*subBuckets + int(mant)
}

// bucketMid returns a duration inside bucket b.
func bucketMid(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	exp := b/subBuckets + subBits - 1
	mant := uint64(b % subBuckets)
	lo := (subBuckets | mant) << (exp - subBits)
	return lo + (uint64(1)<<(exp-subBits))/2
}

// observe records the time since start.
func (h *histogram) observe(start time.Time) {
	d := time.Since(start)
	if d < 0 {
		d = 0
	}
	ns := uint64(d)
	h.count.Add(1)
	h.sum.Add(ns)
	h.buckets[bucketOf(ns)].Add(1)
}

func (h *histogram) mean() (uint64, time.Duration) {
	n := h.count.Load()
	if n == 0 {
		return 0, 0
	}
	return n, time.Duration(h.sum.Load() / n)
}

// quantile returns the q-quantile of the recorded durations, 0 if none.
func (h *histogram) quantile(q float64) time.Duration {
	var counts [len(h.buckets)]uint64
	var total uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketMid(i))
		}
	}
	return 0
}
