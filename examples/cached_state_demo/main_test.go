package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/strata-kv/strata/internal/testserver"
)

func TestRun(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	var out bytes.Buffer
	if err := run(t.Context(), &out, r.URL()); err != nil {
		t.Fatal(err)
	}
	ok := regexp.MustCompile(`1000 reads: (9\d\d|1000) from L1, [0-9]+ from Redis
TTL carried to Redis: 10m0s
after another client's write the tier reads count=43 \(invalidations received: [1-9]\d*\)
`)
	if !ok.MatchString(out.String()) {
		t.Fatalf("output:\n%s", out.String())
	}
}
