package pebble_test

import (
	"path/filepath"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/stores/pebble"
)

// The benchmarks compare the store with Pebble driven directly, with the
// options the store gives Pebble (cache size, sync), in the same run (see
// storetest.Bench): the figures to compare are the ratios. See
// docs/BENCHMARKS.md. Each benchmark stands beside its raw side.
var bench = storetest.Bench{Raw: rawDB, Open: open, FillBatch: 1000}

// raw is Pebble with the store's write options: the raw side of the
// benchmarks.
type raw struct {
	db *pebbledb.DB
	wo *pebbledb.WriteOptions
}

// rawDB opens Pebble with the store's cache size.
func rawDB(b *testing.B, noSync bool) storetest.RawDB {
	b.Helper()
	db, err := pebbledb.Open(filepath.Join(b.TempDir(), "raw"), &pebbledb.Options{CacheSize: pebble.DefaultCacheSize, Logger: quiet{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	wo := pebbledb.Sync
	if noSync {
		wo = pebbledb.NoSync
	}
	return raw{db, wo}
}

// Fill writes the keys in batches of 1000, as the store is filled.
func (r raw) Fill(b *testing.B, n int, value []byte) {
	b.Helper()
	for start := 0; start < n; start += 1000 {
		batch := r.db.NewBatch()
		for i := start; i < min(n, start+1000); i++ {
			batch.Set(storetest.BenchKey(i), value, nil)
		}
		if err := batch.Commit(pebbledb.NoSync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

// BenchmarkGet reads 100-byte values of 10k keys (in the memtable). raw:
// DB.Get and a copy. header: the same plus decoding the TTL header and
// checking the expiry against the clock. strata: Store.Get of keys without
// expiry; strata_ttl: of keys with a TTL (the clock is read).
func BenchmarkGet(b *testing.B) { bench.Get(b) }

// Get is a DB.Get and a copy.
func (r raw) Get(b *testing.B, key func(i int) []byte) func(i int) {
	return func(i int) {
		v, closer, err := r.db.Get(key(i))
		if err != nil {
			b.Fatal(err)
		}
		out := append([]byte(nil), v...)
		closer.Close()
		if len(out) != len(storetest.BenchValue) {
			b.Fatal(len(out))
		}
	}
}

// GetHeader decodes the value before the copy.
func (r raw) GetHeader(b *testing.B, key func(i int) []byte, clock strata.Clock) func(i int) {
	return func(i int) {
		raw, closer, err := r.db.Get(key(i))
		if err != nil {
			b.Fatal(err)
		}
		exp, v, err := ttlval.Decode(raw)
		if err != nil || (exp != 0 && storekit.Expired(clock.Now(), exp)) {
			b.Fatal(err)
		}
		out := append([]byte(nil), v...)
		closer.Close()
		if len(out) != len(storetest.BenchValue) {
			b.Fatal(len(out))
		}
	}
}

// BenchmarkPut writes 100-byte values over 10k keys, one write each, with
// the WAL fsynced (sync) and not (nosync).
func BenchmarkPut(b *testing.B) { bench.Put(b) }

// Put is one DB.Set.
func (r raw) Put(b *testing.B, key func(i int) []byte) func(i int) {
	return func(i int) {
		if err := r.db.Set(key(i), storetest.BenchValue, r.wo); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutMany1000 writes batches of 1000 entries of 100 bytes, one
// batch each, over 100k keys.
func BenchmarkPutMany1000(b *testing.B) { bench.PutMany1000(b) }

// PutMany is one batch.
func (r raw) PutMany(b *testing.B, batch, span int) func(i int) {
	return func(i int) {
		bt := r.db.NewBatch()
		for j := range batch {
			bt.Set(storetest.BenchKey((i*batch+j)%span), storetest.BenchValue, nil)
		}
		if err := bt.Commit(r.wo); err != nil {
			b.Fatal(err)
		}
		bt.Close()
	}
}

// BenchmarkCommit100 commits batches of 100 entries of 100 bytes over 100k
// keys, synced and not, against a raw Pebble batch of the same 100 Sets
// committed with the same write options (raw.PutMany): plain, and as a
// stream processor's unit of work with an offset condition and a fence
// (see storetest.Bench.Commit100).
func BenchmarkCommit100(b *testing.B) { bench.Commit100(b) }

// BenchmarkKeys100k lists 100k keys under a prefix, copying each key (the
// caller owns them). raw: one bounded iterator; strata: Keys, which reads
// chunks of 128 keys doubling to 4096, one iterator each, and checks each
// expiry.
func BenchmarkKeys100k(b *testing.B) { bench.Keys100k(b) }

// Keys is one iterator bounded by the prefix.
func (r raw) Keys(b *testing.B, n int) func(i int) {
	prefix, upper := []byte("bench:"), []byte("bench;")
	return func(int) {
		it, err := r.db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: upper})
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		for valid := it.First(); valid; valid = it.Next() {
			sinkKey = append([]byte(nil), it.Key()...)
			count++
		}
		if err := it.Close(); err != nil || count != n {
			b.Fatal(count, err)
		}
	}
}

// BenchmarkPaired measures the same operations as BenchmarkGet, BenchmarkPut,
// BenchmarkPutMany1000 and BenchmarkKeys100k, with raw Pebble and the store
// alternating operation by operation (see storetest.Paired).
func BenchmarkPaired(b *testing.B) { bench.Paired(b) }

// BenchmarkStore is the conformance benchmark suite (no raw comparison).
func BenchmarkStore(b *testing.B) { bench.Store(b) }

// sinkKey keeps the raw benchmarks' key copies from being optimized away.
var sinkKey []byte
