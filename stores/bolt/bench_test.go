package bolt_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/stores/bolt"
)

// The benchmarks compare the store with bbolt driven directly, with the
// options the store gives bbolt, in the same run (see storetest.Bench):
// the figures to compare are the ratios. See docs/BENCHMARKS.md. Each
// benchmark stands beside its raw side.
var bench = storetest.Bench{Raw: rawDB, Open: open, FillBatch: 10000}

var benchBucket = []byte(bolt.DefaultBucket)

// raw is bbolt with the store's bucket: the raw side of the benchmarks.
type raw struct{ db *bbolt.DB }

// rawDB opens bbolt as the store does.
func rawDB(b *testing.B, noSync bool) storetest.RawDB {
	b.Helper()
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bbolt.Options{
		Timeout:         time.Second,
		NoSync:          noSync,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: bolt.DefaultInitialMmapSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(benchBucket); return err }); err != nil {
		b.Fatal(err)
	}
	return raw{db}
}

// BenchmarkStore is the conformance benchmark suite (no raw comparison).
func BenchmarkStore(b *testing.B) { bench.Store(b) }

// Fill writes the keys 10000 to a transaction.
func (r raw) Fill(b *testing.B, n int, value []byte) {
	b.Helper()
	for start := 0; start < n; start += 10000 {
		err := r.db.Update(func(tx *bbolt.Tx) error {
			bk := tx.Bucket(benchBucket)
			for i := start; i < min(n, start+10000); i++ {
				if err := bk.Put(storetest.BenchKey(i), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads 100-byte values of 10k keys. raw: bbolt View, Get and
// a copy. header: the same plus decoding the TTL header and checking the
// expiry against the clock. strata: Store.Get of keys without expiry;
// strata_ttl: of keys with a TTL (the clock is read).
func BenchmarkGet(b *testing.B) { bench.Get(b) }

// Get is a View, a Get and a copy.
func (r raw) Get(b *testing.B, key func(i int) []byte) func(i int) {
	return func(i int) {
		var out []byte
		err := r.db.View(func(tx *bbolt.Tx) error {
			out = append([]byte(nil), tx.Bucket(benchBucket).Get(key(i))...)
			return nil
		})
		if err != nil || len(out) != len(storetest.BenchValue) {
			b.Fatal(err)
		}
	}
}

// GetHeader decodes the value in the View, before the copy.
func (r raw) GetHeader(b *testing.B, key func(i int) []byte, clock strata.Clock) func(i int) {
	return func(i int) {
		var out []byte
		err := r.db.View(func(tx *bbolt.Tx) error {
			exp, v, err := ttlval.Decode(tx.Bucket(benchBucket).Get(key(i)))
			if err != nil || (exp != 0 && storekit.Expired(clock.Now(), exp)) {
				return fmt.Errorf("bad value: %v", err)
			}
			out = append([]byte(nil), v...)
			return nil
		})
		if err != nil || len(out) != len(storetest.BenchValue) {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut writes 100-byte values over 10k keys, one transaction each,
// with fsync (sync) and without (nosync).
func BenchmarkPut(b *testing.B) { bench.Put(b) }

// Put is one Update.
func (r raw) Put(b *testing.B, key func(i int) []byte) func(i int) {
	return func(i int) {
		err := r.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(benchBucket).Put(key(i), storetest.BenchValue)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutMany1000 writes batches of 1000 entries of 100 bytes, one
// transaction per batch, over 100k keys.
func BenchmarkPutMany1000(b *testing.B) { bench.PutMany1000(b) }

// PutMany is one Update.
func (r raw) PutMany(b *testing.B, batch, span int) func(i int) {
	return func(i int) {
		err := r.db.Update(func(tx *bbolt.Tx) error {
			bk := tx.Bucket(benchBucket)
			for j := range batch {
				if err := bk.Put(storetest.BenchKey((i*batch+j)%span), storetest.BenchValue); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommit100 commits batches of 100 entries of 100 bytes over 100k
// keys, synced and not, against a raw bbolt Update of the same 100 Puts
// (raw.PutMany): plain, and as a stream processor's unit of work with an
// offset condition and a fence (see storetest.Bench.Commit100).
func BenchmarkCommit100(b *testing.B) { bench.Commit100(b) }

// BenchmarkKeys100k lists 100k keys under a prefix, copying each key (the
// caller owns them). raw: one cursor in one read transaction; strata: Keys,
// which reads chunks of 128 keys doubling to 4096, one transaction each,
// and checks each expiry.
func BenchmarkKeys100k(b *testing.B) { bench.Keys100k(b) }

// Keys is one cursor in one View.
func (r raw) Keys(b *testing.B, n int) func(i int) {
	prefix := []byte("bench:")
	return func(int) {
		count := 0
		err := r.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(benchBucket).Cursor()
			for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
				sinkKey = append([]byte(nil), k...)
				count++
			}
			return nil
		})
		if err != nil || count != n {
			b.Fatal(count, err)
		}
	}
}

// BenchmarkPaired measures the same operations as BenchmarkGet, BenchmarkPut,
// BenchmarkPutMany1000 and BenchmarkKeys100k, with raw bbolt and the store
// alternating operation by operation (see storetest.Paired).
func BenchmarkPaired(b *testing.B) { bench.Paired(b) }

// sinkKey keeps the raw benchmarks' key copies from being optimized away.
var sinkKey []byte

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }
