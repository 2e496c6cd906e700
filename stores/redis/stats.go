package redis

import (
	"maps"
	"time"

	"github.com/strata-kv/strata"
)

// Stats are the store's counters with latency percentiles. Counters only
// grow for the life of the store.
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
	// P50, P99 and P999 are latency percentiles, within 5% (see
	// strata.Histogram.Quantile).
	P50, P99, P999 time.Duration

	// Latency is the distribution the figures above are read from, as
	// Stats().Latency reports it.
	Latency strata.Histogram

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

// gaugeHelp explains each reading of Stats().Gauges.
var gaugeHelp = map[string]string{
	"pipelines_total":      "Round trips to Redis that carried one operation's batch of several commands.",
	"auto_pipelined_total": "Store operations whose commands shared a round trip to Redis with another operation's (auto-pipelining).",
	"retries_total":        "Redis commands the store sent again after a transient failure.",
	"active_connections":   "Connections of the Redis client's pools in use now.",
}

// RedisStats returns the store's counters. It does no I/O.
func (s *Store) RedisStats() Stats {
	c := s.stats.Stats(backend, -1)
	out := Stats{
		Gets: c.Gets, Puts: c.Puts, Deletes: c.Deletes, Hits: c.Hits, Misses: c.Misses,
		Pipelines: s.pipelines.Load(), AutoPipelined: s.autoPipelined.Load(), Retries: s.retries.Load(), Errors: c.Errors,
		BytesRead: c.BytesRead, BytesWritten: c.BytesWritten,
	}
	out.Latency = s.latency.Histogram()
	out.Operations, out.AvgLatency = out.Latency.Count, out.Latency.Mean()
	out.P50 = out.Latency.Quantile(0.50)
	out.P99 = out.Latency.Quantile(0.99)
	out.P999 = out.Latency.Quantile(0.999)
	if ps := s.c.PoolStats(); ps != nil && !s.closed.Load() {
		out.ActiveConns = max(int(ps.TotalConns)-int(ps.IdleConns), 0)
	}
	return out
}

// Stats returns the common counters, the distribution of the operations'
// durations in Latency (retries included, a batch counting once), and the
// Redis-specific readings in Gauges: pipelines_total, auto_pipelined_total,
// retries_total and active_connections. Keys is -1 (unknown without I/O;
// see KeyCount).
func (s *Store) Stats() strata.Stats {
	r := s.RedisStats()
	st := s.stats.Stats(backend, -1)
	st.Gauges = map[string]float64{
		"pipelines_total":      float64(r.Pipelines),
		"auto_pipelined_total": float64(r.AutoPipelined),
		"retries_total":        float64(r.Retries),
		"active_connections":   float64(r.ActiveConns),
	}
	st.GaugeHelp = maps.Clone(gaugeHelp)
	st.Latency = &r.Latency
	return st
}
