package pebble

import (
	"hash/maphash"
	mathbits "math/bits"
	"sync"
)

// stripes is the number of key locks; a power of two.
const stripes = 512

// wideKeys is the number of keys above which a write takes the store-wide
// lock instead of its stripes: a batch of more keys shares a stripe with
// any other such batch almost surely (with 32 keys, two batches share two
// stripes on average), so the stripes would buy it no concurrency and cost
// a lock per key.
const wideKeys = 32

// keyLocks make a read and the batch that follows it atomic against every
// other write of the same keys: Pebble commits batches atomically but has
// no transactions. A write of few keys holds the store-wide lock for
// reading and the stripes of its keys (one of 512 mutexes each, chosen by
// a hash of the key); a write of many keys holds the store-wide lock.
type keyLocks struct {
	wide  sync.RWMutex
	seed  maphash.Seed
	locks [stripes]paddedMutex
}

// paddedMutex keeps each stripe on its own cache line.
type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

// held is what lock took, for unlock: the store-wide lock, or the stripe
// of a one-key write, or a set of stripes, one bit each.
type held struct {
	wide   bool
	single int // the stripe of a one-key write; -1 for a set
	set    [stripes / 64]uint64
}

func newKeyLocks() *keyLocks { return &keyLocks{seed: maphash.MakeSeed()} }

// stripe returns the lock index of key.
func (l *keyLocks) stripe(key []byte) int {
	return int(maphash.Bytes(l.seed, key) & (stripes - 1))
}

// lock locks keys: the store-wide lock for more than wideKeys keys, else
// the store-wide lock for reading and the stripes of keys in ascending
// order (no deadlock between two multi-key writers).
func (l *keyLocks) lock(keys [][]byte) held {
	if len(keys) > wideKeys {
		l.wide.Lock()
		return held{wide: true}
	}
	l.wide.RLock()
	if len(keys) == 1 {
		i := l.stripe(keys[0])
		l.locks[i].Lock()
		return held{single: i}
	}
	h := held{single: -1}
	for _, k := range keys {
		i := l.stripe(k)
		h.set[i/64] |= 1 << (i % 64)
	}
	h.each(func(i int) { l.locks[i].Lock() })
	return h
}

// unlock unlocks what lock locked.
func (l *keyLocks) unlock(h *held) {
	switch {
	case h.wide:
		l.wide.Unlock()
		return
	case h.single >= 0:
		l.locks[h.single].Unlock()
	default:
		h.each(func(i int) { l.locks[i].Unlock() })
	}
	l.wide.RUnlock()
}

// each calls fn with every stripe of h's set, in ascending order.
func (h *held) each(fn func(i int)) {
	for w, bits := range h.set {
		for bits != 0 {
			b := mathbits.TrailingZeros64(bits)
			fn(w*64 + b)
			bits &= bits - 1
		}
	}
}
