package tier

import (
	"runtime"
	"testing"
)

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestEngineCosts measures what each engine costs: its fixed structures
// and its bookkeeping per item at several numbers of items, and fails
// when the constants EntryCost and FixedCost use are off (after a Go or
// engine upgrade): update them from the logged measurements.
func TestEngineCosts(t *testing.T) {
	if testing.Short() {
		t.Skip("fills large caches")
	}
	const budget = 64 << 20
	for _, c := range []struct {
		e        Engine
		item     float64
		tolerate float64 // the item cost's relative spread over the counts
	}{
		{EngineRistretto, ristrettoItemCost, 0.3},
		{EngineOtter, otterItemCost, 0.15},
	} {
		var sum float64
		counts := []int{10000, 30000, 60000, 100000, 200000}
		for _, m := range counts {
			before := liveHeap()
			e, err := newEngine(c.e, budget)
			if err != nil {
				t.Fatal(err)
			}
			fixed := liveHeap() - before
			entries := make([]entry, m)
			for i := range entries {
				entries[i] = make(entry, entryHeader+8+16)
				e.set(uint64(i)*0x9E3779B97F4A7C15, entries[i], 1, 0) // cost 1: nothing is evicted
				if i%4096 == 0 {
					e.wait()
				}
			}
			e.wait()
			item := float64(liveHeap()-before-fixed-int64(m)*(allocSize(entryHeader+8+16)+24)) / float64(m)
			want := c.e.FixedCost(budget) - tierFixed(budget)
			t.Logf("%s, %d items: %.1f bytes an item (charged %v); fixed %d bytes (charged %d)", c.e, m, item, c.item, fixed, want)
			if d := item/c.item - 1; d < -c.tolerate || d > c.tolerate {
				t.Errorf("%s, %d items: %.1f bytes an item, %.0f%% off the %v charged", c.e, m, item, 100*d, c.item)
			}
			// otter's buffers grow with use: at creation they are below the charge.
			if d := float64(fixed)/float64(want) - 1; (d < -0.25 && c.e != EngineOtter) || d > 0.1 {
				t.Errorf("%s: fixed structures of %d bytes, %.0f%% off the %d charged", c.e, fixed, 100*d, want)
			}
			sum += item
			e.close()
			runtime.KeepAlive(entries)
		}
		t.Logf("%s: %.0f bytes an item on average", c.e, sum/float64(len(counts)))
	}
}
