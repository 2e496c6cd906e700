package tier

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"
)

// Engine names the cache that holds a tier's L1 entries. Every engine
// sits behind the same coherence protocol (docs/tier.md): the choice
// changes the hit ratio, the speed and the memory an entry costs, never
// what a read returns. The default, otter, has the higher hit ratios on
// the ARC traces and the faster hits (docs/BENCHMARKS.md).
type Engine string

const (
	// EngineRistretto is ristretto v2: TinyLFU admission, sampled LFU
	// eviction, asynchronous sets.
	EngineRistretto Engine = "ristretto"

	// EngineOtter is otter v2: W-TinyLFU (an LRU window, a segmented LRU,
	// a frequency sketch deciding admission, adaptive window size), sets
	// applied at once.
	EngineOtter Engine = "otter"
)

// Engines lists the engines a tier can use, the default first.
func Engines() []Engine { return []Engine{EngineOtter, EngineRistretto} }

// check reports an unknown engine; "" (the default) is known.
func (e Engine) check() error {
	switch e {
	case "", EngineRistretto, EngineOtter:
		return nil
	}
	return fmt.Errorf("engine %q is unknown (accepted: ristretto, otter)", string(e))
}

// newEngine returns the engine e of a tier with the given MaxBytes: its
// entries may cost what FixedCost leaves.
func newEngine(e Engine, maxBytes int64) (engine, error) {
	usable := maxBytes - e.FixedCost(maxBytes)
	if e == EngineOtter {
		return newOtter(usable)
	}
	return newRistretto(usable, ristrettoCounters(maxBytes-tierFixed(maxBytes)-ristrettoBase))
}

// engine is the cache that holds the L1 entries, by key hash. The
// coherence protocol (docs/tier.md) decides which entries are valid; the
// engine only stores them, and may lose any of them at any time.
//
// What the protocol needs of an engine:
//
//   - get returns an entry that set stored under h and that is still
//     there, the very entry (the same backing array: the flag word is
//     shared by every holder), or false. The engine never copies or
//     changes it.
//   - What get sees is one map at one time: once a get has returned an
//     entry, every later get of h returns it until a set, a del or an
//     eviction replaces or removes it, and a removed entry never comes back.
//     This is what makes a writer's kill (get, then mark dead) reach every
//     entry a reader confirmed.
//   - set may apply its entry later (asynchronously), or never (dropped or
//     refused by an admission policy). Entries whose set is late or lost
//     are harmless: each records the generation and epoch it was made
//     under, and is valid only while they hold.
//   - ttl > 0 lets the engine free the entry after ttl; it never decides
//     validity (the tier checks the entry's expiry against its own clock).
//   - wait returns once every set issued before it is applied (or
//     dropped) and the engine's bookkeeping (the bytes it holds, its
//     evictions) is up to date.
//
// Every method is safe for concurrent use until close; the tier calls
// none after it.
type engine interface {
	get(h uint64) (entry, bool)
	set(h uint64, e entry, cost int64, ttl time.Duration) bool
	del(h uint64)
	wait()
	close()
	stats() engineStats
}

// engineStats are an engine's own counters.
type engineStats struct {
	used       int64  // cost of the entries held, as charged by set
	evictions  uint64 // entries evicted to make room
	rejections uint64 // entries the admission policy refused
}

// ristrettoEngine is the L1 on ristretto: TinyLFU admission, sampled LFU
// eviction, Sets applied by a background goroutine.
//
// Its hash tables are charged as they grow (Engine.TableCost): the
// engine keeps ristretto's MaxCost at the bytes usable for entries less
// TableCost of the most items it has held. Ristretto asks for an item's
// cost on its goroutine just before admitting it (Config.Cost, with
// sets of cost 0): there the engine counts the items held and moves
// MaxCost before the item can take the room. To count them exactly,
// every cost is the entry's bytes shifted left by costCountBits with 1
// in the low bits: the cost ristretto holds is the bytes held, shifted,
// plus the number of items held.
type ristrettoEngine struct {
	c      *ristretto.Cache[uint64, entry]
	usable int64 // bytes for the entries and the tables

	evictions  atomic.Uint64
	rejections atomic.Uint64
	sets       atomic.Int64 // sets ristretto took
	exits      atomic.Int64 // values that left it: sets − exits is about the items held
	tables     atomic.Int64 // TableCost charged
	held       atomic.Int64 // most items held, counted before an admission
	grid       tableGrid    // TableCost around held; ristretto's goroutine only
}

// costCountBits is how far ristrettoEngine shifts a cost: an item count
// is exact in the low bits up to 2²⁰ items, and a shifted budget fits an
// int64 up to maxRistrettoBytes.
const (
	costCountBits     = 20
	costCountMask     = 1<<costCountBits - 1
	maxRistrettoBytes = 1 << 42
)

func newRistretto(maxCost, counters int64) (*ristrettoEngine, error) {
	r := &ristrettoEngine{usable: maxCost}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, entry]{
		NumCounters:        counters,
		MaxCost:            maxCost<<costCountBits | costCountMask,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Cost:               r.admit,
		OnEvict:            func(*ristretto.Item[entry]) { r.evictions.Add(1) },
		OnReject:           func(*ristretto.Item[entry]) { r.rejections.Add(1) },
		OnExit: func(e entry) {
			if e != nil {
				r.exits.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	r.c = c
	r.grid = ristrettoTableGrid(0)
	return r, nil
}

func (r *ristrettoEngine) get(h uint64) (entry, bool) { return r.c.Get(h) }

// set hands ristretto cost 0: it asks admit for the cost.
func (r *ristrettoEngine) set(h uint64, e entry, _ int64, ttl time.Duration) bool {
	if !r.c.SetWithTTL(h, e, 0, ttl) {
		return false
	}
	r.sets.Add(1)
	return true
}

// admit returns the cost of e, Engine.EntryCost, shifted and counted. It
// runs on ristretto's goroutine before e is admitted or replaces its
// key's value: when one more item than the most held would be held, it
// charges the tables for that many, TableCost, before e takes the room.
func (r *ristrettoEngine) admit(e entry) int64 {
	n := r.costHeld() & costCountMask
	// Past 2²⁰ items the low bits wrapped: sets − exits, ahead by the
	// sets not applied yet, tells by how many times.
	if approx := r.sets.Load() - r.exits.Load(); approx > n {
		n += (approx - n + 1<<(costCountBits-1)) >> costCountBits << costCountBits
	}
	if n++; n > r.held.Load() {
		r.held.Store(n)
		if n >= r.grid.hi {
			r.grid = ristrettoTableGrid(n)
		}
		r.charge(r.grid.cost(n))
	}
	return allocSize(len(e))<<costCountBits | 1
}

// costHeld returns the cost ristretto holds, MaxCost − RemainingCost,
// read again if admit moved MaxCost in between.
func (r *ristrettoEngine) costHeld() int64 {
	for {
		m := r.c.MaxCost()
		rem := r.c.RemainingCost()
		if r.c.MaxCost() == m {
			return m - rem
		}
	}
}

// charge charges t bytes of tables, leaving the rest for entries, but
// at least a 16th: on a budget so small that the tables of the entries
// it holds would take more (a few KiB for entries, holding some tens of
// them), the L1 keeps turning its entries over, and the heap passes
// MaxBytes by what the tables take beyond 15/16.
func (r *ristrettoEngine) charge(t int64) {
	t = min(t, r.usable-r.usable/16)
	r.tables.Store(t)
	r.c.UpdateMaxCost((r.usable-t)<<costCountBits | costCountMask) // the low bits are for the count
}

func (r *ristrettoEngine) del(h uint64) { r.c.Del(h) }

func (r *ristrettoEngine) wait() { r.c.Wait() }

func (r *ristrettoEngine) close() { r.c.Close() }

func (r *ristrettoEngine) stats() engineStats {
	return engineStats{
		used:       r.costHeld()>>costCountBits + r.tables.Load(),
		evictions:  r.evictions.Load(),
		rejections: r.rejections.Load(),
	}
}

// otterEngine is the L1 on otter v2: W-TinyLFU (an LRU window in front of
// a segmented LRU, admission by a frequency sketch, window size tuned by
// hill climbing). Sets are applied to its hash table at once; its policy
// is kept up to date from buffers, by whichever caller finds them due
// (maintenance runs on the caller: the engine starts no goroutine).
type otterEngine struct {
	c         *otter.Cache[uint64, entry]
	evictions atomic.Uint64
}

func newOtter(maxCost int64) (*otterEngine, error) {
	o := &otterEngine{}
	c, err := otter.New(&otter.Options[uint64, entry]{
		MaximumWeight: uint64(maxCost),
		Weigher: func(_ uint64, e entry) uint32 {
			return uint32(min(allocSize(len(e))+otterItemCost, math.MaxUint32))
		},
		OnDeletion: func(e otter.DeletionEvent[uint64, entry]) {
			if e.Cause == otter.CauseOverflow {
				o.evictions.Add(1)
			}
		},
		Executor: func(fn func()) { fn() },
	})
	if err != nil {
		return nil, err
	}
	o.c = c
	return o, nil
}

func (o *otterEngine) get(h uint64) (entry, bool) { return o.c.GetIfPresent(h) }

// set ignores ttl: an expired entry stays until it is evicted or its key
// is read again (the read replaces it).
func (o *otterEngine) set(h uint64, e entry, _ int64, _ time.Duration) bool {
	o.c.Set(h, e)
	return true
}

func (o *otterEngine) del(h uint64) { o.c.Invalidate(h) }
func (o *otterEngine) wait()        { o.c.CleanUp() }
func (o *otterEngine) close()       { o.c.InvalidateAll() }

func (o *otterEngine) stats() engineStats {
	return engineStats{used: int64(o.c.WeightedSize()), evictions: o.evictions.Load()}
}
