package checkpoint_test

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/memory"
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

// changePercent overwrites pct% of the n benchmark keys, chosen at random,
// with new random values, through s.
func changePercent(tb testing.TB, s strata.Store, rng *rand.Rand, n int, pct float64) {
	tb.Helper()
	k := int(float64(n) * pct / 100)
	es := make([]strata.Entry, 0, k)
	for range k {
		kb, vb := make([]byte, benchKeyLen), make([]byte, benchValueLen)
		es = append(es, benchEntry(rng.IntN(n), rng, kb, vb))
	}
	for i := 0; i < len(es); i += 4096 {
		if err := strata.PutMany(context.Background(), s, es[i:min(i+4096, len(es))]); err != nil {
			tb.Fatal(err)
		}
	}
}

// medianOf returns the median of xs.
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkIncremental compares, in one run, a full checkpoint and a delta
// of the same state: 1M entries of 100-byte values, 1% of the keys changed
// before each round. Each round takes both (in alternating order), through
// a Coordinator into a directory (file, fsync, read-back, publish): "full"
// over the plain store, "delta" over a Tracker of it with MaxDeltas large
// enough that every round is a delta. It reports the medians of the
// rounds: time and bytes of each, and full/delta ratios.
func BenchmarkIncremental(b *testing.B) {
	ctx := context.Background()
	s := newMem(b, nil)
	fillBench(b, s, benchEntries)
	tr, err := checkpoint.Track(s, nil)
	if err != nil {
		b.Fatal(err)
	}
	full, err := checkpoint.New(s, &checkpoint.Options{Dir: b.TempDir(), MaxCheckpoints: 1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer full.Close()
	inc, err := checkpoint.New(tr, &checkpoint.Options{Dir: b.TempDir(), MaxCheckpoints: 1, MaxDeltas: checkpoint.MaxDepth, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer inc.Close()
	if _, err := inc.Checkpoint(ctx); err != nil { // the base
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var fullMs, deltaMs, fullB, deltaB []float64
	timed := func(c *checkpoint.Coordinator, ms, bytes *[]float64, wantDelta bool) {
		t0 := time.Now()
		m, err := c.Checkpoint(ctx)
		if err != nil {
			b.Fatal(err)
		}
		*ms = append(*ms, float64(time.Since(t0).Microseconds())/1000)
		*bytes = append(*bytes, float64(c.Stats().LastSize))
		if m.IsDelta() != wantDelta {
			b.Fatalf("checkpoint %s: delta %v, want %v", m.ID, m.IsDelta(), wantDelta)
		}
	}
	round := 0
	for b.Loop() {
		changePercent(b, tr, rng, benchEntries, 1)
		if round%2 == 0 {
			timed(full, &fullMs, &fullB, false)
			timed(inc, &deltaMs, &deltaB, true)
		} else {
			timed(inc, &deltaMs, &deltaB, true)
			timed(full, &fullMs, &fullB, false)
		}
		round++
	}
	b.ReportMetric(medianOf(fullMs), "full-ms")
	b.ReportMetric(medianOf(deltaMs), "delta-ms")
	b.ReportMetric(medianOf(fullB)/1e6, "full-MB")
	b.ReportMetric(medianOf(deltaB)/1e6, "delta-MB")
	b.ReportMetric(medianOf(fullMs)/medianOf(deltaMs), "time-full/delta")
	b.ReportMetric(medianOf(fullB)/medianOf(deltaB), "bytes-full/delta")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRestoreChain compares, in one run, restoring a chain (a full
// checkpoint of 1M entries and 10 deltas, each of 1% of the keys) with
// restoring one full checkpoint of the same final state, both into an
// empty memory store through Coordinator.Restore (every link verified
// first). Rounds alternate the order; it reports the medians and
// chain/full.
func BenchmarkRestoreChain(b *testing.B) {
	ctx := context.Background()
	s := newMem(b, nil)
	fillBench(b, s, benchEntries)
	tr, err := checkpoint.Track(s, nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	c, err := checkpoint.New(tr, &checkpoint.Options{Dir: dir, MaxCheckpoints: 20, MaxDeltas: 10, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	var head checkpoint.Manifest
	for i := range 11 {
		if i > 0 {
			changePercent(b, tr, rng, benchEntries, 1)
		}
		if head, err = c.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if head.Depth != 10 {
		b.Fatalf("head at depth %d, want 10", head.Depth)
	}
	fc, err := checkpoint.New(s, &checkpoint.Options{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	fm, err := fc.Checkpoint(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var chainMs, fullMs []float64
	restore := func(c *checkpoint.Coordinator, id string, ms *[]float64, links int) {
		dst := memory.New(nil)
		rc, err := checkpoint.NewAt(dst, c.Location(), &checkpoint.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		rep, err := rc.Restore(ctx, id)
		if err != nil || len(rep.Chain) != links {
			b.Fatal(rep, err)
		}
		*ms = append(*ms, float64(time.Since(t0).Microseconds())/1000)
		dst.Close()
	}
	round := 0
	for b.Loop() {
		if round%2 == 0 {
			restore(c, head.ID, &chainMs, 11)
			restore(fc, fm.ID, &fullMs, 1)
		} else {
			restore(fc, fm.ID, &fullMs, 1)
			restore(c, head.ID, &chainMs, 11)
		}
		round++
	}
	b.ReportMetric(medianOf(fullMs), "full-ms")
	b.ReportMetric(medianOf(chainMs), "chain-ms")
	b.ReportMetric(medianOf(chainMs)/medianOf(fullMs), "chain/full")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLocations compares, in one run, a full checkpoint of 1M
// entries through a Coordinator into a directory (file://) and into a
// bucket on SeaweedFS (s3://, weed mini on loopback), alternating, and
// restoring it from each. It reports the medians and s3/file.
func BenchmarkLocations(b *testing.B) {
	ctx := context.Background()
	srv := testserver.StartS3(b)
	srv.SetEnv(b)
	s := newMem(b, nil)
	fillBench(b, s, benchEntries)
	fc, err := checkpoint.New(s, &checkpoint.Options{Location: "file://" + b.TempDir(), MaxCheckpoints: 1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	sc, err := checkpoint.New(s, &checkpoint.Options{Location: srv.URL("bench"), MaxCheckpoints: 1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	ms := map[string][]float64{}
	timed := func(name string, f func() error) {
		t0 := time.Now()
		if err := f(); err != nil {
			b.Fatal(name, err)
		}
		ms[name] = append(ms[name], float64(time.Since(t0).Microseconds())/1000)
	}
	pass := func(name string, c *checkpoint.Coordinator) {
		var id string
		timed(name+"-checkpoint", func() error {
			m, err := c.Checkpoint(ctx)
			id = m.ID
			return err
		})
		dst := memory.New(nil)
		defer dst.Close()
		rc, err := checkpoint.NewAt(dst, c.Location(), &checkpoint.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		timed(name+"-restore", func() error { _, err := rc.Restore(ctx, id); return err })
	}
	round := 0
	for b.Loop() {
		if round%2 == 0 {
			pass("file", fc)
			pass("s3", sc)
		} else {
			pass("s3", sc)
			pass("file", fc)
		}
		round++
	}
	for _, k := range []string{"file-checkpoint", "s3-checkpoint", "file-restore", "s3-restore"} {
		b.ReportMetric(medianOf(ms[k]), k+"-ms")
	}
	b.ReportMetric(medianOf(ms["s3-checkpoint"])/medianOf(ms["file-checkpoint"]), "checkpoint-s3/file")
	b.ReportMetric(medianOf(ms["s3-restore"])/medianOf(ms["file-restore"]), "restore-s3/file")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTrackerPut measures what recording a key costs a write: Put of
// a 100-byte value into a memory store, directly ("raw") and through a
// Tracker, over 1M keys.
func BenchmarkTrackerPut(b *testing.B) {
	ctx := context.Background()
	es := benchState(1 << 16)
	for _, name := range []string{"raw", "tracker"} {
		b.Run(name, func(b *testing.B) {
			var s strata.Store = newMem(b, nil)
			if name == "tracker" {
				tr, err := checkpoint.Track(s, nil)
				if err != nil {
					b.Fatal(err)
				}
				s = tr
			}
			i := 0
			for b.Loop() {
				e := es[i&(len(es)-1)]
				if err := s.Put(ctx, e.Key, e.Value, strata.NoExpiry); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
