package embedded

import (
	"context"
	"iter"
	"sync"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// Snapshot returns a point-in-time view of the store: an engine Snapshot,
// held until the snapshot is closed. Close on the store closes every
// snapshot left open.
func (s *Store) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.life.acquire(); err != nil {
		return nil, err
	}
	defer s.life.release()
	esn, err := s.eng.Snapshot()
	if err != nil {
		return nil, s.fail("snapshot", nil, err)
	}
	sn := &snapshot{s: s, esn: esn}
	s.life.addSnapshot(sn)
	return sn, nil
}

// snapshot is an engine snapshot. Its methods take mu while they use esn,
// so that Close (the snapshot's or the store's) never races a reader.
type snapshot struct {
	s   *Store
	mu  sync.Mutex
	esn Snapshot // nil once closed
}

// Entries yields copies of the live entries under prefix, in key order,
// 1024 per engine Scan of the snapshot: the snapshot's lock is not held
// while the loop body runs.
func (sn *snapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[strata.Entry, error] {
	return chunkedEntries(ctx, prefix, sn.entriesFrom, sn.s.clock.Now)
}

// entriesFrom copies up to chunkSize live entries >= from under prefix and
// returns where to resume (nil when done).
func (sn *snapshot) entriesFrom(from, prefix []byte) (chunk []strata.Entry, exps []int64, next []byte, err error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.esn == nil {
		return nil, nil, nil, strata.ErrClosed
	}
	now := sn.s.clock.Now()
	var (
		bad  []byte
		derr error
	)
	err = sn.esn.Scan(from, prefix, func(k, raw []byte) bool {
		if len(chunk) == chunkSize {
			next = clone(k)
			return false
		}
		exp, v, err := ttlval.Decode(raw)
		if err != nil {
			bad, derr = clone(k), err
			return false
		}
		if storekit.Remaining(now, exp) != 0 {
			chunk = append(chunk, strata.Entry{Key: clone(k), Value: clone(v)})
			exps = append(exps, exp)
		}
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, nil, nil, sn.s.fail("snapshot_entries", bad, err)
	}
	return chunk, exps, next, nil
}

// Close releases the engine snapshot. It is safe to call more than once
// and after the store is closed.
func (sn *snapshot) Close() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.esn == nil {
		return nil
	}
	// Released under mu: the store's Close, which also takes mu, must not
	// close the engine while this is in flight.
	err := sn.esn.Close()
	sn.esn = nil
	sn.s.life.removeSnapshot(sn)
	return err
}
