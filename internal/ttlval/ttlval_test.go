package ttlval_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
)

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		exp   int64
		value []byte
	}{
		{0, nil},
		{0, []byte{}},
		{1, []byte("v")},
		{1767322245000, bytes.Repeat([]byte{0xff}, 300)},
		{1<<63 - 1, []byte("max")},
	} {
		raw := ttlval.Encode(c.exp, c.value)
		if len(raw) != ttlval.Size(len(c.value)) || raw[0] != ttlval.Version {
			t.Fatalf("Encode(%d, %q) = %x", c.exp, c.value, raw)
		}
		exp, v, err := ttlval.Decode(raw)
		if err != nil || exp != c.exp || !bytes.Equal(v, c.value) || v == nil {
			t.Fatalf("Decode(Encode(%d, %q)) = %d, %q (nil %v), %v", c.exp, c.value, exp, v, v == nil, err)
		}
		if got, err := ttlval.Expiry(raw); err != nil || got != c.exp {
			t.Fatalf("Expiry = %d, %v; want %d", got, err, c.exp)
		}
		prefixed := ttlval.Append([]byte("xy"), c.exp, c.value)
		if !bytes.Equal(prefixed[2:], raw) || string(prefixed[:2]) != "xy" {
			t.Fatalf("Append = %x, want xy then %x", prefixed, raw)
		}
	}
}

func TestNegativeExpiry(t *testing.T) {
	exp, v, err := ttlval.Decode(ttlval.Encode(-5, []byte("v")))
	if err != nil || exp != 1 || string(v) != "v" {
		t.Fatalf("Decode(Encode(-5)) = %d, %q, %v; want 1, v", exp, v, err)
	}
}

func TestCorrupt(t *testing.T) {
	neg := ttlval.Encode(0, []byte("v"))
	neg[1] = 0x80
	for name, raw := range map[string][]byte{
		"nil":         nil,
		"short":       {ttlval.Version, 0, 0},
		"header-1":    ttlval.Encode(0, nil)[:ttlval.HeaderSize-1],
		"bad version": append([]byte{2}, ttlval.Encode(0, []byte("v"))[1:]...),
		"zero byte":   make([]byte, 20),
		"negative":    neg,
	} {
		if _, _, err := ttlval.Decode(raw); !errors.Is(err, strata.ErrCorrupt) {
			t.Errorf("Decode(%s %x) error = %v, want ErrCorrupt", name, raw, err)
		}
		if _, err := ttlval.Expiry(raw); !errors.Is(err, strata.ErrCorrupt) {
			t.Errorf("Expiry(%s) error = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add(ttlval.Encode(5, []byte("value")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		exp, v, err := ttlval.Decode(raw)
		if err != nil {
			if !errors.Is(err, strata.ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(ttlval.Encode(exp, v), raw) {
			t.Fatalf("re-encoding %x gives a different value", raw)
		}
	})
}
