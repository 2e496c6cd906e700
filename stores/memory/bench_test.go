package memory_test

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/btree"

	"github.com/strata-kv/strata/stores/memory"
)

// BenchmarkParallel compares the store's parallel Get and Put of 100-byte
// values with the raw thing it is built on, a google/btree under a
// sync.RWMutex doing the same lookups and copies, in the same run.
func BenchmarkParallel(b *testing.B) {
	const n = 10000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bench:%08d", i)
	}
	value := make([]byte, 100)

	b.Run("Get/strata", func(b *testing.B) {
		s := memory.New(nil)
		defer s.Close()
		ctx := b.Context()
		for _, k := range keys {
			s.Put(ctx, k, value, 0)
		}
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				if _, err := s.Get(ctx, keys[i%n]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("Get/raw", func(b *testing.B) {
		r := newRaw()
		for _, k := range keys {
			r.put(k, value)
		}
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				if r.get(keys[i%n]) == nil {
					b.Error("missing")
					return
				}
				i++
			}
		})
	})
	b.Run("Put/strata", func(b *testing.B) {
		s := memory.New(nil)
		defer s.Close()
		ctx := b.Context()
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				if err := s.Put(ctx, keys[i%n], value, 0); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("Put/raw", func(b *testing.B) {
		r := newRaw()
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				r.put(keys[i%n], value)
				i++
			}
		})
	})
}

type rawItem struct{ k, v []byte }

// raw is the baseline: the same B-tree and lock, without validation,
// expiry, stats or the expiry index.
type raw struct {
	mu sync.RWMutex
	t  *btree.BTreeG[rawItem]
}

func newRaw() *raw {
	return &raw{t: btree.NewG(32, func(a, b rawItem) bool { return bytes.Compare(a.k, b.k) < 0 })}
}

func (r *raw) get(k []byte) []byte {
	r.mu.RLock()
	it, ok := r.t.Get(rawItem{k: k})
	var v []byte
	if ok {
		v = append(make([]byte, 0, len(it.v)), it.v...)
	}
	r.mu.RUnlock()
	return v
}

func (r *raw) put(k, v []byte) {
	it := rawItem{append([]byte(nil), k...), append([]byte(nil), v...)}
	r.mu.Lock()
	r.t.ReplaceOrInsert(it)
	r.mu.Unlock()
}
