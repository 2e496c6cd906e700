package tier

import (
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

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
type ristrettoEngine struct {
	c          *ristretto.Cache[uint64, entry]
	evictions  atomic.Uint64
	rejections atomic.Uint64
}

func newRistretto(maxCost int64) (*ristrettoEngine, error) {
	r := &ristrettoEngine{}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, entry]{
		NumCounters:        max(maxCost/64, 1024),
		MaxCost:            maxCost,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[entry]) { r.evictions.Add(1) },
		OnReject:           func(*ristretto.Item[entry]) { r.rejections.Add(1) },
	})
	if err != nil {
		return nil, err
	}
	r.c = c
	return r, nil
}

func (r *ristrettoEngine) get(h uint64) (entry, bool) { return r.c.Get(h) }

func (r *ristrettoEngine) set(h uint64, e entry, cost int64, ttl time.Duration) bool {
	return r.c.SetWithTTL(h, e, cost, ttl)
}

func (r *ristrettoEngine) del(h uint64) { r.c.Del(h) }
func (r *ristrettoEngine) wait()        { r.c.Wait() }
func (r *ristrettoEngine) close()       { r.c.Close() }

func (r *ristrettoEngine) stats() engineStats {
	return engineStats{
		used:       r.c.MaxCost() - r.c.RemainingCost(),
		evictions:  r.evictions.Load(),
		rejections: r.rejections.Load(),
	}
}
