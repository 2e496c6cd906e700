package main

import (
	"encoding/csv"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
)

// redisBenchmarkRPS runs redis-benchmark on port and returns requests per
// second per test, from its CSV output.
func redisBenchmarkRPS(b *testing.B, port int, args ...string) map[string]float64 {
	b.Helper()
	args = append([]string{"-p", strconv.Itoa(port), "--csv"}, args...)
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		b.Fatalf("redis-benchmark output: %v\n%s", err, out)
	}
	rps := map[string]float64{}
	for _, r := range recs[1:] {
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			b.Fatalf("redis-benchmark rps %q: %v", r[1], err)
		}
		rps[strings.ToLower(r[0])] = v
	}
	return rps
}

// BenchmarkVsRedisBenchmark runs `strata bench` and redis-benchmark against
// the same server, alternately, with the same clients, value size, keyspace
// and request count, and reports both and their ratio (median of rounds).
//
//	go test ./cmd/strata -run '^$' -bench VsRedisBenchmark -benchtime 1x -count 3
func BenchmarkVsRedisBenchmark(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	ctx := b.Context()
	s, err := strata.Open(ctx, r.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const clients, requests, size, keys, rounds = 50, 100000, 100, 10000, 5
	cfg := benchConfig{requests: requests, clients: clients, size: size, keys: keys, batch: 100, tests: []string{"get", "put"}}
	ratios := map[string][]float64{}
	for b.Loop() {
		for range rounds {
			results, err := runBench(ctx, s, cfg)
			if err != nil {
				b.Fatal(err)
			}
			ref := redisBenchmarkRPS(b, r.Port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(requests),
				"-d", strconv.Itoa(size), "-r", strconv.Itoa(keys), "-t", "get,set")
			for _, res := range results {
				name := map[string]string{"get": "get", "put": "set"}[res.Name]
				ratios[res.Name] = append(ratios[res.Name], res.RPS()/ref[name])
			}
		}
	}
	for name, rs := range ratios {
		slices.Sort(rs)
		b.ReportMetric(rs[len(rs)/2], fmt.Sprintf("ratio-%s", name))
	}
}
