package embedded

import (
	"context"

	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// Sweep removes every expired key now, reading 1024 keys per engine Scan
// and deleting the expired ones of each chunk in one Lazy engine Update,
// and returns how many it removed. The background sweep calls it every
// Config.SweepInterval. It stops early with ctx's error.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	return sweepChunks(ctx, s.expiredFrom, s.removeExpired)
}

// expiredFrom reads up to chunkSize keys from from and returns the expired
// ones and where to resume (nil at the end). Values with a damaged header
// are left alone: a read reports them.
func (s *Store) expiredFrom(from []byte) (expired [][]byte, next []byte, err error) {
	if err := s.life.acquire(); err != nil {
		return nil, nil, err
	}
	defer s.life.release()
	now := s.clock.Now()
	n := 0
	err = s.eng.Scan(from, nil, func(k, raw []byte) bool {
		if n == chunkSize {
			next = clone(k)
			return false
		}
		n++
		if exp, err := ttlval.Expiry(raw); err == nil && storekit.Expired(now, exp) {
			expired = append(expired, clone(k))
		}
		return true
	})
	if err != nil {
		return nil, nil, s.fail("sweep", nil, err)
	}
	return expired, next, nil
}

// removeExpired deletes the keys that are still expired, in one engine
// Update over them: a key rewritten since it was read is kept. The
// deletions are Lazy: losing one changes nothing a reader can see.
func (s *Store) removeExpired(keys [][]byte) (int, error) {
	now := s.clock.Now()
	n := 0
	err := s.update(keys, Lazy, func(tx Txn) error {
		n = 0
		var buf []byte
		for _, k := range keys {
			raw, ok, err := tx.Get(k, buf[:0])
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			buf = raw
			if exp, err := ttlval.Expiry(raw); err != nil || !storekit.Expired(now, exp) {
				continue
			}
			if err := tx.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("sweep", nil, err)
	}
	return n, nil
}
