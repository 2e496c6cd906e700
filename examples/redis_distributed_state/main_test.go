package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/strata-kv/strata/internal/testserver"
)

func TestRun(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	var out bytes.Buffer
	if err := run(t.Context(), &out, r.URL()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "w1 processed 20 batches") || !strings.Contains(out.String(), "w2 processed 20 batches") ||
		!strings.Contains(out.String(), "total=200 (want 200)") {
		t.Fatalf("output:\n%s", out.String())
	}
}
