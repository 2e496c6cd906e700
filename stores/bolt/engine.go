package bolt

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/embedded"
)

// engine is the bbolt file under a Store: one bucket of it, read in read
// transactions and written in read-write transactions, of which bbolt runs
// one at a time.
type engine struct {
	db     *bbolt.DB
	bucket []byte
	path   string
	snaps  atomic.Int64 // open snapshots, for the snapshots_open gauge
}

var _ embedded.Engine = (*engine)(nil)

// errNoBucket is returned if the bucket disappeared (another program
// deleted it while the file was closed, or the file was replaced).
var errNoBucket = fmt.Errorf("%w: the store's bucket is missing", strata.ErrCorrupt)

func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: bbolt failed reading the file: %v", strata.ErrCorrupt, r)
	}
}

// view runs fn in a read transaction on the bucket. A panic in bbolt (it
// panics on damaged pages) becomes an error matching strata.ErrCorrupt.
func (e *engine) view(fn func(b *bbolt.Bucket) error) (err error) {
	defer recoverCorrupt(&err)
	return e.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(e.bucket)
		if b == nil {
			return errNoBucket
		}
		return fn(b)
	})
}

// reader reads a bucket in an open transaction.
type reader struct{ b *bbolt.Bucket }

// Get copies the value of key in the reader's transaction. A nested
// bucket reads as absent.
func (r reader) Get(key, dst []byte) ([]byte, bool, error) {
	v := r.b.Get(key)
	if v == nil {
		return dst, false, nil
	}
	return append(dst, v...), true, nil
}

// Get reads key in its own read transaction.
func (e *engine) Get(key, dst []byte) (raw []byte, ok bool, err error) {
	err = e.view(func(b *bbolt.Bucket) error {
		raw, ok, _ = reader{b}.Get(key, dst)
		return nil
	})
	return raw, ok, err
}

// View runs fn in one read transaction: its reads see one instant.
func (e *engine) View(fn func(r embedded.Reader) error) error {
	return e.view(func(b *bbolt.Bucket) error { return fn(reader{b}) })
}

// Scan runs a cursor in one read transaction.
func (e *engine) Scan(from, prefix []byte, fn func(key, raw []byte) bool) error {
	return e.view(func(b *bbolt.Bucket) error {
		scan(b, from, prefix, fn)
		return nil
	})
}

func scan(b *bbolt.Bucket, from, prefix []byte, fn func(key, raw []byte) bool) {
	c := b.Cursor()
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if !fn(k, v) {
			return
		}
	}
}

// txn is a read-write transaction on the bucket. Its reads see its own
// writes.
type txn struct {
	reader
	dirty bool
}

// Put stores raw, which bbolt keeps until the transaction ends.
func (t *txn) Put(key, raw []byte) error {
	t.dirty = true
	return t.b.Put(key, raw)
}

// Delete removes key.
func (t *txn) Delete(key []byte) error {
	t.dirty = true
	return t.b.Delete(key)
}

// Update runs fn in one read-write transaction: bbolt runs one at a time,
// so keys need no locks. The commit fsyncs unless the file was opened with
// NoSync, whatever d says (bbolt decides per file, not per transaction). A
// transaction that wrote nothing is rolled back, with no fsync.
func (e *engine) Update(_ [][]byte, _ embedded.Durability, fn func(tx embedded.Txn) error) (err error) {
	defer recoverCorrupt(&err)
	tx, err := e.db.Begin(true)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	b := tx.Bucket(e.bucket)
	if b == nil {
		return errNoBucket
	}
	t := &txn{reader: reader{b}}
	if err := fn(t); err != nil || !t.dirty {
		return err
	}
	return tx.Commit()
}

// snapshot is a read transaction held open.
type snapshot struct {
	e  *engine
	tx *bbolt.Tx
	b  *bbolt.Bucket
}

// Snapshot begins a read transaction. While it is open, a write that
// grows the file past its mapping waits for it (see the package
// documentation).
func (e *engine) Snapshot() (embedded.Snapshot, error) {
	tx, err := e.db.Begin(false)
	if err != nil {
		return nil, err
	}
	b := tx.Bucket(e.bucket)
	if b == nil {
		tx.Rollback()
		return nil, errNoBucket
	}
	e.snaps.Add(1)
	return &snapshot{e: e, tx: tx, b: b}, nil
}

// Scan runs a cursor in the snapshot's transaction.
func (sn *snapshot) Scan(from, prefix []byte, fn func(key, raw []byte) bool) (err error) {
	defer recoverCorrupt(&err)
	scan(sn.b, from, prefix, fn)
	return nil
}

// Close ends the snapshot's transaction.
func (sn *snapshot) Close() error {
	sn.e.snaps.Add(-1)
	return sn.tx.Rollback()
}

// gaugeHelp explains each reading of Gauges.
var gaugeHelp = map[string]string{
	"file_size_bytes":        "Size of the bbolt data file in bytes.",
	"read_tx_total":          "Read transactions bbolt has started.",
	"read_tx_open":           "bbolt read transactions open now, snapshots included; they keep freed pages from being reused.",
	"free_pages":             "Pages on bbolt's freelist, ready for reuse.",
	"pending_pages":          "Pages bbolt has freed that an open reader may still see, so not yet reusable.",
	"free_alloc_bytes":       "Bytes in bbolt's free pages.",
	"freelist_inuse_bytes":   "Bytes bbolt's freelist itself takes.",
	"tx_page_alloc_bytes":    "Bytes bbolt's write transactions have allocated for pages.",
	"tx_node_splits_total":   "B+tree node splits bbolt's write transactions made.",
	"tx_rebalances_total":    "B+tree node rebalances bbolt's write transactions made.",
	"tx_writes_total":        "Pages bbolt's write transactions wrote to disk.",
	"tx_write_seconds_total": "Time bbolt's write transactions spent writing pages to disk.",
	"tx_spill_seconds_total": "Time bbolt's write transactions spent spilling nodes into pages.",
	"snapshots_open":         "strata snapshots of the bbolt store not yet closed.",
}

// Gauges reads bbolt's statistics (see the package documentation).
func (e *engine) Gauges() map[string]float64 {
	ds := e.db.Stats()
	tx := &ds.TxStats
	g := map[string]float64{
		"read_tx_total":          float64(ds.TxN),
		"read_tx_open":           float64(ds.OpenTxN),
		"free_pages":             float64(ds.FreePageN),
		"pending_pages":          float64(ds.PendingPageN),
		"free_alloc_bytes":       float64(ds.FreeAlloc),
		"freelist_inuse_bytes":   float64(ds.FreelistInuse),
		"tx_page_alloc_bytes":    float64(tx.GetPageAlloc()),
		"tx_node_splits_total":   float64(tx.GetSplit()),
		"tx_rebalances_total":    float64(tx.GetRebalance()),
		"tx_writes_total":        float64(tx.GetWrite()),
		"tx_write_seconds_total": tx.GetWriteTime().Seconds(),
		"tx_spill_seconds_total": tx.GetSpillTime().Seconds(),
		"snapshots_open":         float64(e.snaps.Load()),
	}
	if fi, err := os.Stat(e.path); err == nil {
		g["file_size_bytes"] = float64(fi.Size())
	}
	return g
}

// Close closes the file.
func (e *engine) Close() error { return e.db.Close() }
