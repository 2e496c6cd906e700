package conformance

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/strata-kv/strata"
)

// BenchmarkStore measures the store h describes: single and parallel Get
// and Put of 100-byte values, batches of 100, and a full Keys walk. Run it
// from a Benchmark function of the store's own tests.
func BenchmarkStore(b *testing.B, h Harness) {
	const nKeys = 10000
	value := make([]byte, 100)
	keys := make([][]byte, nKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bench:%08d", i)
	}
	open := func(b *testing.B) (strata.Store, context.Context) {
		b.Helper()
		o := Options{}
		if h.FakeClock {
			o.Clock = strata.SystemClock{}
		}
		s := h.Open(b, o)
		b.Cleanup(func() { s.Close() })
		ctx := b.Context()
		entries := make([]strata.Entry, len(keys))
		for i, k := range keys {
			entries[i] = strata.Entry{Key: k, Value: value}
		}
		for i := 0; i < len(entries); i += 1000 {
			if err := strata.PutMany(ctx, s, entries[i:i+1000]); err != nil {
				b.Fatalf("loading: %v", err)
			}
		}
		return s, ctx
	}
	b.Run("Get", func(b *testing.B) {
		s, ctx := open(b)
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, keys[i%nKeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		s, ctx := open(b)
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				if _, err := s.Get(ctx, keys[i%nKeys]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("Put", func(b *testing.B) {
		s, ctx := open(b)
		i := 0
		for b.Loop() {
			if err := s.Put(ctx, keys[i%nKeys], value, 0); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("PutParallel", func(b *testing.B) {
		s, ctx := open(b)
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				if err := s.Put(ctx, keys[i%nKeys], value, 0); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("GetMany100", func(b *testing.B) {
		s, ctx := open(b)
		i := 0
		for b.Loop() {
			start := (i * 100) % (nKeys - 100)
			if _, err := strata.GetMany(ctx, s, keys[start:start+100]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
	})
	b.Run("PutMany100", func(b *testing.B) {
		s, ctx := open(b)
		entries := make([]strata.Entry, 100)
		i := 0
		for b.Loop() {
			start := (i * 100) % (nKeys - 100)
			for j := range entries {
				entries[j] = strata.Entry{Key: keys[start+j], Value: value}
			}
			if err := strata.PutMany(ctx, s, entries); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "keys/s")
	})
	b.Run("Keys10k", func(b *testing.B) {
		s, ctx := open(b)
		for b.Loop() {
			n := 0
			for _, err := range s.Keys(ctx, []byte("bench:")) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n < nKeys {
				b.Fatalf("Keys yielded %d, want %d", n, nKeys)
			}
		}
	})
}
