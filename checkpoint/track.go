package checkpoint

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata"
)

// DefaultMaxTracked bounds the keys a Tracker remembers when
// TrackerOptions.MaxKeys is zero: 1 Mi keys.
const DefaultMaxTracked = 1 << 20

// TrackerOptions configure a Tracker. The zero value (or nil) gives the
// defaults.
type TrackerOptions struct {
	// MaxKeys bounds the distinct keys the Tracker remembers between two
	// checkpoints, and so its memory (about 50 bytes plus the key each).
	// Past it the Tracker forgets them all and the next checkpoint is a
	// full one. Default DefaultMaxTracked.
	MaxKeys int
}

// Tracker is a view of a store that records the keys written through it,
// so that a Coordinator can write a delta (the entries changed since the
// previous checkpoint) instead of a full checkpoint. The job writes its
// state through the Tracker and hands the same Tracker to New; the
// Coordinator then writes deltas when Options.MaxDeltas allows.
//
// Every write through the Tracker records its keys: Put, PutMany, Delete,
// DeleteMany, the atomic operations, and every key of a strata.Commit batch
// (writes and conditions). A key is recorded after the write returns,
// whether or not it succeeded (a failed or indeterminate write records a
// key that may not have changed, which costs a few bytes in the delta and
// is never wrong). Reads are not recorded. Writes that do not go through
// the Tracker (another process writing to the same Redis, the store used
// directly) are invisible to it: a delta would miss them, so every writer
// of the state must write through the Tracker, or the Coordinator must
// take full checkpoints only.
//
// The Tracker implements every capability interface, forwarding to the
// store through the strata helpers (a capability the store lacks behaves
// as the helper does without it). Closing the Tracker does not close the
// store. It is safe for concurrent use.
type Tracker struct {
	s      strata.Store
	max    int
	closed atomic.Bool

	mu       sync.Mutex
	dirty    map[string]struct{}
	overflow bool // more than max keys were written: the set is unknown
}

var (
	_ strata.Store         = (*Tracker)(nil)
	_ strata.Batcher       = (*Tracker)(nil)
	_ strata.Atomic        = (*Tracker)(nil)
	_ strata.Expirer       = (*Tracker)(nil)
	_ strata.BatchExpirer  = (*Tracker)(nil)
	_ strata.Snapshotter   = (*Tracker)(nil)
	_ strata.Pinger        = (*Tracker)(nil)
	_ strata.StatsReporter = (*Tracker)(nil)
	_ strata.Committer     = (*Tracker)(nil)
)

// Track returns a Tracker over s. Invalid options fail with
// strata.ErrInvalidConfig.
func Track(s strata.Store, opts *TrackerOptions) (*Tracker, error) {
	var o TrackerOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxKeys < 0 {
		return nil, invalid("tracker MaxKeys %d is negative", o.MaxKeys)
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultMaxTracked
	}
	return &Tracker{s: s, max: o.MaxKeys, dirty: make(map[string]struct{})}, nil
}

// Unwrap returns the store the Tracker writes to.
func (t *Tracker) Unwrap() strata.Store { return t.s }

// Pending returns how many distinct keys were written since the last
// checkpoint, and false when there were more than MaxKeys (the next
// checkpoint is then a full one).
func (t *Tracker) Pending() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.dirty), !t.overflow
}

// mark records keys.
func (t *Tracker) mark(keys ...[]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.overflow {
		return
	}
	for _, k := range keys {
		t.dirty[string(k)] = struct{}{}
	}
	t.check()
}

func (t *Tracker) check() {
	if len(t.dirty) > t.max {
		t.overflow = true
		t.dirty = make(map[string]struct{})
	}
}

// changes is a taken set of changed keys.
type changes struct {
	keys  map[string]struct{}
	known bool // false: more than MaxKeys changed, the set is lost
}

// take hands the keys written so far to a checkpoint and starts a new set.
func (t *Tracker) take() changes {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := changes{keys: t.dirty, known: !t.overflow}
	t.dirty, t.overflow = make(map[string]struct{}), false
	return c
}

// giveBack returns the keys of a checkpoint that failed to the current set,
// so that the next checkpoint, over the same parent, still covers them.
func (t *Tracker) giveBack(c changes) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !c.known {
		t.overflow = true
	}
	if t.overflow {
		t.dirty = make(map[string]struct{})
		return
	}
	for k := range c.keys {
		t.dirty[k] = struct{}{}
	}
	t.check()
}

// sorted returns the keys of c in byte order.
func (c changes) sorted() [][]byte {
	out := make([][]byte, 0, len(c.keys))
	for k := range c.keys {
		out = append(out, []byte(k))
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

func (t *Tracker) live() error {
	if t.closed.Load() {
		return strata.ErrClosed
	}
	return nil
}

// Get reads through to the store.
func (t *Tracker) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	return t.s.Get(ctx, key)
}

// Put writes through and records key.
func (t *Tracker) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if err := t.live(); err != nil {
		return err
	}
	err := t.s.Put(ctx, key, value, ttl)
	t.mark(key)
	return err
}

// Delete deletes through and records key.
func (t *Tracker) Delete(ctx context.Context, key []byte) error {
	if err := t.live(); err != nil {
		return err
	}
	err := t.s.Delete(ctx, key)
	t.mark(key)
	return err
}

// Keys lists the store's keys.
func (t *Tracker) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	if err := t.live(); err != nil {
		return func(yield func([]byte, error) bool) { yield(nil, err) }
	}
	return t.s.Keys(ctx, prefix)
}

// Close makes the Tracker's methods fail with strata.ErrClosed. It does not
// close the store.
func (t *Tracker) Close() error {
	t.closed.Store(true)
	return nil
}

// GetMany reads through (strata.GetMany).
func (t *Tracker) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	return strata.GetMany(ctx, t.s, keys)
}

// PutMany writes through (strata.PutMany) and records every key.
func (t *Tracker) PutMany(ctx context.Context, entries []strata.Entry) error {
	if err := t.live(); err != nil {
		return err
	}
	err := strata.PutMany(ctx, t.s, entries)
	t.mu.Lock()
	if !t.overflow {
		for _, e := range entries {
			t.dirty[string(e.Key)] = struct{}{}
		}
		t.check()
	}
	t.mu.Unlock()
	return err
}

// DeleteMany deletes through (strata.DeleteMany) and records every key.
func (t *Tracker) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	if err := t.live(); err != nil {
		return 0, err
	}
	n, err := strata.DeleteMany(ctx, t.s, keys)
	t.mark(keys...)
	return n, err
}

// PutIfAbsent forwards (strata.PutIfAbsent) and records key.
func (t *Tracker) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	if err := t.live(); err != nil {
		return false, err
	}
	ok, err := strata.PutIfAbsent(ctx, t.s, key, value, ttl)
	t.mark(key)
	return ok, err
}

// GetAndDelete forwards (strata.GetAndDelete) and records key.
func (t *Tracker) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	v, err := strata.GetAndDelete(ctx, t.s, key)
	t.mark(key)
	return v, err
}

// CompareAndSwap forwards (strata.CompareAndSwap) and records key.
func (t *Tracker) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	if err := t.live(); err != nil {
		return false, err
	}
	ok, err := strata.CompareAndSwap(ctx, t.s, key, old, new, ttl)
	t.mark(key)
	return ok, err
}

// Commit forwards b (strata.Commit) and records every key it touches,
// conditions included (a fence condition writes its key).
func (t *Tracker) Commit(ctx context.Context, b *strata.WriteBatch) error {
	if err := t.live(); err != nil {
		return err
	}
	err := strata.Commit(ctx, t.s, b)
	t.mu.Lock()
	if !t.overflow {
		for k := range b.Keys {
			t.dirty[string(k)] = struct{}{}
		}
		t.check()
	}
	t.mu.Unlock()
	return err
}

// TTL reads through (strata.TTL).
func (t *Tracker) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	if err := t.live(); err != nil {
		return 0, err
	}
	return strata.TTL(ctx, t.s, key)
}

// GetWithTTL reads through (strata.GetWithTTL).
func (t *Tracker) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	if err := t.live(); err != nil {
		return nil, 0, err
	}
	return strata.GetWithTTL(ctx, t.s, key)
}

// GetManyWithTTL reads through (strata.GetManyWithTTL).
func (t *Tracker) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	return strata.GetManyWithTTL(ctx, t.s, keys)
}

// Snapshot takes the store's snapshot (strata.SnapshotOf).
func (t *Tracker) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	return strata.SnapshotOf(ctx, t.s)
}

// Ping pings the store (strata.Ping).
func (t *Tracker) Ping(ctx context.Context) error {
	if err := t.live(); err != nil {
		return err
	}
	return strata.Ping(ctx, t.s)
}

// Stats returns the store's stats.
func (t *Tracker) Stats() strata.Stats {
	st, _ := strata.StatsOf(t.s)
	return st
}
