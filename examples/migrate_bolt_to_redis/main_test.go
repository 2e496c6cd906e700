package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/strata-kv/strata/internal/testserver"
)

func TestRun(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(t.Context(), &out, filepath.Join(dir, "state.db"), r.URL(), filepath.Join(dir, "ckpt")); err != nil {
		t.Fatal(err)
	}
	want := "copy: 1000 keys written; verify: 1000 checked, 0 missing, 0 different, 0 with TTLs apart\n" +
		"checkpoint bolt: 1000 entries restored; verify: 1000 checked, 0 missing, 0 different, 0 with TTLs apart\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if got := r.CLI(t, "GET", "restored:window/0007"); got != "sum=21" {
		t.Fatalf("GET = %q", got)
	}
	if pttl, _ := strconv.Atoi(r.CLI(t, "PTTL", "copy:window/0002")); pttl <= 0 {
		t.Fatalf("PTTL of a migrated key = %d, want its TTL kept", pttl)
	}
}
