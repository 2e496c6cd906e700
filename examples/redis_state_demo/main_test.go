package main

import (
	"bytes"
	"testing"

	"github.com/strata-kv/strata/internal/testserver"
)

func TestRun(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	var out bytes.Buffer
	if err := run(t.Context(), &out, r.URL()); err != nil {
		t.Fatal(err)
	}
	want := `e1 -> window 1767268800000: count=1 sum=10.0
e2 -> window 1767268800000: count=2 sum=15.0
skip duplicate e2
e3 -> window 1767268860000: count=1 sum=7.5
offset=4 windows=2 dedup ttl=24h0m0s
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if got := r.CLI(t, "GET", "demo:offset"); got != "4" {
		t.Fatalf("redis-cli GET demo:offset = %q", got)
	}
}
