package tier_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

const benchKeys = 10000

func benchData() ([][]byte, []byte) {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bench:%08d", i)
	}
	return keys, make([]byte, 100)
}

// BenchmarkHit compares an L1-hit Get of the tier (on otter, the default
// engine, and on ristretto) with a Get of a bare ristretto cache holding
// the same 10k keys and 100-byte values, all from parallel goroutines. The tier does more per hit: it checks the
// context and the closed flag, validates the entry (generation, epoch,
// full key, expiry) and copies the value for the caller.
func BenchmarkHit(b *testing.B) {
	keys, value := benchData()
	b.Run("Ristretto", func(b *testing.B) {
		c, err := ristretto.NewCache(&ristretto.Config[[]byte, []byte]{
			NumCounters: benchKeys * 10, MaxCost: 64 << 20, BufferItems: 64,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for _, k := range keys {
			c.Set(k, value, int64(len(k)+len(value)))
		}
		c.Wait()
		var next, misses atomic.Uint64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				if _, ok := c.Get(keys[i%benchKeys]); !ok {
					misses.Add(1)
				}
				i++
			}
		})
		if misses.Load() > 0 {
			b.Fatalf("%d misses", misses.Load())
		}
	})
	b.Run("RistrettoCopy", func(b *testing.B) {
		// The same, returning a copy of the value as a store must: the
		// caller owns what Get returns.
		c, err := ristretto.NewCache(&ristretto.Config[[]byte, []byte]{
			NumCounters: benchKeys * 10, MaxCost: 64 << 20, BufferItems: 64,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for _, k := range keys {
			c.Set(k, value, int64(len(k)+len(value)))
		}
		c.Wait()
		var next, misses atomic.Uint64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				v, ok := c.Get(keys[i%benchKeys])
				if !ok {
					misses.Add(1)
				}
				sink(append([]byte(nil), v...))
				i++
			}
		})
		if misses.Load() > 0 {
			b.Fatalf("%d misses", misses.Load())
		}
	})
	for _, ttl := range []struct {
		name     string
		ttl      int64
		maxBytes int64
		engine   tier.Engine
	}{
		{"Tier", -1, 0, tier.EngineOtter}, {"TierTTL", 3600, 0, tier.EngineOtter},
		{"TierRistretto", -1, 0, tier.EngineRistretto}, {"TierRistrettoTTL", 3600, 0, tier.EngineRistretto},
	} {
		b.Run(ttl.name, func(b *testing.B) {
			tr, ctx := loadedTier(b, &tier.Options{MaxBytes: ttl.maxBytes, Engine: ttl.engine}, keys, value, ttl.ttl)
			before := tr.TierStats().L1Misses
			var next atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(7919)
				for pb.Next() {
					if _, err := tr.Get(ctx, keys[i%benchKeys]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.StopTimer()
			if m := tr.TierStats().L1Misses - before; m > 0 {
				b.Fatalf("%d L1 misses in a hit benchmark: %+v", m, tr.TierStats())
			}
		})
	}
}

// loadedTier returns a tier over the memory store holding keys, written
// through it (ttlSeconds < 0: no expiry) so that they are in L1.
func loadedTier(b *testing.B, opts *tier.Options, keys [][]byte, value []byte, ttlSeconds int64) (*tier.Tier, context.Context) {
	b.Helper()
	tr, err := tier.New(memory.New(nil), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	ctx := context.Background()
	ttl := strata.NoExpiry
	if ttlSeconds > 0 {
		ttl = durationSeconds(ttlSeconds)
	}
	for _, k := range keys {
		if err := tr.Put(ctx, k, value, ttl); err != nil {
			b.Fatal(err)
		}
	}
	// A write invalidates the L1 entries of other keys in its coherence
	// slot; read once more so that every key is in L1.
	tr.WaitL1()
	for _, k := range keys {
		if _, err := tr.Get(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	tr.WaitL1()
	return tr, ctx
}

// BenchmarkMiss compares the tier's miss path with a Get of the memory
// store itself, single-threaded. Present: every key is in the L2, and the
// L1 is too small to keep any (each Get reads the L2 and tries a fill).
// Absent: no key exists (no negative caching).
func BenchmarkMiss(b *testing.B) {
	keys, value := benchData()
	for _, present := range []bool{true, false} {
		name := "Absent"
		if present {
			name = "Present"
		}
		b.Run(name+"/Memory", func(b *testing.B) {
			m := memory.New(nil)
			defer m.Close()
			ctx := context.Background()
			if present {
				for _, k := range keys {
					m.Put(ctx, k, value, 0)
				}
			}
			i := 0
			for b.Loop() {
				m.Get(ctx, keys[i%benchKeys])
				i++
			}
		})
		b.Run(name+"/Tier", func(b *testing.B) {
			m := memory.New(nil)
			tr, err := tier.New(m, &tier.Options{MaxBytes: tier.DefaultEngine.Budget(4, 16, 16)})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			ctx := context.Background()
			if present {
				for _, k := range keys {
					m.Put(ctx, k, value, 0)
				}
			}
			i := 0
			for b.Loop() {
				tr.Get(ctx, keys[i%benchKeys])
				i++
			}
			b.StopTimer()
			if s := tr.TierStats(); s.L1Hits > uint64(b.N/100) {
				b.Fatalf("%d L1 hits of %d: not a miss benchmark", s.L1Hits, b.N)
			}
		})
	}
}

func BenchmarkStore(b *testing.B) {
	conformance.BenchmarkStore(b, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			tr, err := tier.New(openMemory(o), &tier.Options{Clock: o.Clock})
			if err != nil {
				tb.Fatal(err)
			}
			return tr
		},
		FakeClock: true,
	})
}

func durationSeconds(s int64) (d time.Duration) { return time.Duration(s) * time.Second }

var sinkCount atomic.Int64

// sink keeps the compiler from dropping a copy.
func sink(b []byte) {
	if len(b) == 0 {
		sinkCount.Add(1)
	}
}
