package pebble

import (
	"hash/maphash"
	"sync"
)

// stripes is the number of key locks; a power of two.
const stripes = 512

// keyLocks are the striped key locks that make a read and the batch that
// follows it atomic against every other write of the same keys: Pebble
// commits batches atomically but has no transactions.
type keyLocks struct {
	seed  maphash.Seed
	locks [stripes]paddedMutex
}

// paddedMutex keeps each stripe on its own cache line.
type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

// stripeSet is a set of stripes, one bit each.
type stripeSet [stripes / 64]uint64

func newKeyLocks() *keyLocks { return &keyLocks{seed: maphash.MakeSeed()} }

// stripe returns the lock index of key.
func (l *keyLocks) stripe(key []byte) int {
	return int(maphash.Bytes(l.seed, key) & (stripes - 1))
}

// lock locks the stripes of keys in ascending order (no deadlock between
// two multi-key writers) and returns the set to pass to unlock.
//
// With more keys than half the stripes, it locks every stripe rather than
// hashing each key: most stripes would be taken anyway.
func (l *keyLocks) lock(keys [][]byte) stripeSet {
	var set stripeSet
	if len(keys) == 1 {
		i := l.stripe(keys[0])
		set[i/64] = 1 << (i % 64)
		l.locks[i].Lock()
		return set
	}
	if len(keys) > stripes/2 {
		for w := range set {
			set[w] = ^uint64(0)
		}
	} else {
		for _, k := range keys {
			i := l.stripe(k)
			set[i/64] |= 1 << (i % 64)
		}
	}
	for w, bits := range set {
		for b := 0; bits != 0; b, bits = b+1, bits>>1 {
			if bits&1 != 0 {
				l.locks[w*64+b].Lock()
			}
		}
	}
	return set
}

// unlock unlocks the stripes that lock locked.
func (l *keyLocks) unlock(set *stripeSet) {
	for w, bits := range set {
		for b := 0; bits != 0; b, bits = b+1, bits>>1 {
			if bits&1 != 0 {
				l.locks[w*64+b].Unlock()
			}
		}
	}
}
