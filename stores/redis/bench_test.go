package redis_test

import (
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/stores/redis"
)

// BenchmarkStore runs the conformance benchmarks against a local server.
func BenchmarkStore(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	conformance.BenchmarkStore(b, conformance.Harness{Open: func(tb testing.TB, o conformance.Options) strata.Store {
		s, err := redis.Open(tb.Context(), &redis.Options{URL: r.URL(), KeyPrefix: fmt.Sprintf("b%d:", seq.Add(1))})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}})
}

// benchKeys is the keyspace of redis-benchmark -r 10000: key:%012d.
const benchKeys = 10000

// keyspace holds the keys, so that making them costs the store nothing.
var keyspace = func() [][]byte {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key:%012d", i)
	}
	return keys
}()

func benchKey(i int) []byte { return keyspace[i%benchKeys] }

// redisBenchmark runs redis-benchmark against port with args (plus -q
// --csv) and returns the requests per second it reports for its one test.
func redisBenchmark(b *testing.B, port int, args ...string) float64 {
	b.Helper()
	args = append([]string{"-p", strconv.Itoa(port), "-d", "100", "-r", strconv.Itoa(benchKeys), "--csv"}, args...)
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil || len(recs) < 2 || len(recs[1]) < 2 {
		b.Fatalf("redis-benchmark output: %v\n%s", err, out)
	}
	rps, err := strconv.ParseFloat(recs[len(recs)-1][1], 64)
	if err != nil {
		b.Fatalf("redis-benchmark rps %q: %v", recs[1][1], err)
	}
	return rps
}

// pairRounds and pairRound set the paired comparison: the store and
// redis-benchmark take turns, pairRound each, pairRounds times, so that the
// load of a shared machine weighs on both alike; the ratio reported is the
// median of the rounds' ratios.
const (
	pairRounds = 5
	pairRound  = 300 * time.Millisecond
)

// rateFor runs op from conc goroutines for d and returns the operations
// per second, times perOp (keys per operation).
func rateFor(b *testing.B, d time.Duration, conc, perOp int, op func(i int) error) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * 7919; time.Now().Before(deadline); i++ {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()*int64(perOp)) / time.Since(start).Seconds()
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// compare measures the store (op, from conc goroutines, perOp keys each)
// against redis-benchmark with args (which gets -n for about a round's
// worth of requests), in interleaved rounds, and reports the medians and
// the median ratio. It stops the benchmark timer.
func compare(b *testing.B, port int, unit string, conc, perOp int, op func(i int) error, args ...string) {
	b.StopTimer()
	var ours, raw, ratios []float64
	for range pairRounds {
		o := rateFor(b, pairRound, conc, perOp, op)
		n := strconv.Itoa(max(int(o*pairRound.Seconds()), 5000))
		r := redisBenchmark(b, port, append([]string{"-n", n}, args...)...)
		ours, raw, ratios = append(ours, o), append(raw, r), append(ratios, o/r)
	}
	b.ReportMetric(median(ours), unit)
	b.ReportMetric(median(raw), "redis-benchmark-"+unit)
	b.ReportMetric(median(ratios), "ratio")
}

// BenchmarkVsRedisBenchmark compares the store with redis-benchmark on one
// server, in the same run, with the same concurrency, value size (100
// bytes) and keyspace (10000 keys). ns/op is the store's own (b.Loop, one
// goroutine, or RunParallel with 50); the ops/s or keys/s, redis-benchmark
// figures and ratio come from interleaved rounds (see compare).
func BenchmarkVsRedisBenchmark(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	s, err := redis.Open(b.Context(), &redis.Options{URL: r.URL(), PoolSize: 50})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	value := make([]byte, 100)
	entries := make([]strata.Entry, benchKeys)
	for i := range entries {
		entries[i] = strata.Entry{Key: benchKey(i), Value: value}
	}
	if err := s.PutMany(ctx, entries); err != nil {
		b.Fatal(err)
	}
	get := func(i int) error { _, err := s.Get(ctx, benchKey(i)); return err }
	put := func(i int) error { return s.Put(ctx, benchKey(i), value, 0) }
	getMany := func(i int) error {
		keys := make([][]byte, 100)
		for j := range keys {
			keys[j] = benchKey(i*100 + j)
		}
		_, err := s.GetMany(ctx, keys)
		return err
	}
	putMany := func(i int) error {
		batch := make([]strata.Entry, 100)
		for j := range batch {
			batch[j] = strata.Entry{Key: benchKey(i*100 + j), Value: value}
		}
		return s.PutMany(ctx, batch)
	}
	loop := func(b *testing.B, op func(i int) error) {
		i := 0
		for b.Loop() {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	parallel := func(b *testing.B, op func(i int) error) {
		// 50 goroutines, as redis-benchmark -c 50 has 50 clients.
		b.SetParallelism((50 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(7919))
			for pb.Next() {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	}
	// RunParallel benchmarks run with growing b.N: only the last (long)
	// run compares.
	long := func(b *testing.B) bool { return b.Elapsed() >= 500*time.Millisecond }

	b.Run("Get/c1", func(b *testing.B) {
		loop(b, get)
		compare(b, r.Port, "ops/s", 1, 1, get, "-c", "1", "-t", "get")
	})
	b.Run("Put/c1", func(b *testing.B) {
		loop(b, put)
		compare(b, r.Port, "ops/s", 1, 1, put, "-c", "1", "-t", "set")
	})
	b.Run("Get/c50", func(b *testing.B) {
		parallel(b, get)
		if long(b) {
			compare(b, r.Port, "ops/s", 50, 1, get, "-c", "50", "-t", "get")
		}
	})
	b.Run("Put/c50", func(b *testing.B) {
		parallel(b, put)
		if long(b) {
			compare(b, r.Port, "ops/s", 50, 1, put, "-c", "50", "-t", "set")
		}
	})
	b.Run("GetMany100/P100", func(b *testing.B) {
		loop(b, getMany)
		compare(b, r.Port, "keys/s", 1, 100, getMany, "-c", "1", "-P", "100", "-t", "get")
	})
	b.Run("PutMany100/P100", func(b *testing.B) {
		loop(b, putMany)
		compare(b, r.Port, "keys/s", 1, 100, putMany, "-c", "1", "-P", "100", "-t", "set")
	})
}

// BenchmarkPutManyTTL compares PutMany of 100 entries with a TTL (one
// SET PX each, pipelined) with redis-benchmark -P 100 sending the same
// command, as BenchmarkVsRedisBenchmark does.
func BenchmarkPutManyTTL(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	s, err := redis.Open(b.Context(), &redis.Options{URL: r.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	value := []byte(strings.Repeat("x", 100))
	putMany := func(i int) error {
		batch := make([]strata.Entry, 100)
		for j := range batch {
			batch[j] = strata.Entry{Key: benchKey(i*100 + j), Value: value, TTL: time.Hour}
		}
		return s.PutMany(ctx, batch)
	}
	i := 0
	for b.Loop() {
		if err := putMany(i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	compare(b, r.Port, "keys/s", 1, 100, putMany, "-c", "1", "-P", "100",
		"SET", "key:__rand_int__", string(value), "PX", "3600000")
}

// ratePair measures ops a and b (perOp keys each, one goroutine) in
// interleaved rounds and reports both medians and the median ratio a/b
// under the names given.
func ratePair(b *testing.B, unit string, perOp int, nameA string, opA func(i int) error, nameB string, opB func(i int) error) {
	b.StopTimer()
	var as, bs, ratios []float64
	for range pairRounds {
		x := rateFor(b, pairRound, 1, perOp, opA)
		y := rateFor(b, pairRound, 1, perOp, opB)
		as, bs, ratios = append(as, x), append(bs, y), append(ratios, x/y)
	}
	b.ReportMetric(median(as), nameA+"-"+unit)
	b.ReportMetric(median(bs), nameB+"-"+unit)
	b.ReportMetric(median(ratios), "ratio")
}

// BenchmarkCommit measures a commit of 100 keys (99 window states and the
// offset, under a fence and a condition on the offset, all with one hash
// tag) on one server: as the store's Lua script, against a pipelined
// PutMany of the same 100 keys (no atomicity), against the same commit
// done with WATCH/GET/MULTI/EXEC, and against redis-benchmark -P 100 SET.
func BenchmarkCommit(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	s, err := redis.Open(b.Context(), &redis.Options{URL: r.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	client := r.Client(b)
	ctx := b.Context()
	value := make([]byte, 100)
	keys := make([][]byte, 100)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "{job}window/%02d", i)
	}
	offset, fence := keys[99], []byte("{job}fence")
	var n uint64
	offsetValue := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	if err := s.Put(ctx, offset, offsetValue(0), 0); err != nil {
		b.Fatal(err)
	}
	commit := func(int) error {
		batch := new(strata.WriteBatch).IfFence(fence, 1).IfEqual(offset, offsetValue(n))
		for _, k := range keys[:99] {
			batch.Put(k, value, strata.NoExpiry)
		}
		batch.Put(offset, offsetValue(n+1), strata.NoExpiry)
		if err := s.Commit(ctx, batch); err != nil {
			return err
		}
		n++
		return nil
	}
	putMany := func(int) error {
		es := make([]strata.Entry, 100)
		for i, k := range keys[:99] {
			es[i] = strata.Entry{Key: k, Value: value, TTL: strata.NoExpiry}
		}
		es[99] = strata.Entry{Key: offset, Value: offsetValue(n + 1), TTL: strata.NoExpiry}
		if err := s.PutMany(ctx, es); err != nil {
			return err
		}
		n++
		return nil
	}
	// The same commit as an optimistic transaction: WATCH the condition
	// keys, read them, check, then MULTI … EXEC (two round trips, on one
	// dedicated connection).
	multi := func(int) error {
		return client.Watch(ctx, func(tx *goredis.Tx) error {
			vals, err := tx.MGet(ctx, string(fence), string(offset)).Result()
			if err != nil {
				return err
			}
			if f, ok := vals[0].(string); ok {
				if tok, _, err := storekit.ParseFence([]byte(f)); err != nil || tok > 1 {
					return fmt.Errorf("fence %q", f)
				}
			}
			if o, _ := vals[1].(string); o != string(offsetValue(n)) {
				return fmt.Errorf("offset moved")
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				args := make([]any, 0, 1+2*101)
				args = append(args, "mset")
				for _, k := range keys[:99] {
					args = append(args, k, value)
				}
				args = append(args, offset, offsetValue(n+1), fence, storekit.FenceValue(1, nil))
				return p.Process(ctx, goredis.NewStatusCmd(ctx, args...))
			})
			if err == nil {
				n++
			}
			return err
		}, string(fence), string(offset))
	}
	run := func(b *testing.B, op func(int) error) {
		for b.Loop() {
			if err := op(0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("Lua/vs-PutMany", func(b *testing.B) {
		run(b, commit)
		ratePair(b, "keys/s", 100, "commit", commit, "putmany", putMany)
	})
	b.Run("Lua/vs-MULTI", func(b *testing.B) {
		run(b, commit)
		ratePair(b, "keys/s", 100, "lua", commit, "multi", multi)
	})
	b.Run("Lua/vs-redis-benchmark", func(b *testing.B) {
		run(b, commit)
		compare(b, r.Port, "keys/s", 1, 100, commit, "-c", "1", "-P", "100", "-t", "set")
	})
}

// interleaved runs the measures in turn, pairRounds times, so that the
// load of a shared machine weighs on all alike, and reports the median of
// each (named by names, in unit) and the median of the first one's ratios
// to each other (names[0]/name).
func interleaved(b *testing.B, unit string, names []string, measures ...func() float64) {
	b.StopTimer()
	vals := make([][]float64, len(measures))
	ratios := make([][]float64, len(measures))
	for range pairRounds {
		var first float64
		for j, m := range measures {
			v := m()
			if j == 0 {
				first = v
			}
			vals[j] = append(vals[j], v)
			ratios[j] = append(ratios[j], first/v)
		}
	}
	for j, name := range names {
		b.ReportMetric(median(vals[j]), name+"-"+unit)
		if j > 0 {
			b.ReportMetric(median(ratios[j]), names[0]+"/"+name)
		}
	}
}

// BenchmarkAutoPipeline measures single-key Get and Put from 1, 16, 50
// and 64 goroutines through the store with auto-pipelining (the default),
// through the same store without it (DisableAutoPipeline), and with
// redis-benchmark at the same concurrency (-c), in interleaved rounds on
// one server: 100-byte values, 10000 keys. It reports the operations per
// second of each and the median ratios to the auto-pipelined store's.
func BenchmarkAutoPipeline(b *testing.B) {
	if n, _ := strconv.Atoi(os.Getenv("STRATA_PIPE_LANES")); n > 0 {
		defer redis.SetPipeLanes(redis.SetPipeLanes(n, n))
	}
	r := testserver.StartRedis(b, nil)
	ctx := b.Context()
	openStore := func(disable bool) *redis.Store {
		s, err := redis.Open(ctx, &redis.Options{URL: r.URL(), PoolSize: 64, DisableAutoPipeline: disable})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	on, off := openStore(false), openStore(true)
	value := make([]byte, 100)
	entries := make([]strata.Entry, benchKeys)
	for i := range entries {
		entries[i] = strata.Entry{Key: benchKey(i), Value: value}
	}
	if err := on.PutMany(ctx, entries); err != nil {
		b.Fatal(err)
	}
	ops := map[string]func(s *redis.Store) func(i int) error{
		"Get": func(s *redis.Store) func(i int) error {
			return func(i int) error { _, err := s.Get(ctx, benchKey(i)); return err }
		},
		"Put": func(s *redis.Store) func(i int) error {
			return func(i int) error { return s.Put(ctx, benchKey(i), value, 0) }
		},
	}
	for _, op := range []string{"Get", "Put"} {
		test := map[string]string{"Get": "get", "Put": "set"}[op]
		for _, conc := range []int{1, 16, 50, 64} {
			b.Run(fmt.Sprintf("%s/c%d", op, conc), func(b *testing.B) {
				fOn, fOff := ops[op](on), ops[op](off)
				for b.Loop() {
					if err := fOn(0); err != nil {
						b.Fatal(err)
					}
				}
				var last float64
				interleaved(b, "ops/s", []string{"auto", "off", "redis-benchmark"},
					func() float64 { last = rateFor(b, pairRound, conc, 1, fOn); return last },
					func() float64 { return rateFor(b, pairRound, conc, 1, fOff) },
					func() float64 {
						n := strconv.Itoa(max(int(last*pairRound.Seconds()), 5000))
						return redisBenchmark(b, r.Port, "-n", n, "-c", strconv.Itoa(conc), "-t", test)
					})
			})
		}
	}
}
