package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/embedded"
)

// engine is the Pebble database under a Store. Reads go to the database
// directly; every write is one batch, committed under the striped locks of
// its keys.
type engine struct {
	db     *pebbledb.DB
	wo     *pebbledb.WriteOptions
	locks  *keyLocks
	events *eventCounts
	// fsCloser stops the disk-health checker, after db is closed.
	fsCloser io.Closer
}

var _ embedded.Engine = (*engine)(nil)

// classify marks Pebble's corruption errors as strata.ErrCorrupt.
func classify(err error) error {
	if err != nil && pebbledb.IsCorruptionError(err) && !errors.Is(err, strata.ErrCorrupt) {
		return fmt.Errorf("%w: %w", strata.ErrCorrupt, err)
	}
	return err
}

// Get copies the value of key from the database.
func (e *engine) Get(key, dst []byte) ([]byte, bool, error) { return get(e.db, key, dst) }

// gettable is what get reads: the database or a snapshot.
type gettable interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// get copies the value of key from r.
func get(r gettable, key, dst []byte) ([]byte, bool, error) {
	raw, closer, err := r.Get(key)
	switch {
	case errors.Is(err, pebbledb.ErrNotFound):
		return dst, false, nil
	case err != nil:
		return dst, false, classify(err)
	}
	dst = append(dst, raw...)
	closer.Close()
	return dst, true, nil
}

// View reads from a Pebble snapshot taken for it: its reads see one
// instant, so a batch read never sees part of a committed batch.
func (e *engine) View(fn func(r embedded.Reader) error) error {
	sn := snapshot{e.db.NewSnapshot()}
	defer sn.Close()
	return fn(sn)
}

// Scan reads through one iterator bounded by prefix.
func (e *engine) Scan(from, prefix []byte, fn func(key, raw []byte) bool) error {
	return scan(e.db, from, prefix, fn)
}

// batch is the batch of an Update. Its reads are the database's: they do
// not see the batch. Batches are pooled (with Pebble's own batch inside
// them released each time): an Update allocates none.
type batch struct {
	*engine
	b *pebbledb.Batch
}

var batches = sync.Pool{New: func() any { return new(batch) }}

// Put adds raw under key to the batch, which copies both.
func (t *batch) Put(key, raw []byte) error { return t.b.Set(key, raw, nil) }

// Delete adds the deletion of key to the batch.
func (t *batch) Delete(key []byte) error { return t.b.Delete(key, nil) }

// Update locks keys (see keyLocks), runs fn and commits the batch it
// built, synced unless the store has NoSync or d is Lazy, and then unlocks:
// no other Update of those keys commits between fn's reads and this
// commit, and a reader sees the whole batch or none of it.
func (e *engine) Update(keys [][]byte, d embedded.Durability, fn func(tx embedded.Txn) error) error {
	h := e.locks.lock(keys)
	defer e.locks.unlock(&h)
	t := batches.Get().(*batch)
	t.engine, t.b = e, e.db.NewBatch()
	defer func() {
		t.b.Close()
		t.engine, t.b = nil, nil
		batches.Put(t)
	}()
	b := t.b
	if err := fn(t); err != nil || b.Empty() {
		return err
	}
	wo := e.wo
	if d == embedded.Lazy {
		wo = pebbledb.NoSync
	}
	return classify(b.Commit(wo))
}

// snapshot is a Pebble snapshot.
type snapshot struct{ snap *pebbledb.Snapshot }

// Snapshot takes a Pebble snapshot. While it is open, compactions keep the
// versions it sees.
func (e *engine) Snapshot() (embedded.Snapshot, error) {
	return snapshot{e.db.NewSnapshot()}, nil
}

// Get copies the value of key in the snapshot.
func (sn snapshot) Get(key, dst []byte) ([]byte, bool, error) { return get(sn.snap, key, dst) }

// Scan reads the snapshot through one iterator bounded by prefix.
func (sn snapshot) Scan(from, prefix []byte, fn func(key, raw []byte) bool) error {
	return scan(sn.snap, from, prefix, fn)
}

// Close releases the snapshot.
func (sn snapshot) Close() error { return sn.snap.Close() }

// iterable is what scan reads: the database or a snapshot.
type iterable interface {
	NewIter(*pebbledb.IterOptions) (*pebbledb.Iterator, error)
}

// scan iterates over the keys >= from under prefix in r, calling fn until
// it returns false.
func scan(r iterable, from, prefix []byte, fn func(key, raw []byte) bool) (err error) {
	if len(from) == 0 {
		// Pebble's invariant checks (on in race builds) index a non-nil
		// empty seek key.
		from = nil
	}
	it, err := r.NewIter(&pebbledb.IterOptions{LowerBound: from, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return classify(err)
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = classify(cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			break
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return classify(err)
		}
		if !fn(k, raw) {
			return nil
		}
	}
	return classify(it.Error())
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix, or nil if there is none (prefix empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := append([]byte(nil), prefix[:i+1]...)
			end[i]++
			return end
		}
	}
	return nil
}

// gaugeHelp explains each reading of Gauges.
var gaugeHelp = map[string]string{
	"disk_usage_bytes":         "Bytes the Pebble database takes on disk: tables, write-ahead log and manifests.",
	"memtable_size_bytes":      "Bytes held in Pebble's memtables, the writes not yet flushed to tables.",
	"memtables":                "Memtables Pebble holds, those being flushed included.",
	"wal_size_bytes":           "Bytes of Pebble's live write-ahead log.",
	"flushes_total":            "Memtable flushes Pebble has completed.",
	"compactions_total":        "Compactions Pebble has completed.",
	"compaction_debt_bytes":    "Bytes Pebble estimates compactions must still rewrite to bring the LSM tree into shape; a growing debt means writes outpace compaction.",
	"compactions_in_progress":  "Compactions Pebble is running now.",
	"read_amplification":       "Sub-levels a Pebble read may have to visit; high values slow reads.",
	"sstables":                 "Live table files in the Pebble database.",
	"block_cache_size_bytes":   "Bytes held in Pebble's block cache.",
	"block_cache_hits_total":   "Reads Pebble's block cache answered.",
	"block_cache_misses_total": "Reads that missed Pebble's block cache and went to disk.",
	"snapshots_open":           "Pebble snapshots open now, strata's own included; open snapshots keep old versions from being compacted away.",
	"tombstones":               "Point deletions Pebble has not yet compacted away.",
	"corruptions_total":        "On-disk corruptions Pebble reported.",
	"background_errors_total":  "Pebble flushes and compactions that failed.",
	"disk_slow_total":          "Pebble disk operations that took longer than 5 seconds.",
}

// Gauges reads the Pebble metrics that matter most (see the package
// documentation).
func (e *engine) Gauges() map[string]float64 {
	m := e.db.Metrics()
	total := m.Total()
	return map[string]float64{
		"disk_usage_bytes":         float64(m.DiskSpaceUsage()),
		"memtable_size_bytes":      float64(m.MemTable.Size),
		"memtables":                float64(m.MemTable.Count),
		"wal_size_bytes":           float64(m.WAL.Size),
		"flushes_total":            float64(m.Flush.Count),
		"compactions_total":        float64(m.Compact.Count),
		"compaction_debt_bytes":    float64(m.Compact.EstimatedDebt),
		"compactions_in_progress":  float64(m.Compact.NumInProgress),
		"read_amplification":       float64(m.ReadAmp()),
		"sstables":                 float64(total.TablesCount),
		"block_cache_size_bytes":   float64(m.BlockCache.Size),
		"block_cache_hits_total":   float64(m.BlockCache.Hits),
		"block_cache_misses_total": float64(m.BlockCache.Misses),
		"snapshots_open":           float64(m.Snapshots.Count),
		"tombstones":               float64(m.Keys.TombstoneCount),
		"corruptions_total":        float64(e.events.corruptions.Load()),
		"background_errors_total":  float64(e.events.backgroundErrors.Load()),
		"disk_slow_total":          float64(e.events.diskSlow.Load()),
	}
}

// Close closes the database, then stops the disk-health checker.
func (e *engine) Close() error {
	err := e.db.Close()
	e.fsCloser.Close()
	return err
}
