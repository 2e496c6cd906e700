package conformance

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/strata-kv/strata"
)

func (s *suite) testBatch(t *testing.T) {
	t.Run("GetManyMissing", func(t *testing.T) {
		e := s.store(t)
		e.put("a", "1", 0)
		e.put("c", "3", 0)
		e.put("empty", "", 0)
		got, err := strata.GetMany(e.ctx, e.s, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("a"), []byte("empty")})
		noErr(t, "GetMany", err)
		if len(got) != 5 || string(got[0]) != "1" || got[1] != nil || string(got[2]) != "3" || string(got[3]) != "1" ||
			got[4] == nil || len(got[4]) != 0 {
			t.Fatalf("GetMany = %q, want [1 nil 3 1 \"\"] with a non-nil empty value", got)
		}
	})
	t.Run("PutMany", func(t *testing.T) {
		e := s.store(t)
		var entries []strata.Entry
		for i := range 100 {
			entries = append(entries, strata.Entry{Key: []byte(keyN(i)), Value: []byte(valN(i))})
		}
		entries = append(entries,
			strata.Entry{Key: []byte("dup"), Value: []byte("first")},
			strata.Entry{Key: []byte("dup"), Value: []byte("last")},
			strata.Entry{Key: []byte("short"), Value: []byte("v"), TTL: e.shortTTL()},
			strata.Entry{Key: []byte("forever"), Value: []byte("v"), TTL: strata.NoExpiry},
		)
		noErr(t, "PutMany", strata.PutMany(e.ctx, e.s, entries))
		for i := range 100 {
			e.wantValue(keyN(i), valN(i))
		}
		e.wantValue("dup", "last")
		if e.has(Expiry) {
			ttl, err := strata.TTL(e.ctx, e.s, []byte("short"))
			if err == nil && (ttl <= 0 || ttl > e.shortTTL()) {
				t.Fatalf("TTL of a batch entry = %v, want in (0, %v]", ttl, e.shortTTL())
			}
		}
		e.elapse(e.shortTTL(), []byte("short"))
		e.wantAbsent("short")
		e.wantValue("forever", "v")
	})
	t.Run("DeleteMany", func(t *testing.T) {
		e := s.store(t)
		e.put("a", "1", 0)
		e.put("b", "2", 0)
		e.put("keep", "3", 0)
		n, err := strata.DeleteMany(e.ctx, e.s, [][]byte{[]byte("a"), []byte("missing"), []byte("b"), []byte("a")})
		noErr(t, "DeleteMany", err)
		if n != 2 {
			t.Fatalf("DeleteMany = %d, want 2 (a, b; missing and repeated keys do not count)", n)
		}
		e.wantAbsent("a")
		e.wantAbsent("b")
		e.wantValue("keep", "3")
	})
	t.Run("Empty", func(t *testing.T) {
		e := s.store(t)
		got, err := strata.GetMany(e.ctx, e.s, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("GetMany(nil) = %q, %v", got, err)
		}
		noErr(t, "PutMany(nil)", strata.PutMany(e.ctx, e.s, nil))
		n, err := strata.DeleteMany(e.ctx, e.s, nil)
		if err != nil || n != 0 {
			t.Fatalf("DeleteMany(nil) = %d, %v", n, err)
		}
	})
	t.Run("Large", func(t *testing.T) {
		e := s.store(t)
		const n = 5000
		entries := make([]strata.Entry, n)
		keys := make([][]byte, n+1)
		for i := range entries {
			entries[i] = strata.Entry{Key: fmt.Appendf(nil, "k%05d", i), Value: fmt.Appendf(nil, "v%d", i)}
			keys[i] = entries[i].Key
		}
		keys[n] = []byte("absent")
		noErr(t, "PutMany", strata.PutMany(e.ctx, e.s, entries))
		got, err := strata.GetMany(e.ctx, e.s, keys)
		noErr(t, "GetMany", err)
		for i := range n {
			if string(got[i]) != "v"+strconv.Itoa(i) {
				t.Fatalf("GetMany[%d] = %q, want v%d", i, got[i], i)
			}
		}
		if got[n] != nil {
			t.Fatalf("GetMany of an absent key = %q, want nil", got[n])
		}
		deleted, err := strata.DeleteMany(e.ctx, e.s, keys)
		if err != nil || deleted != n {
			t.Fatalf("DeleteMany = %d, %v; want %d", deleted, err, n)
		}
		if left := e.keys(""); len(left) != 0 {
			t.Fatalf("%d keys left after DeleteMany", len(left))
		}
	})
}

func (s *suite) testAtomic(t *testing.T) {
	if !s.h.Capabilities.Has(Atomic) {
		t.Run("Unsupported", func(t *testing.T) {
			e := s.store(t)
			_, err := strata.PutIfAbsent(e.ctx, e.s, []byte("k"), []byte("v"), 0)
			wantErr(t, "PutIfAbsent", err, strata.ErrUnsupported)
			_, err = strata.GetAndDelete(e.ctx, e.s, []byte("k"))
			wantErr(t, "GetAndDelete", err, strata.ErrUnsupported)
			_, err = strata.CompareAndSwap(e.ctx, e.s, []byte("k"), nil, []byte("v"), 0)
			wantErr(t, "CompareAndSwap", err, strata.ErrUnsupported)
			e.wantAbsent("k")
		})
		return
	}
	t.Run("PutIfAbsent", func(t *testing.T) {
		e := s.store(t)
		ok, err := strata.PutIfAbsent(e.ctx, e.s, []byte("k"), []byte("first"), 0)
		if err != nil || !ok {
			t.Fatalf("PutIfAbsent on an absent key = %v, %v; want true", ok, err)
		}
		ok, err = strata.PutIfAbsent(e.ctx, e.s, []byte("k"), []byte("second"), 0)
		if err != nil || ok {
			t.Fatalf("PutIfAbsent on a present key = %v, %v; want false", ok, err)
		}
		e.wantValue("k", "first")
		ok, err = strata.PutIfAbsent(e.ctx, e.s, []byte("t"), []byte("v"), e.shortTTL())
		if err != nil || !ok {
			t.Fatalf("PutIfAbsent with a TTL = %v, %v; want true", ok, err)
		}
		e.elapse(e.shortTTL(), []byte("t"))
		e.wantAbsent("t")
	})
	t.Run("PutIfAbsentRace", func(t *testing.T) {
		e := s.store(t)
		for round := range 5 {
			key := fmt.Appendf(nil, "race%d", round)
			var wins atomic.Int32
			var winner atomic.Value
			race(16, func(i int) {
				v := strconv.Itoa(i)
				ok, err := strata.PutIfAbsent(e.ctx, e.s, key, []byte(v), 0)
				if err != nil {
					t.Errorf("PutIfAbsent: %v", err)
				}
				if ok {
					wins.Add(1)
					winner.Store(v)
				}
			})
			if wins.Load() != 1 {
				t.Fatalf("round %d: %d of 16 racers won PutIfAbsent, want exactly 1", round, wins.Load())
			}
			e.wantValue(string(key), winner.Load().(string))
		}
	})
	t.Run("GetAndDelete", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		e.put("empty", "", 0)
		v, err := strata.GetAndDelete(e.ctx, e.s, []byte("k"))
		if err != nil || string(v) != "v" {
			t.Fatalf("GetAndDelete = %q, %v; want v", v, err)
		}
		e.wantAbsent("k")
		_, err = strata.GetAndDelete(e.ctx, e.s, []byte("k"))
		wantErr(t, "second GetAndDelete", err, strata.ErrNotFound)
		v, err = strata.GetAndDelete(e.ctx, e.s, []byte("empty"))
		if err != nil || v == nil || len(v) != 0 {
			t.Fatalf("GetAndDelete of an empty value = %q (nil %v), %v; want non-nil empty", v, v == nil, err)
		}
	})
	t.Run("GetAndDeleteRace", func(t *testing.T) {
		e := s.store(t)
		for round := range 5 {
			key := fmt.Appendf(nil, "race%d", round)
			e.put(string(key), "prize", 0)
			var wins atomic.Int32
			race(16, func(int) {
				v, err := strata.GetAndDelete(e.ctx, e.s, key)
				switch {
				case errors.Is(err, strata.ErrNotFound):
				case err != nil:
					t.Errorf("GetAndDelete: %v", err)
				case string(v) != "prize":
					t.Errorf("GetAndDelete = %q, want prize", v)
				default:
					wins.Add(1)
				}
			})
			if wins.Load() != 1 {
				t.Fatalf("round %d: %d of 16 racers got the value, want exactly 1", round, wins.Load())
			}
		}
	})
	t.Run("CompareAndSwap", func(t *testing.T) {
		e := s.store(t)
		cas := func(key string, old, new []byte, want bool) {
			t.Helper()
			ok, err := strata.CompareAndSwap(e.ctx, e.s, []byte(key), old, new, 0)
			if err != nil || ok != want {
				t.Fatalf("CompareAndSwap(%q, old=%q (nil %v), new=%q) = %v, %v; want %v", key, old, old == nil, new, ok, err, want)
			}
		}
		cas("k", []byte("x"), []byte("v1"), false)
		cas("k", []byte{}, []byte("v1"), false)
		e.wantAbsent("k")
		cas("k", nil, []byte("v1"), true)
		e.wantValue("k", "v1")
		cas("k", nil, []byte("v2"), false)
		cas("k", []byte("wrong"), []byte("v2"), false)
		cas("k", []byte("v1"), []byte("v2"), true)
		e.wantValue("k", "v2")
		cas("k", []byte("v2"), []byte{}, true)
		e.wantValue("k", "")
		cas("k", nil, []byte("v3"), false)
		cas("k", []byte{}, []byte("v3"), true)
		e.wantValue("k", "v3")
	})
	t.Run("Counter", func(t *testing.T) {
		// Increments by CompareAndSwap from several goroutines: lost
		// updates would show as a short count.
		e := s.store(t)
		const workers, each = 8, 40
		key := []byte("counter")
		race(workers, func(int) {
			for range each {
				for {
					cur, err := e.s.Get(e.ctx, key)
					var old []byte
					n := 0
					switch {
					case errors.Is(err, strata.ErrNotFound):
					case err != nil:
						t.Errorf("Get: %v", err)
						return
					default:
						old = cur
						n, _ = strconv.Atoi(string(cur))
					}
					ok, err := strata.CompareAndSwap(e.ctx, e.s, key, old, []byte(strconv.Itoa(n+1)), 0)
					if err != nil {
						t.Errorf("CompareAndSwap: %v", err)
						return
					}
					if ok {
						break
					}
				}
			}
		})
		e.wantValue("counter", strconv.Itoa(workers*each))
	})
}
