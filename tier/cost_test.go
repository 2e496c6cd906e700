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

// mix64 spreads i over 64 bits as a key hash does (splitmix64).
func mix64(i uint64) uint64 {
	i += 0x9E3779B97F4A7C15
	i = (i ^ i>>30) * 0xBF58476D1CE4E5B9
	i = (i ^ i>>27) * 0x94D049BB133111EB
	return i ^ i>>31
}

// TestEngineCosts measures what each engine costs: its fixed structures
// and its bookkeeping for items at several numbers of items, and fails
// when what EntryCost, TableCost and FixedCost assume is off (after a Go
// or engine upgrade): update them from the logged measurements. For
// ristretto it measures its hash tables after a fill and after churn (a
// deletion and a new item, three times the items), against Go's growth
// steps at the fill's load and at the churned one.
func TestEngineCosts(t *testing.T) {
	if testing.Short() {
		t.Skip("fills large caches")
	}
	const budget = 256 << 20
	const size = entryHeader + 8 + 16
	for _, c := range []struct {
		e        Engine
		tolerate float64 // relative error tolerated
	}{
		{EngineRistretto, 0.06},
		{EngineOtter, 0.15},
	} {
		var sum float64
		counts := []int{3000, 12000, 20000, 48000, 100000, 200000}
		for _, m := range counts {
			before := liveHeap()
			e, err := newEngine(c.e, budget)
			if err != nil {
				t.Fatal(err)
			}
			fixed := liveHeap() - before
			entries := make([]entry, m)
			keys := make([]uint64, m)
			next := uint64(0)
			put := func(i int) {
				keys[i] = mix64(next)
				next++
				for !e.set(keys[i], entries[i], 1, 0) { // cost 1: nothing is evicted
					e.wait() // the set buffer was full
				}
				if next%4096 == 0 {
					e.wait()
				}
			}
			for i := range entries {
				entries[i] = make(entry, size)
				put(i)
			}
			e.wait()
			own := int64(m) * (allocSize(size) + 24 + 8) // entries, their slice headers, keys
			item := float64(liveHeap()-before-fixed-own) / float64(m)
			want := c.e.FixedCost(budget) - tierFixed(budget)
			if c.e == EngineOtter {
				t.Logf("%s, %d items: %.1f bytes an item (charged %v); fixed %d bytes (charged %d)", c.e, m, item, otterItemCost, fixed, want)
				if d := item/otterItemCost - 1; d < -c.tolerate || d > c.tolerate {
					t.Errorf("%s, %d items: %.1f bytes an item, %.0f%% off the %v charged", c.e, m, item, 100*d, otterItemCost)
				}
				sum += item
			} else {
				fresh := float64(ristrettoTables(int64(m), mapLoadFresh)) / float64(m)
				t.Logf("%s, %d items: %.1f bytes an item after a fill (tables at 7/8: %.1f); fixed %d bytes (charged %d)", c.e, m, item, fresh, fixed, want)
				if d := item/fresh - 1; d < -c.tolerate || d > c.tolerate {
					t.Errorf("%s, %d items after a fill: %.1f bytes an item, %.0f%% off Go's growth steps (%.1f)", c.e, m, item, 100*d, fresh)
				}
				for j := range 3 * m {
					i := int(mix64(uint64(j)^0x5555) % uint64(m))
					e.del(keys[i])
					put(i)
				}
				e.wait()
				item = float64(liveHeap()-before-fixed-own) / float64(m)
				churned := float64(ristrettoTables(int64(m), mapLoadChurned)) / float64(m)
				t.Logf("%s, %d items: %.1f bytes an item after churn (tables at %d/1024: %.1f)", c.e, m, item, mapLoadChurned, churned)
				if d := item/churned - 1; d < -2*c.tolerate || d > 2*c.tolerate {
					t.Errorf("%s, %d items after churn: %.1f bytes an item, %.0f%% off the churned tables (%.1f)", c.e, m, item, 100*d, churned)
				}
			}
			// otter's buffers grow with use: at creation they are below the charge.
			if d := float64(fixed)/float64(want) - 1; (d < -0.25 && c.e != EngineOtter) || d > 0.1 {
				t.Errorf("%s: fixed structures of %d bytes, %.0f%% off the %d charged", c.e, fixed, 100*d, want)
			}
			e.close()
			runtime.KeepAlive(entries)
			runtime.KeepAlive(keys)
		}
		if c.e == EngineOtter {
			t.Logf("%s: %.0f bytes an item on average", c.e, sum/float64(len(counts)))
		}
	}
}

// TestBudgetHolds checks that Budget(n, …) gives an L1 that takes n
// entries without evicting or refusing one.
func TestBudgetHolds(t *testing.T) {
	for _, e := range Engines() {
		for _, n := range []int{4, 100, 10000, 50000} {
			const keyLen, valueLen = 8, 100
			l1, err := newEngine(e, e.Budget(n, keyLen, valueLen))
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				v := make(entry, entryHeader+keyLen+valueLen)
				for !l1.set(mix64(uint64(i)), v, e.EntryCost(keyLen, valueLen), 0) {
					l1.wait() // the set buffer was full
				}
			}
			l1.wait()
			if s := l1.stats(); s.evictions+s.rejections > 0 {
				t.Errorf("%s, Budget(%d): %d evictions, %d rejections", e, n, s.evictions, s.rejections)
			}
			l1.close()
		}
	}
}
