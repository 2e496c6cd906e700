package main

import (
	"bytes"
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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/internal/window"
	"github.com/strata-kv/strata/locks"
	"github.com/strata-kv/strata/metrics"
	"github.com/strata-kv/strata/storekit"
	_ "github.com/strata-kv/strata/stores/all"
	"github.com/strata-kv/strata/tier"
)

// demoConfig are the demo's flags.
type demoConfig struct {
	data        string
	store       string
	ckptDir     string
	maxDeltas   int
	ckptEvery   time.Duration
	duration    time.Duration
	batch       int
	rate        int
	streams     []string
	window      time.Duration
	noTier      bool
	metricsAddr string
	seed        uint64
	lock        string
	leaseTTL    time.Duration
	job         string

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
		Short: "Run a stream processor in miniature: windows, a cache tier, commits, checkpoints",
		Long: `demo runs a stream processor in miniature. It reads a generated stream of
events from an offset, folds each into the tumbling window of its event time
(the WindowState {window_id, start_time, end_time, count, sum}) and commits
the touched windows together with the new offset, one batch at a time, as
one atomic commit, through a tier (an in-process cache) in front of a store:
an embedded Pebble store under --data by default, or any --store URL.

On a shared store (Redis) the job first takes a lease (--lock: Redis locks
on the same server by default, or a postgres:// URL), and every commit
carries the lease's fencing token: a second demo on the same store waits
for the lease, and a process that lost it (paused past its TTL, say) has
its late commits rejected instead of applied twice.

Every --checkpoint-every it checkpoints the store between two commits, so
each checkpoint holds windows and offset of the same instant: into a
directory or any checkpoint location URL (--checkpoint-dir s3://bucket/demo?…),
and, up to --max-deltas times in a row, as a delta of the keys the commits
changed since the previous checkpoint (a Tracker records them). On start it
resumes from the offset the store holds, or, if the store is empty,
restores the newest valid checkpoint; on Ctrl-C (or after --duration) it
takes a final checkpoint and checks that the windows hold exactly the
events up to the offset. A status line shows events/s, windows, the L1 hit
ratio, p99 batch latency and the last checkpoint. Run it twice to see it
resume.

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
	f.StringVar(&cfg.ckptDir, "checkpoint-dir", "", "checkpoint directory or location URL: a path, file:///path, s3://bucket/prefix?endpoint=…&region=… (default: <data>/checkpoints)")
	f.IntVar(&cfg.maxDeltas, "max-deltas", 10, "incremental checkpoints between two full ones (0: full checkpoints only)")
	f.DurationVar(&cfg.ckptEvery, "checkpoint-every", 3*time.Second, "time between checkpoints")
	f.DurationVar(&cfg.duration, "duration", 10*time.Second, "stop after this long (0: run until Ctrl-C)")
	f.IntVar(&cfg.batch, "batch", 500, "events per batch")
	f.IntVar(&cfg.rate, "rate", 0, "events per second at most (0: as fast as the store goes)")
	f.StringSliceVar(&cfg.streams, "streams", []string{"orders", "payments", "clicks"}, "stream names")
	f.DurationVar(&cfg.window, "window", 10*time.Second, "tumbling window size, in event time")
	f.BoolVar(&cfg.noTier, "no-tier", false, "use the store without the cache tier")
	f.StringVar(&cfg.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. :9090)")
	f.Uint64Var(&cfg.seed, "seed", 1, "seed of the generated stream")
	f.StringVar(&cfg.lock, "lock", "auto", "where the job's lease lives: auto (Redis locks on a Redis store, none on an embedded one), none, or a postgres:// URL")
	f.DurationVar(&cfg.leaseTTL, "lease-ttl", 5*time.Second, "TTL of the job's lease (renewed every third of it)")
	f.StringVar(&cfg.job, "job", "demo", "job name: its lease, and the hash tag {job} of its keys")
	return cmd
}

func (c *demoConfig) validate() error {
	if c.window < time.Millisecond || c.batch < 1 || c.rate < 0 || len(c.streams) == 0 || c.ckptEvery <= 0 || c.duration < 0 || c.maxDeltas < 0 ||
		c.leaseTTL < 10*time.Millisecond || c.job == "" || strings.ContainsAny(c.job, "{}") {
		return fmt.Errorf("%w: demo needs --window >= 1ms, --batch >= 1, --rate >= 0, --checkpoint-every > 0, --duration >= 0, --max-deltas >= 0, "+
			"--lease-ttl >= 10ms, --streams, and a --job name without braces", strata.ErrInvalidConfig)
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

// finishTimeout bounds a commit that is under way when the run ends, and
// the final checkpoint: they get their own deadline, not the run's.
const finishTimeout = 30 * time.Second

// event returns the stream's event at offset: deterministic, so a restart
// from an offset replays exactly what followed it.
func (c *demoConfig) event(offset uint64) (stream string, at time.Time, value float64) {
	r := rand.New(rand.NewPCG(c.seed, offset))
	stream = c.streams[r.IntN(len(c.streams))]
	// Event time advances 1ms per event on average, with some disorder.
	at = time.UnixMilli(1767225600000 + int64(offset) - int64(r.IntN(50)))
	return stream, at, float64(r.IntN(10000)) / 100
}

// demo is one run's state.
type demo struct {
	cfg      demoConfig
	out      io.Writer
	store    strata.Store // what the job reads and commits to: the Tracker over base
	base     strata.Store // the tier, or the store
	tier     *tier.Tier
	windows  *strata.Typed[window.State]
	tumbling window.Tumbling
	coord    *checkpoint.Coordinator
	leaser   *leaser
	lease    locks.Lease // nil on an embedded store

	// Keys, all under the hash tag {job}: one commit stays in one Redis
	// Cluster slot.
	tag, offsetKey, fenceKey []byte

	offset   uint64
	started  uint64 // offset at start
	nWindows int64
	lastCkpt string
	lat      []time.Duration // batch latencies since the last status line
}

func runDemo(ctx context.Context, out io.Writer, cfg demoConfig) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	tag := "{" + cfg.job + "}"
	d := &demo{cfg: cfg, out: out, tumbling: window.Tumbling{Size: cfg.window},
		tag: []byte(tag), offsetKey: []byte(tag + "offset"), fenceKey: []byte(tag + "fence")}
	if err := d.open(ctx); err != nil {
		return err
	}
	defer d.close()
	stopMetrics, err := d.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	if d.leaser != nil {
		if d.lease, err = d.leaser.acquire(ctx, d.out, cfg.job, cfg.leaseTTL); err != nil {
			return err
		}
		defer func() {
			rel, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			defer cancel()
			if rerr := d.lease.Release(rel); rerr != nil && !errors.Is(rerr, locks.ErrLost) {
				err = errors.Join(err, rerr)
			}
		}()
	}
	if err := d.restore(ctx); err != nil {
		return err
	}
	runErr := d.loop(ctx)
	if errors.Is(runErr, strata.ErrFenced) || errors.Is(runErr, locks.ErrLost) {
		// Another process holds the job now: its state is not ours to
		// checkpoint or check.
		return runErr
	}
	// The final checkpoint and check run even after Ctrl-C cancelled ctx.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := d.checkpoint(final); err != nil {
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
		where = storekit.RedactURL(d.cfg.store)
	}
	if err != nil {
		return err
	}
	d.base = s
	if t, ok := s.(*tier.Tier); ok {
		d.tier = t // the config file put one in front
	} else if !d.cfg.noTier {
		if d.tier, err = tier.New(s, &tier.Options{MaxBytes: 32 << 20}); err != nil {
			s.Close()
			return err
		}
		d.base = d.tier
	}
	// Every write of the job goes through the Tracker, which tells the
	// Coordinator what changed since the last checkpoint.
	tr, err := checkpoint.Track(d.base, nil)
	if err != nil {
		d.base.Close()
		return err
	}
	d.store = tr
	d.windows = strata.NewTyped(d.store, strata.Codec[window.State](strata.Binary[window.State, *window.State]{}))
	// Merge: restoring the job's state must not clear the other keys of a
	// shared store.
	opts := &checkpoint.Options{Aligned: true, Interval: d.cfg.ckptEvery, MaxDeltas: d.cfg.maxDeltas, Mode: checkpoint.Merge,
		Logger: slog.New(slog.NewTextHandler(d.out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if d.cfg.file != nil {
		d.coord, err = checkpoint.FromConfig(d.cfg.file, d.store, opts)
	} else {
		opts.Location, opts.MaxCheckpoints = d.cfg.ckptDir, 3
		d.coord, err = checkpoint.New(d.store, opts)
	}
	if err == nil {
		d.leaser, err = openLocker(ctx, d.cfg.lock, baseStore(s))
	}
	if err != nil {
		if d.coord != nil {
			d.coord.Close()
		}
		d.base.Close()
		return err
	}
	ckpts := "no checkpoints (the config file disables them)"
	if d.coord != nil {
		ckpts = fmt.Sprintf("checkpoints in %s every %v", d.coord.Location(), d.cfg.ckptEvery)
	}
	fmt.Fprintf(d.out, "demo: store %s%s, %s\n", where, map[bool]string{true: " behind a tier", false: ""}[d.tier != nil], ckpts)
	return nil
}

func (d *demo) close() {
	if d.leaser != nil {
		d.leaser.close()
	}
	if d.coord != nil {
		d.coord.Close()
	}
	d.base.Close()
}

// restore reads the offset to resume from: the store's own, or, when the
// store holds none (a first run, or a store that was lost), the newest
// valid checkpoint's.
func (d *demo) restore(ctx context.Context) error {
	off, found, err := d.readOffset(ctx)
	if err != nil {
		return err
	}
	if !found && d.coord != nil {
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
		if off, _, err = d.readOffset(ctx); err != nil {
			return err
		}
	}
	d.offset, d.started = off, off
	for _, err := range d.store.Keys(ctx, d.windowPrefix()) {
		if err != nil {
			return err
		}
		d.nWindows++
	}
	fmt.Fprintf(d.out, "resuming at offset %d with %d windows\n", d.offset, d.nWindows)
	return nil
}

// readOffset returns the offset the store holds.
func (d *demo) readOffset(ctx context.Context) (uint64, bool, error) {
	v, err := d.store.Get(ctx, d.offsetKey)
	switch {
	case errors.Is(err, strata.ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	case len(v) != 8:
		return 0, false, fmt.Errorf("%w: offset is %d bytes", strata.ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func (d *demo) windowPrefix() []byte { return append(slices.Clip(d.tag), "window/"...) }

func (d *demo) windowKey(stream, id string) []byte {
	return append(d.windowPrefix(), stream+"/"+id...)
}

// loop processes batches until the duration ends, ctx is cancelled or the
// lease is lost.
func (d *demo) loop(ctx context.Context) error {
	if d.cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.duration)
		defer cancel()
	}
	if d.lease != nil {
		var cancel context.CancelFunc
		ctx, cancel = locks.Context(ctx, d.lease)
		defer cancel()
	}
	start := time.Now()
	lastStatus := start
	statusOffset := d.offset
	for ctx.Err() == nil {
		t0 := time.Now()
		if err := d.batch(ctx); err != nil {
			if errors.Is(err, strata.ErrFenced) {
				return fmt.Errorf("another process took the job over (its lease is newer): %w", err)
			}
			if ended(ctx) {
				break // a read cut short by the end of the run: nothing was committed
			}
			return err
		}
		d.lat = append(d.lat, time.Since(t0))
		if d.coord != nil && d.coord.Due() {
			// A barrier between two commits: the checkpoint is the state at
			// this offset.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			err := d.checkpoint(cctx)
			cancel()
			if err != nil {
				return err
			}
		}
		now := time.Now()
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
	if cause := context.Cause(ctx); errors.Is(cause, locks.ErrLost) {
		return fmt.Errorf("lost the lease: %w", cause)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return ctx.Err()
}

// ended reports whether ctx is done or past its deadline: a read may fail
// with the deadline's error a moment before ctx's own timer fires.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// batch reads the next events, folds them into their windows and commits
// the windows and the new offset together: one atomic commit, fenced by
// the lease on a shared store.
func (d *demo) batch(ctx context.Context) error {
	type agg struct {
		key   []byte
		state window.State
	}
	byKey := map[string]*agg{}
	var order []*agg
	for i := range uint64(d.cfg.batch) {
		stream, at, v := d.cfg.event(d.offset + i)
		id, _, _ := d.tumbling.Bounds(at)
		k := d.windowKey(stream, id)
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
	cur, found, err := d.windows.GetMany(ctx, keys)
	if err != nil {
		return err
	}
	next := d.offset + uint64(d.cfg.batch)
	b := &strata.WriteBatch{ID: binary.BigEndian.AppendUint64(nil, next)}
	if d.lease != nil {
		b.If(locks.FenceAt(d.lease, d.fenceKey))
	}
	if d.offset == 0 {
		b.IfAbsent(d.offsetKey)
	} else {
		b.IfEqual(d.offsetKey, binary.BigEndian.AppendUint64(nil, d.offset))
	}
	added := 0
	for i, a := range order {
		st := a.state
		if found[i] {
			st = cur[i]
			st.Count += a.state.Count
			st.Sum += a.state.Sum
		} else {
			added++
		}
		if err := d.windows.AddPut(b, a.key, st, strata.NoExpiry); err != nil {
			return err
		}
	}
	b.Put(d.offsetKey, b.ID, strata.NoExpiry)
	if err := d.commit(ctx, b, next); err != nil {
		return err
	}
	d.offset = next
	d.nWindows += int64(added)
	return nil
}

// commit applies b, which moves the offset to next. A commit under way
// when ctx ends is finished under its own deadline: the batch's state and
// offset land together or not at all. A commit whose outcome is unknown
// (its reply lost) is settled by reading the offset back: moved to next,
// it was applied; unmoved, it is sent again (its condition on the offset
// keeps it from applying twice).
func (d *demo) commit(ctx context.Context, b *strata.WriteBatch, next uint64) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := strata.Commit(cctx, d.store, b)
		if !errors.Is(err, strata.ErrIndeterminate) {
			if errors.Is(err, strata.ErrConflict) && !errors.Is(err, strata.ErrFenced) {
				return fmt.Errorf("the offset moved under the job (another writer without the lease?): %w", err)
			}
			return err
		}
		off, _, rerr := d.readOffset(cctx)
		switch {
		case rerr != nil:
			return errors.Join(err, rerr)
		case off == next:
			return nil
		case off != d.offset:
			return fmt.Errorf("the offset moved to %d under the job: %w", off, err)
		}
		fmt.Fprintf(d.out, "commit at offset %d: outcome unknown, retrying: %v\n", next, err)
		select {
		case <-time.After(time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond):
		case <-cctx.Done():
			return err
		}
	}
}

// checkpoint takes an aligned checkpoint at the current offset.
func (d *demo) checkpoint(ctx context.Context) error {
	if d.coord == nil {
		return nil
	}
	cut := checkpoint.Cut{Offset: strconv.FormatUint(d.offset, 10)}
	if d.lease != nil {
		cut.FenceKey, cut.Token = d.fenceKey, d.lease.Token()
	}
	m, err := d.coord.CheckpointAt(ctx, cut)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	d.lastCkpt = m.ID
	if m.IsDelta() {
		d.lastCkpt += fmt.Sprintf(" (delta %d, %d keys)", m.Depth, m.Entries)
	}
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
	var keys [][]byte
	for k, err := range d.store.Keys(ctx, d.windowPrefix()) {
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal) // Redis SCAN may repeat a key
	var total uint64
	for chunk := range slices.Chunk(keys, 1000) {
		ws, found, err := d.windows.GetMany(ctx, chunk)
		if err != nil {
			return err
		}
		for i, w := range ws {
			if found[i] {
				total += w.Count
			}
		}
	}
	offset, _, err := d.readOffset(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "stopped at offset %d (%d events this run); %d windows hold %d events; last checkpoint %s\n",
		offset, offset-d.started, len(keys), total, orNone(d.lastCkpt))
	if total != offset {
		return fmt.Errorf("windows hold %d events but the offset is %d: exactly-once broken", total, offset)
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
	c.AddCheckpoints("demo", d.coord)
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
