package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/Yiling-J/theine-go"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

// localCandidates are in-process caches holding nKeys keys with 100-byte
// values, each read returning a copy the caller owns: the raw engines
// (ristretto, otter, theine) and the tier on each of its engines, over a
// memory store.
func localCandidates(b *testing.B) []candidate {
	keys := make([]string, nKeys)
	bkeys := make([][]byte, nKeys)
	for i := range keys {
		keys[i] = keyOf(i)
		bkeys[i] = []byte(keys[i])
	}
	rc, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: nKeys * 10, MaxCost: 64 << 20, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	oc := otter.Must(&otter.Options[string, []byte]{MaximumSize: 2 * nKeys})
	tc, err := theine.NewBuilder[string, []byte](2 * nKeys).Build()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tc.Close)
	for _, k := range keys {
		rc.Set(k, value, int64(len(value)+12))
		oc.Set(k, value)
		tc.Set(k, value, 1)
	}
	rc.Wait()
	tc.Wait()
	out := []candidate{
		{"RistrettoCopy", func(i int) ([]byte, error) { v, _ := rc.Get(keys[i]); return append([]byte(nil), v...), nil }},
		{"OtterCopy", func(i int) ([]byte, error) { v, _ := oc.GetIfPresent(keys[i]); return append([]byte(nil), v...), nil }},
		{"TheineCopy", func(i int) ([]byte, error) { v, _ := tc.Get(keys[i]); return append([]byte(nil), v...), nil }},
	}
	ctx := context.Background()
	for _, e := range tier.Engines() {
		l2 := memory.New(nil)
		t, err := tier.New(l2, &tier.Options{Engine: e, Invalidation: tier.InvalidationNone})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { t.Close() })
		for _, k := range bkeys {
			if err := t.Put(ctx, k, value, strata.NoExpiry); err != nil {
				b.Fatal(err)
			}
		}
		for range 3 { // fills of keys whose entry a write in the same slot invalidated
			for _, k := range bkeys {
				if _, err := t.Get(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		}
		name := "StrataTier" + map[tier.Engine]string{tier.EngineRistretto: "Ristretto", tier.EngineOtter: "Otter"}[e]
		out = append(out, candidate{name, func(i int) ([]byte, error) { return t.Get(ctx, bkeys[i]) }})
	}
	for _, c := range out {
		for i := range nKeys {
			if v, err := c.get(i); err != nil || len(v) != len(value) {
				b.Fatalf("%s does not hold key %d: %d bytes, %v", c.name, i, len(v), err)
			}
		}
	}
	return out
}

// BenchmarkHitParallel times hits of the in-process caches in alternation
// (see interleave) from 2, 8 and 64 goroutines, and reports each one's ns
// per hit (wall time over all goroutines: the inverse of throughput) and
// its ratio to the first, ristretto's Get and copy.
func BenchmarkHitParallel(b *testing.B) {
	cs := localCandidates(b)
	for _, par := range []int{2, 8, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", par), func(b *testing.B) {
			var names []string
			var fns []func(g, i int)
			for _, c := range cs {
				names = append(names, c.name)
				fns = append(fns, func(g, i int) {
					if v, err := c.get(i % nKeys); err != nil || len(v) != len(value) {
						b.Errorf("%s: %d bytes, %v", c.name, len(v), err)
					}
				})
			}
			interleave(b, par, 64*1024, names, fns...)
		})
	}
}
