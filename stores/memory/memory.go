// Package memory is the reference strata store: every capability, held in
// process memory in an ordered B-tree.
//
// Keys iterates in byte order and yields each live key exactly once.
// Snapshots are point-in-time copy-on-write clones, so taking one costs
// O(1) and later writes do not show through. Expired keys are invisible at
// once; a background sweep frees their memory.
//
// It registers the "mem" URL scheme: mem://?default_ttl=1m&max_value_size=1048576&sweep_interval=1s
// opens a new, empty store.
package memory

import (
	"bytes"
	"context"
	"iter"
	"net/url"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

const backend = "memory"

// Options configure a Store. The zero value (or nil) gives the defaults.
type Options struct {
	// DefaultTTL applies to writes with ttl == 0. Default: none (keys do not
	// expire unless asked).
	DefaultTTL time.Duration

	// MaxValueSize bounds values, in bytes. Default 0: no limit.
	MaxValueSize int

	// Clock tells the time for expiry. Default: the system clock.
	Clock strata.Clock

	// SweepInterval is how often expired keys are freed. Default 1s; a
	// negative value disables the sweep (expired keys stay invisible but
	// keep their memory until overwritten or deleted).
	SweepInterval time.Duration
}

// sweepBatch bounds how many expired keys one sweep step removes while it
// holds the write lock.
const sweepBatch = 1024

type item struct {
	key, value []byte
	exp        int64 // Unix ms, 0 for never
}

type expiry struct {
	exp int64
	key []byte
}

func lessItem(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

func lessExpiry(a, b expiry) bool {
	if a.exp != b.exp {
		return a.exp < b.exp
	}
	return bytes.Compare(a.key, b.key) < 0
}

// Store is an in-memory strata.Store. Create one with New.
type Store struct {
	opts  Options
	clock strata.Clock
	stats storekit.Counters

	mu       sync.RWMutex
	items    *btree.BTreeG[item]
	expiries *btree.BTreeG[expiry] // keys with a TTL, by expiry
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ strata.Store         = (*Store)(nil)
	_ strata.Batcher       = (*Store)(nil)
	_ strata.Atomic        = (*Store)(nil)
	_ strata.Expirer       = (*Store)(nil)
	_ strata.Snapshotter   = (*Store)(nil)
	_ strata.Pinger        = (*Store)(nil)
	_ strata.StatsReporter = (*Store)(nil)
	_ strata.Committer     = (*Store)(nil)
	_ strata.BatchExpirer  = (*Store)(nil)
)

// New returns an empty store. Close it to stop its sweep.
func New(opts *Options) *Store {
	s := &Store{
		items:    btree.NewG(32, lessItem),
		expiries: btree.NewG(32, lessExpiry),
		stop:     make(chan struct{}),
	}
	if opts != nil {
		s.opts = *opts
	}
	s.clock = s.opts.Clock
	if s.clock == nil {
		s.clock = strata.SystemClock{}
	}
	interval := s.opts.SweepInterval
	if interval == 0 {
		interval = time.Second
	}
	if interval > 0 {
		s.wg.Add(1)
		go s.sweepLoop(interval)
	}
	return s
}

func init() {
	strata.Register("mem", func(ctx context.Context, u *url.URL) (strata.Store, error) {
		q := storekit.NewQuery(u)
		opts := &Options{
			DefaultTTL:    q.Duration("default_ttl", 0),
			MaxValueSize:  q.Int("max_value_size", 0),
			SweepInterval: q.Duration("sweep_interval", 0),
		}
		if err := q.Err(); err != nil {
			return nil, err
		}
		return New(opts), nil
	})
}

func (s *Store) now() int64 { return s.clock.Now().UnixMilli() }

// live returns the item under key if it exists and has not expired. The
// caller holds mu.
func (s *Store) live(key []byte, nowMS int64) (item, bool) {
	it, ok := s.items.Get(item{key: key})
	if !ok || (it.exp != 0 && nowMS >= it.exp) {
		return item{}, false
	}
	return it, true
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// set writes key (not yet copied) with a resolved ttl. The caller holds mu
// for writing.
func (s *Store) set(key, value []byte, ttl time.Duration, now time.Time) {
	it := item{key: clone(key), value: clone(value), exp: storekit.ExpiryMillis(now, ttl)}
	if old, ok := s.items.ReplaceOrInsert(it); ok && old.exp != 0 {
		s.expiries.Delete(expiry{old.exp, old.key})
	}
	if it.exp != 0 {
		s.expiries.ReplaceOrInsert(expiry{it.exp, it.key})
	}
	s.stats.Put(1, len(key)+len(value))
}

// remove deletes key and reports whether it was live. The caller holds mu
// for writing.
func (s *Store) remove(key []byte, nowMS int64) (item, bool) {
	old, ok := s.items.Delete(item{key: key})
	if !ok {
		return item{}, false
	}
	if old.exp != 0 {
		s.expiries.Delete(expiry{old.exp, old.key})
	}
	return old, old.exp == 0 || nowMS < old.exp
}

func (s *Store) err(op string, key []byte, err error) error {
	return storekit.NewOpError(op, backend, key, err)
}

// enter checks ctx and the key of a read.
func enter(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return storekit.CheckKey(key)
}

// Get returns a copy of the value under key, or strata.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, _, err := s.getWithTTL(ctx, "get", key)
	return v, err
}

func (s *Store) getWithTTL(ctx context.Context, op string, key []byte) ([]byte, time.Duration, error) {
	if err := enter(ctx, key); err != nil {
		return nil, 0, s.err(op, key, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, 0, strata.ErrClosed
	}
	it, ok := s.items.Get(item{key: key})
	var now time.Time
	if ok && it.exp != 0 {
		// Only keys with a TTL need the time: most reads skip the clock.
		now = s.clock.Now()
		ok = now.UnixMilli() < it.exp
	}
	var v []byte
	if ok {
		v = clone(it.value)
	}
	s.mu.RUnlock()
	if !ok {
		s.stats.Miss()
		return nil, 0, strata.ErrNotFound
	}
	s.stats.Hit(len(v))
	return v, storekit.Remaining(now, it.exp), nil
}

// Put stores a copy of value under key.
func (s *Store) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return s.err("put", key, err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return strata.ErrClosed
	}
	s.set(key, value, ttl, now)
	return nil
}

func (s *Store) check(ctx context.Context, key, value []byte, ttl time.Duration) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return storekit.CheckEntry(key, value, ttl, s.opts.DefaultTTL, s.opts.MaxValueSize)
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := enter(ctx, key); err != nil {
		return s.err("delete", key, err)
	}
	nowMS := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return strata.ErrClosed
	}
	if _, live := s.remove(key, nowMS); live {
		s.stats.Delete(1)
	}
	return nil
}

// keysChunk is how many keys Keys copies per hold of the read lock.
const keysChunk = 256

// Keys yields the live keys under prefix in byte order, each exactly once.
// It never holds the store's lock while the caller's loop body runs, so the
// body may write to the store.
func (s *Store) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	prefix = clone(prefix) // the caller may reuse its buffer before iterating
	return func(yield func([]byte, error) bool) {
		from := prefix
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			chunk, err := s.keysFrom(from, prefix)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, k := range chunk {
				if !yield(k, nil) {
					return
				}
			}
			if len(chunk) < keysChunk {
				return
			}
			// Resume just after the last key: its immediate successor.
			from = append(clone(chunk[len(chunk)-1]), 0)
		}
	}
}

// keysFrom copies up to keysChunk live keys >= from that start with prefix.
func (s *Store) keysFrom(from, prefix []byte) ([][]byte, error) {
	nowMS := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, strata.ErrClosed
	}
	chunk := make([][]byte, 0, keysChunk)
	s.items.AscendGreaterOrEqual(item{key: from}, func(it item) bool {
		if !bytes.HasPrefix(it.key, prefix) {
			return false
		}
		if it.exp == 0 || nowMS < it.exp {
			chunk = append(chunk, clone(it.key))
		}
		return len(chunk) < keysChunk
	})
	return chunk, nil
}

// Close stops the sweep and frees the store's memory. It returns nil when
// called again.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.items.Clear(false)
	s.expiries.Clear(false)
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	return nil
}

// GetMany returns copies of the values of keys, nil for each absent key,
// read under one lock hold.
func (s *Store) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	for _, k := range keys {
		if err := enter(ctx, k); err != nil {
			return nil, s.err("get_many", k, err)
		}
	}
	nowMS := s.now()
	out := make([][]byte, len(keys))
	hits, n := 0, 0
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, strata.ErrClosed
	}
	for i, k := range keys {
		if it, ok := s.live(k, nowMS); ok {
			out[i] = clone(it.value)
			hits++
			n += len(it.value)
		}
	}
	s.mu.RUnlock()
	s.stats.Reads(len(keys), hits, n)
	return out, nil
}

// GetManyWithTTL returns copies of the values of keys with the time each
// has left, read under one lock hold.
func (s *Store) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	for _, k := range keys {
		if err := enter(ctx, k); err != nil {
			return nil, s.err("get_many_with_ttl", k, err)
		}
	}
	now := s.clock.Now()
	nowMS := now.UnixMilli()
	out := make([]strata.Entry, len(keys))
	hits, n := 0, 0
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, strata.ErrClosed
	}
	for i, k := range keys {
		out[i].Key = k
		if it, ok := s.live(k, nowMS); ok {
			out[i].Value = clone(it.value)
			out[i].TTL = storekit.Remaining(now, it.exp)
			hits++
			n += len(it.value)
		}
	}
	s.mu.RUnlock()
	s.stats.Reads(len(keys), hits, n)
	return out, nil
}

// PutMany writes every entry atomically: all are validated first, then
// written under one lock hold.
func (s *Store) PutMany(ctx context.Context, entries []strata.Entry) error {
	ttls := make([]time.Duration, len(entries))
	for i, e := range entries {
		ttl, err := s.check(ctx, e.Key, e.Value, e.TTL)
		if err != nil {
			return s.err("put_many", e.Key, err)
		}
		ttls[i] = ttl
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return strata.ErrClosed
	}
	for i, e := range entries {
		s.set(e.Key, e.Value, ttls[i], now)
	}
	return nil
}

// Commit applies b atomically: its conditions are checked and its writes
// applied under one hold of the write lock.
func (s *Store) Commit(ctx context.Context, b *strata.WriteBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ttls, bad, err := storekit.CheckBatch(b, s.opts.DefaultTTL, s.opts.MaxValueSize)
	if err != nil {
		return s.err("commit", bad, err)
	}
	if b.Empty() {
		return nil
	}
	now := s.clock.Now()
	nowMS := now.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return strata.ErrClosed
	}
	err = storekit.EvalConditions(b, func(key []byte) ([]byte, bool, error) {
		it, ok := s.live(key, nowMS)
		return it.value, ok, nil
	})
	switch {
	case err == storekit.ErrAlreadyApplied:
		return nil
	case err != nil:
		return s.err("commit", nil, err)
	}
	deleted := 0
	for i, w := range b.Writes {
		if w.Delete {
			if _, live := s.remove(w.Key, nowMS); live {
				deleted++
			}
			continue
		}
		s.set(w.Key, w.Value, ttls[i], now)
	}
	s.stats.Delete(deleted)
	for _, c := range b.Conditions {
		if c.Kind == strata.CondFence {
			s.set(c.Key, storekit.FenceValue(c.Token, b.ID), strata.NoExpiry, now)
		}
	}
	return nil
}

// DeleteMany removes keys atomically and reports how many were live.
func (s *Store) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	for _, k := range keys {
		if err := enter(ctx, k); err != nil {
			return 0, s.err("delete_many", k, err)
		}
	}
	nowMS := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, strata.ErrClosed
	}
	n := 0
	for _, k := range keys {
		if _, live := s.remove(k, nowMS); live {
			n++
		}
	}
	s.stats.Delete(n)
	return n, nil
}

// PutIfAbsent stores value if key is absent or expired.
func (s *Store) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return false, s.err("put_if_absent", key, err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, strata.ErrClosed
	}
	if _, ok := s.live(key, now.UnixMilli()); ok {
		return false, nil
	}
	s.set(key, value, ttl, now)
	return true, nil
}

// GetAndDelete removes key and returns its value, or strata.ErrNotFound.
func (s *Store) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if err := enter(ctx, key); err != nil {
		return nil, s.err("get_and_delete", key, err)
	}
	nowMS := s.now()
	s.mu.Lock()
	old, live := s.remove(key, nowMS)
	closed := s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return nil, strata.ErrClosed
	case !live:
		s.stats.Miss()
		return nil, strata.ErrNotFound
	}
	s.stats.Hit(len(old.value))
	s.stats.Delete(1)
	// A snapshot may still share the removed item: copy.
	return clone(old.value), nil
}

// CompareAndSwap stores new if the current value equals old (nil: absent).
func (s *Store) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, new, ttl)
	if err != nil {
		return false, s.err("compare_and_swap", key, err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, strata.ErrClosed
	}
	cur, ok := s.live(key, now.UnixMilli())
	if ok != (old != nil) || (ok && !bytes.Equal(cur.value, old)) {
		return false, nil
	}
	s.set(key, new, ttl, now)
	return true, nil
}

// TTL returns the time key has left, strata.NoExpiry, or strata.ErrNotFound.
func (s *Store) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	if err := enter(ctx, key); err != nil {
		return 0, s.err("ttl", key, err)
	}
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, strata.ErrClosed
	}
	it, ok := s.live(key, now.UnixMilli())
	if !ok {
		return 0, strata.ErrNotFound
	}
	return storekit.Remaining(now, it.exp), nil
}

// GetWithTTL returns a copy of the value and the time key has left.
func (s *Store) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	return s.getWithTTL(ctx, "get_with_ttl", key)
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return strata.ErrClosed
	}
	return nil
}

// Stats returns the store's counters; Keys counts live keys.
func (s *Store) Stats() strata.Stats {
	nowMS := s.now()
	s.mu.RLock()
	n := int64(s.items.Len())
	s.expiries.Ascend(func(e expiry) bool {
		if e.exp > nowMS {
			return false
		}
		n--
		return true
	})
	s.mu.RUnlock()
	return s.stats.Stats(backend, n)
}

// Snapshot returns a point-in-time view of the store. It costs O(1): the
// tree is cloned copy-on-write.
func (s *Store) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Clone mutates the tree's copy-on-write state: it needs the write lock.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, strata.ErrClosed
	}
	return &snapshot{s: s, items: s.items.Clone()}, nil
}

type snapshot struct {
	s     *Store
	mu    sync.RWMutex
	items *btree.BTreeG[item] // nil once closed
}

// Entries yields copies of the live entries under prefix, in key order.
func (sn *snapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[strata.Entry, error] {
	prefix = clone(prefix)
	return func(yield func(strata.Entry, error) bool) {
		sn.mu.RLock()
		items := sn.items
		sn.mu.RUnlock()
		if items == nil {
			yield(strata.Entry{}, strata.ErrClosed)
			return
		}
		var err error
		items.AscendGreaterOrEqual(item{key: prefix}, func(it item) bool {
			if !bytes.HasPrefix(it.key, prefix) {
				return false
			}
			if err = ctx.Err(); err != nil {
				return false
			}
			left := storekit.Remaining(sn.s.clock.Now(), it.exp)
			if left == 0 {
				return true
			}
			return yield(strata.Entry{Key: clone(it.key), Value: clone(it.value), TTL: left}, nil)
		})
		if err != nil {
			yield(strata.Entry{}, err)
		}
	}
}

func (sn *snapshot) Close() error {
	sn.mu.Lock()
	sn.items = nil
	sn.mu.Unlock()
	return nil
}

func (s *Store) sweepLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for s.sweep() == sweepBatch {
			}
		}
	}
}

// sweep removes up to sweepBatch expired keys and returns how many.
func (s *Store) sweep() int {
	nowMS := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < sweepBatch {
		e, ok := s.expiries.Min()
		if !ok || e.exp > nowMS {
			break
		}
		s.expiries.DeleteMin()
		s.items.Delete(item{key: e.key})
		n++
	}
	return n
}
