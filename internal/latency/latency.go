// Package latency records durations into a strata.Histogram, lock-free, on
// the hot path of a store or a coordinator.
package latency

import (
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata"
)

// OperationBounds are the fixed bucket bounds for the operations of a
// store over the network or a disk: from tens of microseconds (a Redis
// command on the same host) to seconds (a timeout).
var OperationBounds = []time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// JobBounds are the fixed bucket bounds for long jobs such as a
// checkpoint or a restore: from 10 milliseconds to an hour.
var JobBounds = []time.Duration{
	10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
}

// The exponential buckets kept: indexes minIndex to maxIndex, 2^-30 s
// (about a nanosecond) to 2^16 s (18 hours). Shorter durations count in
// the lowest bucket, longer ones in the highest.
const (
	perDoubling = 1 << strata.HistogramSchema
	minIndex    = -30 * perDoubling
	maxIndex    = 16 * perDoubling
)

// fracBounds are the upper bounds of the buckets within one power of two,
// as fractions in [0.5, 1) of math.Frexp.
var fracBounds = func() []float64 {
	b := make([]float64, perDoubling)
	for j := range b {
		b[j] = math.Exp2(float64(j-perDoubling) / perDoubling)
	}
	return b
}()

// Recorder counts durations. The zero value is not usable: make one with
// New. It is safe for concurrent use.
type Recorder struct {
	bounds []time.Duration
	sum    atomic.Int64
	zero   atomic.Uint64
	fixed  []atomic.Uint64 // per bound, not cumulative
	exp    [maxIndex - minIndex + 1]atomic.Uint64
}

// New returns a Recorder with fixed buckets at bounds (ascending; the
// Recorder keeps its own copy).
func New(bounds []time.Duration) *Recorder {
	return &Recorder{bounds: slices.Clone(bounds), fixed: make([]atomic.Uint64, len(bounds))}
}

// Since records the time elapsed since start.
func (r *Recorder) Since(start time.Time) { r.Observe(time.Since(start)) }

// Observe records d.
func (r *Recorder) Observe(d time.Duration) {
	if d <= 0 {
		r.zero.Add(1)
		return
	}
	r.sum.Add(int64(d))
	// The exponential bucket first: Histogram reads the fixed ones first,
	// so that they never count an observation the exponential ones miss.
	r.exp[Index(d)-minIndex].Add(1)
	if i, _ := slices.BinarySearch(r.bounds, d); i < len(r.bounds) {
		r.fixed[i].Add(1)
	}
}

// Index returns the exponential bucket of a positive d (see
// strata.Histogram), clamped to the range kept.
func Index(d time.Duration) int {
	frac, exp := math.Frexp(d.Seconds())
	i := sort.SearchFloat64s(fracBounds, frac) + (exp-1)*perDoubling
	return min(max(i, minIndex), maxIndex)
}

// Histogram returns a copy of the counts. Count is the number of
// observations in the exponential buckets and Zero; the fixed buckets, read
// first, never hold one of them that these miss.
func (r *Recorder) Histogram() strata.Histogram {
	h := strata.Histogram{
		Bounds:      slices.Clone(r.bounds),
		Counts:      make([]uint64, len(r.bounds)),
		Exponential: map[int]uint64{},
	}
	// Durations of 0 are at most every bound.
	h.Zero = r.zero.Load()
	cum := h.Zero
	for i := range r.fixed {
		cum += r.fixed[i].Load()
		h.Counts[i] = cum
	}
	h.Count = h.Zero
	for i := range r.exp {
		if n := r.exp[i].Load(); n > 0 {
			h.Exponential[i+minIndex] = n
			h.Count += n
		}
	}
	h.Sum = time.Duration(r.sum.Load())
	return h
}
