package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
)

// FuzzReader feeds arbitrary bytes to the reader. It must never panic or
// allocate beyond its limits, every failure on an in-memory input must be
// ErrCorrupt, and whatever verifies must read back with the manifest's
// entry count. Seeds: valid files (both compressions, empty, several
// blocks) and damaged ones; testdata/fuzz/FuzzReader holds more.
//
// CI: go test ./checkpoint -run '^$' -fuzz '^FuzzReader$' -fuzztime 30s
func FuzzReader(f *testing.F) {
	for _, comp := range compressions {
		for _, n := range []int{0, 1, 7, 40} {
			data := smallFile(f, n, 200, comp)
			f.Add(data)
			f.Add(data[:len(data)/2])
			d := bytes.Clone(data)
			d[len(d)/3] ^= 0x10
			f.Add(d)
		}
	}
	f.Add(append(append(header(1), block(1<<20, 50)...), zstdBomb(8<<30, false)[:50]...))
	f.Add([]byte("strataCP"))
	limits := &checkpoint.Limits{MaxValueSize: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := checkpoint.Verify(context.Background(), bytes.NewReader(data), limits)
		n, rerr := readAll(data, limits)
		if err != nil {
			if !errors.Is(err, strata.ErrCorrupt) {
				t.Fatalf("Verify: %v, want ErrCorrupt", err)
			}
			if !errors.Is(rerr, strata.ErrCorrupt) {
				t.Fatalf("Verify failed (%v) but reading gave %v", err, rerr)
			}
			return
		}
		if rerr != nil || int64(n) != m.Entries {
			t.Fatalf("verified file with %d entries reads %d records, %v", m.Entries, n, rerr)
		}
		if _, err := checkpoint.ReadManifest(bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("verified file: ReadManifest: %v", err)
		}
	})
}
