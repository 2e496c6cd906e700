package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/window"
	_ "github.com/strata-kv/strata/stores/all"
)

// demoConfig are the demo's flags.
type demoConfig struct {
	store   string
	events  int
	streams []string
	window  time.Duration
	seed    uint64
}

func newDemo() *cobra.Command {
	cfg := demoConfig{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Aggregate generated events into tumbling windows in a store",
		Long: `demo runs a stream processor in miniature: it generates events on a few
streams, assigns each to a tumbling window by event time, and folds it into
that window's WindowState {window_id, start_time, end_time, count, sum},
updated atomically in the store. It then prints what it did.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.store, "store", "mem://", "store URL")
	f.IntVar(&cfg.events, "events", 50000, "events to generate")
	f.StringSliceVar(&cfg.streams, "streams", []string{"orders", "payments", "clicks"}, "stream names")
	f.DurationVar(&cfg.window, "window", 10*time.Second, "tumbling window size")
	f.Uint64Var(&cfg.seed, "seed", 1, "random seed for the generated events")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, cfg demoConfig) error {
	if cfg.window < time.Millisecond || cfg.events < 0 || len(cfg.streams) == 0 {
		return fmt.Errorf("%w: --window must be at least 1ms, --events >= 0, --streams non-empty", strata.ErrInvalidConfig)
	}
	s, err := strata.Open(ctx, cfg.store)
	if err != nil {
		return err
	}
	defer s.Close()
	windows := strata.NewTyped(s, strata.Binary[window.State, *window.State]{})
	tumbling := window.Tumbling{Size: cfg.window}
	rng := rand.New(rand.NewPCG(cfg.seed, cfg.seed))

	fmt.Fprintf(out, "demo: %d events on %d streams into %v tumbling windows in %s\n",
		cfg.events, len(cfg.streams), cfg.window, strata.RedactURL(cfg.store))
	eventTime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	for i := range cfg.events {
		if err := ctx.Err(); err != nil {
			return err
		}
		stream := cfg.streams[rng.IntN(len(cfg.streams))]
		eventTime = eventTime.Add(time.Duration(rng.IntN(int(cfg.window/50) + 1)))
		value := float64(rng.IntN(10000)) / 100
		id, _, _ := tumbling.Bounds(eventTime)
		key := []byte("window/" + stream + "/" + id)
		_, err := windows.Update(ctx, key, 24*time.Hour, func(cur window.State, _ bool) (window.State, error) {
			return tumbling.Add(cur, eventTime, value), nil
		})
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	elapsed := time.Since(start)
	return report(ctx, out, s, windows, cfg.events, elapsed)
}

// report prints the totals and the last windows of each stream.
func report(ctx context.Context, out io.Writer, s strata.Store, windows *strata.Typed[window.State], events int, elapsed time.Duration) error {
	var keys []string
	for k, err := range s.Keys(ctx, []byte("window/")) {
		if err != nil {
			return err
		}
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	var total uint64
	for _, k := range keys {
		w, err := windows.Get(ctx, []byte(k))
		if err != nil {
			return fmt.Errorf("reading %s: %w", k, err)
		}
		total += w.Count
	}
	fmt.Fprintf(out, "processed %d events in %v (%.0f events/s); %d windows hold %d events\n",
		events, elapsed.Round(time.Millisecond), float64(events)/elapsed.Seconds(), len(keys), total)
	for _, k := range keys[max(0, len(keys)-5):] {
		w, err := windows.Get(ctx, []byte(k))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-40s count=%-6d sum=%.2f\n", k, w.Count, w.Sum)
	}
	if total != uint64(events) {
		return fmt.Errorf("windows hold %d events, want %d: an update was lost", total, events)
	}
	return nil
}
