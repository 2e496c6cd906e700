package checkpoint_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata/checkpoint"
)

var update = flag.Bool("update", false, "rewrite testdata/golden-v1.ckpt and its fuzz seed")

const goldenPath = "testdata/golden-v1.ckpt"

// goldenRecords is the content of testdata/golden-v1.ckpt.
func goldenRecords() []checkpoint.Record {
	var rs []checkpoint.Record
	for i, e := range sampleEntries(40) {
		rs = append(rs, checkpoint.Record{Key: e.Key, Value: e.Value, ExpiresAt: int64(i%3) * 1_735_787_045_000})
	}
	return rs
}

// TestGoldenV1 reads a version-1 file written by an earlier build: any
// change that breaks reading existing checkpoints fails here. Run with
// -update only when the format version changes (and keep the old file).
func TestGoldenV1(t *testing.T) {
	want := goldenRecords()
	if *update {
		var buf bytes.Buffer
		w, err := checkpoint.NewWriter(&buf, &checkpoint.WriterOptions{ID: "golden", Source: "memory", BlockSize: 256, Clock: fakeClock()})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range want {
			if err := w.Append(r.Key, r.Value, r.ExpiresAt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		seed := filepath.Join("testdata", "fuzz", "FuzzReader", "golden-v1")
		if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seed, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Verify(context.Background(), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "golden" || m.Entries != int64(len(want)) || m.FormatVersion != 1 || m.Compression != "zstd" || !m.Created.Equal(epoch) {
		t.Fatalf("manifest %+v", m)
	}
	rd, err := checkpoint.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		r, err := rd.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) || r.ExpiresAt != w.ExpiresAt {
			t.Fatalf("record %d: %q=%q exp %d, want %q=%q exp %d", i, r.Key, r.Value, r.ExpiresAt, w.Key, w.Value, w.ExpiresAt)
		}
	}
}
