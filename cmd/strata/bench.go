package main

import (
	"context"
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
}

// benchResult is one test's outcome.
type benchResult struct {
	Name     string
	Requests int
	Keys     int // keys touched: Requests, or Requests*batch for batches
	Elapsed  time.Duration
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
}

// RPS returns requests per second.
func (r benchResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// KPS returns keys per second.
func (r benchResult) KPS() float64 { return float64(r.Keys) / r.Elapsed.Seconds() }

func (r benchResult) String() string {
	s := fmt.Sprintf("%s: %.2f requests per second, p50=%.3f msec, p99=%.3f msec, p999=%.3f msec",
		strings.ToUpper(r.Name), r.RPS(), ms(r.P50), ms(r.P99), ms(r.P999))
	if r.Keys != r.Requests {
		s += fmt.Sprintf(" (%.0f keys per second)", r.KPS())
	}
	return s
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
		Long: `bench loads --keys keys of --size bytes, then runs each test with --clients
concurrent clients until --requests requests are done, and prints requests
per second and p50/p99/p999 latency, like redis-benchmark -q. Batch tests
(getmany, putmany) move --batch keys per request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &f, func(ctx context.Context, s strata.Store) error {
				results, err := runBench(ctx, s, cfg)
				for _, r := range results {
					fmt.Fprintln(cmd.OutOrStdout(), r)
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
	fl.IntVarP(&cfg.batch, "batch", "P", 100, "keys per request in batch tests")
	fl.StringSliceVarP(&cfg.tests, "tests", "t", []string{"get", "put", "getmany", "putmany"}, "tests to run")
	return cmd
}

func (c benchConfig) validate() error {
	for _, t := range c.tests {
		if !slices.Contains([]string{"get", "put", "getmany", "putmany"}, t) {
			return fmt.Errorf("%w: --tests: unknown test %q (accepted: get, put, getmany, putmany)", strata.ErrInvalidConfig, t)
		}
	}
	if c.requests < 1 || c.clients < 1 || c.size < 0 || c.keys < 1 || c.batch < 1 {
		return fmt.Errorf("%w: --requests, --clients, --keys and --batch must be positive, --size not negative", strata.ErrInvalidConfig)
	}
	return nil
}

func runBench(ctx context.Context, s strata.Store, c benchConfig) ([]benchResult, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	keys := make([][]byte, c.keys)
	value := make([]byte, c.size)
	for i := range value {
		value[i] = 'x'
	}
	load := make([]strata.Entry, 0, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bench:%010d", i)
		load = append(load, strata.Entry{Key: keys[i], Value: value})
		if len(load) == cap(load) || i == len(keys)-1 {
			if err := strata.PutMany(ctx, s, load); err != nil {
				return nil, fmt.Errorf("loading keys: %w", err)
			}
			load = load[:0]
		}
	}
	var results []benchResult
	for _, t := range c.tests {
		r, err := benchOne(ctx, s, c, t, keys, value)
		if err != nil {
			return results, fmt.Errorf("%s: %w", t, err)
		}
		results = append(results, r)
	}
	return results, nil
}

func benchOne(ctx context.Context, s strata.Store, c benchConfig, test string, keys [][]byte, value []byte) (benchResult, error) {
	batch := 1
	if strings.HasSuffix(test, "many") {
		batch = c.batch
	}
	op := func(i int, entries []strata.Entry, ks [][]byte) error {
		switch test {
		case "get":
			_, err := s.Get(ctx, keys[i%len(keys)])
			return err
		case "put":
			return s.Put(ctx, keys[i%len(keys)], value, 0)
		case "getmany":
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
	return benchResult{Name: test, Requests: c.requests, Keys: c.requests * batch, Elapsed: elapsed,
		P50: pct(0.50), P99: pct(0.99), P999: pct(0.999)}, nil
}
