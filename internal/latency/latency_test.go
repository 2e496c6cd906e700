package latency

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
)

// Each exponential bucket holds exactly the durations of its bounds: the
// upper bound is inside, anything above it is in the next bucket.
func TestIndexBounds(t *testing.T) {
	for _, i := range []int{-200, -80, -9, -8, -1, 0, 1, 7, 8, 40} {
		upper := time.Duration(strata.BucketBound(i) * float64(time.Second))
		lower := time.Duration(strata.BucketBound(i-1) * float64(time.Second))
		if got := Index(upper); got != i && upper > 0 {
			// Rounding to whole nanoseconds may move a bound down.
			if Index(upper+1) != i && Index(upper-1) != i {
				t.Errorf("Index(%v) = %d, want %d", upper, got, i)
			}
		}
		if mid := time.Duration(math.Sqrt(float64(lower) * float64(upper))); upper-lower > 4 && Index(mid) != i {
			t.Errorf("Index(%v), between the bounds of %d, = %d", mid, i, Index(mid))
		}
	}
	if Index(time.Second) != 0 || Index(500*time.Millisecond) != -8 || Index(2*time.Second) != 8 {
		t.Fatalf("powers of two: Index(1s) = %d, Index(500ms) = %d, Index(2s) = %d; want 0, -8, 8",
			Index(time.Second), Index(500*time.Millisecond), Index(2*time.Second))
	}
	if Index(time.Second+time.Nanosecond) != 1 {
		t.Fatalf("Index(1s+1ns) = %d, want 1", Index(time.Second+time.Nanosecond))
	}
	if Index(1) < minIndex || Index(1) != -239 || Index(1000*time.Hour) != maxIndex {
		t.Fatalf("range: Index(1ns) = %d, want -239 (kept); Index(1000h) = %d, want %d", Index(1), Index(1000*time.Hour), maxIndex)
	}
}

func TestHistogram(t *testing.T) {
	r := New([]time.Duration{time.Millisecond, 10 * time.Millisecond})
	for _, d := range []time.Duration{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 20 * time.Millisecond, time.Second} {
		r.Observe(d)
	}
	h := r.Histogram()
	if h.Count != 6 || h.Zero != 1 || h.Sum != 1023500*time.Microsecond {
		t.Fatalf("Count %d, Zero %d, Sum %v; want 6, 1, 1.0235s", h.Count, h.Zero, h.Sum)
	}
	// The fixed buckets are cumulative and count 0 in each.
	if h.Counts[0] != 3 || h.Counts[1] != 4 {
		t.Fatalf("Counts = %v, want [3 4]", h.Counts)
	}
	var n uint64
	for _, c := range h.Exponential {
		n += c
	}
	if n+h.Zero != h.Count || h.Exponential[0] != 1 {
		t.Fatalf("exponential buckets %v + zero %d do not add up to %d, or 1s is not in bucket 0", h.Exponential, h.Zero, h.Count)
	}
	if q := h.Quantile(1); q < 955*time.Millisecond || q > time.Second {
		t.Fatalf("Quantile(1) = %v, want within bucket 0 (0.917s, 1s]", q)
	}
	if q := h.Quantile(0); q != 0 {
		t.Fatalf("Quantile(0) = %v, want 0 (the zero bucket)", q)
	}
	// A copy: later observations do not change it.
	r.Observe(time.Millisecond)
	if h.Count != 6 || h.Counts[0] != 3 {
		t.Fatal("the Histogram changed after it was returned")
	}
}

// The quantiles read from the exponential buckets are within 5% of the
// exact ones.
func TestQuantileError(t *testing.T) {
	r := New(OperationBounds)
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		d := time.Duration(float64(time.Microsecond) * math.Pow(1.013, float64(i)))
		ds = append(ds, d)
		r.Observe(d)
	}
	h := r.Histogram()
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := ds[int(q*float64(len(ds)-1))]
		got := h.Quantile(q)
		if ratio := float64(got) / float64(exact); ratio < 0.95 || ratio > 1.05 {
			t.Errorf("Quantile(%v) = %v, exact %v (ratio %.3f)", q, got, exact, ratio)
		}
	}
}

// Under concurrent observations a copy is consistent: the buckets add up to
// Count, and no fixed bucket exceeds it.
func TestConcurrent(t *testing.T) {
	r := New(OperationBounds)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r.Observe(time.Duration(g*1000+i%5000) * time.Microsecond)
			}
		}()
	}
	for range 200 {
		h := r.Histogram()
		n := h.Zero
		for _, c := range h.Exponential {
			n += c
		}
		if n != h.Count || h.Counts[len(h.Counts)-1] > h.Count {
			close(stop)
			wg.Wait()
			t.Fatalf("buckets %d, Count %d, last fixed bucket %d", n, h.Count, h.Counts[len(h.Counts)-1])
		}
	}
	close(stop)
	wg.Wait()
}
