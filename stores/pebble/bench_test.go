package pebble_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/stores/pebble"
)

// Every benchmark here has a sub-benchmark "raw" that does the same work
// on Pebble directly, with the options the store gives Pebble (cache size,
// sync), in the same run: the figures to compare are the ratios. See
// docs/BENCHMARKS.md.

const benchKeys = 10000

var benchValue = make([]byte, 100)

func benchKey(i int) []byte { return fmt.Appendf(nil, "bench:%08d", i) }

func writeOpts(noSync bool) *pebbledb.WriteOptions {
	if noSync {
		return pebbledb.NoSync
	}
	return pebbledb.Sync
}

// rawDB opens Pebble with the store's cache size.
func rawDB(b *testing.B) *pebbledb.DB {
	b.Helper()
	db, err := pebbledb.Open(filepath.Join(b.TempDir(), "raw"), &pebbledb.Options{CacheSize: pebble.DefaultCacheSize, Logger: quiet{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// rawFill writes n keys with value (as given: raw or with a header), in
// batches of 1000 as storeFill does.
func rawFill(b *testing.B, db *pebbledb.DB, n int, value []byte) {
	b.Helper()
	for start := 0; start < n; start += 1000 {
		batch := db.NewBatch()
		for i := start; i < min(n, start+1000); i++ {
			batch.Set(benchKey(i), value, nil)
		}
		if err := batch.Commit(pebbledb.NoSync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

func storeDB(b *testing.B, noSync bool) *pebble.Store {
	b.Helper()
	s, err := pebble.Open(filepath.Join(b.TempDir(), "strata"), &pebble.Options{NoSync: noSync, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func storeFill(b *testing.B, s *pebble.Store, n int, ttl time.Duration) {
	b.Helper()
	for start := 0; start < n; start += 1000 {
		entries := make([]strata.Entry, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			entries = append(entries, strata.Entry{Key: benchKey(i), Value: benchValue, TTL: ttl})
		}
		if err := s.PutMany(b.Context(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads 100-byte values of 10k keys (in the memtable). raw:
// DB.Get and a copy. header: the same plus decoding the TTL header and
// checking the expiry against the clock. strata: Store.Get of keys without
// expiry; strata_ttl: of keys with a TTL (the clock is read).
func BenchmarkGet(b *testing.B) {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	b.Run("raw", func(b *testing.B) {
		db := rawDB(b)
		rawFill(b, db, benchKeys, benchValue)
		i := 0
		cpuLoop(b, func() {
			v, closer, err := db.Get(keys[i%benchKeys])
			if err != nil {
				b.Fatal(err)
			}
			out := append([]byte(nil), v...)
			closer.Close()
			if len(out) != len(benchValue) {
				b.Fatal(len(out))
			}
			i++
		})
	})
	b.Run("header", func(b *testing.B) {
		db := rawDB(b)
		rawFill(b, db, benchKeys, ttlval.Encode(time.Now().Add(time.Hour).UnixMilli(), benchValue))
		var clock strata.Clock = strata.SystemClock{}
		i := 0
		cpuLoop(b, func() {
			raw, closer, err := db.Get(keys[i%benchKeys])
			if err != nil {
				b.Fatal(err)
			}
			exp, v, err := ttlval.Decode(raw)
			if err != nil || strata.Expired(clock.Now(), exp) {
				b.Fatal(err)
			}
			out := append([]byte(nil), v...)
			closer.Close()
			if len(out) != len(benchValue) {
				b.Fatal(len(out))
			}
			i++
		})
	})
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"strata", strata.NoExpiry}, {"strata_ttl", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			s := storeDB(b, true)
			storeFill(b, s, benchKeys, c.ttl)
			ctx := b.Context()
			i := 0
			cpuLoop(b, func() {
				v, err := s.Get(ctx, keys[i%benchKeys])
				if err != nil || len(v) != len(benchValue) {
					b.Fatal(err)
				}
				i++
			})
		})
	}
}

// BenchmarkPut writes 100-byte values over 10k keys, one write each, with
// the WAL fsynced (sync) and not (nosync).
func BenchmarkPut(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := rawDB(b)
			wo := writeOpts(mode.noSync)
			i := 0
			cpuLoop(b, func() {
				if err := db.Set(benchKey(i%benchKeys), benchValue, wo); err != nil {
					b.Fatal(err)
				}
				i++
			})
		})
		b.Run(mode.name+"/strata", func(b *testing.B) {
			s := storeDB(b, mode.noSync)
			ctx := b.Context()
			i := 0
			cpuLoop(b, func() {
				if err := s.Put(ctx, benchKey(i%benchKeys), benchValue, 0); err != nil {
					b.Fatal(err)
				}
				i++
			})
		})
	}
}

// BenchmarkPutMany1000 writes batches of 1000 entries of 100 bytes, one
// batch each, over 100k keys.
func BenchmarkPutMany1000(b *testing.B) {
	const batch, span = 1000, 100000
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := rawDB(b)
			wo := writeOpts(mode.noSync)
			i := 0
			cpuLoop(b, func() {
				bt := db.NewBatch()
				for j := range batch {
					bt.Set(benchKey((i*batch+j)%span), benchValue, nil)
				}
				if err := bt.Commit(wo); err != nil {
					b.Fatal(err)
				}
				bt.Close()
				i++
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
		})
		b.Run(mode.name+"/strata", func(b *testing.B) {
			s := storeDB(b, mode.noSync)
			ctx := b.Context()
			entries := make([]strata.Entry, batch)
			i := 0
			cpuLoop(b, func() {
				for j := range entries {
					entries[j] = strata.Entry{Key: benchKey((i*batch + j) % span), Value: benchValue}
				}
				if err := s.PutMany(ctx, entries); err != nil {
					b.Fatal(err)
				}
				i++
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// cpuTime returns the CPU time this process has used (user and system,
// every thread: background compaction and GC count).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuLoop runs body in a b.Loop and reports, besides the wall time, the
// CPU time per operation ("cpu-ns/op"): on a machine shared with other
// work, it moves much less than the wall time.
func cpuLoop(b *testing.B, body func()) {
	var start time.Duration
	first := true
	for b.Loop() {
		if first {
			start, first = cpuTime(), false
		}
		body()
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// sinkKey keeps the raw benchmarks' key copies from being optimized away.
var sinkKey []byte

// BenchmarkKeys100k lists 100k keys under a prefix, copying each key (the
// caller owns them). raw: one bounded iterator; strata: Keys, which reads
// chunks of 1024 keys per iterator and checks each expiry.
func BenchmarkKeys100k(b *testing.B) {
	const n = 100000
	prefix := []byte("bench:")
	upper := []byte("bench;")
	b.Run("raw", func(b *testing.B) {
		db := rawDB(b)
		rawFill(b, db, n, benchValue)
		cpuLoop(b, func() {
			it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: upper})
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
		})
	})
	b.Run("strata", func(b *testing.B) {
		s := storeDB(b, true)
		storeFill(b, s, n, time.Hour)
		ctx := b.Context()
		cpuLoop(b, func() {
			count := 0
			for _, err := range s.Keys(ctx, prefix) {
				if err != nil {
					b.Fatal(err)
				}
				count++
			}
			if count != n {
				b.Fatal(count)
			}
		})
	})
}

// BenchmarkStore is the conformance benchmark suite (no raw comparison).
func BenchmarkStore(b *testing.B) {
	conformance.BenchmarkStore(b, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s, err := pebble.Open(filepath.Join(tb.TempDir(), "db"), &pebble.Options{Clock: o.Clock, NoSync: true, SweepInterval: -1})
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
		FakeClock: true,
	})
}
