package tier_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

// liveHeap returns the bytes of live heap objects.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// heapBudgets are the budgets TestHeapWithinBudget fills, in MiB:
// STRATA_HEAP_BUDGETS (comma-separated) or 16 and 32 (64 and 256 are in
// docs/tier.md's table, measured with the variable; under -race each
// doubling doubles the test's time). Smaller budgets churn a ristretto L1
// longer for its size under -race (its admission lets more fills
// through), and its tables grow past what TableCost charges: 4 MiB with
// 16-byte values reads 1.11–1.12 under -race, 0.97 without
// (docs/tier.md, "Memory").
func heapBudgets(t *testing.T) []int64 {
	s := os.Getenv("STRATA_HEAP_BUDGETS")
	if s == "" {
		return []int64{16 << 20, 32 << 20}
	}
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("STRATA_HEAP_BUDGETS: %v", err)
		}
		out = append(out, int64(n)<<20)
	}
	return out
}

// TestHeapWithinBudget fills a tier past its budget and checks that the
// heap it grew by is MaxBytes, give or take: MaxBytes is the memory the L1
// really uses. It measures bytes, not time.
func TestHeapWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("fills large caches")
	}
	for _, e := range tier.Engines() {
		for _, size := range []int{16, 100, 4 << 10} {
			for _, budget := range heapBudgets(t) {
				t.Run(fmt.Sprintf("%s/%dB/%dMiB", e, size, budget>>20), func(t *testing.T) {
					const lo, hi = 0.85, 1.10
					ratio := heapRatio(t, e, size, budget)
					if ratio < lo || ratio > hi {
						t.Errorf("heap growth / MaxBytes = %.3f, want %.2f to %.2f", ratio, lo, hi)
					}
				})
			}
		}
	}
}

// heapRatio returns the heap growth of a tier on e with the given budget,
// after reading keys of size-byte values worth about twice the budget, over its
// budget. Otter takes every fill in, so one pass fills it; ristretto's
// admission wants keys seen before, so they are read three times.
func heapRatio(t *testing.T, e tier.Engine, size int, budget int64) float64 {
	ctx := t.Context()
	per := e.EntryCost(13, size) // and the entry's share of the tables
	if m := 1 << 16; e.TableCost(m) > 0 {
		per += e.TableCost(m) / int64(m)
	}
	n := int(2 * budget / per)
	l2 := memory.New(nil)
	defer l2.Close()
	value := make([]byte, size)
	keys := make([][]byte, n)
	batch := make([]strata.Entry, 0, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key:%09d", i)
		batch = append(batch, strata.Entry{Key: keys[i], Value: value, TTL: strata.NoExpiry})
		if len(batch) == cap(batch) || i == n-1 {
			noErr(t, l2.PutMany(ctx, batch))
			batch = batch[:0]
		}
	}
	before := liveHeap()
	tr, err := tier.New(l2, &tier.Options{MaxBytes: budget, KeepL2Open: true, Engine: e})
	noErr(t, err)
	defer tr.Close()
	passes := 3
	if e == tier.EngineOtter {
		passes = 1
	}
	for range passes {
		for _, k := range keys {
			if _, err := tr.Get(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		tr.WaitL1()
	}
	grown := liveHeap() - before
	s := tr.TierStats()
	ratio := float64(grown) / float64(budget)
	t.Logf("%s, %d-byte values, MaxBytes %d MiB: heap grew %.1f MiB (%.3f × MaxBytes); L1Bytes %.1f MiB (fixed %.2f MiB), %d fills, %d evictions",
		e, size, budget>>20, float64(grown)/(1<<20), ratio, float64(s.L1Bytes)/(1<<20), float64(s.L1FixedBytes)/(1<<20), s.Fills, s.L1Evictions)
	if most, now := tr.L1Held(); most > 0 {
		t.Logf("ristretto held %d items at most, %d now", most, now)
	}
	runtime.KeepAlive(keys)
	return ratio
}
