// Command hitratio replays block traces through the strata tier's L1 and
// through other Go caches at the same budgets, and prints their hit
// ratios as a Markdown table:
//
//	cd bench && go run ./cmd/hitratio
//	cd bench && go run ./cmd/hitratio -dir /path/to/traces -traces P3 -sizes 10000,50000
//
// Every cache holds N entries of 8-byte keys and 100-byte values: LRU
// (hashicorp/golang-lru v2), otter v2 and theine at MaximumSize N, the tier
// (over a memory store holding every key of the trace) with the MaxBytes
// that holds N entries (tier.Budget). The "bytes" columns give the tier
// instead the budget N·(8+100+160) bytes, the one that held N entries when
// every entry was charged 160 bytes on top of its key and value. With
// -runs k, each cell is the median of k replays.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-kv/strata/bench/trace"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

const allCaches = "lru,otter,theine,tier:ristretto,tier:otter,tier:ristretto@bytes,tier:otter@bytes"

func main() {
	dir := flag.String("dir", envOr("STRATA_TRACES", "testdata/traces"), "directory of the traces (`NAME.lis.zst` or `NAME.lis`); env STRATA_TRACES")
	names := flag.String("traces", "", "comma-separated trace names (default: every trace in -dir)")
	sizes := flag.String("sizes", "10000,50000,100000,300000", "comma-separated entry budgets N")
	caches := flag.String("caches", allCaches, "comma-separated caches: lru, otter, theine, tier:ENGINE and tier:ENGINE@bytes")
	runs := flag.Int("runs", 1, "replays per cell: the cell is their median (policies with random seeds and adaptive parameters vary between replays at small N)")
	verbose := flag.Bool("v", false, "print each replay's time and the tier's L1 counters to stderr")
	flag.Parse()
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "hitratio: -runs must be at least 1")
		os.Exit(2)
	}
	if err := run(*dir, *names, *sizes, *caches, *runs, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "hitratio:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(dir, names, sizeList, cacheList string, runs int, verbose bool) error {
	files, err := traceFiles(dir, names)
	if err != nil {
		return err
	}
	var ns []int
	for s := range strings.SplitSeq(sizeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("size %q: want a positive integer", s)
		}
		ns = append(ns, n)
	}
	cs := strings.Split(cacheList, ",")
	fmt.Printf("| trace | N |")
	for _, c := range cs {
		fmt.Printf(" %s |", c)
	}
	fmt.Printf("\n|---|---|%s\n", strings.Repeat("---|", len(cs)))
	ctx := context.Background()
	for _, f := range files {
		ids, err := trace.Read(f)
		if err != nil {
			return err
		}
		l2 := memory.New(nil)
		if err := trace.LoadL2(ctx, l2, trace.Unique(ids)); err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".zst"), ".lis")
		for _, n := range ns {
			fmt.Printf("| %s | %d |", name, n)
			for _, c := range cs {
				var rs []float64
				for range runs {
					start := time.Now()
					r, detail, err := replay(ctx, c, n, l2, ids)
					if err != nil {
						return fmt.Errorf("%s, N=%d, %s: %w", name, n, c, err)
					}
					if verbose {
						fmt.Fprintf(os.Stderr, "%s N=%d %s: %.2f%% in %v %s\n", name, n, c, 100*r, time.Since(start).Round(time.Millisecond), detail)
					}
					rs = append(rs, r)
				}
				slices.Sort(rs)
				fmt.Printf(" %.2f |", 100*rs[len(rs)/2])
			}
			fmt.Println()
		}
		l2.Close()
		runtime.GC()
	}
	return nil
}

// traceFiles lists the traces of dir named in names (all when empty).
func traceFiles(dir, names string) ([]string, error) {
	if names == "" {
		var out []string
		for _, pat := range []string{"*.lis.zst", "*.lis"} {
			m, err := filepath.Glob(filepath.Join(dir, pat))
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no *.lis or *.lis.zst trace in %s", dir)
		}
		slices.Sort(out)
		return out, nil
	}
	var out []string
	for n := range strings.SplitSeq(names, ",") {
		found := ""
		for _, ext := range []string{".lis.zst", ".lis", ""} {
			p := filepath.Join(dir, strings.TrimSpace(n)+ext)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				found = p
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("trace %q not found in %s", n, dir)
		}
		out = append(out, found)
	}
	return out, nil
}

// replay runs ids through a fresh cache c of n entries and returns its
// hit ratio.
func replay(ctx context.Context, c string, n int, l2 *memory.Store, ids []uint64) (float64, string, error) {
	switch c {
	case "lru":
		l, err := trace.NewLRU(n)
		if err != nil {
			return 0, "", err
		}
		r, err := trace.Replay(ctx, l, ids, nil)
		return r, "", err
	case "otter":
		o, err := trace.NewOtter(n)
		if err != nil {
			return 0, "", err
		}
		defer o.Close()
		r, err := trace.Replay(ctx, o, ids, nil)
		return r, "", err
	case "theine":
		t, err := trace.NewTheine(n)
		if err != nil {
			return 0, "", err
		}
		defer t.Close()
		r, err := trace.Replay(ctx, t, ids, nil)
		return r, "", err
	}
	spec, ok := strings.CutPrefix(c, "tier:")
	if !ok {
		return 0, "", fmt.Errorf("unknown cache %q (want lru, otter, theine, tier:ENGINE or tier:ENGINE@bytes)", c)
	}
	engine, bytes := strings.CutSuffix(spec, "@bytes")
	o, err := trace.TierOptions(engine, n, trace.ValueSize, bytes)
	if err != nil {
		return 0, "", err
	}
	o.KeepL2Open = true
	o.Invalidation = tier.InvalidationNone
	tr, err := tier.New(l2, o)
	if err != nil {
		return 0, "", err
	}
	t := &trace.Tier{T: tr}
	r, err := trace.Replay(ctx, t, ids, t.Ratio)
	s := tr.TierStats()
	detail := fmt.Sprintf("(MaxBytes %d, L1Bytes %d, fills %d, dropped %d, rejected %d, evicted %d)",
		s.L1MaxBytes, s.L1Bytes, s.Fills, s.L1SetsDropped, s.L1Rejections, s.L1Evictions)
	return r, detail, errors.Join(err, tr.Close())
}
