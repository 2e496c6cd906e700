package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/ttlval"
)

// The benchmarks of an embedded store compare it with its raw database in
// the same run: every benchmark has a "raw" side that does the same work on
// the database directly, with the options the store gives it. The figures to
// compare are the ratios; see docs/BENCHMARKS.md.

// BenchKeys is how many keys the Get and Put benchmarks use.
const BenchKeys = 10000

// BenchValue is the value the benchmarks write: 100 zero bytes.
var BenchValue = make([]byte, 100)

// BenchKey is the benchmarks' i-th key; every one starts with "bench:".
func BenchKey(i int) []byte { return fmt.Appendf(nil, "bench:%08d", i) }

// RawDB is the database under a store, driven directly: the raw side of
// the benchmarks. Each method returns the raw side of one benchmark: the
// operation of the i-th iteration, doing what the store's does, the way the
// store does it, on values as they are (without a strata header unless Fill
// wrote one). An operation fails b if it goes wrong.
type RawDB interface {
	// Fill writes BenchKey(0) to BenchKey(n-1), each with value.
	Fill(b *testing.B, n int, value []byte)

	// Get reads key(i) and copies its value, which must be as long as
	// BenchValue.
	Get(b *testing.B, key func(i int) []byte) func(i int)

	// GetHeader does what Get does and, before the copy, decodes the strata
	// header of the value and checks its expiry against clock.
	GetHeader(b *testing.B, key func(i int) []byte, clock strata.Clock) func(i int)

	// Put writes BenchValue under key(i), in one transaction or write.
	Put(b *testing.B, key func(i int) []byte) func(i int)

	// PutMany writes BenchValue under BenchKey((i*batch+j)%span) for each
	// j < batch, in one transaction or batch.
	PutMany(b *testing.B, batch, span int) func(i int)

	// Keys lists the n keys that start with "bench:", copying each, and
	// fails b unless it found n.
	Keys(b *testing.B, n int) func(i int)
}

// Bench runs the benchmarks of an embedded store against its raw database.
// Each method is the body of the store's benchmark of the same name (Get
// is BenchmarkGet).
type Bench struct {
	// Raw opens a new raw database the way the store opens its own, with
	// writes synced unless noSync, closed when b ends.
	Raw func(b *testing.B, noSync bool) RawDB

	// Open opens a new store.
	Open Open

	// FillBatch is how many entries each PutMany that fills the store
	// holds (as many as RawDB.Fill writes per transaction or batch).
	FillBatch int
}

// open opens a new store on the system clock, writes synced unless
// noSync, closed when b ends.
func (h Bench) open(b *testing.B, noSync bool) Store {
	b.Helper()
	return OpenTemp(b, h.Open, Config{NoSync: noSync, SweepInterval: -1})
}

// Store is the conformance benchmark suite (no raw comparison) on stores
// without fsync.
func (h Bench) Store(b *testing.B) {
	conformance.BenchmarkStore(b, conformance.Harness{
		Open:      harnessOpen(h.Open, true),
		FakeClock: true,
	})
}

// fill writes BenchKey(0) to BenchKey(n-1) to s with BenchValue and ttl.
func (h Bench) fill(b *testing.B, s Store, n int, ttl time.Duration) {
	b.Helper()
	entries := make([]strata.Entry, 0, h.FillBatch)
	for start := 0; start < n; start += h.FillBatch {
		entries = entries[:0]
		for i := start; i < min(n, start+h.FillBatch); i++ {
			entries = append(entries, strata.Entry{Key: BenchKey(i), Value: BenchValue, TTL: ttl})
		}
		if err := s.PutMany(b.Context(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// modes are the durability modes of the write benchmarks.
var modes = []struct {
	name   string
	noSync bool
}{{"sync", false}, {"nosync", true}}

// benchKeys returns the keys of the Get benchmarks and a function that
// picks the one of iteration i.
func benchKeys() func(i int) []byte {
	keys := make([][]byte, BenchKeys)
	for i := range keys {
		keys[i] = BenchKey(i)
	}
	return func(i int) []byte { return keys[i%BenchKeys] }
}

// Get reads 100-byte values of 10k keys. raw: RawDB.Get. header: the same
// plus decoding the TTL header and checking the expiry against the clock
// (RawDB.GetHeader). strata: Store.Get of keys without expiry; strata_ttl:
// of keys with a TTL (the clock is read).
func (h Bench) Get(b *testing.B) {
	key := benchKeys()
	b.Run("raw", func(b *testing.B) {
		db := h.Raw(b, true)
		db.Fill(b, BenchKeys, BenchValue)
		Loop(b, db.Get(b, key))
	})
	b.Run("header", func(b *testing.B) {
		db := h.Raw(b, true)
		db.Fill(b, BenchKeys, headerValue())
		Loop(b, db.GetHeader(b, key, strata.SystemClock{}))
	})
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"strata", strata.NoExpiry}, {"strata_ttl", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			s := h.open(b, true)
			h.fill(b, s, BenchKeys, c.ttl)
			Loop(b, storeGet(b, s, key))
		})
	}
}

// headerValue is BenchValue behind a strata header that expires in an
// hour.
func headerValue() []byte {
	return ttlval.Encode(time.Now().Add(time.Hour).UnixMilli(), BenchValue)
}

// storeGet is the strata side of Get: Store.Get of key(i).
func storeGet(b *testing.B, s Store, key func(i int) []byte) func(i int) {
	ctx := b.Context()
	return func(i int) {
		if v, err := s.Get(ctx, key(i)); err != nil || len(v) != len(BenchValue) {
			b.Fatal(err)
		}
	}
}

// storePut is the strata side of Put: Store.Put of key(i).
func storePut(b *testing.B, s Store, key func(i int) []byte) func(i int) {
	ctx := b.Context()
	return func(i int) {
		if err := s.Put(ctx, key(i), BenchValue, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// storePutMany is the strata side of PutMany: one Store.PutMany of batch
// entries, as RawDB.PutMany writes them.
func storePutMany(b *testing.B, s Store, batch, span int) func(i int) {
	ctx := b.Context()
	entries := make([]strata.Entry, batch)
	return func(i int) {
		for j := range entries {
			entries[j] = strata.Entry{Key: BenchKey((i*batch + j) % span), Value: BenchValue}
		}
		if err := s.PutMany(ctx, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// storeCommit is the strata side of Commit100: one Commit of the batch
// keys RawDB.PutMany writes. Fenced, the last key is an offset instead,
// which the commit moves on under IfEqual on its previous value (IfAbsent
// the first time) and a fence: a stream processor's unit of work.
func storeCommit(b *testing.B, s Store, batch, span int, fenced bool) func(i int) {
	ctx := b.Context()
	wb := new(strata.WriteBatch)
	offset, fence := []byte("offset:bench"), []byte("fence:bench")
	var prev []byte
	return func(i int) {
		wb.Reset()
		n := batch
		if fenced {
			n--
			if prev == nil {
				wb.IfAbsent(offset)
			} else {
				wb.IfEqual(offset, prev)
			}
			wb.IfFence(fence, 1)
			prev = strconv.AppendInt(prev[:0:0], int64(i), 10)
			wb.Put(offset, prev, 0)
		}
		for j := range n {
			wb.Put(BenchKey((i*batch+j)%span), BenchValue, 0)
		}
		if err := strata.Commit(ctx, s, wb); err != nil {
			b.Fatal(err)
		}
	}
}

// Commit100 commits batches of 100 entries of 100 bytes over 100k keys,
// synced (sync) and not (nosync). raw: the database's own batch of the
// same 100 keys (RawDB.PutMany); strata: a Commit of them without
// conditions; strata_fenced: 99 of them and an offset, under IfEqual on
// the offset and a fence (see storeCommit). paired and paired_fenced run
// raw and the strata side alternately (see [Paired]) and report speed.
func (h Bench) Commit100(b *testing.B) {
	const batch, span = 100, 100000
	for _, mode := range modes {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := h.Raw(b, mode.noSync)
			Loop(b, db.PutMany(b, batch, span))
		})
		for _, fenced := range []bool{false, true} {
			name := map[bool]string{false: "", true: "_fenced"}[fenced]
			b.Run(mode.name+"/strata"+name, func(b *testing.B) {
				s := h.open(b, mode.noSync)
				Loop(b, storeCommit(b, s, batch, span, fenced))
			})
			b.Run(mode.name+"/paired"+name, func(b *testing.B) {
				db := h.Raw(b, mode.noSync)
				s := h.open(b, mode.noSync)
				Paired(b, db.PutMany(b, batch, span), storeCommit(b, s, batch, span, fenced))
			})
		}
	}
}

// Put writes 100-byte values over 10k keys, one transaction or write each,
// synced (sync) and not (nosync).
func (h Bench) Put(b *testing.B) {
	key := func(i int) []byte { return BenchKey(i % BenchKeys) }
	for _, mode := range modes {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := h.Raw(b, mode.noSync)
			Loop(b, db.Put(b, key))
		})
		b.Run(mode.name+"/strata", func(b *testing.B) {
			s := h.open(b, mode.noSync)
			Loop(b, storePut(b, s, key))
		})
	}
}

// PutMany1000 writes batches of 1000 entries of 100 bytes, one transaction
// or batch each, over 100k keys, and reports keys/s besides.
func (h Bench) PutMany1000(b *testing.B) {
	const batch, span = 1000, 100000
	for _, mode := range modes {
		b.Run(mode.name+"/raw", func(b *testing.B) {
			db := h.Raw(b, mode.noSync)
			Loop(b, db.PutMany(b, batch, span))
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
		})
		b.Run(mode.name+"/strata", func(b *testing.B) {
			s := h.open(b, mode.noSync)
			Loop(b, storePutMany(b, s, batch, span))
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// Keys100k lists 100k keys under a prefix, copying each key (the caller
// owns them). raw: RawDB.Keys, in one transaction or iterator; strata:
// Keys, which reads chunks per transaction or iterator and checks each
// expiry.
func (h Bench) Keys100k(b *testing.B) {
	const n = 100000
	b.Run("raw", func(b *testing.B) {
		db := h.Raw(b, true)
		db.Fill(b, n, BenchValue)
		Loop(b, db.Keys(b, n))
	})
	b.Run("strata", func(b *testing.B) {
		s := h.open(b, true)
		h.fill(b, s, n, time.Hour)
		ctx := b.Context()
		Loop(b, func(int) {
			count := 0
			for _, err := range s.Keys(ctx, []byte("bench:")) {
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

// Paired measures the same operations as Get, Put, PutMany1000 and
// Keys100k, with the raw database and the store alternating operation by
// operation (see [Paired]).
func (h Bench) Paired(b *testing.B) {
	key := benchKeys()
	// Get: values without expiry; GetTTL: values with a TTL, so the store
	// reads the clock; Header: the raw database against itself plus
	// decoding the TTL header and checking the expiry (the header's own
	// cost).
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"Get", strata.NoExpiry}, {"GetTTL", time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			db := h.Raw(b, true)
			db.Fill(b, BenchKeys, BenchValue)
			s := h.open(b, true)
			h.fill(b, s, BenchKeys, c.ttl)
			Paired(b, db.Get(b, key), storeGet(b, s, key))
		})
	}
	b.Run("Header", func(b *testing.B) {
		db := h.Raw(b, true)
		db.Fill(b, BenchKeys, BenchValue)
		hdb := h.Raw(b, true)
		hdb.Fill(b, BenchKeys, headerValue())
		Paired(b, db.Get(b, key), hdb.GetHeader(b, key, strata.SystemClock{}))
	})
	for _, mode := range modes {
		b.Run("Put/"+mode.name, func(b *testing.B) {
			db := h.Raw(b, mode.noSync)
			s := h.open(b, mode.noSync)
			Paired(b, db.Put(b, key), storePut(b, s, key))
		})
		b.Run("PutMany1000/"+mode.name, func(b *testing.B) {
			const batch, span = 1000, 100000
			db := h.Raw(b, mode.noSync)
			s := h.open(b, mode.noSync)
			Paired(b, db.PutMany(b, batch, span), storePutMany(b, s, batch, span))
		})
	}
	b.Run("Keys100k", func(b *testing.B) {
		const n = 100000
		prefix := []byte("bench:")
		db := h.Raw(b, true)
		db.Fill(b, n, BenchValue)
		s := h.open(b, true)
		h.fill(b, s, n, time.Hour)
		ctx := b.Context()
		Paired(b, db.Keys(b, n), func(int) {
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

// sinkKey keeps the keys the strata side of Paired lists from being
// optimized away.
var sinkKey []byte

// Paired runs raw and strata alternately, one operation each per iteration
// (in alternating order), and reports for each the median and the mean time
// of one operation, and "speed" = raw median / strata median (1 means as
// fast as raw; "speed-mean" is the same on means). Alternating per
// operation exposes both to the same load, and the median ignores the
// stalls that other work on a shared machine puts into a few operations.
func Paired(b *testing.B, raw, strataOp func(i int)) {
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

// cpuTime returns the CPU time this process has used (user and system,
// every thread: background compaction and GC count).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Loop runs op(0), op(1), ... in a b.Loop and reports, besides the wall
// time, the CPU time per operation ("cpu-ns/op"): on a machine shared with
// other work, it moves much less than the wall time.
func Loop(b *testing.B, op func(i int)) {
	var start time.Duration
	first := true
	i := 0
	for b.Loop() {
		if first {
			start, first = cpuTime(), false
		}
		op(i)
		i++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
