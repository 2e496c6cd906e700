package tier

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// writeExpiry returns the L1 expiry of a value written at start with ttl,
// or -1 when ttl is 0: the L2's default TTL applies, which the tier does
// not know, so the value is not cached on write (the next read fills it).
func (t *Tier) writeExpiry(start int64, ttl time.Duration) int64 {
	if ttl == 0 {
		return -1
	}
	return t.expiry(start, ttl)
}

// simpleInvalid reports a key or TTL the L2 will reject before any I/O;
// such writes go straight to the L2 for its error, without touching L1.
func simpleInvalid(key []byte, ttl time.Duration) bool {
	return storekit.CheckKey(key) != nil || (ttl < 0 && ttl != strata.NoExpiry)
}

// Put writes value to the L2 and, once the L2 has it, to L1 for ttl (capped
// by MaxLocalTTL). A write with ttl 0 (the L2's default TTL, unknown to the
// tier) is not cached: the next read fills it. A failed write leaves no L1
// entry for key.
func (t *Tier) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if t.closed.Load() {
		return strata.ErrClosed
	}
	if simpleInvalid(key, ttl) {
		return t.l2.Put(ctx, key, value, ttl)
	}
	h := t.hash(key)
	start := t.now()
	tk := t.beginWrite(h)
	err := t.l2.Put(ctx, key, value, ttl)
	if !t.endWrite(key, h, tk, err == nil, value, false, t.writeExpiry(start, ttl)) {
		t.drop(h)
	}
	if err != nil {
		t.countErr(err)
		return err
	}
	t.c.puts.Add(1)
	t.c.bytesWritten.Add(uint64(len(key) + len(value)))
	return nil
}

// negExpiry returns the expiry of a cached absence starting at start, or -1
// without negative caching.
func (t *Tier) negExpiry(start int64) int64 {
	if t.opts.NegativeTTL <= 0 {
		return -1
	}
	return t.expiry(start, t.opts.NegativeTTL)
}

// Delete removes key from the L2 and then from L1.
func (t *Tier) Delete(ctx context.Context, key []byte) error {
	if t.closed.Load() {
		return strata.ErrClosed
	}
	if simpleInvalid(key, 0) {
		return t.l2.Delete(ctx, key)
	}
	h := t.hash(key)
	start := t.now()
	tk := t.beginWrite(h)
	err := t.l2.Delete(ctx, key)
	if !t.endWrite(key, h, tk, err == nil, nil, true, t.negExpiry(start)) {
		t.drop(h)
	}
	if err != nil {
		t.countErr(err)
		return err
	}
	t.c.deletes.Add(1)
	return nil
}

// writeMany runs a batch write as one write per key: every key is marked in
// flight before the L2 call and ended after it.
func (t *Tier) writeMany(keys [][]byte, l2 func() error, install func(j int) (value []byte, neg bool, exp int64)) error {
	hs := make([]uint64, len(keys))
	tks := make([]ticket, len(keys))
	for j, k := range keys {
		hs[j] = t.hash(k)
		tks[j] = t.beginWrite(hs[j])
	}
	err := l2()
	// In order, so that of duplicate keys the last one (the L2's value) is
	// the only one that can still install.
	for j, k := range keys {
		var value []byte
		neg, exp := false, int64(-1)
		if err == nil {
			value, neg, exp = install(j)
		}
		if !t.endWrite(k, hs[j], tks[j], err == nil, value, neg, exp) {
			t.drop(hs[j])
		}
	}
	return err
}

// PutMany writes every entry to the L2 (in one batch when the L2 is a
// Batcher) and then to L1.
func (t *Tier) PutMany(ctx context.Context, entries []strata.Entry) error {
	if t.closed.Load() {
		return strata.ErrClosed
	}
	keys := make([][]byte, len(entries))
	n := 0
	for j, e := range entries {
		keys[j] = e.Key
		n += len(e.Key) + len(e.Value)
	}
	start := t.now()
	err := t.writeMany(keys, func() error { return strata.PutMany(ctx, t.l2, entries) },
		func(j int) ([]byte, bool, int64) {
			return entries[j].Value, false, t.writeExpiry(start, entries[j].TTL)
		})
	if err != nil {
		t.countErr(err)
		return err
	}
	t.c.puts.Add(uint64(len(entries)))
	t.c.bytesWritten.Add(uint64(n))
	return nil
}

// DeleteMany removes keys from the L2 and then from L1.
func (t *Tier) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	if t.closed.Load() {
		return 0, strata.ErrClosed
	}
	start := t.now()
	var n int
	err := t.writeMany(keys, func() (err error) {
		n, err = strata.DeleteMany(ctx, t.l2, keys)
		return err
	}, func(int) ([]byte, bool, int64) { return nil, true, t.negExpiry(start) })
	if err != nil {
		t.countErr(err)
		return n, err
	}
	t.c.deletes.Add(uint64(n))
	return n, nil
}

// atomicWrite runs one atomic L2 operation on key as a write.
func (t *Tier) atomicWrite(key []byte, op func() (installValue []byte, neg bool, ttl time.Duration, install bool, err error)) error {
	h := t.hash(key)
	start := t.now()
	tk := t.beginWrite(h)
	v, neg, ttl, install, err := op()
	exp := int64(-1)
	if install {
		if neg {
			exp = t.negExpiry(start)
		} else {
			exp = t.writeExpiry(start, ttl)
		}
	}
	if !t.endWrite(key, h, tk, err == nil && install, v, neg, exp) {
		t.drop(h)
	}
	if err != nil {
		t.countErr(err)
	}
	return err
}

// PutIfAbsent runs the L2's PutIfAbsent (or fails with ErrUnsupported) and
// caches the value when it was stored.
func (t *Tier) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	if t.closed.Load() {
		return false, strata.ErrClosed
	}
	if simpleInvalid(key, ttl) {
		return strata.PutIfAbsent(ctx, t.l2, key, value, ttl)
	}
	var stored bool
	err := t.atomicWrite(key, func() ([]byte, bool, time.Duration, bool, error) {
		var err error
		stored, err = strata.PutIfAbsent(ctx, t.l2, key, value, ttl)
		return value, false, ttl, stored, err
	})
	if err == nil && stored {
		t.c.puts.Add(1)
		t.c.bytesWritten.Add(uint64(len(key) + len(value)))
	}
	return stored, err
}

// GetAndDelete runs the L2's GetAndDelete (or fails with ErrUnsupported)
// and forgets key in L1.
func (t *Tier) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if t.closed.Load() {
		return nil, strata.ErrClosed
	}
	if simpleInvalid(key, 0) {
		return strata.GetAndDelete(ctx, t.l2, key)
	}
	var v []byte
	err := t.atomicWrite(key, func() ([]byte, bool, time.Duration, bool, error) {
		var err error
		v, err = strata.GetAndDelete(ctx, t.l2, key)
		gone := err == nil || errors.Is(err, strata.ErrNotFound)
		if errors.Is(err, strata.ErrNotFound) {
			// Not a failure of the write: the key is absent either way.
			return nil, true, 0, true, nil
		}
		return nil, true, 0, gone, err
	})
	t.c.l1Misses.Add(1)
	switch {
	case err != nil:
		return nil, err
	case v == nil:
		t.c.l2Misses.Add(1)
		return nil, strata.ErrNotFound
	}
	t.c.l2Hits.Add(1)
	t.c.l2Bytes.Add(uint64(len(v)))
	t.c.deletes.Add(1)
	return v, nil
}

// CompareAndSwap runs the L2's CompareAndSwap (or fails with
// ErrUnsupported) and caches the new value when it was stored.
func (t *Tier) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	if t.closed.Load() {
		return false, strata.ErrClosed
	}
	if simpleInvalid(key, ttl) {
		return strata.CompareAndSwap(ctx, t.l2, key, old, new, ttl)
	}
	var swapped bool
	err := t.atomicWrite(key, func() ([]byte, bool, time.Duration, bool, error) {
		var err error
		swapped, err = strata.CompareAndSwap(ctx, t.l2, key, old, new, ttl)
		return new, false, ttl, swapped, err
	})
	if err == nil && swapped {
		t.c.puts.Add(1)
		t.c.bytesWritten.Add(uint64(len(key) + len(new)))
	}
	return swapped, err
}

// Commit applies b through the L2's strata.Committer, or fails with
// strata.ErrUnsupported when the L2 has none. Every key the commit writes,
// fence keys included, is written as by Put: marked in flight before the
// L2 call, and afterwards, only if the commit succeeded and no other write
// or invalidation of the key overlapped it, the last write of each key is
// cached (a value under the TTL rules of Put; a delete as an absence with
// NegativeTTL). A fence key is not cached. A failed commit (a conflict,
// strata.ErrIndeterminate, anything) caches nothing.
//
// A batch with an ID and a fence succeeds without applying anything when
// the fence shows it was applied before (a retry after ErrIndeterminate);
// the tier cannot tell that from a batch applied now, so it caches nothing
// for such a batch: the next read of each key fills from the L2.
func (t *Tier) Commit(ctx context.Context, b *strata.WriteBatch) error {
	if t.closed.Load() {
		return strata.ErrClosed
	}
	if _, ok := t.l2.(strata.Committer); !ok {
		return strata.Commit(ctx, t.l2, b)
	}
	// The keys the commit writes, each once, with its last write (-1: a
	// fence, raised by the commit).
	type written struct {
		key  []byte
		h    uint64
		last int
	}
	var keys []written
	index := map[string]int{}
	add := func(key []byte, w int) {
		if j, ok := index[string(key)]; ok {
			keys[j].last = w
			return
		}
		index[string(key)] = len(keys)
		keys = append(keys, written{key: key, h: t.hash(key), last: w})
	}
	fenced := false
	for _, c := range b.Conditions {
		if c.Kind == strata.CondFence {
			add(c.Key, -1)
			fenced = true
		}
	}
	// A batch with an ID and a fence succeeds without writing when its
	// fence shows it applied already (a retry). The tier cannot tell that
	// success from a fresh one, but it knows which IDs it has sent: a batch
	// whose ID it sends for the first time is applied now.
	ambiguous := fenced && len(b.ID) > 0 && t.ids.seen(b.ID)
	for w := range b.Writes {
		add(b.Writes[w].Key, w)
	}
	tks := make([]ticket, len(keys))
	for j := range keys {
		tks[j] = t.beginWrite(keys[j].h)
	}
	start := t.now()
	err := strata.Commit(ctx, t.l2, b)
	install := err == nil && !ambiguous
	var puts, deletes, n uint64
	for j, k := range keys {
		var value []byte
		neg, exp := false, int64(-1)
		if k.last >= 0 {
			w := &b.Writes[k.last]
			switch {
			case w.Delete:
				neg, exp = true, t.negExpiry(start)
				deletes++
			default:
				value, exp = w.Value, t.writeExpiry(start, w.TTL)
				puts++
				n += uint64(len(w.Key) + len(w.Value))
			}
		}
		if !t.endWrite(k.key, k.h, tks[j], install && k.last >= 0, value, neg, exp) {
			t.drop(k.h)
		}
	}
	if err != nil {
		t.countErr(err)
		return err
	}
	t.c.puts.Add(puts)
	t.c.deletes.Add(deletes)
	t.c.bytesWritten.Add(n)
	return nil
}

// maxCommitIDs is how many batch IDs a tier remembers (see commitIDs).
const maxCommitIDs = 4096

// commitIDs remembers the IDs of the last maxCommitIDs fenced batches with
// an ID that the tier committed (successfully or not): a success for an ID
// the tier sent before may be a replay that wrote nothing.
type commitIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

// seen reports whether id was sent before, and records it.
func (c *commitIDs) seen(id []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[string(id)]; ok {
		return true
	}
	if c.set == nil {
		c.set = make(map[string]struct{})
		c.ring = make([]string, maxCommitIDs)
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.set, old)
	}
	c.ring[c.next] = string(id)
	c.next = (c.next + 1) % maxCommitIDs
	c.set[string(id)] = struct{}{}
	return false
}
