package tier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Get returns the value of key from L1, or reads it from the L2 (one read
// for all concurrent misses of the key) and caches it for the time the L2
// says it has left, capped by MaxLocalTTL.
func (t *Tier) Get(ctx context.Context, key []byte) ([]byte, error) {
	h := t.hash(key)
	sh, ok := t.enter(h)
	if !ok {
		return nil, strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		sh.active.Add(-1)
		return nil, err
	}
	if e, ok := t.lookup(key, h); ok {
		sh.active.Add(-1)
		if e.flags().Load()&flagNegative != 0 {
			sh.negHits.Add(1)
			return nil, strata.ErrNotFound
		}
		v := clone(e.value())
		sh.hits.Add(1)
		sh.hitBytes.Add(uint64(len(v)))
		return v, nil
	}
	sh.active.Add(-1)
	t.c.l1Misses.Add(1)
	for {
		v, retry, err := t.load(ctx, key, h)
		if !retry {
			t.countRead(v, err)
			return v, err
		}
	}
}

// countRead counts the outcome of a read that went to the L2.
func (t *Tier) countRead(v []byte, err error) {
	switch {
	case err == nil:
		t.c.l2Hits.Add(1)
		t.c.l2Bytes.Add(uint64(len(v)))
	case errors.Is(err, strata.ErrNotFound):
		t.c.l2Misses.Add(1)
	default:
		t.countErr(err)
	}
}

// load reads key from the L2, sharing the read with concurrent misses of
// the same key and generation, and installs the result if no write or
// invalidation of the key overlapped the read. retry asks the caller to
// load again: the shared read failed only because its leader's context
// ended.
func (t *Tier) load(ctx context.Context, key []byte, h uint64) (v []byte, retry bool, err error) {
	i, ls := t.slot(h)
	ls.mu.Lock()
	tk := t.fillTicketLocked(i)
	var f *flight
	if tk.ok {
		if g := ls.flights[h]; g != nil && g.tk == tk && bytes.Equal(g.key, key) {
			// Same key, and no write or invalidation since g's leader took
			// its ticket: g's answer is current for us too.
			g.waiters++
			if g.done == nil {
				g.done = make(chan struct{})
			}
			done := g.done
			ls.mu.Unlock()
			t.c.joined.Add(1)
			select {
			case <-done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if g.err != nil {
				if isContextErr(g.err) && ctx.Err() == nil {
					return nil, true, nil
				}
				return nil, false, g.err
			}
			return clone(g.val), false, nil
		}
		f = &flight{key: key, tk: tk}
		if ls.flights == nil {
			ls.flights = make(map[uint64]*flight)
		}
		ls.flights[h] = f
	}
	ls.mu.Unlock()

	start := t.now()
	var ttl time.Duration
	t.c.l2Reads.Add(1)
	if tk.ok {
		v, ttl, err = t.expirer.GetWithTTL(ctx, key)
		if errors.Is(err, strata.ErrUnsupported) {
			// A view (such as strata.WithPrefix) over a store without TTLs:
			// never fill from it again.
			t.noTTL.Store(true)
			v, err = t.l2.Get(ctx, key)
			tk.ok = false
		}
	} else {
		v, err = t.l2.Get(ctx, key)
	}
	if f == nil {
		return v, false, err
	}

	ls.mu.Lock()
	if ls.flights[h] == f {
		delete(ls.flights, h)
	}
	if t.stillLocked(i, tk) {
		switch {
		case err == nil:
			t.installLocked(key, h, v, false, t.expiry(start, ttl), tk)
		case errors.Is(err, strata.ErrNotFound) && t.opts.NegativeTTL > 0:
			t.installLocked(key, h, nil, true, t.expiry(start, t.opts.NegativeTTL), tk)
		}
	} else if tk.ok {
		t.c.fillsDropped.Add(1)
	}
	f.val, f.err = v, err
	waiters, done := f.waiters, f.done
	ls.mu.Unlock()
	if done != nil {
		close(done)
	}
	if waiters > 0 && err == nil {
		// The waiters copy f.val; hand the caller its own copy.
		v = clone(v)
	}
	return v, false, err
}

// Keys lists the L2's keys (L1 holds no key the L2 lacks).
func (t *Tier) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	if t.closed.Load() {
		return func(yield func([]byte, error) bool) { yield(nil, strata.ErrClosed) }
	}
	return t.l2.Keys(ctx, prefix)
}

// GetMany serves the keys L1 holds and reads all the others with one L2
// GetMany. Misses are cached only when the L2 (or the store under its
// prefix views) is a strata.BatchExpirer, which says how long each value
// has left: they are then read with one GetManyWithTTL.
//
// The result is as consistent as one L2 GetMany with respect to this
// tier's writes (so a GetMany never sees part of a Commit or PutMany made
// through the tier, over an L2 whose GetMany does not): the L1 hits are
// checked after the L2 read, and if a write of one of them began meanwhile
// (or was in flight), all the keys are read from the L2 instead. Other
// processes' writes reach L1 key by key (see the Invalidator).
func (t *Tier) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if t.closed.Load() {
		return nil, strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	const (
		missed = iota
		hit
		negHit
	)
	out := make([][]byte, len(keys))
	hashes := make([]uint64, len(keys))
	gens := make([]uint64, len(keys))
	kinds := make([]uint8, len(keys))
	var miss []int
	for i, k := range keys {
		h := t.hash(k)
		hashes[i] = h
		// The generation before the lookup, and no write in flight: if
		// the generation is still the same after the L2 read, no write of
		// the key reached the L2 from the lookup to then.
		g := h & t.gmask
		gens[i] = t.gens[g].Load()
		if t.inflight[g].Load() != 0 {
			miss = append(miss, i)
			continue
		}
		sh, ok := t.enter(h)
		if !ok {
			return nil, strata.ErrClosed
		}
		e, ok := t.lookup(k, h)
		switch {
		case !ok:
			miss = append(miss, i)
		case e.flags().Load()&flagNegative != 0:
			kinds[i] = negHit
		default:
			out[i] = clone(e.value())
			kinds[i] = hit
		}
		sh.active.Add(-1)
	}
	if len(miss) > 0 {
		if err := t.readMany(ctx, keys, hashes, miss, out); err != nil {
			return nil, err
		}
	}
	for i, h := range hashes {
		if kinds[i] != missed && t.gens[h&t.gmask].Load() != gens[i] {
			// A write overtook an L1 hit: read everything from the L2.
			all := make([]int, len(keys))
			for j := range all {
				all[j] = j
			}
			clear(out)
			clear(kinds)
			miss = all
			if err := t.readMany(ctx, keys, hashes, all, out); err != nil {
				return nil, err
			}
			break
		}
	}
	t.c.l1Misses.Add(uint64(len(miss)))
	for i, h := range hashes {
		sh := &t.shards[h>>shardShift]
		switch kinds[i] {
		case hit:
			sh.hits.Add(1)
			sh.hitBytes.Add(uint64(len(out[i])))
		case negHit:
			sh.negHits.Add(1)
		default:
			t.countRead(out[i], notFoundIfNil(out[i]))
		}
	}
	return out, nil
}

// readMany reads the keys of idx from the L2 with one call into out,
// filling L1 when the L2 says how long each value has left. The caller
// counts the reads' outcomes.
func (t *Tier) readMany(ctx context.Context, keys [][]byte, hashes []uint64, idx []int, out [][]byte) error {
	mk := make([][]byte, len(idx))
	mh := make([]uint64, len(idx))
	for j, i := range idx {
		mk[j], mh[j] = keys[i], hashes[i]
	}
	t.c.l2Reads.Add(uint64(len(idx)))
	if !t.batchTTL || t.noTTL.Load() {
		vs, err := strata.GetMany(ctx, t.l2, mk)
		if err != nil {
			t.countErr(err)
			return err
		}
		for j, i := range idx {
			out[i] = vs[j]
		}
		return nil
	}
	es, err := t.fillMany(ctx, mk, mh)
	if err != nil {
		return err
	}
	for j, i := range idx {
		out[i] = es[j].Value
	}
	return nil
}

// fillMany reads keys (whose hashes are hashes) and their TTLs from the L2
// with one GetManyWithTTL and installs each result whose ticket still
// holds, as a read-through fill does. The caller counts the reads'
// outcomes.
func (t *Tier) fillMany(ctx context.Context, keys [][]byte, hashes []uint64) ([]strata.Entry, error) {
	tks := make([]ticket, len(keys))
	for j, h := range hashes {
		i, ls := t.slot(h)
		ls.mu.Lock()
		tks[j] = t.fillTicketLocked(i)
		ls.mu.Unlock()
	}
	start := t.now()
	es, err := strata.GetManyWithTTL(ctx, t.l2, keys)
	if err == nil && len(es) != len(keys) {
		err = storekit.NewOpError("get_many_with_ttl", "tier", nil, fmt.Errorf("%w: the L2 returned %d entries for %d keys", strata.ErrCorrupt, len(es), len(keys)))
	}
	if err != nil {
		t.countErr(err)
		return nil, err
	}
	for j, h := range hashes {
		i, ls := t.slot(h)
		ls.mu.Lock()
		if t.stillLocked(i, tks[j]) {
			if es[j].Value != nil {
				t.installLocked(keys[j], h, es[j].Value, false, t.expiry(start, es[j].TTL), tks[j])
			} else {
				t.installLocked(keys[j], h, nil, true, t.negExpiry(start), tks[j])
			}
		} else if tks[j].ok {
			t.c.fillsDropped.Add(1)
		}
		ls.mu.Unlock()
	}
	return es, nil
}

func notFoundIfNil(v []byte) error {
	if v == nil {
		return strata.ErrNotFound
	}
	return nil
}

// TTL returns the L2's answer: L1 knows only a lower bound.
func (t *Tier) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	if t.closed.Load() {
		return 0, strata.ErrClosed
	}
	return strata.TTL(ctx, t.l2, key)
}

// GetWithTTL reads key and its remaining TTL from the L2 (L1 knows only a
// lower bound of the TTL) and caches the value as a read-through fill does.
func (t *Tier) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	if t.closed.Load() {
		return nil, 0, strata.ErrClosed
	}
	h := t.hash(key)
	i, ls := t.slot(h)
	ls.mu.Lock()
	tk := t.fillTicketLocked(i)
	ls.mu.Unlock()
	start := t.now()
	t.c.l1Misses.Add(1)
	t.c.l2Reads.Add(1)
	v, ttl, err := strata.GetWithTTL(ctx, t.l2, key)
	t.countRead(v, err)
	if tk.ok && (err == nil || errors.Is(err, strata.ErrNotFound)) {
		ls.mu.Lock()
		switch {
		case !t.stillLocked(i, tk):
			t.c.fillsDropped.Add(1)
		case err == nil:
			t.installLocked(key, h, v, false, t.expiry(start, ttl), tk)
		default:
			t.installLocked(key, h, nil, true, t.negExpiry(start), tk)
		}
		ls.mu.Unlock()
	}
	return v, ttl, err
}

// GetManyWithTTL reads every key and its remaining TTL from the L2 with
// one GetManyWithTTL (L1 knows only a lower bound of each TTL) and caches
// the results as GetMany caches its misses. Over an L2 without TTLs it
// fails with strata.ErrUnsupported.
func (t *Tier) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	if t.closed.Load() {
		return nil, strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hashes := make([]uint64, len(keys))
	for j, k := range keys {
		hashes[j] = t.hash(k)
	}
	t.c.l1Misses.Add(uint64(len(keys)))
	t.c.l2Reads.Add(uint64(len(keys)))
	es, err := t.fillMany(ctx, keys, hashes)
	if err != nil {
		return nil, err
	}
	for j := range es {
		es[j].Key = keys[j]
		t.countRead(es[j].Value, notFoundIfNil(es[j].Value))
	}
	return es, nil
}

// Snapshot returns the L2's snapshot (or a scan of it).
func (t *Tier) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if t.closed.Load() {
		return nil, strata.ErrClosed
	}
	return strata.SnapshotOf(ctx, t.l2)
}

// Ping checks the L2.
func (t *Tier) Ping(ctx context.Context) error {
	if t.closed.Load() {
		return strata.ErrClosed
	}
	return strata.Ping(ctx, t.l2)
}
