package strata

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Codec turns values of type T into bytes and back.
type Codec[T any] interface {
	// Append appends the encoding of v to dst and returns the extended slice.
	Append(dst []byte, v T) ([]byte, error)
	// Decode parses data, which it must not retain.
	Decode(data []byte) (T, error)
}

// JSON is a [Codec] for any type encoding/json handles.
type JSON[T any] struct{}

// Append appends the JSON encoding of v to dst.
func (JSON[T]) Append(dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// Decode parses JSON; malformed input fails with an error matching
// ErrCorrupt.
func (JSON[T]) Decode(data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: json: %w", ErrCorrupt, err)
	}
	return v, nil
}

// BinaryMarshaler is the constraint of [Binary]: a pointer to T that appends
// T's binary form and parses it back.
type BinaryMarshaler[T any] interface {
	*T
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// Binary is the fast [Codec], for types that encode themselves with
// AppendBinary and UnmarshalBinary (hand-written or generated). It adds no
// framing and no reflection. Write it as Binary[T, *T].
type Binary[T any, P BinaryMarshaler[T]] struct{}

// Append appends v's binary form to dst.
func (Binary[T, P]) Append(dst []byte, v T) ([]byte, error) {
	return P(&v).AppendBinary(dst)
}

// Decode parses data with UnmarshalBinary; a failure matches ErrCorrupt.
func (Binary[T, P]) Decode(data []byte) (T, error) {
	var v T
	if err := P(&v).UnmarshalBinary(data); err != nil {
		return v, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return v, nil
}

// Typed is a Store of values of type T, encoded by a Codec.
type Typed[T any] struct {
	store Store
	codec Codec[T]
}

// NewTyped returns a typed view of s that encodes values with codec.
func NewTyped[T any](s Store, codec Codec[T]) *Typed[T] {
	return &Typed[T]{store: s, codec: codec}
}

// Store returns the underlying store.
func (t *Typed[T]) Store() Store { return t.store }

// Get returns the value under key, or ErrNotFound. A stored value the codec
// cannot parse fails with an error matching ErrCorrupt.
func (t *Typed[T]) Get(ctx context.Context, key []byte) (T, error) {
	b, err := t.store.Get(ctx, key)
	if err != nil {
		var zero T
		return zero, err
	}
	return t.codec.Decode(b)
}

// Put encodes v and stores it under key with ttl (see [Store.Put]).
func (t *Typed[T]) Put(ctx context.Context, key []byte, v T, ttl time.Duration) error {
	b, err := t.codec.Append(nil, v)
	if err != nil {
		return newOpError("encode", "typed", key, err)
	}
	return t.store.Put(ctx, key, b, ttl)
}

// TypedEntry is one key, value and TTL of a [Typed] store's PutMany.
type TypedEntry[T any] struct {
	Key   []byte
	Value T
	TTL   time.Duration
}

// GetMany returns the values of keys, in order, read in one round trip
// where the store allows (see [GetMany]). found[i] reports whether keys[i]
// is present; values[i] is the zero value when it is not. A stored value
// the codec cannot parse fails the call with an error matching ErrCorrupt
// that names its key.
func (t *Typed[T]) GetMany(ctx context.Context, keys [][]byte) (values []T, found []bool, err error) {
	raw, err := GetMany(ctx, t.store, keys)
	if err != nil {
		return nil, nil, err
	}
	values, found = make([]T, len(keys)), make([]bool, len(keys))
	for i, b := range raw {
		if b == nil {
			continue
		}
		if values[i], err = t.codec.Decode(b); err != nil {
			return nil, nil, newOpError("decode", "typed", keys[i], err)
		}
		found[i] = true
	}
	return values, found, nil
}

// PutMany encodes every value and stores the entries with one [PutMany].
// Nothing is written if a value fails to encode.
func (t *Typed[T]) PutMany(ctx context.Context, entries []TypedEntry[T]) error {
	// One buffer for every encoding; values are sliced from it once it has
	// stopped growing.
	var buf []byte
	ends := make([]int, len(entries))
	for i, e := range entries {
		var err error
		if buf, err = t.codec.Append(buf, e.Value); err != nil {
			return newOpError("encode", "typed", e.Key, err)
		}
		ends[i] = len(buf)
	}
	raw := make([]Entry, len(entries))
	start := 0
	for i, e := range entries {
		raw[i] = Entry{Key: e.Key, Value: buf[start:ends[i]:ends[i]], TTL: e.TTL}
		start = ends[i]
	}
	return PutMany(ctx, t.store, raw)
}

// AddPut encodes v and adds its write under key with ttl to b, for a
// [Commit] that changes typed state together with other keys (an offset,
// say). b holds the encoding, not v.
func (t *Typed[T]) AddPut(b *WriteBatch, key []byte, v T, ttl time.Duration) error {
	enc, err := t.codec.Append(nil, v)
	if err != nil {
		return newOpError("encode", "typed", key, err)
	}
	b.Put(key, enc, ttl)
	return nil
}

// Delete removes key.
func (t *Typed[T]) Delete(ctx context.Context, key []byte) error {
	return t.store.Delete(ctx, key)
}

// Update applies fn to the current value of key (found is false and cur the
// zero value when the key is absent) and stores the result with ttl,
// atomically: it retries with CompareAndSwap until no concurrent writer
// intervened. It needs an [Atomic] store and fails with ErrUnsupported
// otherwise. An error from fn is returned as is and nothing is written.
func (t *Typed[T]) Update(ctx context.Context, key []byte, ttl time.Duration, fn func(cur T, found bool) (T, error)) (T, error) {
	var zero T
	for {
		old, err := t.store.Get(ctx, key)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return zero, err
		}
		var cur T
		if found {
			if cur, err = t.codec.Decode(old); err != nil {
				return zero, err
			}
		}
		next, err := fn(cur, found)
		if err != nil {
			return zero, err
		}
		b, err := t.codec.Append(nil, next)
		if err != nil {
			return zero, newOpError("encode", "typed", key, err)
		}
		ok, err := CompareAndSwap(ctx, t.store, key, old, b, ttl)
		if err != nil {
			return zero, err
		}
		if ok {
			return next, nil
		}
	}
}
