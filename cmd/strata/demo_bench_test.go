package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/testserver"
)

// BenchmarkDemo runs the demo for 3 s per store, as a user runs it (a tier,
// one fenced commit per batch of 500 events, aligned checkpoints every
// 3 s), and reports its events per second and L1 hit ratio. The stores run
// in turn, each -count round alike; the Redis rows include the lease.
func BenchmarkDemo(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	c := testserver.StartRedisCluster(b, nil)
	for _, tc := range []struct{ name, store string }{
		{"Pebble", ""},
		{"Redis", r.URL()},
		{"Cluster", "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var events, hits float64
			for b.Loop() {
				data := b.TempDir()
				args := []string{"demo", "--data", data, "--duration", "3s", "--job", "bench" + strconv.Itoa(b.N)}
				if tc.store != "" {
					args = append(args, "--store", tc.store)
				} else {
					args = append(args, "--store", "pebble://"+filepath.Join(data, "state"))
				}
				var out bytes.Buffer
				root := newRoot()
				root.SetOut(&out)
				root.SetErr(&out)
				root.SetArgs(args)
				start := time.Now()
				if err := root.ExecuteContext(b.Context()); err != nil {
					b.Fatalf("demo: %v\n%s", err, out.String())
				}
				m := regexp.MustCompile(`stopped at offset (\d+) \((\d+) events this run\)`).FindStringSubmatch(out.String())
				n, _ := strconv.ParseFloat(m[2], 64)
				events += n / time.Since(start).Seconds()
				if h := regexp.MustCompile(`L1 hit ([\d.]+)%`).FindAllStringSubmatch(out.String(), -1); len(h) > 0 {
					v, _ := strconv.ParseFloat(h[len(h)-1][1], 64)
					hits += v
				}
			}
			b.ReportMetric(events/float64(b.N), "events/s")
			b.ReportMetric(hits/float64(b.N), "L1-hit-%")
			b.ReportMetric(0, "ns/op")
		})
	}
}
