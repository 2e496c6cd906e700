package checkpoint_test

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
)

const (
	benchEntries  = 1_000_000
	benchKeyLen   = 16
	benchValueLen = 100
)

// benchEntry returns entry i of the benchmark state: a 16-byte key and a
// 100-byte value of pseudo-random bytes (incompressible: the worst case for
// the file size).
func benchEntry(i int, rng *rand.Rand, kbuf, vbuf []byte) strata.Entry {
	copy(kbuf, "key-")
	binary.BigEndian.PutUint64(kbuf[8:], uint64(i))
	copy(kbuf[4:8], "0000")
	var word [8]byte
	for j := 0; j < len(vbuf); j += 8 {
		binary.LittleEndian.PutUint64(word[:], rng.Uint64())
		copy(vbuf[j:], word[:])
	}
	return strata.Entry{Key: kbuf, Value: vbuf, TTL: strata.NoExpiry}
}

// benchState returns n entries of the benchmark state.
func benchState(n int) []strata.Entry {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, n*(benchKeyLen+benchValueLen))
	es := make([]strata.Entry, n)
	for i := range es {
		b := buf[i*(benchKeyLen+benchValueLen):]
		es[i] = benchEntry(i, rng, b[:benchKeyLen:benchKeyLen], b[benchKeyLen:benchKeyLen+benchValueLen:benchKeyLen+benchValueLen])
	}
	return es
}

// fillBench writes n benchmark entries into s.
func fillBench(tb testing.TB, s strata.Store, n int) {
	tb.Helper()
	es := benchState(n)
	for i := 0; i < len(es); i += 10_000 {
		if err := strata.PutMany(context.Background(), s, es[i:min(i+10_000, len(es))]); err != nil {
			tb.Fatal(err)
		}
	}
}

func reportRate(b *testing.B, entries int, rawBytes int64) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(entries)*float64(b.N)/s, "entries/s")
	b.ReportMetric(float64(rawBytes)*float64(b.N)/s/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCheckpoint writes a checkpoint of 1M entries held in a memory
// store. "scan" is the raw thing: iterating the same snapshot and touching
// every byte, which bounds any checkpoint from below.
func BenchmarkCheckpoint(b *testing.B) {
	ctx := context.Background()
	src := newMem(b, nil)
	fillBench(b, src, benchEntries)
	raw := int64(benchEntries * (benchKeyLen + benchValueLen))
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			sn, _ := src.Snapshot(ctx)
			var sum int
			for e, err := range sn.Entries(ctx, nil) {
				if err != nil {
					b.Fatal(err)
				}
				sum += int(e.Key[0]) + int(e.Value[len(e.Value)-1])
			}
			sn.Close()
		}
		reportRate(b, benchEntries, raw)
	})
	for _, tc := range []struct {
		name string
		comp checkpoint.Compression
	}{{"zstd", checkpoint.CompressionZstd}, {"none", checkpoint.CompressionNone}} {
		b.Run(tc.name, func(b *testing.B) {
			var size int64
			for b.Loop() {
				m, err := checkpoint.WriteStore(ctx, io.Discard, src, &checkpoint.WriterOptions{Compression: tc.comp})
				if err != nil {
					b.Fatal(err)
				}
				size = m.CompressedBytes
			}
			reportRate(b, benchEntries, raw)
			b.ReportMetric(float64(size)/float64(raw), "file/raw")
		})
	}
	b.Run("pebble-zstd", func(b *testing.B) {
		p := openPebble(b)
		fillBench(b, p, benchEntries)
		for b.Loop() {
			if _, err := checkpoint.WriteStore(ctx, io.Discard, p, nil); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, benchEntries, raw)
	})
	b.Run("coordinator", func(b *testing.B) {
		c, err := checkpoint.New(src, &checkpoint.Options{Dir: b.TempDir(), MaxCheckpoints: 1})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, benchEntries, raw)
	})
}

// BenchmarkCheckpointHeap measures the peak growth of the live heap while
// a checkpoint of 1M entries is written: the sink collects garbage and
// reads the heap every 8 blocks, so time figures here mean nothing.
func BenchmarkCheckpointHeap(b *testing.B) {
	ctx := context.Background()
	src := newMem(b, nil)
	fillBench(b, src, benchEntries)
	var peak int64
	for b.Loop() {
		base := liveHeap()
		h := &heapSampler{every: 8}
		if _, err := checkpoint.WriteStore(ctx, h, src, nil); err != nil {
			b.Fatal(err)
		}
		peak = max(peak, int64(h.peak)-int64(base))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(0, "ns/op")
}

// restoreTarget opens a fresh, empty store for one restore iteration.
type restoreTarget struct {
	name string
	open func(b *testing.B) strata.Store
}

var restoreTargets = []restoreTarget{
	{"memory", func(b *testing.B) strata.Store { return newMem(b, nil) }},
	{"pebble", openPebble},
}

// openPebble opens an empty Pebble store (default options: synced
// commits) in a new directory, closed when b ends.
func openPebble(b *testing.B) strata.Store {
	u := url.URL{Scheme: "pebble", Path: filepath.Join(b.TempDir(), "state")}
	s, err := strata.Open(context.Background(), u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkRestore restores a checkpoint of 1M entries into an empty store
// (verification pass included). "putmany" is the raw thing: the same
// entries written with strata.PutMany from memory, in batches of the
// restore's default size.
func BenchmarkRestore(b *testing.B) {
	ctx := context.Background()
	es := benchState(benchEntries)
	src := newMem(b, nil)
	fillBench(b, src, benchEntries)
	path := filepath.Join(b.TempDir(), "bench.ckpt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := checkpoint.WriteStore(ctx, f, src, nil); err != nil {
		b.Fatal(err)
	}
	f.Close()
	src.Close()
	raw := int64(benchEntries * (benchKeyLen + benchValueLen))
	for _, tg := range restoreTargets {
		b.Run(tg.name+"/putmany", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				dst := tg.open(b)
				b.StartTimer()
				for i := 0; i < len(es); i += checkpoint.DefaultBatchSize {
					if err := strata.PutMany(ctx, dst, es[i:min(i+checkpoint.DefaultBatchSize, len(es))]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				dst.Close()
				b.StartTimer()
			}
			reportRate(b, benchEntries, raw)
		})
		b.Run(tg.name+"/restore", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				dst := tg.open(b)
				b.StartTimer()
				rep, err := checkpoint.RestoreFile(ctx, path, dst, nil)
				if err != nil || rep.Restored != benchEntries {
					b.Fatal(rep, err)
				}
				b.StopTimer()
				dst.Close()
				b.StartTimer()
			}
			reportRate(b, benchEntries, raw)
		})
	}
}

// BenchmarkAlignedPause measures the pause an aligned checkpoint costs a
// job whose 100k entries live in Redis: CheckpointAt (read the store,
// compress, write, fsync, read back, publish) while the job waits. "read"
// is the raw thing: walking the same store's snapshot (SCAN and the
// values with their TTLs) without writing anything.
func BenchmarkAlignedPause(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	r := testserver.StartRedis(b, nil)
	s, err := strata.Open(ctx, r.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	fillBench(b, s, n)
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			sn, err := strata.SnapshotOf(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			k := 0
			for _, err := range sn.Entries(ctx, nil) {
				if err != nil {
					b.Fatal(err)
				}
				k++
			}
			sn.Close()
			if k < n {
				b.Fatalf("read %d entries, want %d", k, n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pause")
	})
	b.Run("CheckpointAt", func(b *testing.B) {
		c, err := checkpoint.New(s, &checkpoint.Options{Dir: b.TempDir(), MaxCheckpoints: 1, Aligned: true})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.CheckpointAt(ctx, checkpoint.Cut{Offset: "1"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pause")
	})
}
