package tier

import (
	"math"
	"math/bits"
	"time"
	"unsafe"
)

// What ristretto's hash tables cost (docs/tier.md, "Memory"). Its store
// is 256 Go maps of items (a shard per key hash) and its policy one map
// of costs. Go maps grow by doubling a table and never shrink, so the
// bytes they take are a step function of the items they have held, not
// a constant per item: between two steps an item's share swings by a
// factor of two (130 to 200 bytes). TableCost follows the steps the way
// Go grows a map (internal/runtime/maps: a map of up to 8 items is one
// group of 8 slots; past that a table of 16 slots or more, a power of
// two; a table of 1024 slots that fills splits in two), averaged over
// how the key hashes spread the items across the shards and the tables.
//
// A table fills to 7/8 of its slots when items are only added; under
// churn (an eviction for every fill, the state of a full cache) deleted
// slots leave tombstones, and a table that is more than about 2/3 full
// cannot reclaim enough of them and doubles. TableCost charges that
// churned size, the larger one: a tier that has not yet evicted holds
// less than MaxBytes, one that churns holds about what it is charged.

// ristrettoStoreSlot is a slot of ristretto's store maps: the uint64
// key and a storeItem (key, conflict hash, the entry's slice header and
// an expiry time).
const ristrettoStoreSlot = 8 + 8 + 8 + int64(unsafe.Sizeof(entry(nil))) + int64(unsafe.Sizeof(time.Time{}))

// ristrettoPolicySlot is a slot of ristretto's policy map of costs: a
// uint64 key and an int64 cost.
const ristrettoPolicySlot = 16

const (
	ristrettoShards  = 256  // maps of ristretto's store, one per key hash mod 256
	mapGroupSlots    = 8    // slots in a group of a Go map, after a control word
	mapTableCapacity = 1024 // slots of a Go map's largest table; a full one splits
	mapTableStruct   = 40   // a table's own struct and its directory pointer

	// Load of a table, in 1024ths of its slots, past which it grows:
	// 7/8 when items are only added (Go's maximum); under churn, lower
	// the longer it churns. Measured (Go 1.26, 72-byte slots, tables of
	// 1024 slots held at a constant count, the load at which half of
	// them have doubled): 85 % after a tenth of a round of churn
	// (deletions per item), 73 % after one, 67 % after 3, 65 % after 10,
	// 63 % after 100. 680/1024 (66 %) is the state after some 5 rounds:
	// a cache that has churned less holds a little less than it is
	// charged, one that has churned longer a little more where its
	// count puts its tables between 63 % and 66 % full.
	mapLoadFresh   = 896
	mapLoadChurned = 680
)

// ristrettoTables returns the bytes of ristretto's store and policy maps
// once they have held n items, tables at most load/1024 full.
func ristrettoTables(n, load int64) int64 {
	if n <= 0 {
		return 0
	}
	return int64(math.Ceil(mapBytes(n, ristrettoShards, ristrettoStoreSlot, load) + mapBytes(n, 1, ristrettoPolicySlot, load)))
}

// tableGrid is a stretch [lo, hi) of item counts over which TableCost
// is the straight line between the tables at lo and at hi: 64 stretches
// for each doubling of the count, so that the expected bytes, a smooth
// curve, need not be computed for every count.
type tableGrid struct {
	lo, hi   int64
	atLo, at int64 // tables at lo and at hi
}

// ristrettoTableGrid returns the stretch of counts that holds n.
func ristrettoTableGrid(n int64) tableGrid {
	step := max(16, int64(1)<<max(bits.Len64(uint64(n))-1, 0)/64)
	lo := n / step * step
	hi := lo + step
	return tableGrid{lo, hi, ristrettoTables(lo, mapLoadChurned), ristrettoTables(hi, mapLoadChurned)}
}

// cost returns the tables for n items, n in [lo, hi).
func (g tableGrid) cost(n int64) int64 {
	return g.atLo + (g.at-g.atLo)*(n-g.lo)/(g.hi-g.lo)
}

// mapBytes returns the expected bytes of the tables of parts Go maps
// with slots of slot bytes, tables at most load/1024 full, holding n
// items between them, each item in a map drawn uniformly (a key's hash).
func mapBytes(n, parts, slot, load int64) float64 {
	group := 8 + mapGroupSlots*slot // control word and slots
	// A map grows through steps: at most upto items in bytes.
	type step struct{ upto, bytes int64 }
	steps := []step{{0, 0}, {mapGroupSlots, allocSize(int(group))}}
	for c := int64(2 * mapGroupSlots); c <= mapTableCapacity; c *= 2 {
		steps = append(steps, step{c * load / 1024, allocSize(int(c/mapGroupSlots*group)) + mapTableStruct})
	}
	p := 1 / float64(parts)
	var total float64
	for i := 1; i < len(steps); i++ {
		total += binomialAbove(n, p, steps[i-1].upto) * float64(steps[i].bytes-steps[i-1].bytes)
	}
	// A full table splits into two full-size tables: every region of the
	// hash space (a map, its halves, their halves...) that held more than
	// a full table's items split once, adding a table.
	full := steps[len(steps)-1]
	for d := 0; float64(n)*p/float64(int64(1)<<d) >= float64(full.upto)/8; d++ {
		total += float64(int64(1)<<d) * binomialAbove(n, p/float64(int64(1)<<d), full.upto) * float64(full.bytes)
	}
	return float64(parts) * total
}

// binomialAbove returns P(X > k) for X binomial with n trials of
// probability p.
func binomialAbove(n int64, p float64, k int64) float64 {
	switch {
	case k < 0 || p >= 1:
		return 1
	case k >= n:
		return 0
	}
	mean := float64(n) * p
	sd := math.Sqrt(mean * (1 - p))
	if sd > 40 {
		// The normal approximation, with continuity correction.
		return 0.5 * math.Erfc((float64(k)+0.5-mean)/(sd*math.Sqrt2))
	}
	if float64(k) < mean-12*sd-20 {
		return 1
	}
	// Sum the probabilities of k+1, k+2, ... while they count.
	hi := min(n, int64(mean+12*sd+20))
	lg := func(x int64) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	j := k + 1
	pr := math.Exp(lg(n) - lg(j) - lg(n-j) + float64(j)*math.Log(p) + float64(n-j)*math.Log1p(-p))
	odds := p / (1 - p)
	var sum float64
	for ; j <= hi; j++ {
		sum += pr
		pr *= float64(n-j) / float64(j+1) * odds
	}
	return min(sum, 1)
}
