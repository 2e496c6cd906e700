package embedded

import (
	"context"
	"sync"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// Put stores value under key in one durable engine Update.
func (s *Store) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ttl, err := s.checkWrite(ctx, key, value, ttl)
	if err != nil {
		return s.rejected("put", key, err)
	}
	op := putOps.Get().(*putOp)
	op.keys[0] = key
	op.raw = ttlval.Append(op.raw[:0], expiry(s.clock, ttl), value)
	err = s.update(op.keys[:], Durable, op.fn)
	op.release()
	if err != nil {
		return s.fail("put", key, err)
	}
	s.stats.Put(1, len(key)+len(value))
	return nil
}

// putOp is the engine Update of a Put, pooled so that a Put allocates
// nothing of its own: its key list, its encoded value and its fn are
// reused. The engine keeps none of them past Update.
type putOp struct {
	keys [1][]byte
	raw  []byte
	fn   func(tx Txn) error // op.apply, bound once
}

var putOps = sync.Pool{New: func() any {
	op := new(putOp)
	op.fn = op.apply
	return op
}}

// maxPooledValue bounds the encoded values a putOp keeps for reuse.
const maxPooledValue = 4 << 10

func (op *putOp) apply(tx Txn) error { return tx.Put(op.keys[0], op.raw) }

// release returns op to the pool, unless its buffer grew large.
func (op *putOp) release() {
	op.keys[0] = nil
	if cap(op.raw) <= maxPooledValue {
		putOps.Put(op)
	}
}

// Delete removes key in one durable engine Update. Stats count it only if
// the key was live, unless the engine deletes blind (Config.BlindDeletes).
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := checkKey(ctx, key); err != nil {
		return s.rejected("delete", key, err)
	}
	live := s.cfg.BlindDeletes
	err := s.update([][]byte{key}, Durable, func(tx Txn) error {
		if s.cfg.BlindDeletes {
			return tx.Delete(key)
		}
		raw, ok, err := tx.Get(key, nil)
		if err != nil || !ok {
			return err
		}
		// A damaged value is deleted as well: that is how a caller
		// repairs it.
		d, _ := decode(s.clock, new(time.Time), raw, ok)
		live = d.live
		return tx.Delete(key)
	})
	if err != nil {
		return s.fail("delete", key, err)
	}
	if live {
		s.stats.Delete(1)
	}
	return nil
}

// PutMany writes every entry in one durable engine Update: all of them or,
// on any error, none. Every entry is validated before anything is written,
// and the values are encoded before the Update, so that the engine's
// atomic section holds only the writes.
func (s *Store) PutMany(ctx context.Context, entries []strata.Entry) error {
	size, batch := 0, uint64(0)
	ttls := make([]time.Duration, len(entries))
	for i, e := range entries {
		ttl, err := s.checkWrite(ctx, e.Key, e.Value, e.TTL)
		if err != nil {
			return s.rejected("put_many", e.Key, err)
		}
		ttls[i] = ttl
		size += ttlval.Size(len(e.Value))
		batch += uint64(len(e.Key) + ttlval.Size(len(e.Value)) + batchOverhead)
	}
	if err := s.checkBatchSize(batch); err != nil {
		return s.rejected("put_many", nil, err)
	}
	if len(entries) == 0 {
		return nil
	}
	now := s.clock.Now()
	buf := make([]byte, 0, size)
	keys := make([][]byte, len(entries))
	raws := make([][]byte, len(entries))
	n := 0
	for i, e := range entries {
		start := len(buf)
		buf = ttlval.Append(buf, storekit.ExpiryMillis(now, ttls[i]), e.Value)
		keys[i], raws[i] = e.Key, buf[start:len(buf):len(buf)]
		n += len(e.Key) + len(e.Value)
	}
	var bad []byte
	err := s.update(keys, Durable, func(tx Txn) error {
		for i, k := range keys {
			if err := tx.Put(k, raws[i]); err != nil {
				bad = k
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.fail("put_many", bad, err)
	}
	s.stats.Put(len(entries), n)
	return nil
}

// DeleteMany removes keys in one durable engine Update and reports how
// many were live (absent, expired and repeated keys do not count).
func (s *Store) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	if k, err := checkKeys(ctx, keys); err != nil {
		return 0, s.rejected("delete_many", k, err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	deleted := 0
	var bad []byte
	err := s.update(keys, Durable, func(tx Txn) error {
		var err error
		deleted, bad, err = s.deleteKeys(tx, keys)
		return err
	})
	if err != nil {
		return 0, s.fail("delete_many", bad, err)
	}
	s.stats.Delete(deleted)
	return deleted, nil
}

// deleteKeys deletes keys through tx and returns how many of them were
// live, each key counted once; on failure, it returns the key that failed.
// Damaged values are deleted as well.
func (s *Store) deleteKeys(tx Txn, keys [][]byte) (deleted int, bad []byte, err error) {
	var (
		now  time.Time
		buf  []byte
		seen map[string]struct{}
	)
	if len(keys) > 1 {
		seen = make(map[string]struct{}, len(keys))
	}
	for _, k := range keys {
		if seen != nil {
			if _, dup := seen[string(k)]; dup {
				continue
			}
			seen[string(k)] = struct{}{}
		}
		raw, ok, err := tx.Get(k, buf[:0])
		if err != nil {
			return 0, k, err
		}
		if !ok {
			continue
		}
		buf = raw
		if d, _ := decode(s.clock, &now, raw, ok); d.live {
			deleted++
		}
		if err := tx.Delete(k); err != nil {
			return 0, k, err
		}
	}
	return deleted, nil, nil
}
