package strata

import (
	"context"
	"errors"
	"iter"
	"time"
)

// GetMany returns the values of keys, in order, with nil for each absent
// key. It uses the store's [Batcher] when it has one and otherwise calls Get
// once per key.
func GetMany(ctx context.Context, s Store, keys [][]byte) ([][]byte, error) {
	if b, ok := s.(Batcher); ok {
		return b.GetMany(ctx, keys)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := s.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out[i] = v
		}
	}
	return out, nil
}

// PutMany stores every entry. It uses the store's [Batcher] when it has one.
// Otherwise it checks every key and TTL first and then calls Put once per
// entry; that fallback is not atomic: an error part-way (a value too large
// for the store, a failed write) leaves the earlier entries written.
func PutMany(ctx context.Context, s Store, entries []Entry) error {
	if b, ok := s.(Batcher); ok {
		return b.PutMany(ctx, entries)
	}
	for _, e := range entries {
		if err := checkKey(e.Key); err != nil {
			return newOpError("put_many", "", e.Key, err)
		}
		if _, err := resolveTTL(e.TTL, 0); err != nil {
			return newOpError("put_many", "", e.Key, err)
		}
	}
	for _, e := range entries {
		if err := s.Put(ctx, e.Key, e.Value, e.TTL); err != nil {
			return err
		}
	}
	return nil
}

// DeleteMany removes keys and reports how many were live. It uses the
// store's [Batcher] when it has one; otherwise it calls Get then Delete for
// each key, so the count is exact only without concurrent writers.
func DeleteMany(ctx context.Context, s Store, keys [][]byte) (int, error) {
	if b, ok := s.(Batcher); ok {
		return b.DeleteMany(ctx, keys)
	}
	n := 0
	for _, k := range keys {
		_, err := s.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return n, err
		}
		if err := s.Delete(ctx, k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// PutIfAbsent calls the store's [Atomic.PutIfAbsent], or fails with
// ErrUnsupported.
func PutIfAbsent(ctx context.Context, s Store, key, value []byte, ttl time.Duration) (bool, error) {
	a, ok := s.(Atomic)
	if !ok {
		return false, unsupported("put_if_absent", key)
	}
	return a.PutIfAbsent(ctx, key, value, ttl)
}

// GetAndDelete calls the store's [Atomic.GetAndDelete], or fails with
// ErrUnsupported.
func GetAndDelete(ctx context.Context, s Store, key []byte) ([]byte, error) {
	a, ok := s.(Atomic)
	if !ok {
		return nil, unsupported("get_and_delete", key)
	}
	return a.GetAndDelete(ctx, key)
}

// CompareAndSwap calls the store's [Atomic.CompareAndSwap], or fails with
// ErrUnsupported.
func CompareAndSwap(ctx context.Context, s Store, key, old, new []byte, ttl time.Duration) (bool, error) {
	a, ok := s.(Atomic)
	if !ok {
		return false, unsupported("compare_and_swap", key)
	}
	return a.CompareAndSwap(ctx, key, old, new, ttl)
}

// TTL calls the store's [Expirer.TTL], or fails with ErrUnsupported.
func TTL(ctx context.Context, s Store, key []byte) (time.Duration, error) {
	e, ok := s.(Expirer)
	if !ok {
		return 0, unsupported("ttl", key)
	}
	return e.TTL(ctx, key)
}

// GetWithTTL calls the store's [Expirer.GetWithTTL], or fails with
// ErrUnsupported.
func GetWithTTL(ctx context.Context, s Store, key []byte) ([]byte, time.Duration, error) {
	e, ok := s.(Expirer)
	if !ok {
		return nil, 0, unsupported("get_with_ttl", key)
	}
	return e.GetWithTTL(ctx, key)
}

// GetManyWithTTL returns the value and remaining TTL of each key, in order
// (see [BatchExpirer]). It uses the store's BatchExpirer when it has one,
// calls GetWithTTL once per key on an [Expirer], and fails with
// ErrUnsupported otherwise.
func GetManyWithTTL(ctx context.Context, s Store, keys [][]byte) ([]Entry, error) {
	if b, ok := s.(BatchExpirer); ok {
		return b.GetManyWithTTL(ctx, keys)
	}
	e, ok := s.(Expirer)
	if !ok {
		return nil, unsupported("get_many_with_ttl", nil)
	}
	out := make([]Entry, len(keys))
	for i, k := range keys {
		v, ttl, err := e.GetWithTTL(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
			out[i] = Entry{Key: k}
		case err != nil:
			return nil, err
		default:
			out[i] = Entry{Key: k, Value: v, TTL: ttl}
		}
	}
	return out, nil
}

// pingKey is read by [Ping] on stores without a Pinger.
var pingKey = []byte("\x00strata:ping")

// Ping calls the store's [Pinger.Ping]. For a store without one it reads a
// reserved key and reports any error other than ErrNotFound.
func Ping(ctx context.Context, s Store) error {
	if p, ok := s.(Pinger); ok {
		return p.Ping(ctx)
	}
	if _, err := s.Get(ctx, pingKey); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// StatsOf returns the store's [Stats] and whether it reports any.
func StatsOf(s Store) (Stats, bool) {
	r, ok := s.(StatsReporter)
	if !ok {
		return Stats{}, false
	}
	return r.Stats(), true
}

// SnapshotOf returns the store's own [Snapshot] when it is a [Snapshotter],
// and otherwise [ScanSnapshot](s).
func SnapshotOf(ctx context.Context, s Store) (Snapshot, error) {
	if sn, ok := s.(Snapshotter); ok {
		return sn.Snapshot(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ScanSnapshot(s), nil
}

// ScanSnapshot returns a Snapshot that reads s live: it walks Keys and reads
// each value (and its TTL when s is an [Expirer]; NoExpiry otherwise). It is
// not a point-in-time view: an entry written or deleted during the walk may
// or may not appear, and a key the store's Keys yields twice appears twice.
// Keys that vanish between listing and reading are skipped.
func ScanSnapshot(s Store) Snapshot { return scanSnapshot{s} }

type scanSnapshot struct{ s Store }

func (sn scanSnapshot) Close() error { return nil }

func (sn scanSnapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[Entry, error] {
	prefix = append([]byte(nil), prefix...)
	return func(yield func(Entry, error) bool) {
		exp, hasTTL := sn.s.(Expirer)
		for k, err := range sn.s.Keys(ctx, prefix) {
			if err != nil {
				yield(Entry{}, err)
				return
			}
			var e = Entry{Key: k, TTL: NoExpiry}
			if hasTTL {
				e.Value, e.TTL, err = exp.GetWithTTL(ctx, k)
			} else {
				e.Value, err = sn.s.Get(ctx, k)
			}
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func unsupported(op string, key []byte) error {
	return newOpError(op, "", key, ErrUnsupported)
}
