package bench

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

// The concurrent comparison's keyspace: redis-benchmark -r 10000's keys,
// 100-byte values.
const concKeys = 10000

var (
	concNames = func() []string {
		out := make([]string, concKeys)
		for i := range out {
			out[i] = fmt.Sprintf("key:%012d", i)
		}
		return out
	}()
	concBytes = func() [][]byte {
		out := make([][]byte, concKeys)
		for i, k := range concNames {
			out[i] = []byte(k)
		}
		return out
	}()
	concValue = make([]byte, 100)
)

// Rounds of the concurrent comparison: each candidate runs round long,
// in turn, rounds times.
const (
	rounds = 5
	round  = 300 * time.Millisecond
)

// rate runs op from conc goroutines for d and returns operations per
// second.
func rate(b *testing.B, d time.Duration, conc int, op func(i int) error) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * 7919; time.Now().Before(deadline); i++ {
				if err := op(i % concKeys); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// redisBenchmark runs redis-benchmark with args (plus the keyspace, value
// size and --csv) and returns the requests per second it reports.
func redisBenchmark(b *testing.B, args ...string) float64 {
	b.Helper()
	args = append([]string{"-d", "100", "-r", strconv.Itoa(concKeys), "--csv"}, args...)
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// With --cluster it first describes the cluster: keep the CSV lines.
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, `"`) {
			lines = append(lines, l)
		}
	}
	recs, err := csv.NewReader(strings.NewReader(strings.Join(lines, "\n"))).ReadAll()
	if err != nil || len(recs) < 2 || len(recs[len(recs)-1]) < 2 {
		b.Fatalf("redis-benchmark output: %v\n%s", err, out)
	}
	rps, err := strconv.ParseFloat(recs[len(recs)-1][1], 64)
	if err != nil {
		b.Fatalf("redis-benchmark rps %q: %v", recs[len(recs)-1][1], err)
	}
	return rps
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// contender is one client in the concurrent comparison; get and put read
// or write key number i.
type contender struct {
	name     string
	get, put func(i int) error
}

// bench is how a contender is measured at a concurrency: a rate, from a
// closed loop of the contender's operation or from redis-benchmark.
type bench struct {
	name    string
	measure func(conc int) float64
}

// compareRounds measures every bench at conc in interleaved rounds and
// reports each one's median ops/s and the median of the first one's
// ratios to each other (names[0]/name).
func compareRounds(b *testing.B, conc int, benches []bench) {
	b.StopTimer()
	vals := make([][]float64, len(benches))
	ratios := make([][]float64, len(benches))
	for range rounds {
		var first float64
		for j, c := range benches {
			v := c.measure(conc)
			if j == 0 {
				first = v
			}
			vals[j] = append(vals[j], v)
			ratios[j] = append(ratios[j], first/v)
		}
	}
	for j, c := range benches {
		b.ReportMetric(median(vals[j]), c.name+"-ops/s")
		if j > 0 {
			b.ReportMetric(median(ratios[j]), benches[0].name+"/"+c.name)
		}
	}
}

// loop is a bench of op run by conc goroutines for a round.
func loop(b *testing.B, name string, op func(i int) error) bench {
	return bench{name, func(conc int) float64 { return rate(b, round, conc, op) }}
}

// strataStore opens stores/redis on url with a pool of 64 connections.
func strataStore(b *testing.B, url string, disable bool) *redis.Store {
	s, err := redis.Open(context.Background(), &redis.Options{URL: url, PoolSize: 64, DisableAutoPipeline: disable})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func strataOps(name string, s strata.Store) contender {
	ctx := context.Background()
	return contender{name,
		func(i int) error { _, err := s.Get(ctx, concBytes[i]); return err },
		func(i int) error { return s.Put(ctx, concBytes[i], concValue, 0) }}
}

func rueidisOps(name string, c rueidis.Client) contender {
	ctx := context.Background()
	return contender{name,
		func(i int) error { return c.Do(ctx, c.B().Get().Key(concNames[i]).Build()).Error() },
		func(i int) error {
			return c.Do(ctx, c.B().Set().Key(concNames[i]).Value(rueidis.BinaryString(concValue)).Build()).Error()
		}}
}

// goredisAutoOps is go-redis's own AutoPipeliner (blocking face, its
// default options) on c.
func goredisAutoOps(b *testing.B, name string, c interface {
	AutoPipeline() (*goredis.AutoPipeliner, error)
}) contender {
	ap, err := c.AutoPipeline()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ap.Close() })
	return goredisOps(name, ap)
}

func goredisOps(name string, c goredis.Cmdable) contender {
	ctx := context.Background()
	return contender{name,
		func(i int) error { return c.Get(ctx, concNames[i]).Err() },
		func(i int) error { return c.Set(ctx, concNames[i], concValue, 0).Err() }}
}

// BenchmarkConcurrent compares single-key Get and Put from 1, 16, 50 and
// 64 goroutines on one Redis: stores/redis with auto-pipelining (the
// default), the same store without it (DisableAutoPipeline), rueidis
// (auto-pipelining, client-side cache off), a go-redis v9 client with a
// pool of 64, go-redis's experimental AutoPipeliner (blocking face,
// default options) and redis-benchmark with as many clients (-c), in
// interleaved rounds (see compareRounds). Ratios are strata's ops/s over
// each other's; at 50 goroutines redis-benchmark -P 16 (16 requests per
// client per round trip) shows the pipelined ceiling.
func BenchmarkConcurrent(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	admin := r.Client(b)
	pipe := admin.Pipeline()
	for _, k := range concNames {
		pipe.Set(context.Background(), k, concValue, 0)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		b.Fatal(err)
	}
	rue, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rue.Close)
	o := r.Options()
	o.PoolSize = 64
	gr := goredis.NewClient(o)
	b.Cleanup(func() { gr.Close() })
	gra := goredis.NewClient(o)
	b.Cleanup(func() { gra.Close() })
	cs := []contender{
		strataOps("strata", strataStore(b, r.URL(), false)),
		strataOps("strata-nopipe", strataStore(b, r.URL(), true)),
		rueidisOps("rueidis", rue),
		goredisOps("goredis", gr),
		goredisAutoOps(b, "goredis-autopipeline", gra),
	}
	port := strconv.Itoa(r.Port)
	for _, op := range []string{"Get", "Put"} {
		test := map[string]string{"Get": "get", "Put": "set"}[op]
		for _, conc := range []int{1, 16, 50, 64} {
			b.Run(fmt.Sprintf("%s/c%d", op, conc), func(b *testing.B) {
				var benches []bench
				for _, c := range cs {
					f := c.get
					if op == "Put" {
						f = c.put
					}
					benches = append(benches, loop(b, c.name, f))
				}
				last := &benches[0]
				var lastRate float64
				m := last.measure
				last.measure = func(conc int) float64 { lastRate = m(conc); return lastRate }
				n := func() string { return strconv.Itoa(max(int(lastRate*round.Seconds()), 5000)) }
				benches = append(benches, bench{"redis-benchmark", func(conc int) float64 {
					return redisBenchmark(b, "-p", port, "-n", n(), "-c", strconv.Itoa(conc), "-t", test)
				}})
				if conc == 50 {
					benches = append(benches, bench{"redis-benchmark-P16", func(conc int) float64 {
						return redisBenchmark(b, "-p", port, "-n", strconv.Itoa(16*max(int(lastRate*round.Seconds()), 5000)),
							"-c", strconv.Itoa(conc), "-P", "16", "-t", test)
					}})
				}
				first := cs[0].get
				if op == "Put" {
					first = cs[0].put
				}
				for i := 0; b.Loop(); i++ { // ns/op: strata, one goroutine
					if err := first(i % concKeys); err != nil {
						b.Fatal(err)
					}
				}
				compareRounds(b, conc, benches)
			})
		}
	}
}

// BenchmarkConcurrentCluster is BenchmarkConcurrent's comparison at 64
// goroutines on a Redis Cluster of 3 masters (no replicas): stores/redis
// with and without auto-pipelining, rueidis's cluster client, a go-redis
// ClusterClient with a pool of 64 per node and its AutoPipeliner, and
// redis-benchmark --cluster.
func BenchmarkConcurrentCluster(b *testing.B) {
	c := testserver.StartRedisCluster(b, &testserver.ClusterOptions{Masters: 3})
	admin := c.Client(b)
	for _, k := range concNames {
		if err := admin.Set(context.Background(), k, concValue, 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	rue, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: c.Addrs(), DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rue.Close)
	o := c.Options()
	o.PoolSize = 64
	gr := goredis.NewClusterClient(o)
	b.Cleanup(func() { gr.Close() })
	gra := goredis.NewClusterClient(o)
	b.Cleanup(func() { gra.Close() })
	url := "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/"
	cs := []contender{
		strataOps("strata", strataStore(b, url, false)),
		strataOps("strata-nopipe", strataStore(b, url, true)),
		rueidisOps("rueidis", rue),
		goredisOps("goredis", gr),
		goredisAutoOps(b, "goredis-autopipeline", gra),
	}
	host, port, _ := strings.Cut(c.Addrs()[0], ":")
	for _, op := range []string{"Get", "Put"} {
		test := map[string]string{"Get": "get", "Put": "set"}[op]
		const conc = 64
		b.Run(fmt.Sprintf("%s/c%d", op, conc), func(b *testing.B) {
			var benches []bench
			for _, c := range cs {
				f := c.get
				if op == "Put" {
					f = c.put
				}
				benches = append(benches, loop(b, c.name, f))
			}
			benches = append(benches, bench{"redis-benchmark", func(conc int) float64 {
				return redisBenchmark(b, "-h", host, "-p", port, "--cluster", "-n", "50000", "-c", strconv.Itoa(conc), "-t", test)
			}})
			first := cs[0].get
			if op == "Put" {
				first = cs[0].put
			}
			for i := 0; b.Loop(); i++ { // ns/op: strata, one goroutine
				if err := first(i % concKeys); err != nil {
					b.Fatal(err)
				}
			}
			compareRounds(b, conc, benches)
		})
	}
}
