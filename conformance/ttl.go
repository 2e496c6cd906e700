package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/strata-kv/strata"
)

func (s *suite) testTTL(t *testing.T) {
	t.Run("Expires", func(t *testing.T) {
		e := s.store(t)
		ttl := e.shortTTL()
		e.put("k", "v", ttl)
		e.put("keep", "v", strata.NoExpiry)
		if e.clock != nil {
			e.clock.Advance(ttl - time.Millisecond)
			e.wantValue("k", "v")
			e.clock.Advance(time.Millisecond)
		} else {
			e.wantValue("k", "v")
			e.elapse(ttl, []byte("k"))
		}
		e.wantAbsent("k")
		e.wantValue("keep", "v")
	})
	t.Run("ExpiredInvisible", func(t *testing.T) {
		e := s.store(t)
		expire := func() {
			t.Helper()
			e.put("k", "v", e.shortTTL())
			e.elapse(e.shortTTL(), []byte("k"))
		}
		e.put("keep", "v", strata.NoExpiry)
		expire()
		e.wantAbsent("k")
		vs, err := strata.GetMany(e.ctx, e.s, [][]byte{[]byte("k"), []byte("keep")})
		noErr(t, "GetMany", err)
		if vs[0] != nil || string(vs[1]) != "v" {
			t.Fatalf("GetMany = %q, want [nil v]", vs)
		}
		if got := e.keys(""); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("Keys = %q, want [keep]", got)
		}
		if got := e.snapshotKeys(); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("snapshot entries = %q, want [keep]", got)
		}
		n, err := strata.DeleteMany(e.ctx, e.s, [][]byte{[]byte("k")})
		if err != nil || n != 0 {
			t.Fatalf("DeleteMany of an expired key = %d, %v; want 0, nil", n, err)
		}
		if e.has(Expiry) {
			_, err := strata.TTL(e.ctx, e.s, []byte("k"))
			wantErr(t, "TTL of an expired key", err, strata.ErrNotFound)
			_, _, err = strata.GetWithTTL(e.ctx, e.s, []byte("k"))
			wantErr(t, "GetWithTTL of an expired key", err, strata.ErrNotFound)
		}
		if !e.has(Atomic) {
			return
		}
		expire()
		_, err = strata.GetAndDelete(e.ctx, e.s, []byte("k"))
		wantErr(t, "GetAndDelete of an expired key", err, strata.ErrNotFound)
		expire()
		ok, err := strata.PutIfAbsent(e.ctx, e.s, []byte("k"), []byte("new"), 0)
		if err != nil || !ok {
			t.Fatalf("PutIfAbsent over an expired key = %v, %v; want true", ok, err)
		}
		e.wantValue("k", "new")
		noErr(t, "Delete", e.s.Delete(e.ctx, []byte("k")))
		expire()
		ok, err = strata.CompareAndSwap(e.ctx, e.s, []byte("k"), []byte("v"), []byte("new"), 0)
		if err != nil || ok {
			t.Fatalf("CompareAndSwap against an expired value = %v, %v; want false", ok, err)
		}
		ok, err = strata.CompareAndSwap(e.ctx, e.s, []byte("k"), nil, []byte("new"), 0)
		if err != nil || !ok {
			t.Fatalf("CompareAndSwap(old=nil) over an expired key = %v, %v; want true", ok, err)
		}
		e.wantValue("k", "new")
	})
	t.Run("Default", func(t *testing.T) {
		ttl := 10 * time.Second
		if !s.h.FakeClock {
			ttl = s.h.RealTTL
		}
		e := s.open(t, Options{DefaultTTL: ttl})
		e.put("default", "v", 0)
		e.put("forever", "v", strata.NoExpiry)
		e.put("explicit", "v", longTTL)
		noErr(t, "PutMany", strata.PutMany(e.ctx, e.s, []strata.Entry{{Key: []byte("batch"), Value: []byte("v")}}))
		if e.has(Expiry) {
			got, err := strata.TTL(e.ctx, e.s, []byte("default"))
			if err != nil || got <= 0 || got > ttl {
				t.Fatalf("TTL of a default-TTL key = %v, %v; want in (0, %v]", got, err, ttl)
			}
			got, err = strata.TTL(e.ctx, e.s, []byte("forever"))
			if err != nil || got != strata.NoExpiry {
				t.Fatalf("TTL of a NoExpiry key = %v, %v; want NoExpiry", got, err)
			}
		}
		e.elapse(ttl, []byte("default"))
		e.wantAbsent("default")
		if e.clock == nil {
			e.elapse(ttl, []byte("batch"))
		}
		e.wantAbsent("batch")
		e.wantValue("forever", "v")
		e.wantValue("explicit", "v")
	})
	t.Run("NoDefault", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		e.put("short", "v", e.shortTTL())
		if e.has(Expiry) {
			got, err := strata.TTL(e.ctx, e.s, []byte("k"))
			if err != nil || got != strata.NoExpiry {
				t.Fatalf("TTL of a key written with ttl 0 and no default = %v, %v; want NoExpiry", got, err)
			}
		}
		e.elapse(e.shortTTL(), []byte("short"))
		if e.clock != nil {
			e.clock.Advance(100 * 365 * 24 * time.Hour)
		}
		e.wantValue("k", "v")
	})
	t.Run("Invalid", func(t *testing.T) {
		e := s.store(t)
		for _, ttl := range []time.Duration{-2, -time.Millisecond, -time.Hour} {
			wantErr(t, "Put", e.s.Put(e.ctx, []byte("k"), []byte("v"), ttl), strata.ErrInvalidTTL)
			err := strata.PutMany(e.ctx, e.s, []strata.Entry{{Key: []byte("ok"), Value: []byte("v")}, {Key: []byte("k"), Value: []byte("v"), TTL: ttl}})
			wantErr(t, "PutMany", err, strata.ErrInvalidTTL)
			if e.has(Atomic) {
				_, err := strata.PutIfAbsent(e.ctx, e.s, []byte("k"), []byte("v"), ttl)
				wantErr(t, "PutIfAbsent", err, strata.ErrInvalidTTL)
				_, err = strata.CompareAndSwap(e.ctx, e.s, []byte("k"), nil, []byte("v"), ttl)
				wantErr(t, "CompareAndSwap", err, strata.ErrInvalidTTL)
			}
		}
		if got := e.keys(""); len(got) != 0 {
			t.Fatalf("writes with an invalid TTL left keys %q", got)
		}
	})
	t.Run("OverwriteReplacesTTL", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v1", e.shortTTL())
		e.put("k", "v2", strata.NoExpiry)
		e.put("probe", "v", e.shortTTL())
		e.elapse(e.shortTTL(), []byte("probe"))
		e.wantValue("k", "v2")
		e.put("k", "v3", e.shortTTL())
		e.elapse(e.shortTTL(), []byte("k"))
		e.wantAbsent("k")
	})
	t.Run("Rounding", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", time.Nanosecond)
		if e.has(Expiry) {
			got, err := strata.TTL(e.ctx, e.s, []byte("k"))
			if e.clock != nil && (err != nil || got <= 0 || got > time.Millisecond) {
				t.Fatalf("TTL after Put with 1ns = %v, %v; want in (0, 1ms]", got, err)
			}
			if e.clock == nil && err == nil && (got <= 0 || got > 2*time.Millisecond) {
				t.Fatalf("TTL after Put with 1ns = %v; want in (0, 2ms]", got)
			}
		}
		e.elapse(time.Millisecond, []byte("k"))
		e.wantAbsent("k")
	})
	t.Run("CompareAndSwapSetsTTL", func(t *testing.T) {
		e := s.store(t)
		if !e.has(Atomic) {
			_, err := strata.CompareAndSwap(e.ctx, e.s, []byte("k"), nil, []byte("v"), 0)
			wantErr(t, "CompareAndSwap on a store without Atomic", err, strata.ErrUnsupported)
			return
		}
		e.put("k", "v1", strata.NoExpiry)
		ok, err := strata.CompareAndSwap(e.ctx, e.s, []byte("k"), []byte("v1"), []byte("v2"), e.shortTTL())
		if err != nil || !ok {
			t.Fatalf("CompareAndSwap = %v, %v; want true", ok, err)
		}
		e.elapse(e.shortTTL(), []byte("k"))
		e.wantAbsent("k")
	})
}

func (s *suite) testExpirer(t *testing.T) {
	if !s.h.Capabilities.Has(Expiry) {
		t.Run("Unsupported", func(t *testing.T) {
			e := s.store(t)
			e.put("k", "v", 0)
			_, err := strata.TTL(e.ctx, e.s, []byte("k"))
			wantErr(t, "TTL", err, strata.ErrUnsupported)
			_, _, err = strata.GetWithTTL(e.ctx, e.s, []byte("k"))
			wantErr(t, "GetWithTTL", err, strata.ErrUnsupported)
			_, err = strata.GetManyWithTTL(e.ctx, e.s, [][]byte{[]byte("k")})
			wantErr(t, "GetManyWithTTL", err, strata.ErrUnsupported)
		})
		return
	}
	t.Run("GetManyWithTTL", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", time.Hour)
		e.put("forever", "", strata.NoExpiry)
		e.put("short", "s", e.shortTTL())
		keys := [][]byte{[]byte("k"), []byte("absent"), []byte("forever"), []byte("k"), []byte("short")}
		got, err := strata.GetManyWithTTL(e.ctx, e.s, keys)
		noErr(t, "GetManyWithTTL", err)
		if len(got) != len(keys) {
			t.Fatalf("GetManyWithTTL returned %d entries for %d keys", len(got), len(keys))
		}
		for i, en := range got {
			if string(en.Key) != string(keys[i]) {
				t.Fatalf("entry %d has key %q, want %q", i, en.Key, keys[i])
			}
		}
		for _, i := range []int{0, 3} {
			if string(got[i].Value) != "v" || got[i].TTL <= time.Hour-time.Minute || got[i].TTL > time.Hour {
				t.Fatalf("entry %d = %q, %v; want v, just under 1h", i, got[i].Value, got[i].TTL)
			}
		}
		if got[1].Value != nil {
			t.Fatalf("absent key read as %q", got[1].Value)
		}
		if got[2].Value == nil || len(got[2].Value) != 0 || got[2].TTL != strata.NoExpiry {
			t.Fatalf("empty NoExpiry value = %q (nil %v), %v", got[2].Value, got[2].Value == nil, got[2].TTL)
		}
		if got[4].Value != nil && (got[4].TTL <= 0 || got[4].TTL > e.shortTTL()) {
			t.Fatalf("short entry TTL = %v, want in (0, %v]", got[4].TTL, e.shortTTL())
		}
		e.elapse(e.shortTTL(), []byte("short"))
		got, err = strata.GetManyWithTTL(e.ctx, e.s, [][]byte{[]byte("short")})
		noErr(t, "GetManyWithTTL", err)
		if got[0].Value != nil {
			t.Fatalf("expired key read as %q, %v", got[0].Value, got[0].TTL)
		}
		got[0].Key = nil // the caller owns the result
	})
	t.Run("TTL", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", time.Hour)
		e.put("forever", "v", strata.NoExpiry)
		got, err := strata.TTL(e.ctx, e.s, []byte("k"))
		if err != nil || got <= time.Hour-time.Minute || got > time.Hour {
			t.Fatalf("TTL = %v, %v; want just under 1h", got, err)
		}
		if e.clock != nil {
			e.clock.Advance(15 * time.Minute)
			got, err := strata.TTL(e.ctx, e.s, []byte("k"))
			if err != nil || got != 45*time.Minute {
				t.Fatalf("TTL after 15m = %v, %v; want 45m", got, err)
			}
		}
		got, err = strata.TTL(e.ctx, e.s, []byte("forever"))
		if err != nil || got != strata.NoExpiry {
			t.Fatalf("TTL = %v, %v; want NoExpiry", got, err)
		}
		_, err = strata.TTL(e.ctx, e.s, []byte("absent"))
		wantErr(t, "TTL of an absent key", err, strata.ErrNotFound)
	})
	t.Run("GetWithTTL", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", time.Hour)
		e.put("forever", "", strata.NoExpiry)
		v, ttl, err := strata.GetWithTTL(e.ctx, e.s, []byte("k"))
		if err != nil || string(v) != "v" || ttl <= time.Hour-time.Minute || ttl > time.Hour {
			t.Fatalf("GetWithTTL = %q, %v, %v; want v, just under 1h", v, ttl, err)
		}
		v, ttl, err = strata.GetWithTTL(e.ctx, e.s, []byte("forever"))
		if err != nil || v == nil || len(v) != 0 || ttl != strata.NoExpiry {
			t.Fatalf("GetWithTTL = %q (nil %v), %v, %v; want empty, NoExpiry", v, v == nil, ttl, err)
		}
		_, _, err = strata.GetWithTTL(e.ctx, e.s, []byte("absent"))
		wantErr(t, "GetWithTTL of an absent key", err, strata.ErrNotFound)
	})
}

// snapshotKeys lists the keys of a fresh snapshot (sorted and unique with
// UnorderedKeys).
func (e *env) snapshotKeys() []string {
	e.t.Helper()
	sn, err := strata.SnapshotOf(e.ctx, e.s)
	noErr(e.t, "Snapshot", err)
	defer sn.Close()
	var out []string
	for en, err := range sn.Entries(e.ctx, nil) {
		noErr(e.t, "Entries", err)
		out = append(out, string(en.Key))
	}
	if e.h.UnorderedKeys {
		out = sortUnique(out)
	}
	return out
}

func sortUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
