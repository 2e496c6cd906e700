package tier

import (
	"context"
	"errors"
	"maps"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata"
)

// tierCounters are the counters off the hit path (hits live in shards).
type tierCounters struct {
	l1Misses     atomic.Uint64
	l2Reads      atomic.Uint64
	l2Hits       atomic.Uint64
	l2Misses     atomic.Uint64
	l2Bytes      atomic.Uint64
	joined       atomic.Uint64
	fills        atomic.Uint64
	fillsDropped atomic.Uint64
	setsDropped  atomic.Uint64
	puts         atomic.Uint64
	deletes      atomic.Uint64
	bytesWritten atomic.Uint64
	errors       atomic.Uint64

	invalidations  atomic.Uint64
	foreign        atomic.Uint64
	possibleEchoes atomic.Uint64
	verifications  atomic.Uint64
	corrections    atomic.Uint64
	verifyFailures atomic.Uint64
	flushes        atomic.Uint64
	connects       atomic.Uint64
	disconnects    atomic.Uint64
}

// countErr counts a failure of the L2 other than bad input, a miss, a
// closed store or the caller's context.
func (t *Tier) countErr(err error) {
	switch {
	case errors.Is(err, strata.ErrNotFound), errors.Is(err, strata.ErrClosed),
		errors.Is(err, strata.ErrInvalidKey), errors.Is(err, strata.ErrInvalidTTL),
		errors.Is(err, strata.ErrValueTooLarge), errors.Is(err, strata.ErrUnsupported),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return
	}
	t.c.errors.Add(1)
}

// Stats are a tier's counters: its L1, its coherence machinery and its L2.
// Counters only grow for the life of the tier.
type Stats struct {
	L1Hits         uint64  // reads answered by L1 with a value
	L1NegativeHits uint64  // reads answered by L1 with a cached absence
	L1Misses       uint64  // reads that went to the L2
	L1HitRatio     float64 // (L1Hits+L1NegativeHits) / all reads; 0 before the first
	L1Bytes        int64   // bytes charged against MaxBytes: L1FixedBytes, the entries' Engine.EntryCost and ristretto's tables (Engine.TableCost)
	L1FixedBytes   int64   // bytes of the L1's fixed structures, charged at creation (Engine.FixedCost)
	L1MaxBytes     int64   // Options.MaxBytes
	L1Evictions    uint64  // entries the engine evicted to make room
	L1Rejections   uint64  // entries the engine's admission policy refused (ristretto)
	L1SetsDropped  uint64  // fills the engine dropped under contention (ristretto)

	Fills        uint64 // entries put in L1 (read-through fills and write-through)
	FillsRefused uint64 // read-through fills not installed because a write or invalidation overlapped them
	SharedReads  uint64 // misses that waited for another caller's L2 read of the same key
	L2Reads      uint64 // keys read from the L2

	// Invalidations counts the keys the Invalidator reported changed, by
	// any client: Redis reports this tier's own writes too. Each report is
	// either foreign for sure (no own write of the key's slot in flight or
	// within EchoWindow: the entry is dropped at once) or a possible echo
	// of an own write (the entry stays until verified against the L2).
	Invalidations        uint64
	ForeignInvalidations uint64 // reports dropped at once
	PossibleEchoes       uint64 // reports queued for verification
	Verifications        uint64 // possible echoes compared with the L2
	Corrections          uint64 // entries a verification found holding another value than the L2 and replaced
	VerifyFailures       uint64 // possible echoes not verified in time (L2 error, VerifyTimeout), dropped as foreign

	Flushes          uint64        // whole-L1 flushes (Invalidator down or up, FLUSHALL)
	TrackingConnects uint64        // times the Invalidator came up
	TrackingLosses   uint64        // times the Invalidator went down after being up
	Bypassing        bool          // L1 is bypassed now (the Invalidator is not up)
	BypassTime       time.Duration // total time spent bypassing L1

	// L2 is the L2's own stats; HasL2 is false when it reports none.
	L2    strata.Stats
	HasL2 bool
}

// TierStats returns the tier's counters.
func (t *Tier) TierStats() Stats {
	var s Stats
	for i := range t.shards {
		sh := &t.shards[i]
		s.L1Hits += sh.hits.Load()
		s.L1NegativeHits += sh.negHits.Load()
	}
	s.L1Misses = t.c.l1Misses.Load()
	if n := s.L1Hits + s.L1NegativeHits + s.L1Misses; n > 0 {
		s.L1HitRatio = float64(s.L1Hits+s.L1NegativeHits) / float64(n)
	}
	s.L1MaxBytes = t.opts.MaxBytes
	s.L1FixedBytes = t.fixed
	if sh, ok := t.enter(0); ok {
		es := t.l1.stats()
		s.L1Bytes, s.L1Evictions, s.L1Rejections = t.fixed+es.used, es.evictions, es.rejections
		sh.active.Add(-1)
	}
	s.L1SetsDropped = t.c.setsDropped.Load()
	s.Fills = t.c.fills.Load()
	s.FillsRefused = t.c.fillsDropped.Load()
	s.SharedReads = t.c.joined.Load()
	s.L2Reads = t.c.l2Reads.Load()
	s.Invalidations = t.c.invalidations.Load()
	s.ForeignInvalidations = t.c.foreign.Load()
	s.PossibleEchoes = t.c.possibleEchoes.Load()
	s.Verifications = t.c.verifications.Load()
	s.Corrections = t.c.corrections.Load()
	s.VerifyFailures = t.c.verifyFailures.Load()
	s.Flushes = t.c.flushes.Load()
	s.TrackingConnects = t.c.connects.Load()
	s.TrackingLosses = t.c.disconnects.Load()
	t.bypassMu.Lock()
	s.BypassTime = t.bypassTotal
	if !t.bypassSince.IsZero() {
		s.Bypassing = true
		s.BypassTime += time.Since(t.bypassSince)
	}
	t.bypassMu.Unlock()
	s.L2, s.HasL2 = strata.StatsOf(t.l2)
	return s
}

// Stats returns the tier's counters as strata.Stats: reads, hits and
// misses as the tier's callers saw them (from L1 or the L2), the L2's key
// count, and gauges for L1 (l1_*), the coherence machinery and the L2's own
// gauges (l2_*). Latency is nil: the tier does not time its operations
// (the L2's are in TierStats().L2.Latency).
func (t *Tier) Stats() strata.Stats {
	s := t.TierStats()
	var hitBytes uint64
	for i := range t.shards {
		hitBytes += t.shards[i].hitBytes.Load()
	}
	out := strata.Stats{
		Backend:      "tier",
		Gets:         s.L1Hits + s.L1NegativeHits + s.L1Misses,
		Hits:         s.L1Hits + t.c.l2Hits.Load(),
		Misses:       s.L1NegativeHits + t.c.l2Misses.Load(),
		Puts:         t.c.puts.Load(),
		Deletes:      t.c.deletes.Load(),
		Errors:       t.c.errors.Load(),
		BytesRead:    hitBytes + t.c.l2Bytes.Load(),
		BytesWritten: t.c.bytesWritten.Load(),
		Keys:         -1,
		Gauges: map[string]float64{
			"l1_hits_total":                     float64(s.L1Hits),
			"l1_negative_hits_total":            float64(s.L1NegativeHits),
			"l1_misses_total":                   float64(s.L1Misses),
			"l1_hit_ratio":                      s.L1HitRatio,
			"l1_bytes":                          float64(s.L1Bytes),
			"l1_max_bytes":                      float64(s.L1MaxBytes),
			"l1_fixed_bytes":                    float64(s.L1FixedBytes),
			"l1_evictions_total":                float64(s.L1Evictions),
			"l1_rejections_total":               float64(s.L1Rejections),
			"l1_fills_total":                    float64(s.Fills),
			"l1_fills_refused_total":            float64(s.FillsRefused),
			"invalidations_total":               float64(s.Invalidations),
			"invalidations_foreign_total":       float64(s.ForeignInvalidations),
			"invalidations_possible_echo_total": float64(s.PossibleEchoes),
			"verifications_total":               float64(s.Verifications),
			"verification_corrections_total":    float64(s.Corrections),
			"verification_failures_total":       float64(s.VerifyFailures),
			"flushes_total":                     float64(s.Flushes),
			"bypass_seconds_total":              s.BypassTime.Seconds(),
			"bypassing":                         boolGauge(s.Bypassing),
		},
		GaugeHelp: maps.Clone(gaugeHelp),
	}
	if s.HasL2 {
		out.Keys = s.L2.Keys
		out.Gauges["l2_gets_total"] = float64(s.L2.Gets)
		out.Gauges["l2_hits_total"] = float64(s.L2.Hits)
		out.Gauges["l2_misses_total"] = float64(s.L2.Misses)
		out.Gauges["l2_errors_total"] = float64(s.L2.Errors)
		for k, v := range s.L2.Gauges {
			out.Gauges["l2_"+k] = v
			if h, ok := s.L2.GaugeHelp[k]; ok {
				out.GaugeHelp["l2_"+k] = "In the tier's L2 (" + s.L2.Backend + " store): " + h
			}
		}
	}
	return out
}

// gaugeHelp explains the tier's readings in Stats().Gauges; those of its
// L2 are added with their own.
var gaugeHelp = map[string]string{
	"l1_hits_total":                     "Reads the tier's in-process cache (L1) answered with a value.",
	"l1_negative_hits_total":            "Reads the tier's L1 answered with a cached absence, sparing the L2 a lookup of a missing key.",
	"l1_misses_total":                   "Reads the tier's L1 could not answer, which went to the L2.",
	"l1_hit_ratio":                      "Share of the tier's reads its L1 answered since the tier started, between 0 and 1 (rate the _total counters for a recent ratio).",
	"l1_bytes":                          "Bytes charged against the tier's L1 budget: its fixed structures and its entries.",
	"l1_max_bytes":                      "The tier's L1 budget in bytes (Options.MaxBytes).",
	"l1_fixed_bytes":                    "Bytes of the tier's L1 fixed structures, charged at creation.",
	"l1_evictions_total":                "Entries the tier's L1 evicted to make room.",
	"l1_rejections_total":               "Entries the tier's L1 admission policy refused.",
	"l1_fills_total":                    "Entries the tier put in its L1, by read-through fills and write-through.",
	"l1_fills_refused_total":            "Read-through fills the tier did not install because a write or an invalidation of the key overlapped them.",
	"invalidations_total":               "Keys the tier's invalidation stream reported changed, by any client, this process included.",
	"invalidations_foreign_total":       "Invalidations certainly caused by another client, whose L1 entries the tier dropped at once.",
	"invalidations_possible_echo_total": "Invalidations that may echo the tier's own writes, queued for verification against the L2.",
	"verifications_total":               "Possible echoes the tier compared with the L2.",
	"verification_corrections_total":    "L1 entries a verification found holding another value than the L2, and replaced.",
	"verification_failures_total":       "Possible echoes not verified in time (L2 error or timeout), dropped as foreign.",
	"flushes_total":                     "Times the tier emptied its whole L1, because its invalidation stream went down or up, or the L2 was flushed.",
	"bypass_seconds_total":              "Time the tier spent bypassing its L1 because its invalidation stream was down.",
	"bypassing":                         "1 while the tier bypasses its L1 because its invalidation stream is down, else 0.",
	"l2_gets_total":                     "Keys the tier's L2 store read, as the L2 counts them.",
	"l2_hits_total":                     "Reads of the tier's L2 store that found a live key.",
	"l2_misses_total":                   "Reads of the tier's L2 store that found nothing.",
	"l2_errors_total":                   "Operations of the tier's L2 store that failed for a reason other than bad input or a miss.",
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
