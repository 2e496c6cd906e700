package pebble_test

import (
	"slices"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
)

// paired runs raw and strata alternately, one operation each per
// iteration (in alternating order), and reports for each the median and
// the mean time of one operation, and "speed" = raw median / strata median
// (1 means as fast as raw; "speed-mean" is the same on means). Alternating
// per operation exposes both to the same load, and the median ignores the
// stalls that other work on a shared machine puts into a few operations.
func paired(b *testing.B, raw, strataOp func(i int)) {
	var rawT, strataT []time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			t0 := time.Now()
			raw(i)
			t1 := time.Now()
			strataOp(i)
			rawT, strataT = append(rawT, t1.Sub(t0)), append(strataT, time.Since(t1))
		} else {
			t0 := time.Now()
			strataOp(i)
			t1 := time.Now()
			raw(i)
			strataT, rawT = append(strataT, t1.Sub(t0)), append(rawT, time.Since(t1))
		}
		i++
	}
	rawMed, rawMean := medianMean(rawT)
	strataMed, strataMean := medianMean(strataT)
	b.ReportMetric(rawMed, "raw-ns/op")
	b.ReportMetric(strataMed, "strata-ns/op")
	b.ReportMetric(rawMed/strataMed, "speed")
	b.ReportMetric(rawMean/strataMean, "speed-mean")
}

func medianMean(ds []time.Duration) (median, mean float64) {
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(ds[len(ds)/2]), float64(sum) / float64(len(ds))
}

// BenchmarkPaired measures the same operations as BenchmarkGet, BenchmarkPut,
// BenchmarkPutMany1000 and BenchmarkKeys100k, with raw Pebble and the store
// alternating operation by operation (see paired).
func BenchmarkPaired(b *testing.B) {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	// Get: values without expiry; GetTTL: values with a TTL, so the store
	// reads the clock; Header: raw Pebble against raw Pebble plus decoding
	// the TTL header and checking the expiry (the header's own cost).
	rawGet := func(db *pebbledb.DB) func(int) {
		return func(i int) {
			v, closer, err := db.Get(keys[i%benchKeys])
			if err != nil {
				b.Fatal(err)
			}
			out := append([]byte(nil), v...)
			closer.Close()
			if len(out) != len(benchValue) {
				b.Fatal(len(out))
			}
		}
	}
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"Get", strata.NoExpiry}, {"GetTTL", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			db := rawDB(b)
			rawFill(b, db, benchKeys, benchValue)
			s := storeDB(b, true)
			storeFill(b, s, benchKeys, c.ttl)
			ctx := b.Context()
			paired(b, rawGet(db), func(i int) {
				if v, err := s.Get(ctx, keys[i%benchKeys]); err != nil || len(v) != len(benchValue) {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("Header", func(b *testing.B) {
		db := rawDB(b)
		rawFill(b, db, benchKeys, benchValue)
		hdb := rawDB(b)
		rawFill(b, hdb, benchKeys, ttlval.Encode(time.Now().Add(time.Hour).UnixMilli(), benchValue))
		var clock strata.Clock = strata.SystemClock{}
		paired(b, rawGet(db), func(i int) {
			raw, closer, err := hdb.Get(keys[i%benchKeys])
			if err != nil {
				b.Fatal(err)
			}
			exp, v, err := ttlval.Decode(raw)
			if err != nil || (exp != 0 && strata.Expired(clock.Now(), exp)) {
				b.Fatal(err)
			}
			out := append([]byte(nil), v...)
			closer.Close()
			if len(out) != len(benchValue) {
				b.Fatal(len(out))
			}
		})
	})
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		b.Run("Put/"+mode.name, func(b *testing.B) {
			db := rawDB(b)
			wo := writeOpts(mode.noSync)
			s := storeDB(b, mode.noSync)
			ctx := b.Context()
			paired(b, func(i int) {
				if err := db.Set(keys[i%benchKeys], benchValue, wo); err != nil {
					b.Fatal(err)
				}
			}, func(i int) {
				if err := s.Put(ctx, keys[i%benchKeys], benchValue, 0); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("PutMany1000/"+mode.name, func(b *testing.B) {
			const batch, span = 1000, 100000
			db := rawDB(b)
			wo := writeOpts(mode.noSync)
			s := storeDB(b, mode.noSync)
			ctx := b.Context()
			entries := make([]strata.Entry, batch)
			paired(b, func(i int) {
				bt := db.NewBatch()
				for j := range batch {
					bt.Set(benchKey((i*batch+j)%span), benchValue, nil)
				}
				if err := bt.Commit(wo); err != nil {
					b.Fatal(err)
				}
				bt.Close()
			}, func(i int) {
				for j := range entries {
					entries[j] = strata.Entry{Key: benchKey((i*batch + j) % span), Value: benchValue}
				}
				if err := s.PutMany(ctx, entries); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("Keys100k", func(b *testing.B) {
		const n = 100000
		prefix, upper := []byte("bench:"), []byte("bench;")
		db := rawDB(b)
		rawFill(b, db, n, benchValue)
		s := storeDB(b, true)
		storeFill(b, s, n, time.Hour)
		ctx := b.Context()
		paired(b, func(int) {
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
		}, func(int) {
			count := 0
			for k, err := range s.Keys(ctx, prefix) {
				if err != nil {
					b.Fatal(err)
				}
				sinkKey = k
				count++
			}
			if count != n {
				b.Fatal(count)
			}
		})
	})
}
