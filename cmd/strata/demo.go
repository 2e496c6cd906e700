package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/internal/window"
	"github.com/strata-kv/strata/metrics"
	_ "github.com/strata-kv/strata/stores/all"
	"github.com/strata-kv/strata/tier"
)

// demoConfig are the demo's flags.
type demoConfig struct {
	data        string
	store       string
	ckptDir     string
	ckptEvery   time.Duration
	duration    time.Duration
	batch       int
	rate        int
	streams     []string
	window      time.Duration
	noTier      bool
	metricsAddr string
	seed        uint64

	// file is the --config file, when given: it names the store and the
	// checkpoint settings instead of --data, --store, --checkpoint-dir
	// and --checkpoint-every.
	file     *config.Config
	filePath string
}

func newDemo() *cobra.Command {
	cfg := demoConfig{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a stream processor in miniature: windows, a cache tier, checkpoints",
		Long: `demo runs a stream processor in miniature. It reads a generated stream of
events from an offset, folds each into the tumbling window of its event time
(the WindowState {window_id, start_time, end_time, count, sum}) and writes
the touched windows together with the new offset, one batch at a time,
through a tier (an in-process cache) in front of a store: an embedded
Pebble store under --data by default, or any --store URL.

Every --checkpoint-every it checkpoints the store between two batches, so
each checkpoint holds windows and offset of the same instant. On start it
restores the newest valid checkpoint and resumes from its offset; on Ctrl-C
(or after --duration) it takes a final checkpoint. A status line shows
events/s, windows, the L1 hit ratio, p99 batch latency and the last
checkpoint. Run it twice to see it resume.

With the global --config, the store and the checkpoints are the config
file's: its [state] store (behind the file's [state.tier], or the demo's
own tier), and its [checkpoint] table's directory, interval, minimum
interval, retention and compression; with enabled = false (or no
[checkpoint] table) the demo takes no checkpoints and restores none.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := exclusive(cmd, "data", "store", "checkpoint-dir", "checkpoint-every"); err != nil {
				return err
			}
			file, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			cfg.file, cfg.filePath = file, configPath(cmd)
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.data, "data", filepath.Join(os.TempDir(), "strata-demo"), "directory of the default Pebble store and checkpoints")
	f.StringVar(&cfg.store, "store", "", "store URL (default: pebble://<data>/state)")
	f.StringVar(&cfg.ckptDir, "checkpoint-dir", "", "checkpoint directory (default: <data>/checkpoints)")
	f.DurationVar(&cfg.ckptEvery, "checkpoint-every", 3*time.Second, "time between checkpoints")
	f.DurationVar(&cfg.duration, "duration", 10*time.Second, "stop after this long (0: run until Ctrl-C)")
	f.IntVar(&cfg.batch, "batch", 500, "events per batch")
	f.IntVar(&cfg.rate, "rate", 0, "events per second at most (0: as fast as the store goes)")
	f.StringSliceVar(&cfg.streams, "streams", []string{"orders", "payments", "clicks"}, "stream names")
	f.DurationVar(&cfg.window, "window", 10*time.Second, "tumbling window size, in event time")
	f.BoolVar(&cfg.noTier, "no-tier", false, "use the store without the cache tier")
	f.StringVar(&cfg.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. :9090)")
	f.Uint64Var(&cfg.seed, "seed", 1, "seed of the generated stream")
	return cmd
}

func (c *demoConfig) validate() error {
	if c.window < time.Millisecond || c.batch < 1 || c.rate < 0 || len(c.streams) == 0 || c.ckptEvery <= 0 || c.duration < 0 {
		return fmt.Errorf("%w: demo needs --window >= 1ms, --batch >= 1, --rate >= 0, --checkpoint-every > 0, --duration >= 0 and --streams", strata.ErrInvalidConfig)
	}
	if c.file != nil {
		// The coordinator's interval: the file's, else its default.
		c.ckptEvery = cmp.Or(c.file.Checkpoint.Interval, time.Minute)
		return nil
	}
	if c.store == "" {
		c.store = "pebble://" + filepath.Join(c.data, "state")
	}
	if c.ckptDir == "" {
		c.ckptDir = filepath.Join(c.data, "checkpoints")
	}
	return nil
}

// offsetKey holds the offset of the next event to read.
var offsetKey = []byte("offset")

// event returns the stream's event at offset: deterministic, so a restart
// from an offset replays exactly what followed it.
func (c *demoConfig) event(offset uint64) (stream string, at time.Time, value float64) {
	r := rand.New(rand.NewPCG(c.seed, offset))
	stream = c.streams[r.IntN(len(c.streams))]
	// Event time advances 1ms per event on average, with some disorder.
	at = time.UnixMilli(1767225600000 + int64(offset) - int64(r.IntN(50)))
	return stream, at, float64(r.IntN(10000)) / 100
}

func windowKey(stream, id string) []byte { return []byte("window/" + stream + "/" + id) }

// demo is one run's state.
type demo struct {
	cfg      demoConfig
	out      io.Writer
	store    strata.Store
	tier     *tier.Tier
	windows  strata.Codec[window.State]
	tumbling window.Tumbling
	coord    *checkpoint.Coordinator
	offset   uint64
	started  uint64 // offset at start
	nWindows int64
	lastCkpt string
	lat      []time.Duration // batch latencies since the last status line
}

func runDemo(ctx context.Context, out io.Writer, cfg demoConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	d := &demo{cfg: cfg, out: out, windows: strata.Binary[window.State, *window.State]{}, tumbling: window.Tumbling{Size: cfg.window}}
	if err := d.open(ctx); err != nil {
		return err
	}
	defer d.store.Close()
	stopMetrics, err := d.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	if err := d.restore(ctx); err != nil {
		return err
	}
	runErr := d.loop(ctx)
	// The final checkpoint runs even after Ctrl-C cancelled ctx.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := d.shutdown(final); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return d.report(final)
}

func (d *demo) open(ctx context.Context) error {
	var (
		s     strata.Store
		err   error
		where string
	)
	if d.cfg.file != nil {
		s, err = config.Open(ctx, d.cfg.file)
		where = "of " + d.cfg.filePath
	} else {
		if err := os.MkdirAll(d.cfg.data, 0o755); err != nil {
			return err
		}
		s, err = strata.Open(ctx, d.cfg.store)
		where = strata.RedactURL(d.cfg.store)
	}
	if err != nil {
		return err
	}
	d.store = s
	if t, ok := s.(*tier.Tier); ok {
		d.tier = t // the config file put one in front
	} else if !d.cfg.noTier {
		if d.tier, err = tier.New(s, &tier.Options{MaxBytes: 32 << 20}); err != nil {
			s.Close()
			return err
		}
		d.store = d.tier
	}
	logger := slog.New(slog.NewTextHandler(d.out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if d.cfg.file != nil {
		d.coord, err = config.NewCoordinator(d.cfg.file, d.store, &checkpoint.Options{Logger: logger})
	} else {
		d.coord, err = checkpoint.New(d.store, &checkpoint.Options{Dir: d.cfg.ckptDir, MaxCheckpoints: 3, Logger: logger})
	}
	if err != nil {
		d.store.Close()
		return err
	}
	ckpts := "no checkpoints (the config file disables them)"
	if d.coord != nil {
		ckpts = fmt.Sprintf("checkpoints in %s every %v", d.coord.Dir(), d.cfg.ckptEvery)
	}
	fmt.Fprintf(d.out, "demo: store %s%s, %s\n", where, map[bool]string{true: " behind a tier", false: ""}[d.tier != nil], ckpts)
	return nil
}

// restore brings back the newest valid checkpoint, if any, and reads the
// offset to resume from.
func (d *demo) restore(ctx context.Context) error {
	if err := d.restoreCheckpoint(ctx); err != nil {
		return err
	}
	v, err := d.store.Get(ctx, offsetKey)
	switch {
	case errors.Is(err, strata.ErrNotFound):
	case err != nil:
		return err
	case len(v) != 8:
		return fmt.Errorf("%w: offset is %d bytes", strata.ErrCorrupt, len(v))
	default:
		d.offset = binary.BigEndian.Uint64(v)
	}
	d.started = d.offset
	for _, err := range d.store.Keys(ctx, []byte("window/")) {
		if err != nil {
			return err
		}
		d.nWindows++
	}
	fmt.Fprintf(d.out, "resuming at offset %d with %d windows\n", d.offset, d.nWindows)
	return nil
}

// restoreCheckpoint restores the newest valid checkpoint, if any.
func (d *demo) restoreCheckpoint(ctx context.Context) error {
	if d.coord == nil {
		return nil
	}
	r, err := d.coord.RestoreLatest(ctx)
	for _, sk := range r.Skipped {
		fmt.Fprintf(d.out, "skipped damaged checkpoint %s: %v\n", sk.ID, sk.Err)
	}
	switch {
	case errors.Is(err, checkpoint.ErrNoCheckpoint) && len(r.Skipped) == 0:
		fmt.Fprintln(d.out, "no checkpoint yet: starting from offset 0")
	case err != nil:
		return err
	default:
		d.lastCkpt = r.ID
		fmt.Fprintf(d.out, "restored checkpoint %s: %d entries\n", r.ID, r.Restored)
	}
	return nil
}

// loop processes batches until the duration ends or ctx is cancelled.
func (d *demo) loop(ctx context.Context) error {
	if d.cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.duration)
		defer cancel()
	}
	start := time.Now()
	lastStatus, lastCkpt := start, start
	statusOffset := d.offset
	for ctx.Err() == nil {
		t0 := time.Now()
		if err := d.batch(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		d.lat = append(d.lat, time.Since(t0))
		now := time.Now()
		if d.coord != nil && now.Sub(lastCkpt) >= d.cfg.ckptEvery {
			if err := d.checkpoint(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			lastCkpt = now
		}
		if now.Sub(lastStatus) >= time.Second {
			d.status(float64(d.offset-statusOffset) / now.Sub(lastStatus).Seconds())
			lastStatus, statusOffset = now, d.offset
		}
		if d.cfg.rate > 0 {
			// Pace to the rate: wait until this many events are due.
			due := start.Add(time.Duration(float64(d.offset-d.started) / float64(d.cfg.rate) * float64(time.Second)))
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
			}
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return ctx.Err()
}

// batch reads the next events, folds them into their windows and writes
// the windows and the new offset in one PutMany (atomic on embedded stores).
func (d *demo) batch(ctx context.Context) error {
	type agg struct {
		key   []byte
		state window.State
		found bool
	}
	byKey := map[string]*agg{}
	var order []*agg
	for i := range uint64(d.cfg.batch) {
		stream, at, v := d.cfg.event(d.offset + i)
		id, _, _ := d.tumbling.Bounds(at)
		k := windowKey(stream, id)
		a := byKey[string(k)]
		if a == nil {
			a = &agg{key: k}
			byKey[string(k)] = a
			order = append(order, a)
		}
		a.state = d.tumbling.Add(a.state, at, v)
	}
	keys := make([][]byte, len(order))
	for i, a := range order {
		keys[i] = a.key
	}
	cur, err := strata.GetMany(ctx, d.store, keys)
	if err != nil {
		return err
	}
	entries := make([]strata.Entry, 0, len(order)+1)
	for i, a := range order {
		st := a.state
		if cur[i] != nil {
			old, err := d.windows.Decode(cur[i])
			if err != nil {
				return fmt.Errorf("window %s: %w", a.key, err)
			}
			old.Count += st.Count
			old.Sum += st.Sum
			st = old
		} else {
			d.nWindows++
		}
		b, err := d.windows.Append(nil, st)
		if err != nil {
			return err
		}
		entries = append(entries, strata.Entry{Key: a.key, Value: b, TTL: strata.NoExpiry})
	}
	next := d.offset + uint64(d.cfg.batch)
	entries = append(entries, strata.Entry{Key: offsetKey, Value: binary.BigEndian.AppendUint64(nil, next), TTL: strata.NoExpiry})
	if err := strata.PutMany(ctx, d.store, entries); err != nil {
		return err
	}
	d.offset = next
	return nil
}

// shutdown takes the final checkpoint, whatever the minimum interval.
func (d *demo) shutdown(ctx context.Context) error {
	if d.coord == nil {
		return nil
	}
	if err := d.coord.Shutdown(ctx); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if id := d.coord.Stats().LastID; id != "" {
		d.lastCkpt = id
	}
	return nil
}

func (d *demo) checkpoint(ctx context.Context) error {
	m, err := d.coord.Checkpoint(ctx)
	if errors.Is(err, checkpoint.ErrTooSoon) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	d.lastCkpt = m.ID
	return nil
}

func (d *demo) status(rate float64) {
	slices.Sort(d.lat)
	p99 := time.Duration(0)
	if len(d.lat) > 0 {
		p99 = d.lat[min(len(d.lat)-1, len(d.lat)*99/100)]
	}
	d.lat = d.lat[:0]
	hit := "-"
	if d.tier != nil {
		hit = strconv.FormatFloat(100*d.tier.TierStats().L1HitRatio, 'f', 1, 64) + "%"
	}
	fmt.Fprintf(d.out, "%9.0f events/s  offset %d  windows %d  L1 hit %s  p99 batch %v  last checkpoint %s\n",
		rate, d.offset, d.nWindows, hit, p99.Round(time.Microsecond), orNone(d.lastCkpt))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// report checks that the windows hold exactly the events read so far, as
// exactly-once processing promises, and prints the totals.
func (d *demo) report(ctx context.Context) error {
	var total uint64
	n := 0
	for k, err := range d.store.Keys(ctx, []byte("window/")) {
		if err != nil {
			return err
		}
		v, err := d.store.Get(ctx, k)
		if err != nil {
			return err
		}
		w, err := d.windows.Decode(v)
		if err != nil {
			return fmt.Errorf("window %s: %w", k, err)
		}
		total += w.Count
		n++
	}
	fmt.Fprintf(d.out, "stopped at offset %d (%d events this run); %d windows hold %d events; last checkpoint %s\n",
		d.offset, d.offset-d.started, n, total, orNone(d.lastCkpt))
	if total != d.offset {
		return fmt.Errorf("windows hold %d events but the offset is %d: exactly-once broken", total, d.offset)
	}
	return nil
}

// serveMetrics serves /metrics when --metrics-addr is set and returns the
// function that stops it.
func (d *demo) serveMetrics() (func(), error) {
	if d.cfg.metricsAddr == "" {
		return func() {}, nil
	}
	c := metrics.NewCollector()
	c.AddStore("demo", d.store)
	if d.coord != nil {
		c.AddCheckpoints("demo", d.coord)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, prometheus.NewGoCollector())
	l, err := net.Listen("tcp", d.cfg.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	fmt.Fprintf(d.out, "metrics on http://%s/metrics\n", l.Addr())
	return func() { srv.Close() }, nil
}
