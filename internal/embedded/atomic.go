package embedded

import (
	"bytes"
	"context"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
)

// The atomic operations are each one engine Update over their key: the
// read that decides and the write happen in the engine's atomic section.

// PutIfAbsent stores value only if key is absent or expired.
func (s *Store) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.checkWrite(ctx, key, value, ttl)
	if err != nil {
		return false, s.rejected("put_if_absent", key, err)
	}
	raw := ttlval.Encode(expiry(s.clock, ttl), value)
	stored := false
	err = s.update([][]byte{key}, Durable, func(tx Txn) error {
		d, err := s.getLive(tx, key, new(time.Time))
		if err != nil || d.live {
			return err
		}
		stored = true
		return tx.Put(key, raw)
	})
	if err != nil {
		return false, s.fail("put_if_absent", key, err)
	}
	if stored {
		s.stats.Put(1, len(key)+len(value))
	}
	return stored, nil
}

// GetAndDelete removes key and returns its value, or strata.ErrNotFound.
// An expired key is removed as well.
func (s *Store) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkKey(ctx, key); err != nil {
		return nil, s.rejected("get_and_delete", key, err)
	}
	var out []byte
	err := s.update([][]byte{key}, Durable, func(tx Txn) error {
		raw, ok, err := tx.Get(key, nil)
		if err != nil || !ok {
			return err
		}
		d, err := decode(s.clock, new(time.Time), raw, ok)
		if err != nil {
			return err
		}
		out = d.value // nil if expired: dead weight, deleted all the same
		return tx.Delete(key)
	})
	switch {
	case err != nil:
		return nil, s.fail("get_and_delete", key, err)
	case out == nil:
		s.stats.Miss()
		return nil, strata.ErrNotFound
	}
	s.stats.Hit(len(out))
	s.stats.Delete(1)
	return out, nil
}

// CompareAndSwap stores new (with ttl) only if the current value equals old
// (old == nil: only if the key is absent or expired).
func (s *Store) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.checkWrite(ctx, key, new, ttl)
	if err != nil {
		return false, s.rejected("compare_and_swap", key, err)
	}
	raw := ttlval.Encode(expiry(s.clock, ttl), new)
	swapped := false
	err = s.update([][]byte{key}, Durable, func(tx Txn) error {
		var now time.Time
		d, err := s.getLive(tx, key, &now)
		if err != nil || d.live != (old != nil) || (d.live && !bytes.Equal(d.value, old)) {
			return err
		}
		swapped = true
		return tx.Put(key, raw)
	})
	if err != nil {
		return false, s.fail("compare_and_swap", key, err)
	}
	if swapped {
		s.stats.Put(1, len(key)+len(new))
	}
	return swapped, nil
}
