package embedded

import (
	"context"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// Commit applies b in one durable engine Update over every key b touches
// (condition keys, fence keys and written keys): its conditions are read
// and checked in the engine's atomic section, and its writes and fence
// raises applied only if all hold, all of them or none. A fence is raised
// to storekit.FenceValue(token, b.ID), with no expiry. A batch that its
// fence shows was applied already (same ID and token) returns nil without
// writing. Stats count the puts (fence raises included) and the deletes of
// live keys, as PutMany and DeleteMany do.
func (s *Store) Commit(ctx context.Context, b *strata.WriteBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ttls, bad, err := storekit.CheckBatch(b, s.cfg.DefaultTTL, s.cfg.MaxValueSize)
	if err != nil {
		return s.rejected("commit", bad, err)
	}
	if b.Empty() {
		return nil
	}
	w, err := s.encodeBatch(b, ttls)
	if err != nil {
		return s.rejected("commit", nil, err)
	}
	deleted := 0
	err = s.update(w.keys, Durable, func(tx Txn) error {
		var now time.Time
		err := storekit.EvalConditions(b, func(key []byte) ([]byte, bool, error) {
			d, err := s.getLive(tx, key, &now)
			return d.value, d.live, err
		})
		if err != nil {
			return err
		}
		deleted, err = w.apply(s, tx, b)
		return err
	})
	switch {
	case err == storekit.ErrAlreadyApplied:
		return nil
	case err != nil:
		if _, conflict := err.(*strata.ConflictError); conflict {
			return err
		}
		return s.fail("commit", nil, err)
	}
	s.stats.Put(w.puts, w.bytes)
	s.stats.Delete(deleted)
	return nil
}

// encodedBatch is a WriteBatch ready for an engine Update: every value
// behind its header, encoded before the atomic section.
type encodedBatch struct {
	keys   [][]byte // every key b touches, for the engine's locks
	raws   [][]byte // raws[i] is the stored form of b.Writes[i] (nil: a delete)
	fences [][]byte // fences[i] is the raised fence of b.Conditions[i] (nil: not a fence)
	puts   int      // puts and fence raises
	bytes  int      // their key and value bytes, for Stats
}

// encodeBatch checks b (whose TTLs CheckBatch resolved) against the
// engine's batch limit, then encodes its writes and its fence raises.
func (s *Store) encodeBatch(b *strata.WriteBatch, ttls []time.Duration) (*encodedBatch, error) {
	w := &encodedBatch{
		keys:   make([][]byte, 0, len(b.Conditions)+len(b.Writes)),
		raws:   make([][]byte, len(b.Writes)),
		fences: make([][]byte, len(b.Conditions)),
	}
	size, values := uint64(0), 0
	for _, wr := range b.Writes {
		w.keys = append(w.keys, wr.Key)
		size += uint64(len(wr.Key) + batchOverhead)
		if !wr.Delete {
			values += ttlval.Size(len(wr.Value))
			w.puts++
			w.bytes += len(wr.Key) + len(wr.Value)
		}
	}
	size += uint64(values)
	if err := s.checkBatchSize(size); err != nil {
		return nil, err
	}
	// One buffer for every value: one allocation, not one per write.
	buf := make([]byte, 0, values)
	now := s.clock.Now()
	for i, wr := range b.Writes {
		if !wr.Delete {
			start := len(buf)
			buf = ttlval.Append(buf, storekit.ExpiryMillis(now, ttls[i]), wr.Value)
			w.raws[i] = buf[start:len(buf):len(buf)]
		}
	}
	for i, c := range b.Conditions {
		w.keys = append(w.keys, c.Key)
		if c.Kind != strata.CondFence {
			continue
		}
		v := storekit.FenceValue(c.Token, b.ID)
		w.fences[i] = ttlval.Encode(0, v)
		w.puts++
		w.bytes += len(c.Key) + len(v)
		size += uint64(len(c.Key) + len(w.fences[i]) + batchOverhead)
	}
	return w, s.checkBatchSize(size)
}

// apply writes b through tx in order, then raises its fences, and returns
// how many of the deleted keys were live. A key deleted after an earlier
// write of the batch counts as that write left it.
func (w *encodedBatch) apply(s *Store, tx Txn, b *strata.WriteBatch) (deleted int, err error) {
	var (
		now     time.Time
		written map[string]bool // keys written so far: live after the write
	)
	if len(b.Writes) > 1 && hasDelete(b.Writes) {
		written = make(map[string]bool, len(b.Writes))
	}
	for i, wr := range b.Writes {
		if !wr.Delete {
			if written != nil {
				written[string(wr.Key)] = true
			}
			if err := tx.Put(wr.Key, w.raws[i]); err != nil {
				return 0, err
			}
			continue
		}
		live, seen := written[string(wr.Key)]
		if !seen && !s.cfg.BlindDeletes {
			d, err := s.getLive(tx, wr.Key, &now)
			live = err == nil && d.live // a damaged value is deleted as well
		} else if !seen {
			live = true // a blind delete counts, as Delete does
		}
		if written != nil {
			written[string(wr.Key)] = false
		}
		if live {
			deleted++
		}
		if err := tx.Delete(wr.Key); err != nil {
			return 0, err
		}
	}
	for i, raw := range w.fences {
		if raw != nil {
			if err := tx.Put(b.Conditions[i].Key, raw); err != nil {
				return 0, err
			}
		}
	}
	return deleted, nil
}

func hasDelete(writes []strata.Write) bool {
	for _, w := range writes {
		if w.Delete {
			return true
		}
	}
	return false
}
