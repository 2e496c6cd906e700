package strata

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"time"
)

// WithPrefix returns a view of s in which every key is stored under prefix
// (the namespacing of a key_prefix setting): Put(k) writes prefix+k, Keys
// lists only keys under prefix, with prefix removed. Keys may be at most
// MaxKeyLen-len(prefix) bytes long.
//
// The view implements every capability interface. Where s has the
// capability, the view forwards to it, so batches stay batches and atomic
// operations stay atomic; where s lacks it, the view behaves as the package
// helper does (a loop, or ErrUnsupported). Keys are validated before the
// prefix is added.
//
// The view is a [View]. Closing it does not close s: several views may share one store, and
// its owner closes it. After Close, the view's methods fail with ErrClosed.
func WithPrefix(s Store, prefix []byte) Store {
	return &prefixStore{s: s, prefix: append([]byte(nil), prefix...)}
}

// View is a store that presents another store's keys under a prefix, as
// [WithPrefix] returns. Wrappers that need the underlying store (a tier
// tracking Redis keys, say) unwrap it: the view's key k is the key
// Prefix()+k of Unwrap().
type View interface {
	Store
	// Unwrap returns the underlying store.
	Unwrap() Store
	// Prefix returns the prefix the view adds. The caller must not modify it.
	Prefix() []byte
}

type prefixStore struct {
	s      Store
	prefix []byte
	closed atomic.Bool
}

var (
	_ View          = (*prefixStore)(nil)
	_ Batcher       = (*prefixStore)(nil)
	_ Atomic        = (*prefixStore)(nil)
	_ Expirer       = (*prefixStore)(nil)
	_ Snapshotter   = (*prefixStore)(nil)
	_ Pinger        = (*prefixStore)(nil)
	_ StatsReporter = (*prefixStore)(nil)
	_ Committer     = (*prefixStore)(nil)
	_ BatchExpirer  = (*prefixStore)(nil)
)

func (p *prefixStore) Unwrap() Store  { return p.s }
func (p *prefixStore) Prefix() []byte { return p.prefix }

// key checks k and returns prefix+k in a new slice.
func (p *prefixStore) key(op string, k []byte) ([]byte, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if err := checkKey(k); err != nil {
		return nil, newOpError(op, "prefix", k, err)
	}
	if limit := MaxKeyLen - len(p.prefix); len(k) > limit {
		return nil, newOpError(op, "prefix", k, fmt.Errorf("%w: %d bytes, limit %d under a %d-byte prefix", ErrInvalidKey, len(k), limit, len(p.prefix)))
	}
	full := make([]byte, len(p.prefix)+len(k))
	copy(full, p.prefix)
	copy(full[len(p.prefix):], k)
	return full, nil
}

func (p *prefixStore) keys(op string, ks [][]byte) ([][]byte, error) {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		full, err := p.key(op, k)
		if err != nil {
			return nil, err
		}
		out[i] = full
	}
	return out, nil
}

func (p *prefixStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	k, err := p.key("get", key)
	if err != nil {
		return nil, err
	}
	return p.s.Get(ctx, k)
}

func (p *prefixStore) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	k, err := p.key("put", key)
	if err != nil {
		return err
	}
	return p.s.Put(ctx, k, value, ttl)
}

func (p *prefixStore) Delete(ctx context.Context, key []byte) error {
	k, err := p.key("delete", key)
	if err != nil {
		return err
	}
	return p.s.Delete(ctx, k)
}

func (p *prefixStore) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	full := append(append([]byte(nil), p.prefix...), prefix...)
	return func(yield func([]byte, error) bool) {
		if p.closed.Load() {
			yield(nil, ErrClosed)
			return
		}
		for k, err := range p.s.Keys(ctx, full) {
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(k[len(p.prefix):], nil) {
				return
			}
		}
	}
}

// Close marks the view closed; it does not close the underlying store.
func (p *prefixStore) Close() error {
	p.closed.Store(true)
	return nil
}

func (p *prefixStore) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	ks, err := p.keys("get_many", keys)
	if err != nil {
		return nil, err
	}
	return GetMany(ctx, p.s, ks)
}

func (p *prefixStore) PutMany(ctx context.Context, entries []Entry) error {
	es := make([]Entry, len(entries))
	for i, e := range entries {
		k, err := p.key("put_many", e.Key)
		if err != nil {
			return err
		}
		es[i] = Entry{Key: k, Value: e.Value, TTL: e.TTL}
	}
	return PutMany(ctx, p.s, es)
}

func (p *prefixStore) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	ks, err := p.keys("delete_many", keys)
	if err != nil {
		return 0, err
	}
	return DeleteMany(ctx, p.s, ks)
}

func (p *prefixStore) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	k, err := p.key("put_if_absent", key)
	if err != nil {
		return false, err
	}
	return PutIfAbsent(ctx, p.s, k, value, ttl)
}

func (p *prefixStore) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	k, err := p.key("get_and_delete", key)
	if err != nil {
		return nil, err
	}
	return GetAndDelete(ctx, p.s, k)
}

func (p *prefixStore) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	k, err := p.key("compare_and_swap", key)
	if err != nil {
		return false, err
	}
	return CompareAndSwap(ctx, p.s, k, old, new, ttl)
}

// Commit forwards b with every key under the prefix. A *ConflictError
// names the caller's condition, without the prefix.
func (p *prefixStore) Commit(ctx context.Context, b *WriteBatch) error {
	pb := &WriteBatch{ID: b.ID, Writes: make([]Write, len(b.Writes)), Conditions: make([]Condition, len(b.Conditions))}
	for i, w := range b.Writes {
		k, err := p.key("commit", w.Key)
		if err != nil {
			return err
		}
		w.Key = k
		pb.Writes[i] = w
	}
	for i, c := range b.Conditions {
		k, err := p.key("commit", c.Key)
		if err != nil {
			return err
		}
		c.Key = k
		pb.Conditions[i] = c
	}
	err := Commit(ctx, p.s, pb)
	var ce *ConflictError
	if errors.As(err, &ce) && ce.Index >= 0 && ce.Index < len(b.Conditions) {
		return conflict(b, ce.Index, ce.Token)
	}
	return err
}

func (p *prefixStore) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	k, err := p.key("ttl", key)
	if err != nil {
		return 0, err
	}
	return TTL(ctx, p.s, k)
}

func (p *prefixStore) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	k, err := p.key("get_with_ttl", key)
	if err != nil {
		return nil, 0, err
	}
	return GetWithTTL(ctx, p.s, k)
}

func (p *prefixStore) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]Entry, error) {
	ks, err := p.keys("get_many_with_ttl", keys)
	if err != nil {
		return nil, err
	}
	es, err := GetManyWithTTL(ctx, p.s, ks)
	if err != nil {
		return nil, err
	}
	for i := range es {
		es[i].Key = keys[i]
	}
	return es, nil
}

func (p *prefixStore) Snapshot(ctx context.Context) (Snapshot, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	sn, err := SnapshotOf(ctx, p.s)
	if err != nil {
		return nil, err
	}
	return &prefixSnapshot{sn: sn, prefix: p.prefix}, nil
}

func (p *prefixStore) Ping(ctx context.Context) error {
	if p.closed.Load() {
		return ErrClosed
	}
	return Ping(ctx, p.s)
}

// Stats returns the underlying store's stats (all views of it share them).
func (p *prefixStore) Stats() Stats {
	st, _ := StatsOf(p.s)
	return st
}

type prefixSnapshot struct {
	sn     Snapshot
	prefix []byte
}

func (ps *prefixSnapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[Entry, error] {
	full := append(append([]byte(nil), ps.prefix...), prefix...)
	return func(yield func(Entry, error) bool) {
		for e, err := range ps.sn.Entries(ctx, full) {
			if err == nil {
				e.Key = e.Key[len(ps.prefix):]
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

func (ps *prefixSnapshot) Close() error { return ps.sn.Close() }
