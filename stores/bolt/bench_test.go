package bolt_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/stores/bolt"
)

// Every benchmark here has a sub-benchmark "raw" that does the same work
// on bbolt directly, with the options the store gives bbolt, in the same
// run: the figures to compare are the ratios. See docs/BENCHMARKS.md.

const benchKeys = 10000

var benchValue = make([]byte, 100)

func benchKey(i int) []byte { return fmt.Appendf(nil, "bench:%08d", i) }

var benchBucket = []byte(bolt.DefaultBucket)

// rawDB opens bbolt as the store does.
func rawDB(b *testing.B, noSync bool) *bbolt.DB {
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
	return db
}

// rawFill writes n keys with value (as given: raw or with a header).
func rawFill(b *testing.B, db *bbolt.DB, n int, value []byte) {
	b.Helper()
	for start := 0; start < n; start += 10000 {
		err := db.Update(func(tx *bbolt.Tx) error {
			bk := tx.Bucket(benchBucket)
			for i := start; i < min(n, start+10000); i++ {
				if err := bk.Put(benchKey(i), value); err != nil {
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

func storeDB(b *testing.B, noSync bool) *bolt.Store {
	b.Helper()
	s, err := bolt.Open(filepath.Join(b.TempDir(), "strata.db"), &bolt.Options{NoSync: noSync, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func storeFill(b *testing.B, s *bolt.Store, n int, ttl time.Duration) {
	b.Helper()
	entries := make([]strata.Entry, 0, 10000)
	for start := 0; start < n; start += 10000 {
		entries = entries[:0]
		for i := start; i < min(n, start+10000); i++ {
			entries = append(entries, strata.Entry{Key: benchKey(i), Value: benchValue, TTL: ttl})
		}
		if err := s.PutMany(b.Context(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads 100-byte values of 10k keys. raw: bbolt View, Get and
// a copy. header: the same plus decoding the TTL header and checking the
// expiry against the clock. strata: Store.Get of keys without expiry;
// strata_ttl: of keys with a TTL (the clock is read).
func BenchmarkGet(b *testing.B) {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	b.Run("raw", func(b *testing.B) {
		db := rawDB(b, true)
		rawFill(b, db, benchKeys, benchValue)
		i := 0
		cpuLoop(b, func() {
			var out []byte
			err := db.View(func(tx *bbolt.Tx) error {
				v := tx.Bucket(benchBucket).Get(keys[i%benchKeys])
				out = append([]byte(nil), v...)
				return nil
			})
			if err != nil || len(out) != len(benchValue) {
				b.Fatal(err)
			}
			i++
		})
	})
	b.Run("header", func(b *testing.B) {
		db := rawDB(b, true)
		rawFill(b, db, benchKeys, ttlval.Encode(time.Now().Add(time.Hour).UnixMilli(), benchValue))
		var clock strata.Clock = strata.SystemClock{}
		i := 0
		cpuLoop(b, func() {
			var out []byte
			err := db.View(func(tx *bbolt.Tx) error {
				exp, v, err := ttlval.Decode(tx.Bucket(benchBucket).Get(keys[i%benchKeys]))
				if err != nil || strata.Expired(clock.Now(), exp) {
					return fmt.Errorf("bad value: %v", err)
				}
				out = append([]byte(nil), v...)
				return nil
			})
			if err != nil || len(out) != len(benchValue) {
				b.Fatal(err)
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

// BenchmarkPut writes 100-byte values over 10k keys, one transaction each,
// with fsync (sync) and without (nosync).
func BenchmarkPut(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := rawDB(b, mode.noSync)
			i := 0
			cpuLoop(b, func() {
				err := db.Update(func(tx *bbolt.Tx) error {
					return tx.Bucket(benchBucket).Put(benchKey(i%benchKeys), benchValue)
				})
				if err != nil {
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
// transaction per batch, over 100k keys.
func BenchmarkPutMany1000(b *testing.B) {
	const batch, span = 1000, 100000
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := rawDB(b, mode.noSync)
			i := 0
			cpuLoop(b, func() {
				err := db.Update(func(tx *bbolt.Tx) error {
					bk := tx.Bucket(benchBucket)
					for j := range batch {
						if err := bk.Put(benchKey((i*batch+j)%span), benchValue); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
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

// BenchmarkKeys100k lists 100k keys under a prefix, copying each key (the
// caller owns them). raw: one cursor in one read transaction; strata: Keys,
// which reads chunks of 1024 keys per transaction and checks each expiry.
func BenchmarkKeys100k(b *testing.B) {
	const n = 100000
	prefix := []byte("bench:")
	b.Run("raw", func(b *testing.B) {
		db := rawDB(b, true)
		rawFill(b, db, n, benchValue)
		cpuLoop(b, func() {
			count := 0
			err := db.View(func(tx *bbolt.Tx) error {
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

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }

// BenchmarkStore is the conformance benchmark suite (no raw comparison).
func BenchmarkStore(b *testing.B) {
	conformance.BenchmarkStore(b, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s, err := bolt.Open(filepath.Join(tb.TempDir(), "s.db"), &bolt.Options{Clock: o.Clock, NoSync: true, SweepInterval: -1})
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
		FakeClock: true,
	})
}
