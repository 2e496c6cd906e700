package tier

import (
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// What the L1 costs (docs/tier.md, "Memory"). MaxBytes bounds the heap
// the L1 really uses: the fixed structures are charged at creation
// (FixedCost), every entry is charged its allocation as Go's allocator
// rounds it plus the bookkeeping for one item that grows with it
// (EntryCost), and ristretto's hash tables, whose size moves by steps
// with the number of items, are charged as that number grows
// (TableCost).

// allocClasses are the sizes to which Go's allocator rounds allocations
// without pointers, up to the first one past the largest size class,
// probed from the running Go at start.
var allocClasses = probeAllocClasses()

func probeAllocClasses() []int {
	var out []int
	for n := 1; n <= 32<<10; {
		// append rounds the capacity it allocates up to a size class.
		c := cap(append([]byte(nil), make([]byte, n)...))
		out = append(out, c)
		n = c + 1
	}
	return out
}

// allocSize returns the heap bytes of a []byte of n bytes.
func allocSize(n int) int64 {
	if n <= 0 {
		return 0
	}
	if i, _ := slices.BinarySearch(allocClasses, n); i < len(allocClasses) {
		return int64(allocClasses[i])
	}
	const page = 8 << 10
	return int64((n + page - 1) &^ (page - 1))
}

// The engines' bookkeeping, on top of the entries' own allocations:
// measured (heap growth with the engine holding 10⁴ to 4·10⁵ items),
// and re-measured by TestEngineCosts, which fails when the Go or engine
// version moves them. Ristretto's per-item bookkeeping is its hash
// tables' slots (TableCost, tables.go).
const (
	// otter: its node (list links, weights, state, the key and the
	// entry's slice header: 64 bytes), a share of a 64-byte hash-table
	// bucket of 5 nodes at its load, and of the frequency sketch (8 to
	// 16 bytes an item); 85 to 92 bytes measured, and the heap of a full
	// tier (TestHeapWithinBudget) shows some 6 more, from buffers that
	// grow with use.
	otterItemCost = 94

	// ristrettoBase is ristretto's fixed structures besides its sketch:
	// the Set buffer (32 Ki pointers), the 256 shards of its store, the
	// Get buffers.
	ristrettoBase = 300 << 10

	// otterBase is otter's fixed structures: read and write buffers and
	// the smallest hash table.
	otterBase = 32 << 10
)

// EntryCost returns the bytes a tier on engine e charges against
// MaxBytes for an L1 entry with a key of keyLen bytes and a value of
// valueLen bytes: the entry's allocation (a 32-byte header, the key and
// the value, rounded up to Go's size class), and on otter its
// bookkeeping for one item (its node, its share of the hash table and of
// the frequency sketch). A cached absence is an entry with no value. On
// ristretto an item's bookkeeping is its slots in the engine's hash
// tables, charged by TableCost for all the items together.
//
// With EntryCost, TableCost and FixedCost a budget can be sized for a
// number of entries; Budget does the arithmetic.
func (e Engine) EntryCost(keyLen, valueLen int) int64 {
	c := allocSize(entryHeader + keyLen + valueLen)
	if e == EngineOtter {
		c += otterItemCost
	}
	return c
}

// TableCost returns the bytes a tier on engine e charges against
// MaxBytes for the hash tables of an L1 that has held at most n entries,
// besides their EntryCost. On ristretto they are its store's 256 Go
// maps and its policy's map, which grow by doubling and never shrink:
// the charge follows Go's growth steps for the most entries the L1 has
// held, at the size the tables reach when entries are evicted for new
// ones, and the engine's room for entries shrinks as it grows. Per
// entry it is 135 to 270 bytes, by where n sits between two steps. On
// otter it is 0: the table's share is in EntryCost.
func (e Engine) TableCost(n int) int64 {
	if e == EngineOtter || n <= 0 {
		return 0
	}
	return ristrettoTableGrid(int64(n)).cost(int64(n))
}

// FixedCost returns the bytes a tier on engine e with the given MaxBytes
// charges against it at creation: its coherence arrays (12 bytes per
// 256 bytes of budget, in a power of two), its lock stripes and the
// 128 KiB of own-write times a tier with an Invalidator keeps (counted
// whether or not there is one), and the engine's own fixed structures:
// for ristretto, its Set buffer and its admission sketch and doorkeeper
// (about 3–4 bytes per counter, one counter per 24 to 48 bytes of
// budget); for otter, its buffers (its sketch grows with its entries and
// is part of EntryCost).
func (e Engine) FixedCost(maxBytes int64) int64 {
	f := tierFixed(maxBytes)
	if e == EngineOtter {
		return f + otterBase
	}
	nc := ristrettoCounters(maxBytes - f - ristrettoBase)
	return f + ristrettoBase + sketchBytes(nc)
}

// Budget returns the smallest MaxBytes with which a tier on engine e
// holds n entries of keyLen-byte keys and valueLen-byte values: n
// EntryCosts, TableCost(n) and FixedCost.
func (e Engine) Budget(n, keyLen, valueLen int) int64 {
	need := int64(n)*e.EntryCost(keyLen, valueLen) + e.TableCost(n)
	b := need
	for range 8 { // FixedCost grows with the budget, by steps: iterate to the fixed point
		next := need + e.FixedCost(b)
		if next <= b {
			break
		}
		b = next
	}
	return b
}

// minBudget is the smallest MaxBytes of a tier on e: its fixed
// structures and 4 entries of 16-byte keys and values.
func (e Engine) minBudget() int64 { return e.Budget(4, 16, 16) }

// coherenceSlots returns the number of coherence slots of a tier with
// the given MaxBytes.
func coherenceSlots(maxBytes int64) int64 { return nextPow2(min(max(maxBytes/256, 4096), 1<<22)) }

// tierFixed returns the bytes of the tier's own fixed structures.
func tierFixed(maxBytes int64) int64 {
	slots := coherenceSlots(maxBytes)
	return allocSize(int(slots*8)) + allocSize(int(slots*4)) + // gens, inflight
		allocSize(numStripes*int(unsafe.Sizeof(lockStripe{}))) +
		allocSize(echoSlots*8) +
		int64(unsafe.Sizeof(Tier{}))
}

// ristrettoCounters returns the number of counters of ristretto's
// admission sketch for an entry budget of usable bytes: one per 24 to 48
// bytes (a power of two), about 7 to 14 per entry of a 100-byte value.
func ristrettoCounters(usable int64) int64 {
	n := max(usable/24, 1024)
	return 1 << (bits.Len64(uint64(n)) - 1)
}

// sketchBytes returns the bytes of ristretto's count-min sketch (4 rows
// of 4-bit counters) and doorkeeper (a Bloom filter of 1% false
// positives, rounded up to a power of two bits) for nc counters, as
// ristretto v2 allocates them.
func sketchBytes(nc int64) int64 {
	sketch := 4 * allocSize(int(nextPow2(nc)/2))
	bloomBits := uint64(-float64(nc) * math.Log(0.01) / (0.69314718056 * 0.69314718056))
	bloomBits = max(bloomBits, 512)
	return sketch + allocSize(int(nextPow2(int64(bloomBits))/8))
}
