package pebble

import (
	"hash/maphash"
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

// held is what lock took, for unlock: the stripes, one bit each, or the
// store-wide lock.
type held struct {
	stripes [stripes / 64]uint64
	wide    bool
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
	var h held
	if len(keys) > wideKeys {
		l.wide.Lock()
		h.wide = true
		return h
	}
	l.wide.RLock()
	if len(keys) == 1 {
		i := l.stripe(keys[0])
		h.stripes[i/64] = 1 << (i % 64)
		l.locks[i].Lock()
		return h
	}
	for _, k := range keys {
		i := l.stripe(k)
		h.stripes[i/64] |= 1 << (i % 64)
	}
	for w, bits := range h.stripes {
		for b := 0; bits != 0; b, bits = b+1, bits>>1 {
			if bits&1 != 0 {
				l.locks[w*64+b].Lock()
			}
		}
	}
	return h
}

// unlock unlocks what lock locked.
func (l *keyLocks) unlock(h *held) {
	if h.wide {
		l.wide.Unlock()
		return
	}
	for w, bits := range h.stripes {
		for b := 0; bits != 0; b, bits = b+1, bits>>1 {
			if bits&1 != 0 {
				l.locks[w*64+b].Unlock()
			}
		}
	}
	l.wide.RUnlock()
}
