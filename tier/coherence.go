package tier

import (
	"bytes"
	"math"
	"time"

	"github.com/strata-kv/strata"
)

// The per-key coherence protocol (docs/tier.md): which L1 entries are
// valid, and when a fill, a write or an invalidation may change them.

// lookup returns the valid L1 entry for key, if any. The caller holds the
// shard mark.
func (t *Tier) lookup(key []byte, h uint64) (entry, bool) {
	e, ok := t.l1.get(h)
	if !ok || len(e) < entryHeader {
		return nil, false
	}
	f := e.flags().Load()
	if f&flagDead != 0 || e.state() != t.state.Load() || !bytes.Equal(e.key(), key) {
		return nil, false
	}
	for f&flagConfirmed == 0 {
		// See entry: valid only if no write of the slot began since the
		// entry was made; confirming it makes later writers responsible
		// for killing it. A writer's mark between the two steps fails the
		// CompareAndSwap; so does another reader's confirmation, which is
		// fine.
		if e.gen() != t.gens[h&t.gmask].Load() {
			return nil, false
		}
		if e.flags().CompareAndSwap(f, f|flagConfirmed) {
			break
		}
		if f = e.flags().Load(); f&flagDead != 0 {
			return nil, false
		}
	}
	if x := e.exp(); x != 0 && t.now() >= x {
		return nil, false
	}
	return e, true
}

// kill marks the entry the engine holds under h dead (see entry). Writers
// call it after bumping the slot's gen and before writing the L2.
func (t *Tier) kill(h uint64) {
	if sh, ok := t.enter(h); ok {
		if e, ok := t.l1.get(h); ok && len(e) >= entryHeader {
			e.flags().Or(flagDead)
		}
		sh.active.Add(-1)
	}
}

// ticket is what a fill or a write records before it goes to the L2, to
// check afterwards that nothing overtook it.
type ticket struct {
	gen, state uint64
	echo       uint64 // the stripe's possible echoes (fills only)
	ok         bool   // the result may be installed
}

// slot returns the coherence slot of h and its lock.
func (t *Tier) slot(h uint64) (uint64, *lockStripe) {
	i := h & t.gmask
	return i, &t.locks[i&t.lmask]
}

// fillTicketLocked returns the ticket of a read-through fill: installable
// only when no write of the key's slot is in flight and the tier is not
// bypassing. The caller holds the slot's lock.
func (t *Tier) fillTicketLocked(i uint64) ticket {
	tk := ticket{gen: t.gens[i].Load(), state: t.state.Load(), echo: t.locks[i&t.lmask].echoes}
	tk.ok = t.inflight[i].Load() == 0 && tk.state&bypassBit == 0 && t.expirer != nil && !t.noTTL.Load()
	return tk
}

// stillLocked reports whether the fill ticket tk may install now: no write
// of the slot began or ended since it was taken, the epoch is the same, and
// no possible echo arrived for the slot's stripe (the fill may have read
// the L2 before the write the echo may stand for). The caller holds the
// slot's lock.
func (t *Tier) stillLocked(i uint64, tk ticket) bool {
	return tk.ok && t.gens[i].Load() == tk.gen && t.state.Load() == tk.state && t.locks[i&t.lmask].echoes == tk.echo
}

// expiry returns the absolute L1 expiry of an entry whose L2 copy had ttl
// left (or was written with ttl) no earlier than start: start+ttl capped by
// MaxLocalTTL; 0 for no expiry; -1 when the entry must not be cached.
func (t *Tier) expiry(start int64, ttl time.Duration) int64 {
	switch {
	case ttl == strata.NoExpiry:
		ttl = 0
	case ttl <= 0:
		return -1
	}
	if m := t.opts.MaxLocalTTL; m > 0 && (ttl == 0 || ttl > m) {
		ttl = m
	}
	if ttl == 0 {
		return 0
	}
	if int64(ttl) > math.MaxInt64-start {
		return math.MaxInt64
	}
	return start + int64(ttl)
}

// installLocked puts a copy of key and value in L1 under tk. exp < 0 means
// do not cache. The caller holds the slot's lock, which orders this Set
// before any later write's Set of the key.
func (t *Tier) installLocked(key []byte, h uint64, value []byte, neg bool, exp int64, tk ticket) {
	if exp < 0 {
		return
	}
	var rttl time.Duration
	if exp != 0 {
		left := exp - t.now()
		if left <= 0 {
			return
		}
		rttl = time.Duration(left)
	}
	sh, ok := t.enter(h)
	if !ok {
		return
	}
	defer sh.active.Add(-1)
	e := newEntry(key, value, neg, exp, tk)
	// ristretto's own TTL (wall clock) only frees memory early; validity is
	// decided by e.exp against the tier's clock.
	if t.l1.set(h, e, t.opts.Engine.EntryCost(len(key), len(value)), rttl) {
		t.c.fills.Add(1)
	} else {
		t.c.setsDropped.Add(1)
	}
}

// drop removes key's L1 entry to free its memory. Correctness never
// depends on it: a stale entry is already invalid by its generation.
func (t *Tier) drop(h uint64) {
	if sh, ok := t.enter(h); ok {
		t.l1.del(h)
		sh.active.Add(-1)
	}
}

// beginWrite marks a write to the key of h as in flight: it bumps the
// slot's generation, counts the write in inflight and kills the key's
// confirmed entry, all before the write reaches the L2.
func (t *Tier) beginWrite(h uint64) ticket {
	i, ls := t.slot(h)
	ls.mu.Lock()
	// inflight first: a GetMany that reads the new gen then sees the write
	// in flight.
	t.inflight[i].Add(1)
	tk := ticket{gen: t.gens[i].Add(1), state: t.state.Load(), ok: true}
	t.ownWrite(h)
	ls.mu.Unlock()
	t.kill(h)
	return tk
}

// endWrite ends a write begun with tk. When install is set, the write
// succeeded, no other write of the slot overlapped it and no invalidation
// arrived meanwhile, the written value goes to L1 (a nil value with neg
// caches an absence). It reports whether it installed.
func (t *Tier) endWrite(key []byte, h uint64, tk ticket, install bool, value []byte, neg bool, exp int64) bool {
	i, ls := t.slot(h)
	ls.mu.Lock()
	last := t.inflight[i].Add(^uint32(0)) == 0
	// A possible echo does not change the generation (see invalidate): it
	// does not keep this write from installing; its verification waits
	// for the end of the slot's writes.
	alone := last && t.gens[i].Load() == tk.gen && t.state.Load() == tk.state && tk.state&bypassBit == 0
	// A fill that took its ticket while this write was in flight was not
	// installable; one taken from now on sees the new generation.
	tk.gen = t.gens[i].Add(1)
	t.ownWrite(h)
	done := false
	if install && alone && exp >= 0 {
		t.installLocked(key, h, value, neg, exp, tk)
		done = true
	}
	ls.mu.Unlock()
	if last && t.ver != nil {
		t.ver.writesEnded()
	}
	return done
}

// invalidate handles a report that key changed. If no write of this tier
// to the key's slot is in flight or recent (within EchoWindow), another
// client made the change: the key is forgotten at once. Otherwise the
// report may be the echo of this tier's own write (Redis reports those
// too, and merges a foreign write of the same key in the same event-loop
// iteration into the same report): the entry stays, the key goes to the
// verifier, which compares it with the L2 within VerifyTimeout, and fills
// in flight in the stripe are refused (they may have read the L2 before
// the change).
func (t *Tier) invalidate(key []byte) {
	h := t.hash(key)
	i, ls := t.slot(h)
	ls.mu.Lock()
	if t.ver != nil && (t.inflight[i].Load() != 0 || t.recentOwnWrite(h)) {
		ls.echoes++
		ls.mu.Unlock()
		t.c.possibleEchoes.Add(1)
		t.ver.add(key, h)
		return
	}
	ls.mu.Unlock()
	t.c.foreign.Add(1)
	t.forget(h)
}

// newEpoch drops the whole L1 at once by moving to a new epoch, and sets
// the bypass bit to bypass (keep: leave it as it is). It reports whether
// the bypass bit changed.
func (t *Tier) newEpoch(bypass, keep bool) bool {
	t.bypassMu.Lock()
	defer t.bypassMu.Unlock()
	var old uint64
	for {
		old = t.state.Load()
		next := ((old >> 1) + 1) << 1
		if (keep && old&bypassBit != 0) || (!keep && bypass) {
			next |= bypassBit
		}
		if t.state.CompareAndSwap(old, next) {
			break
		}
	}
	t.c.flushes.Add(1)
	if keep {
		return false
	}
	switch {
	case bypass && t.bypassSince.IsZero():
		t.bypassSince = time.Now()
		return true
	case !bypass && !t.bypassSince.IsZero():
		t.bypassTotal += time.Since(t.bypassSince)
		t.bypassSince = time.Time{}
		return true
	}
	return false
}
