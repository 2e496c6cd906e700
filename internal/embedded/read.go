package embedded

import (
	"context"
	"iter"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// Get returns a copy of the value under key, or strata.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, _, err := s.getWithTTL(ctx, "get", key)
	return v, err
}

// GetWithTTL returns a copy of the value under key and the time it has
// left (strata.NoExpiry if none), from one read.
func (s *Store) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	return s.getWithTTL(ctx, "get_with_ttl", key)
}

func (s *Store) getWithTTL(ctx context.Context, op string, key []byte) ([]byte, time.Duration, error) {
	d, now, err := s.read(ctx, op, key)
	if err != nil {
		return nil, 0, err
	}
	if !d.live {
		s.stats.Miss()
		return nil, 0, strata.ErrNotFound
	}
	s.stats.Hit(len(d.value))
	return d.value, storekit.Remaining(now, d.exp), nil
}

// TTL returns the time key has left, strata.NoExpiry, or
// strata.ErrNotFound.
func (s *Store) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	d, now, err := s.read(ctx, "ttl", key)
	switch {
	case err != nil:
		return 0, err
	case !d.live:
		return 0, strata.ErrNotFound
	}
	return storekit.Remaining(now, d.exp), nil
}

// read checks and reads key for op. The value it returns is the caller's;
// now is the time liveness was decided at (zero for a key without expiry).
func (s *Store) read(ctx context.Context, op string, key []byte) (d decoded, now time.Time, err error) {
	if err := checkKey(ctx, key); err != nil {
		return decoded{}, now, s.rejected(op, key, err)
	}
	if err := s.life.acquire(); err != nil {
		return decoded{}, now, err
	}
	raw, ok, err := s.eng.Get(key, nil)
	s.life.release()
	if err == nil {
		d, err = decode(s.clock, &now, raw, ok)
	}
	if err != nil {
		return decoded{}, now, s.fail(op, key, err)
	}
	return d, now, nil
}

// GetMany returns copies of the values of keys, nil for each absent or
// expired key, read in one engine View.
func (s *Store) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	err := s.readMany(ctx, "get_many", keys, func(i int, d decoded, _ time.Time) {
		out[i] = d.value
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readMany checks keys and reads them for op in one engine View, calling
// found with each live one (its value is the caller's) and the time
// liveness was decided at, and counts the reads.
func (s *Store) readMany(ctx context.Context, op string, keys [][]byte, found func(i int, d decoded, now time.Time)) error {
	if k, err := checkKeys(ctx, keys); err != nil {
		return s.rejected(op, k, err)
	}
	if err := s.life.acquire(); err != nil {
		return err
	}
	hits, n := 0, 0
	var (
		bad []byte
		now time.Time
	)
	err := s.eng.View(func(r Reader) error {
		for i, k := range keys {
			raw, ok, err := r.Get(k, nil)
			if err != nil {
				bad = k
				return err
			}
			d, err := decode(s.clock, &now, raw, ok)
			if err != nil {
				bad = k
				return err
			}
			if d.live {
				found(i, d, now)
				hits++
				n += len(d.value)
			}
		}
		return nil
	})
	s.life.release()
	if err != nil {
		return s.fail(op, bad, err)
	}
	s.stats.Reads(len(keys), hits, n)
	return nil
}

// Keys yields the live keys that start with prefix, in byte order, each
// exactly once, in chunks of 128 keys doubling to 4096, one engine Scan per
// chunk: no read is open while the loop body runs.
func (s *Store) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	return chunkedKeys(ctx, prefix, s.keysFrom)
}

// keysFrom appends to chunk copies of up to limit live keys >= from that
// start with prefix, and returns the key to resume from (nil when there is
// no more).
func (s *Store) keysFrom(chunk [][]byte, from, prefix []byte, limit int) (_ [][]byte, next []byte, err error) {
	if err := s.life.acquire(); err != nil {
		return nil, nil, err
	}
	defer s.life.release()
	now := s.clock.Now()
	var (
		bad, resume []byte
		derr        error
		slab        keySlab
	)
	err = s.eng.Scan(from, prefix, func(k, raw []byte) bool {
		if len(chunk) == limit {
			resume = clone(k)
			return false
		}
		exp, err := ttlval.Expiry(raw)
		if err != nil {
			bad, derr = clone(k), err
			return false
		}
		if exp == 0 || !storekit.Expired(now, exp) {
			chunk = append(chunk, slab.copy(k))
		}
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, nil, s.fail("keys", bad, err)
	}
	return chunk, resume, nil
}

// GetManyWithTTL returns, for each key, an entry with the key, a copy of
// its value (nil when absent or expired) and the time it has left, read in
// one engine View.
func (s *Store) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	out := make([]strata.Entry, len(keys))
	for i, k := range keys {
		out[i].Key = k
	}
	err := s.readMany(ctx, "get_many_with_ttl", keys, func(i int, d decoded, now time.Time) {
		out[i].Value, out[i].TTL = d.value, storekit.Remaining(now, d.exp)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
