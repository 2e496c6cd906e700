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
	cfg := benchConfig{requests: requests, clients: clients, size: size, keys: keys, batch: 100, tests: []string{"set", "get"}}
	ratios := map[string][]float64{}
	for b.Loop() {
		for range rounds {
			results, err := runBench(ctx, s, cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ref := redisBenchmarkRPS(b, r.Port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(requests),
				"-d", strconv.Itoa(size), "-r", strconv.Itoa(keys), "-t", "get,set")
			for _, res := range results {
				name := strings.ToLower(res.Name)
				ratios[name] = append(ratios[name], res.RPS()/ref[name])
			}
		}
	}
	for name, rs := range ratios {
		slices.Sort(rs)
		b.ReportMetric(rs[len(rs)/2], fmt.Sprintf("ratio-%s", name))
	}
}

// bench names its tests as redis-benchmark does, accepts -q, prints CSV
// with redis-benchmark's columns, and leaves no key behind.
func TestBench(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	r.CLI(t, "SET", "mine", "kept")
	out := run(t, "bench", "--store", r.URL(), "-q", "-n", "2000", "-c", "4", "-r", "300", "-P", "10")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var names []string
	for _, l := range lines {
		name, _, _ := strings.Cut(l, ": ")
		names = append(names, name)
	}
	if want := []string{"SET", "GET", "MSET (10 keys)", "MGET (10 keys)"}; !slices.Equal(names, want) || !strings.Contains(lines[0], "requests per second, p50=") {
		t.Fatalf("bench -q = %q, want tests %q", out, want)
	}
	if got := r.CLI(t, "DBSIZE"); got != "1" {
		t.Fatalf("DBSIZE after bench = %s, want 1 (the key that was there)", got)
	}

	out = run(t, "bench", "--store", r.URL(), "--csv", "-n", "1000", "-c", "2", "-r", "100", "-t", "set,GET")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("bench --csv: %v\n%s", err, out)
	}
	if len(recs) != 3 || !slices.Equal(recs[0], benchCSVHeader) || recs[1][0] != "SET" || recs[2][0] != "GET" {
		t.Fatalf("bench --csv = %q", recs)
	}
	for _, rec := range recs[1:] {
		for _, v := range rec[1:] {
			if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
				t.Fatalf("bench --csv row %q: %q is not a number", rec, v)
			}
		}
	}
	if got := r.CLI(t, "DBSIZE"); got != "1" {
		t.Fatalf("DBSIZE after bench --csv = %s", got)
	}
}
