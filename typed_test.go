package strata_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/window"
	"github.com/strata-kv/strata/stores/memory"
)

var sampleWindow = window.State{WindowID: "orders/1767268800000", StartTime: 1767268800000, EndTime: 1767268860000, Count: 1234, Sum: 98765.4321}

func TestCodecsRoundTrip(t *testing.T) {
	for name, c := range map[string]strata.Codec[window.State]{
		"binary": strata.Binary[window.State, *window.State]{},
		"json":   strata.JSON[window.State]{},
	} {
		// JSON turns invalid UTF-8 into U+FFFD: only the binary codec keeps
		// any window id byte for byte.
		for _, w := range []window.State{{}, sampleWindow, {WindowID: "\x00é", StartTime: math.MinInt64, EndTime: math.MaxInt64, Count: math.MaxUint64, Sum: -0.5}} {
			b, err := c.Append(nil, w)
			if err != nil {
				t.Fatalf("%s: Append: %v", name, err)
			}
			got, err := c.Decode(b)
			if err != nil || got != w {
				t.Fatalf("%s: Decode = %+v, %v; want %+v", name, got, err, w)
			}
		}
	}
}

func TestCodecsRejectGarbage(t *testing.T) {
	bin := strata.Binary[window.State, *window.State]{}
	good, _ := bin.Append(nil, sampleWindow)
	for _, b := range [][]byte{nil, {9}, good[:len(good)-1], append(good, 0), good[:3]} {
		if _, err := bin.Decode(b); !errors.Is(err, strata.ErrCorrupt) {
			t.Errorf("binary Decode(%x) = %v, want ErrCorrupt", b, err)
		}
	}
	if _, err := (strata.JSON[window.State]{}).Decode([]byte("{")); !errors.Is(err, strata.ErrCorrupt) {
		t.Errorf("json Decode = %v, want ErrCorrupt", err)
	}
}

func TestTypedGetCorrupt(t *testing.T) {
	s := memory.New(nil)
	defer s.Close()
	ctx := t.Context()
	if err := s.Put(ctx, []byte("w"), []byte("not a window"), 0); err != nil {
		t.Fatal(err)
	}
	typed := strata.NewTyped(s, strata.Binary[window.State, *window.State]{})
	if _, err := typed.Get(ctx, []byte("w")); !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("Get of a malformed value = %v, want ErrCorrupt", err)
	}
	if _, err := typed.Get(ctx, []byte("absent")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("Get of an absent key = %v, want ErrNotFound", err)
	}
	if err := typed.Put(ctx, []byte("w"), sampleWindow, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := typed.Get(ctx, []byte("w")); err != nil || got != sampleWindow {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func FuzzWindowBinary(f *testing.F) {
	good, _ := sampleWindow.AppendBinary(nil)
	f.Add(good)
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w window.State
		if err := w.UnmarshalBinary(b); err != nil {
			return
		}
		// Whatever parses must survive a round trip unchanged (varints may
		// arrive in a longer form than the encoder writes).
		// Compared as canonical bytes, since NaN != NaN.
		canon, _ := w.AppendBinary(nil)
		var w2 window.State
		if err := w2.UnmarshalBinary(canon); err != nil {
			t.Fatalf("the encoding of %+v does not parse: %v", w, err)
		}
		if again, _ := w2.AppendBinary(nil); string(again) != string(canon) {
			t.Fatalf("round trip of %x changed %x into %x", b, canon, again)
		}
	})
}

// BenchmarkCodec compares the binary codec with encoding/json on the
// seed's WindowState, in the same run.
func BenchmarkCodec(b *testing.B) {
	codecs := []struct {
		name string
		c    strata.Codec[window.State]
	}{
		{"binary", strata.Binary[window.State, *window.State]{}},
		{"json", strata.JSON[window.State]{}},
	}
	for _, c := range codecs {
		b.Run("Encode/"+c.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			for b.Loop() {
				var err error
				if buf, err = c.c.Append(buf[:0], sampleWindow); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Decode/"+c.name, func(b *testing.B) {
			data, _ := c.c.Append(nil, sampleWindow)
			for b.Loop() {
				if _, err := c.c.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// encoding/json used directly, as a caller without strata would.
	b.Run("Encode/raw-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(sampleWindow); err != nil {
				b.Fatal(err)
			}
		}
	})
}
