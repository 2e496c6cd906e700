package strata

import (
	"maps"
	"math"
	"slices"
	"time"
)

// HistogramSchema is the resolution of a [Histogram]'s exponential
// buckets, as Prometheus native histograms number it: each power of two
// of seconds is split into 2^HistogramSchema buckets, so a bucket's upper
// bound is 2^(1/8), about 9%, above its lower bound.
const HistogramSchema = 3

// Histogram is the distribution of a set of durations, such as the time a
// store's operations take ([Stats].Latency). It holds the same
// observations twice: in fixed buckets (Bounds and Counts), which any
// monitoring system can sum across processes, and in exponential buckets
// (Exponential), fine enough to read a percentile within 9% whatever the
// scale. A Histogram is a copy: it does not change after it is returned.
type Histogram struct {
	// Count is the number of durations observed, and Sum their total.
	Count uint64
	Sum   time.Duration

	// Bounds are the upper bounds of the fixed buckets, ascending, and
	// Counts[i] the number of durations at most Bounds[i] (cumulative, as
	// Prometheus's classic buckets). Durations above the last bound are
	// in Count only.
	Bounds []time.Duration
	Counts []uint64

	// Exponential holds the non-empty exponential buckets by index: bucket
	// i counts the durations d with 2^((i-1)/8) < d.Seconds() <= 2^(i/8)
	// (a Prometheus native histogram of schema HistogramSchema). Zero
	// counts the durations of 0 or less, which no bucket holds.
	Exponential map[int]uint64
	Zero        uint64
}

// BucketBound returns the upper bound of exponential bucket i of a
// [Histogram], in seconds.
func BucketBound(i int) float64 {
	return math.Exp2(float64(i) / (1 << HistogramSchema))
}

// Mean returns the mean duration, or 0 before the first observation.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Quantile returns the q-quantile (0 <= q <= 1) of the durations, from the
// exponential buckets: the geometric middle of the bucket that holds it,
// within 5% of the true value. It returns 0 before the first
// observation.
func (h Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h.Exponential {
		total += n
	}
	if total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q*float64(total+h.Zero-1)) + 1
	if rank <= h.Zero {
		return 0
	}
	seen := h.Zero
	for _, i := range slices.Sorted(maps.Keys(h.Exponential)) {
		seen += h.Exponential[i]
		if seen >= rank {
			mid := math.Exp2((float64(i) - 0.5) / (1 << HistogramSchema))
			return time.Duration(mid * float64(time.Second))
		}
	}
	return 0
}
