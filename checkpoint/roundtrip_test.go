package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
)

func TestRoundTrip(t *testing.T) {
	for _, comp := range []checkpoint.Compression{checkpoint.CompressionDefault, checkpoint.CompressionNone} {
		t.Run(comp.String(), func(t *testing.T) {
			ctx := context.Background()
			clock := fakeClock()
			src := newMem(t, clock)
			put(t, src, sampleEntries(3000)...)
			// A key of the longest length and a value larger than a block.
			put(t, src,
				strata.Entry{Key: bytes.Repeat([]byte{0xff}, strata.MaxKeyLen), Value: []byte("long key"), TTL: strata.NoExpiry},
				strata.Entry{Key: []byte("big"), Value: bytes.Repeat([]byte("0123456789abcdef"), 1<<17), TTL: time.Minute})
			want := dump(t, src)

			var buf bytes.Buffer
			m, err := checkpoint.WriteStore(ctx, &buf, src, &checkpoint.WriterOptions{
				ID: "rt", Compression: comp, BlockSize: 64 << 10, Clock: clock,
				Labels: map[string]string{"offset": "42"},
			})
			if err != nil {
				t.Fatalf("WriteStore: %v", err)
			}
			if m.Entries != int64(len(want)) || m.Source != "memory" || m.ID != "rt" || m.Labels["offset"] != "42" ||
				m.Compression != comp.String() || m.FormatVersion != checkpoint.FormatVersion || !m.Created.Equal(epoch) {
				t.Fatalf("manifest %+v", m)
			}
			if comp == checkpoint.CompressionNone && m.CompressedBytes <= m.RawBytes {
				t.Fatalf("uncompressed data %d bytes < raw %d", m.CompressedBytes, m.RawBytes)
			}
			if comp != checkpoint.CompressionNone && m.CompressedBytes >= m.RawBytes/2 {
				t.Fatalf("zstd data %d bytes, raw %d: not compressed", m.CompressedBytes, m.RawBytes)
			}

			vm, err := checkpoint.Verify(ctx, bytes.NewReader(buf.Bytes()), nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if vm.Checksum != m.Checksum || vm.Entries != m.Entries {
				t.Fatalf("Verify manifest %+v, Write returned %+v", vm, m)
			}
			fm, err := checkpoint.ReadManifest(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil || fm.Checksum != m.Checksum {
				t.Fatalf("ReadManifest: %+v, %v", fm, err)
			}

			// The reader yields the records in key order (memory snapshots
			// are ordered) with absolute expiry times.
			rd, err := checkpoint.NewReader(bytes.NewReader(buf.Bytes()), nil)
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			var prev []byte
			n := 0
			for {
				r, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if bytes.Compare(prev, r.Key) >= 0 {
					t.Fatalf("record %d key %q not after %q", n, r.Key, prev)
				}
				prev = r.Key
				w := want[string(r.Key)]
				if string(r.Value) != w.Value || r.TTL(epoch) != w.TTL {
					t.Fatalf("record %q: value %d bytes ttl %v, want %d bytes ttl %v", r.Key, len(r.Value), r.TTL(epoch), len(w.Value), w.TTL)
				}
				n++
			}
			if n != len(want) || rd.Manifest().Checksum != m.Checksum {
				t.Fatalf("read %d records, manifest %+v", n, rd.Manifest())
			}

			dst := newMem(t, clock)
			path := filepath.Join(t.TempDir(), "rt.ckpt")
			if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			rep, err := checkpoint.RestoreFile(ctx, path, dst, &checkpoint.RestoreOptions{Clock: clock, BatchSize: 100})
			if err != nil {
				t.Fatalf("RestoreFile: %v", err)
			}
			if rep.Restored != int64(len(want)) || rep.Expired != 0 || rep.ID != "rt" {
				t.Fatalf("report %+v", rep)
			}
			if d := diff(dump(t, dst), want); d != "" {
				t.Fatalf("restored store differs:\n%s", d)
			}
		})
	}
}

// TestRemainingTTL: the checkpoint stores absolute expiry times; a restore
// later keeps what is left and skips what has expired meanwhile.
func TestRemainingTTL(t *testing.T) {
	ctx := context.Background()
	clock := fakeClock()
	src := newMem(t, clock)
	put(t, src,
		strata.Entry{Key: []byte("short"), Value: []byte("a"), TTL: 10 * time.Second},
		strata.Entry{Key: []byte("long"), Value: []byte("b"), TTL: 20 * time.Second},
		strata.Entry{Key: []byte("forever"), Value: []byte("c"), TTL: strata.NoExpiry})
	clock.Advance(3 * time.Second) // the snapshot sees 7s and 17s left
	var buf bytes.Buffer
	if _, err := checkpoint.WriteStore(ctx, &buf, src, &checkpoint.WriterOptions{Clock: clock}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(12 * time.Second) // 15s after the writes
	dst := newMem(t, clock)
	rd, err := checkpoint.NewReader(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := checkpoint.Apply(ctx, rd, dst, &checkpoint.RestoreOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Restored != 2 || rep.Expired != 1 {
		t.Fatalf("report %+v, want 2 restored and 1 expired", rep)
	}
	want := map[string]item{"long": {"b", 5 * time.Second}, "forever": {"c", strata.NoExpiry}}
	if d := diff(dump(t, dst), want); d != "" {
		t.Fatal(d)
	}
}

func TestModes(t *testing.T) {
	ctx := context.Background()
	src := newMem(t, nil)
	put(t, src, strata.Entry{Key: []byte("a"), Value: []byte("new-a"), TTL: strata.NoExpiry},
		strata.Entry{Key: []byte("b"), Value: []byte("new-b"), TTL: strata.NoExpiry})
	var buf bytes.Buffer
	if _, err := checkpoint.WriteStore(ctx, &buf, src, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.ckpt")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode checkpoint.Mode
		want map[string]string
	}{
		{checkpoint.Replace, map[string]string{"a": "new-a", "b": "new-b"}},
		{checkpoint.Merge, map[string]string{"a": "new-a", "b": "new-b", "c": "old-c"}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			// The target is a prefixed view: Replace clears only its
			// namespace, never the other keys of the underlying store.
			under := newMem(t, nil)
			put(t, under, strata.Entry{Key: []byte("other:x"), Value: []byte("keep"), TTL: strata.NoExpiry})
			dst := strata.WithPrefix(under, []byte("ns:"))
			for i := range 2500 { // more than a batch to clear
				put(t, dst, strata.Entry{Key: fmt.Appendf(nil, "old%05d", i), Value: []byte("o"), TTL: strata.NoExpiry})
			}
			put(t, dst, strata.Entry{Key: []byte("a"), Value: []byte("old-a"), TTL: strata.NoExpiry},
				strata.Entry{Key: []byte("c"), Value: []byte("old-c"), TTL: strata.NoExpiry})
			rep, err := checkpoint.RestoreFile(ctx, path, dst, &checkpoint.RestoreOptions{Mode: tc.mode})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, it := range dump(t, dst) {
				if !strings.HasPrefix(k, "old") {
					got[k] = it.Value
				} else if tc.mode == checkpoint.Replace {
					t.Fatalf("replace kept %q", k)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if tc.mode == checkpoint.Replace && rep.Cleared != 2502 {
				t.Fatalf("cleared %d keys, want 2502", rep.Cleared)
			}
			if v, err := under.Get(ctx, []byte("other:x")); err != nil || string(v) != "keep" {
				t.Fatalf("key outside the namespace: %q, %v", v, err)
			}
		})
	}
}

func TestWriterRejects(t *testing.T) {
	var buf bytes.Buffer
	for _, o := range []*checkpoint.WriterOptions{
		{ID: "../etc/passwd"},
		{Level: 23},
		{Level: -1},
		{BlockSize: checkpoint.MaxBlockSize + 1},
		{Compression: 9},
		{MaxValueSize: -1},
		// A block's raw length is a uint32: a value this large would be
		// written with a wrapped length, a file that passes its checksums
		// and cannot be read.
		{MaxValueSize: 1 << 32},
	} {
		if _, err := checkpoint.NewWriter(&buf, o); !errors.Is(err, strata.ErrInvalidConfig) {
			t.Errorf("NewWriter(%+v): %v, want ErrInvalidConfig", o, err)
		}
	}
	w, err := checkpoint.NewWriter(&buf, &checkpoint.WriterOptions{MaxValueSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, tc := range []struct {
		key, value []byte
		exp        int64
		want       error
	}{
		{nil, nil, 0, strata.ErrInvalidKey},
		{make([]byte, strata.MaxKeyLen+1), nil, 0, strata.ErrInvalidKey},
		{[]byte("k"), make([]byte, 11), 0, strata.ErrValueTooLarge},
		{[]byte("k"), nil, -5, strata.ErrInvalidTTL},
		{[]byte("k"), nil, 1 << 62, strata.ErrInvalidTTL},
	} {
		if err := w.Append(tc.key, tc.value, tc.exp); !errors.Is(err, tc.want) {
			t.Errorf("Append(%d-byte key, %d-byte value, %d): %v, want %v", len(tc.key), len(tc.value), tc.exp, err, tc.want)
		}
	}
}

// TestLargeLimits: a reader allowed values beyond what the format can
// hold (a block's length is a uint32) still reads valid files, instead of
// rejecting every block against an overflowed limit.
func TestLargeLimits(t *testing.T) {
	data := smallFile(t, 100, 1024, checkpoint.CompressionZstd)
	for _, max := range []int{1 << 32, math.MaxInt} {
		if n, err := readAll(data, &checkpoint.Limits{MaxValueSize: max}); err != nil || n != 100 {
			t.Errorf("Limits.MaxValueSize %d: read %d records, %v; want 100, nil", max, n, err)
		}
	}
}

// failingSnapshot yields n entries and then an error.
type failingSnapshot struct{ n int }

func (f failingSnapshot) Close() error { return nil }
func (f failingSnapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[strata.Entry, error] {
	return func(yield func(strata.Entry, error) bool) {
		for i := range f.n {
			if !yield(strata.Entry{Key: fmt.Appendf(nil, "k%06d", i), Value: []byte("v"), TTL: strata.NoExpiry}, nil) {
				return
			}
		}
		yield(strata.Entry{}, strata.ErrUnavailable)
	}
}

func TestWriteSnapshotError(t *testing.T) {
	var buf bytes.Buffer
	_, err := checkpoint.Write(context.Background(), &buf, failingSnapshot{5000}, nil)
	if !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("Write: %v, want the snapshot's error", err)
	}
	if _, err := checkpoint.Verify(context.Background(), &buf, nil); !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("the aborted output verifies: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := checkpoint.Write(ctx, &buf, failingSnapshot{5000}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context: %v", err)
	}
}

// heapSampler is an io.Writer that discards what it gets and, every few
// writes, collects garbage and records the live heap.
type heapSampler struct {
	writes, every int
	peak          uint64
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (h *heapSampler) Write(p []byte) (int, error) {
	if h.writes++; h.writes%h.every == 0 {
		h.peak = max(h.peak, liveHeap())
	}
	return len(p), nil
}

// TestStreamingMemory: writing a checkpoint of a store far larger than a
// block holds a bounded amount of memory, not the state.
func TestStreamingMemory(t *testing.T) {
	const n = 400_000 // 16-byte keys, 100-byte values: 46 MB of raw records
	src := newMem(t, nil)
	fillBench(t, src, n)
	base := liveHeap()
	h := &heapSampler{every: 4}
	m, err := checkpoint.WriteStore(context.Background(), h, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(h.peak) - int64(base)
	t.Logf("raw %d MB, written %d MB, peak live heap growth %.1f MiB over %d samples",
		m.RawBytes>>20, m.CompressedBytes>>20, float64(growth)/(1<<20), h.writes/h.every)
	if m.Entries != n || h.writes/h.every < 5 {
		t.Fatalf("%d entries, %d samples", m.Entries, h.writes/h.every)
	}
	if growth > 24<<20 {
		t.Fatalf("live heap grew by %d MiB while writing %d MiB of records", growth>>20, m.RawBytes>>20)
	}
}
