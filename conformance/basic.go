package conformance

import (
	"bytes"
	"slices"
	"testing"

	"github.com/strata-kv/strata"
)

func (s *suite) testCapabilities(t *testing.T) {
	e := s.store(t)
	if got := capabilitiesOf(e.s); got != s.h.Capabilities {
		t.Fatalf("store implements %v, harness declares %v", got, s.h.Capabilities)
	}
}

func (s *suite) testBasic(t *testing.T) {
	t.Run("PutGet", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		e.wantValue("k", "v")
	})
	t.Run("Absent", func(t *testing.T) {
		e := s.store(t)
		e.wantAbsent("missing")
		e.put("k", "v", 0)
		e.wantAbsent("k2")
		e.wantAbsent("K")
	})
	t.Run("Overwrite", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "first", 0)
		e.put("k", "second", 0)
		e.wantValue("k", "second")
		e.put("k", "", 0)
		e.wantValue("k", "")
	})
	t.Run("Delete", func(t *testing.T) {
		e := s.store(t)
		e.put("k", "v", 0)
		e.put("k2", "v2", 0)
		noErr(t, "Delete", e.s.Delete(e.ctx, []byte("k")))
		e.wantAbsent("k")
		e.wantValue("k2", "v2")
	})
	t.Run("DeleteAbsent", func(t *testing.T) {
		e := s.store(t)
		noErr(t, "Delete of an absent key", e.s.Delete(e.ctx, []byte("never")))
		e.put("k", "v", 0)
		noErr(t, "Delete", e.s.Delete(e.ctx, []byte("k")))
		noErr(t, "second Delete", e.s.Delete(e.ctx, []byte("k")))
	})
	t.Run("EmptyValue", func(t *testing.T) {
		e := s.store(t)
		noErr(t, "Put nil value", e.s.Put(e.ctx, []byte("nil"), nil, 0))
		e.wantValue("nil", "")
		e.put("empty", "", 0)
		e.wantValue("empty", "")
	})
	t.Run("ManyKeys", func(t *testing.T) {
		e := s.store(t)
		for i := range 300 {
			e.put(keyN(i), valN(i), 0)
		}
		for i := range 300 {
			e.wantValue(keyN(i), valN(i))
		}
	})
}

func keyN(i int) string { return "key-" + string(rune('a'+i%26)) + "-" + itoa(i) }
func valN(i int) string { return "value-" + itoa(i*7) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// binaryKeys are keys with every kind of byte that trips up backends: NUL,
// 0xff, glob and hash-tag characters, separators and invalid UTF-8.
var binaryKeys = []string{
	"\x00", "\x00\x00", "a\x00b", "\xff", "\xff\xff", "a\xff", "\xfe\xff",
	"*", "a*", "?", "[a-z]", "\\", "{tag}", "{", "}", "a:b:c", " ", "\n",
	"\xc3\x28", "日本", "%s", "'\"",
}

func (s *suite) testKeys(t *testing.T) {
	t.Run("Binary", func(t *testing.T) {
		e := s.store(t)
		for i, k := range binaryKeys {
			e.put(k, valN(i), 0)
		}
		for i, k := range binaryKeys {
			e.wantValue(k, valN(i))
		}
		want := slices.Sorted(slices.Values(binaryKeys))
		if got := e.keys(""); !slices.Equal(sortUnique(got), want) {
			t.Fatalf("Keys = %q, want %q", got, want)
		}
	})
	t.Run("MaxKeyLen", func(t *testing.T) {
		e := s.store(t)
		k := bytes.Repeat([]byte{0xff}, e.h.MaxKeyLen)
		noErr(t, "Put of a MaxKeyLen key", e.s.Put(e.ctx, k, []byte("v"), 0))
		got, err := e.s.Get(e.ctx, k)
		noErr(t, "Get of a MaxKeyLen key", err)
		if string(got) != "v" {
			t.Fatalf("Get = %q, want v", got)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		e := s.store(t)
		long := bytes.Repeat([]byte("k"), e.h.MaxKeyLen+1)
		for name, k := range map[string][]byte{"empty": {}, "nil": nil, "too long": long} {
			for _, c := range e.keyCalls() {
				err := c.call(k)
				wantErr(t, c.name+" with a "+name+" key", err, strata.ErrInvalidKey)
			}
		}
		if got := e.keys(""); len(got) != 0 {
			t.Fatalf("rejected writes left keys %q", got)
		}
	})
}

// keyCall is one store operation on one key, through the helpers so that
// fallbacks are covered too.
type keyCall struct {
	name string
	call func(key []byte) error
}

// keyCalls returns every operation that takes a key, through the helpers
// so that fallbacks are covered too, and the capability operations the
// store declares.
func (e *env) keyCalls() []keyCall {
	ctx, s, v := e.ctx, e.s, []byte("v")
	calls := []keyCall{
		{"Get", func(k []byte) error { _, err := s.Get(ctx, k); return err }},
		{"Put", func(k []byte) error { return s.Put(ctx, k, v, 0) }},
		{"Delete", func(k []byte) error { return s.Delete(ctx, k) }},
		{"GetMany", func(k []byte) error { _, err := strata.GetMany(ctx, s, [][]byte{[]byte("ok"), k}); return err }},
		{"PutMany", func(k []byte) error {
			return strata.PutMany(ctx, s, []strata.Entry{{Key: []byte("ok"), Value: v}, {Key: k, Value: v}})
		}},
		{"DeleteMany", func(k []byte) error { _, err := strata.DeleteMany(ctx, s, [][]byte{[]byte("ok"), k}); return err }},
	}
	if e.has(Atomic) {
		calls = append(calls,
			keyCall{"PutIfAbsent", func(k []byte) error { _, err := strata.PutIfAbsent(ctx, s, k, v, 0); return err }},
			keyCall{"GetAndDelete", func(k []byte) error { _, err := strata.GetAndDelete(ctx, s, k); return err }},
			keyCall{"CompareAndSwap", func(k []byte) error { _, err := strata.CompareAndSwap(ctx, s, k, nil, v, 0); return err }},
		)
	}
	if e.has(Expiry) {
		calls = append(calls,
			keyCall{"TTL", func(k []byte) error { _, err := strata.TTL(ctx, s, k); return err }},
			keyCall{"GetWithTTL", func(k []byte) error { _, _, err := strata.GetWithTTL(ctx, s, k); return err }},
		)
	}
	return calls
}

const valueLimit = 1024

func (s *suite) testValues(t *testing.T) {
	t.Run("AtLimit", func(t *testing.T) {
		e := s.open(t, Options{MaxValueSize: valueLimit})
		v := bytes.Repeat([]byte{0xab}, valueLimit)
		noErr(t, "Put at the limit", e.s.Put(e.ctx, []byte("k"), v, 0))
		got, err := e.s.Get(e.ctx, []byte("k"))
		noErr(t, "Get", err)
		if !bytes.Equal(got, v) {
			t.Fatalf("Get returned %d bytes, want the %d written", len(got), len(v))
		}
	})
	t.Run("OverLimit", func(t *testing.T) {
		e := s.open(t, Options{MaxValueSize: valueLimit})
		e.put("k", "old", 0)
		big := bytes.Repeat([]byte{1}, valueLimit+1)
		ctx, st := e.ctx, e.s
		calls := map[string]func() error{
			"Put": func() error { return st.Put(ctx, []byte("k"), big, 0) },
			"PutMany": func() error {
				return strata.PutMany(ctx, st, []strata.Entry{{Key: []byte("k4"), Value: []byte("new")}, {Key: []byte("k2"), Value: big}})
			},
		}
		if e.has(Atomic) {
			calls["PutIfAbsent"] = func() error { _, err := strata.PutIfAbsent(ctx, st, []byte("k3"), big, 0); return err }
			calls["CompareAndSwap"] = func() error { _, err := strata.CompareAndSwap(ctx, st, []byte("k"), []byte("old"), big, 0); return err }
		}
		for name, f := range calls {
			wantErr(t, name+" over the limit", f(), strata.ErrValueTooLarge)
		}
		e.wantValue("k", "old")
		e.wantAbsent("k2")
		e.wantAbsent("k3")
		if e.has(Batch) {
			// A Batcher validates the whole batch before writing any of it
			// (the helper's loop for other stores is documented not to).
			e.wantAbsent("k4")
		}
	})
	t.Run("Binary", func(t *testing.T) {
		e := s.store(t)
		v := make([]byte, 256)
		for i := range v {
			v[i] = byte(i)
		}
		noErr(t, "Put", e.s.Put(e.ctx, []byte("k"), v, 0))
		got, err := e.s.Get(e.ctx, []byte("k"))
		noErr(t, "Get", err)
		if !bytes.Equal(got, v) {
			t.Fatalf("Get = %x, want %x", got, v)
		}
	})
}

func (s *suite) testOwnership(t *testing.T) {
	t.Run("InputsCopied", func(t *testing.T) {
		e := s.store(t)
		k, v := []byte("key"), []byte("value")
		noErr(t, "Put", e.s.Put(e.ctx, k, v, 0))
		copy(k, "XXX")
		copy(v, "XXXXX")
		e.wantValue("key", "value")
		e.wantAbsent("XXX")
		k2, v2 := []byte("key2"), []byte("value2")
		noErr(t, "PutMany", strata.PutMany(e.ctx, e.s, []strata.Entry{{Key: k2, Value: v2}}))
		copy(k2, "XXXX")
		copy(v2, "XXXXXX")
		e.wantValue("key2", "value2")
	})
	t.Run("ResultsOwned", func(t *testing.T) {
		e := s.store(t)
		e.put("key", "value", longTTL)
		got, err := e.s.Get(e.ctx, []byte("key"))
		noErr(t, "Get", err)
		copy(got, "XXXXX")
		e.wantValue("key", "value")
		many, err := strata.GetMany(e.ctx, e.s, [][]byte{[]byte("key")})
		noErr(t, "GetMany", err)
		copy(many[0], "XXXXX")
		e.wantValue("key", "value")
		for k, err := range e.s.Keys(e.ctx, nil) {
			noErr(t, "Keys", err)
			copy(k, "XXX")
		}
		e.wantValue("key", "value")
		if e.has(Expiry) {
			v, _, err := strata.GetWithTTL(e.ctx, e.s, []byte("key"))
			noErr(t, "GetWithTTL", err)
			copy(v, "XXXXX")
			e.wantValue("key", "value")
		}
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		defer sn.Close()
		for en, err := range sn.Entries(e.ctx, nil) {
			noErr(t, "Entries", err)
			copy(en.Key, "XXX")
			copy(en.Value, "XXXXX")
		}
		e.wantValue("key", "value")
		if e.has(Atomic) {
			v, err := strata.GetAndDelete(e.ctx, e.s, []byte("key"))
			noErr(t, "GetAndDelete", err)
			if string(v) != "value" {
				t.Fatalf("GetAndDelete = %q, want value", v)
			}
		}
	})
	t.Run("PrefixCopied", func(t *testing.T) {
		// Keys and Entries copy the prefix when called: the caller may
		// reuse its buffer before iterating.
		e := s.store(t)
		e.put("a/1", "v", 0)
		e.put("b/1", "v", 0)
		buf := []byte("a/")
		seq := e.s.Keys(e.ctx, buf)
		sn, err := strata.SnapshotOf(e.ctx, e.s)
		noErr(t, "Snapshot", err)
		defer sn.Close()
		entries := sn.Entries(e.ctx, buf)
		copy(buf, "b/")
		var got []string
		for k, err := range seq {
			noErr(t, "Keys", err)
			got = append(got, string(k))
		}
		for en, err := range entries {
			noErr(t, "Entries", err)
			got = append(got, string(en.Key))
		}
		if len(got) < 2 || got[0] != "a/1" || got[len(got)-1] != "a/1" {
			t.Fatalf("Keys and Entries after the caller changed the prefix buffer = %q, want a/1", got)
		}
	})
	t.Run("KeysAppendSafe", func(t *testing.T) {
		// Appending to a yielded key must not write into the next one.
		e := s.store(t)
		for i := range 300 {
			e.put(keyN(i), "v", 0)
		}
		var keys [][]byte
		for k, err := range e.s.Keys(e.ctx, nil) {
			noErr(t, "Keys", err)
			_ = append(k, "XXXXXXXXXXXXXXXX"...)
			keys = append(keys, k)
		}
		for _, k := range keys {
			if _, err := e.s.Get(e.ctx, k); err != nil {
				t.Fatalf("yielded key %q was overwritten by an append to another: %v", k, err)
			}
		}
	})
	t.Run("ValueNotAliased", func(t *testing.T) {
		// Two Gets must not share memory: writing one result must not
		// change the other.
		e := s.store(t)
		e.put("k", "abc", 0)
		a, err := e.s.Get(e.ctx, []byte("k"))
		noErr(t, "Get", err)
		b, err := e.s.Get(e.ctx, []byte("k"))
		noErr(t, "Get", err)
		a[0] = 'X'
		if string(b) != "abc" {
			t.Fatalf("results alias each other: second Get reads %q after writing the first", b)
		}
	})
}
