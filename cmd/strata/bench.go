package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
)

// benchConfig are the flags of strata bench, named after redis-benchmark's.
type benchConfig struct {
	requests int
	clients  int
	size     int
	keys     int
	batch    int
	tests    []string
	quiet    bool
	csv      bool
}

// benchTests are the tests bench runs, in order, named as
// redis-benchmark's -t names them.
var benchTests = []string{"set", "get", "mset", "mget"}

// benchKeyPrefix begins the name of every key bench writes.
const benchKeyPrefix = "bench:"

// benchResult is one test's outcome.
type benchResult struct {
	Name     string // as redis-benchmark prints it: "SET", "MSET (100 keys)"
	Requests int
	Keys     int // keys touched: Requests, or Requests*batch for batches
	Elapsed  time.Duration
	Avg      time.Duration
	Min      time.Duration
	P50      time.Duration
	P95      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
}

// RPS returns requests per second.
func (r benchResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// KPS returns keys per second.
func (r benchResult) KPS() float64 { return float64(r.Keys) / r.Elapsed.Seconds() }

func (r benchResult) String() string {
	s := fmt.Sprintf("%s: %.2f requests per second, p50=%.3f msec, p99=%.3f msec, p999=%.3f msec",
		r.Name, r.RPS(), ms(r.P50), ms(r.P99), ms(r.P999))
	if r.Keys != r.Requests {
		s += fmt.Sprintf(" (%.0f keys per second)", r.KPS())
	}
	return s
}

// benchCSVHeader is redis-benchmark --csv's header: bench --csv prints the
// same columns, so that one script reads both.
var benchCSVHeader = []string{"test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_latency_ms"}

// csv returns r as a row under benchCSVHeader.
func (r benchResult) csv() []string {
	f := func(d time.Duration) string { return fmt.Sprintf("%.3f", ms(d)) }
	return []string{r.Name, fmt.Sprintf("%.2f", r.RPS()), f(r.Avg), f(r.Min), f(r.P50), f(r.P95), f(r.P99), f(r.Max)}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newBench() *cobra.Command {
	var (
		f   storeFlags
		cfg benchConfig
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a store: requests per second and latency percentiles",
		Long: `bench writes --keys keys of --size bytes, named bench:0000000000 and up, then
runs each test with --clients concurrent clients until --requests requests
are done, and prints requests per second and p50/p99/p999 latency, like
redis-benchmark -q; --csv prints redis-benchmark --csv's columns instead.
The tests are named as redis-benchmark names them: SET and GET, and the
batch tests MSET and MGET, which move --batch keys per request. When it is
done (or fails, or is interrupted) bench deletes the keys it wrote; a key
of the store under those names is overwritten, then deleted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				var w *csv.Writer
				if cfg.csv {
					w = csv.NewWriter(cmd.OutOrStdout())
					w.UseCRLF = false
					w.Write(benchCSVHeader)
				}
				results, err := runBench(ctx, s, cfg, func(r benchResult) {
					if w != nil {
						w.Write(r.csv())
						w.Flush()
					} else {
						fmt.Fprintln(cmd.OutOrStdout(), r)
					}
				})
				if err == nil && !cfg.quiet && !cfg.csv {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d tests done; the %d %s* keys written are deleted\n", len(results), cfg.keys, benchKeyPrefix)
				}
				return err
			})
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVarP(&cfg.requests, "requests", "n", 100000, "requests per test")
	fl.IntVarP(&cfg.clients, "clients", "c", 50, "concurrent clients")
	fl.IntVarP(&cfg.size, "size", "d", 100, "value size in bytes")
	fl.IntVarP(&cfg.keys, "keys", "r", 10000, "distinct keys")
	fl.IntVarP(&cfg.batch, "batch", "P", 100, "keys per request in MSET and MGET")
	fl.StringSliceVarP(&cfg.tests, "tests", "t", slices.Clone(benchTests), "tests to run: set, get, mset, mget")
	fl.BoolVarP(&cfg.quiet, "quiet", "q", false, "print only each test's result line")
	fl.BoolVar(&cfg.csv, "csv", false, "print CSV with redis-benchmark --csv's columns")
	return cmd
}

func (c benchConfig) validate() error {
	for i, t := range c.tests {
		if !slices.Contains(benchTests, strings.ToLower(t)) {
			return fmt.Errorf("%w: --tests: unknown test %q (accepted: %s)", strata.ErrInvalidConfig, t, strings.Join(benchTests, ", "))
		}
		c.tests[i] = strings.ToLower(t)
	}
	if c.requests < 1 || c.clients < 1 || c.size < 0 || c.keys < 1 || c.batch < 1 {
		return fmt.Errorf("%w: --requests, --clients, --keys and --batch must be positive, --size not negative", strata.ErrInvalidConfig)
	}
	return nil
}

// runBench writes the keys, runs the tests, reporting each result to
// report as it is done, and deletes the keys, whatever happened: on a
// cancelled ctx too, within a few seconds.
func runBench(ctx context.Context, s strata.Store, c benchConfig, report func(benchResult)) (results []benchResult, err error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	keys := make([][]byte, c.keys)
	value := make([]byte, c.size)
	for i := range value {
		value[i] = 'x'
	}
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%s%010d", benchKeyPrefix, i)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for chunk := range slices.Chunk(keys, 1000) {
			if _, derr := strata.DeleteMany(cctx, s, chunk); derr != nil {
				err = errors.Join(err, fmt.Errorf("deleting the %s* keys: %w", benchKeyPrefix, derr))
				return
			}
		}
	}()
	load := make([]strata.Entry, 0, 1000)
	for i := range keys {
		load = append(load, strata.Entry{Key: keys[i], Value: value})
		if len(load) == cap(load) || i == len(keys)-1 {
			if err := strata.PutMany(ctx, s, load); err != nil {
				return nil, fmt.Errorf("loading keys: %w", err)
			}
			load = load[:0]
		}
	}
	for _, t := range c.tests {
		r, err := benchOne(ctx, s, c, t, keys, value)
		if err != nil {
			return results, fmt.Errorf("%s: %w", strings.ToUpper(t), err)
		}
		results = append(results, r)
		if report != nil {
			report(r)
		}
	}
	return results, nil
}

func benchOne(ctx context.Context, s strata.Store, c benchConfig, test string, keys [][]byte, value []byte) (benchResult, error) {
	batch, name := 1, strings.ToUpper(test)
	if strings.HasPrefix(test, "m") {
		batch = c.batch
		name = fmt.Sprintf("%s (%d keys)", name, batch)
	}
	op := func(i int, entries []strata.Entry, ks [][]byte) error {
		switch test {
		case "get":
			_, err := s.Get(ctx, keys[i%len(keys)])
			return err
		case "set":
			return s.Put(ctx, keys[i%len(keys)], value, 0)
		case "mget":
			for j := range ks {
				ks[j] = keys[(i*batch+j)%len(keys)]
			}
			_, err := strata.GetMany(ctx, s, ks)
			return err
		default:
			for j := range entries {
				entries[j] = strata.Entry{Key: keys[(i*batch+j)%len(keys)], Value: value}
			}
			return strata.PutMany(ctx, s, entries)
		}
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, c.requests)
		firstErr error
	)
	start := time.Now()
	for range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries, ks := make([]strata.Entry, batch), make([][]byte, batch)
			local := make([]time.Duration, 0, c.requests/c.clients+1)
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			for {
				i := int(next.Add(1)) - 1
				if i >= c.requests {
					return
				}
				t0 := time.Now()
				if err := op(i, entries, ks); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(c.requests))
					return
				}
				local = append(local, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return benchResult{}, firstErr
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return benchResult{Name: name, Requests: c.requests, Keys: c.requests * batch, Elapsed: elapsed,
		Avg: sum / time.Duration(len(lat)), Min: lat[0], P50: pct(0.50), P95: pct(0.95), P99: pct(0.99), P999: pct(0.999), Max: lat[len(lat)-1]}, nil
}
