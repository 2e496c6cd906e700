package checkpoint

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-kv/strata"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata/internal/latency"
	"github.com/strata-kv/strata/storekit"
)

// Options configure a Coordinator; the names in parentheses are the keys of
// the [checkpoint] section of the configuration. Location or Dir is
// required (with New; NewAt takes the Location itself).
type Options struct {
	// Location is the URL of the checkpoints' location (location): a
	// directory path, file:///path, or s3://bucket/prefix?... (see
	// OpenLocation). Set Location or Dir, not both.
	Location string

	// Dir is the directory of the checkpoints (checkpoint_dir), as
	// Location with a path. It is created if missing.
	Dir string

	// MaxDeltas is the longest chain of deltas (max_deltas): with a store
	// that is a *Tracker, a checkpoint writes only the keys changed since
	// the previous one, over it, until MaxDeltas deltas follow a full
	// checkpoint (or the deltas together grow larger than it); the next
	// checkpoint is then full again. Default 0: full checkpoints only.
	MaxDeltas int

	// Interval is the period of the checkpoints Start takes (interval).
	// Default 1 minute.
	Interval time.Duration

	// MaxCheckpoints is how many checkpoints retention keeps
	// (max_checkpoints): after each publish the oldest beyond it are
	// deleted, never the one just published. Default 5.
	MaxCheckpoints int

	// Compression of new checkpoints (compress = true is zstd, the
	// default; false is CompressionNone).
	Compression Compression

	// Level is the zstd level, 1 to 22 (see WriterOptions.Level).
	// Default 1.
	Level int

	// MinInterval is the least time between the starts of two successful
	// checkpoints (min_interval). Checkpoint called sooner writes nothing
	// and returns ErrTooSoon; the periodic loop skips that tick. The final
	// checkpoint of Shutdown ignores it. Default 0: no minimum.
	MinInterval time.Duration

	// Mode is the restore mode of Restore and RestoreLatest. Default
	// Replace.
	Mode Mode

	// ForceRestore makes Restore and RestoreLatest restore a checkpoint
	// whose cut is older than the store's fence (see ErrStale). Default
	// false.
	ForceRestore bool

	// RestoreProgress, if set, receives the progress of Restore and
	// RestoreLatest (see RestoreOptions.Progress). Default: none.
	RestoreProgress func(Progress)

	// Aligned makes the job, not a timer, decide when checkpoints happen,
	// so that each one is a consistent cut of the job's state: between two
	// of its commits, the job asks Due and, when it reports true, calls
	// CheckpointAt with its offset and fence, and writes nothing until that
	// returns. Start then fails (there is no periodic loop) and Shutdown
	// takes no final checkpoint (the job takes its own with CheckpointAt).
	// Interval and MinInterval keep their meaning for Due. Needed on stores
	// without point-in-time snapshots (Redis), where a checkpoint taken
	// while the job writes may mix state from before and after a commit.
	Aligned bool

	// BatchSize is the number of entries per PutMany when restoring.
	// Default DefaultBatchSize (4096).
	BatchSize int

	// Limits bound what reading a checkpoint accepts and allocates, and
	// Limits.MaxValueSize bounds the values a checkpoint may hold (nil: the
	// defaults).
	Limits *Limits

	// Source names the store kind in manifests. Default: the store's
	// Stats().Backend, else "unknown".
	Source string

	// Clock dates checkpoints and converts TTLs. Default: the system clock.
	Clock strata.Clock

	// Logger receives the failures of periodic checkpoints and the
	// checkpoints RestoreLatest skips. Default: slog.Default().
	Logger *slog.Logger

	// TracerProvider makes the spans of checkpoints and restores
	// (SpanCreate, SpanRestore). Default: the global provider
	// (otel.GetTracerProvider()), which makes none until the program
	// installs one. Code only.
	TracerProvider trace.TracerProvider
}

func (o *Options) resolve() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	bad := func(format string, args ...any) (Options, error) {
		return r, fmt.Errorf("%w: checkpoint: %s", strata.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Interval < 0:
		return bad("interval %v is negative", r.Interval)
	case r.MaxCheckpoints < 0:
		return bad("max_checkpoints %d is negative", r.MaxCheckpoints)
	case r.MinInterval < 0:
		return bad("min_interval %v is negative", r.MinInterval)
	case r.MaxDeltas < 0 || r.MaxDeltas > MaxDepth:
		return bad("max_deltas %d (accepted: 0 to %d)", r.MaxDeltas, MaxDepth)
	}
	if r.Interval == 0 {
		r.Interval = time.Minute
	}
	if r.MaxCheckpoints == 0 {
		r.MaxCheckpoints = 5
	}
	if r.Clock == nil {
		r.Clock = strata.SystemClock{}
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	// Check the writer and restore options now rather than at the first
	// checkpoint.
	if _, err := r.writerOptions("x", nil, nil).resolve(); err != nil {
		return r, err
	}
	if _, err := r.restoreOptions().resolve(); err != nil {
		return r, err
	}
	return r, nil
}

func (o *Options) writerOptions(id string, cut *Cut, parent *Manifest) *WriterOptions {
	return &WriterOptions{
		ID:           id,
		Cut:          cut,
		Parent:       parent,
		Source:       o.Source,
		Compression:  o.Compression,
		Level:        o.Level,
		MaxValueSize: o.Limits.maxValue(),
		Clock:        o.Clock,
	}
}

func (o *Options) restoreOptions() *RestoreOptions {
	return &RestoreOptions{Mode: o.Mode, BatchSize: o.BatchSize, Limits: o.Limits, Clock: o.Clock, Force: o.ForceRestore, Progress: o.RestoreProgress}
}

// Stats are a Coordinator's counters.
type Stats struct {
	Created         uint64 // checkpoints published, full or delta
	Deltas          uint64 // of which deltas
	Failures        uint64 // checkpoints that failed (neither ErrTooSoon nor a cancelled context count)
	Restores        uint64 // successful restores
	RestoreFailures uint64 // failed restores (not counting an empty directory)
	Skipped         uint64 // invalid checkpoints RestoreLatest passed over

	LastTime     time.Time     // creation time of the last published checkpoint
	LastDuration time.Duration // how long it took, publish included
	LastID       string        // its id
	LastSize     int64         // its size in bytes
	TotalBytes   uint64        // file bytes of every checkpoint published

	LastError   error  // the last checkpoint or restore failure, if any
	LastSkipped []Skip // what the last RestoreLatest skipped

	// Durations is the distribution of the time the published checkpoints
	// took, publish included, and RestoreDurations that of the successful
	// restores, verification included.
	Durations        strata.Histogram
	RestoreDurations strata.Histogram
}

// Info describes a published checkpoint, as a Location lists it.
type Info struct {
	ID string
	// Path is where its file is: a path in a directory, the URL of its data
	// object in a bucket.
	Path    string
	Size    int64
	ModTime time.Time
	// Manifest is read from the file's footer (a bucket's manifest
	// object), without verifying the checksums.
	Manifest Manifest
	// Err is set when the manifest cannot be read: the checkpoint cannot
	// be valid. It matches strata.ErrCorrupt.
	Err error
}

// Token returns the fence token the checkpoint was published under (the
// token of its cut), 0 for none.
func (in Info) Token() uint64 {
	t, _, _ := parseID(in.ID)
	return t
}

// Coordinator takes, keeps and restores the checkpoints of one store in one
// Location: periodically (Start), on demand (Checkpoint), at the job's
// chosen moments (Due and CheckpointAt, with Options.Aligned) and at
// Shutdown. It decides when to take a checkpoint, whether it is full or a
// delta, and which to keep; the Location publishes, lists and deletes.
//
// Each checkpoint lists the location once: that listing gives the next id,
// the newest fence token, the garbage of crashed writers (collected then),
// and what retention deletes after the publish.
//
// Ids are "SEQUENCE-TIME" (000000000042-20250102T150405.123Z), or
// "tTOKEN-SEQUENCE-TIME" for a checkpoint of a cut under a fence token
// (t00000000000000000006-000000000042-...): the sequence continues from the
// highest one in the location, and ids sort, as strings, by token and then
// by sequence. List, retention and RestoreLatest order checkpoints by id,
// so a checkpoint published under a lower fence token (by a leader that
// has not noticed it lost its lease) never sorts after one published under
// a higher token, whenever it is published; and a Coordinator whose cut's
// token is lower than the newest in the location refuses to publish
// (ErrStale).
//
// With a store that is a *Tracker and Options.MaxDeltas > 0, checkpoints
// after the first full one are deltas over the previous one, forming a
// chain (see the package documentation). Retention never deletes a
// checkpoint that a kept one needs.
//
// Checkpoints and restores run one at a time. A Coordinator does not close
// its store.
type Coordinator struct {
	store   strata.Store
	tracker *Tracker // store, when it is one
	loc     Location
	ownLoc  bool // New opened loc: Close closes it
	opts    Options

	mu        sync.Mutex // one checkpoint or restore at a time
	seq       uint64
	lastStart time.Time // start of the last successful checkpoint
	head      *Manifest // the last checkpoint published, the parent of a delta
	baseSize  int64     // size of the head's base
	deltaSize int64     // sizes of the head's chain's deltas, summed

	statsMu sync.Mutex
	stats   Stats

	durations, restoreDurations *latency.Recorder
	tracer                      trace.Tracer

	life     sync.Mutex
	started  bool
	closed   bool
	cancel   context.CancelFunc
	loopDone chan struct{}
}

// New returns a Coordinator for store in the location that opts.Location
// (or opts.Dir) names, opened with OpenLocation (a directory is created if
// needed). Close releases the location. Invalid options fail with an
// error matching strata.ErrInvalidConfig.
func New(store strata.Store, opts *Options) (*Coordinator, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	url := o.Location
	switch {
	case o.Location != "" && o.Dir != "":
		return nil, invalid("set Options.Location (location) or Options.Dir (checkpoint_dir), not both")
	case o.Location == "" && o.Dir == "":
		return nil, invalid("Options.Location (location) or Options.Dir (checkpoint_dir) is required")
	case o.Dir != "":
		loc, err := DirLocation(o.Dir)
		if err != nil {
			return nil, err
		}
		return newCoordinator(store, loc, true, o)
	}
	loc, err := OpenLocation(context.Background(), url)
	if err != nil {
		return nil, err
	}
	return newCoordinator(store, loc, true, o)
}

// NewAt returns a Coordinator for store in loc, which the caller keeps
// (Close does not close it) and must not close before the Coordinator is
// done. opts.Location and opts.Dir must be empty.
func NewAt(store strata.Store, loc Location, opts *Options) (*Coordinator, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if o.Location != "" || o.Dir != "" {
		return nil, invalid("NewAt takes the location itself: leave Options.Location and Options.Dir empty")
	}
	if loc == nil {
		return nil, invalid("nil location")
	}
	return newCoordinator(store, loc, false, o)
}

func newCoordinator(store strata.Store, loc Location, own bool, o Options) (*Coordinator, error) {
	if o.Source == "" {
		o.Source = "unknown"
		if st, ok := strata.StatsOf(store); ok && st.Backend != "" {
			o.Source = st.Backend
		}
	}
	c := &Coordinator{store: store, loc: loc, ownLoc: own, opts: o,
		durations: latency.New(latency.JobBounds), restoreDurations: latency.New(latency.JobBounds)}
	c.tracker, _ = store.(*Tracker)
	tp := o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	c.tracer = tp.Tracer(TracerName)
	// Remove what crashed writers left, as every checkpoint does.
	ls, err := loc.List(context.Background())
	if err == nil && len(ls.Garbage) > 0 {
		err = loc.Collect(context.Background(), ls.Garbage)
	}
	if err != nil {
		if own {
			loc.Close()
		}
		return nil, err
	}
	return c, nil
}

// Location returns the checkpoints' location.
func (c *Coordinator) Location() Location { return c.loc }

// Dir returns the checkpoint directory, or "" when the location is not a
// directory.
func (c *Coordinator) Dir() string {
	if d, ok := c.loc.(*dirLocation); ok {
		return d.dir
	}
	return ""
}

// Path returns the file of checkpoint id in a directory location, or an
// error matching ErrInvalidID (a bad id) or strata.ErrInvalidConfig (a
// location that is not a directory).
func (c *Coordinator) Path(id string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	d, ok := c.loc.(*dirLocation)
	if !ok {
		return "", invalid("%s is not a directory: its checkpoints have no path", c.loc)
	}
	return d.path(id), nil
}

// Stats returns a copy of the counters.
func (c *Coordinator) Stats() Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	s := c.stats
	s.LastSkipped = slices.Clone(s.LastSkipped)
	s.Durations = c.durations.Histogram()
	s.RestoreDurations = c.restoreDurations.Histogram()
	return s
}

func (c *Coordinator) isClosed() bool {
	c.life.Lock()
	defer c.life.Unlock()
	return c.closed
}

// Start takes a checkpoint every Options.Interval in a goroutine, until ctx
// ends or Shutdown is called. A failed periodic checkpoint is logged and
// counted in Stats; the loop goes on. Start fails if called twice, and with
// strata.ErrClosed after Shutdown.
func (c *Coordinator) Start(ctx context.Context) error {
	c.life.Lock()
	defer c.life.Unlock()
	switch {
	case c.closed:
		return fmt.Errorf("checkpoint: start: %w", strata.ErrClosed)
	case c.started:
		return errors.New("checkpoint: start: already started")
	case c.opts.Aligned:
		return fmt.Errorf("%w: checkpoint: start: an aligned Coordinator has no periodic loop (the job calls Due and CheckpointAt)", strata.ErrInvalidConfig)
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.loopDone = make(chan struct{})
	go c.loop(ctx)
	return nil
}

func (c *Coordinator) loop(ctx context.Context) {
	defer close(c.loopDone)
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, err := c.checkpoint(ctx, false, nil)
			switch {
			case err == nil, errors.Is(err, ErrTooSoon):
			case ctx.Err() != nil:
				return
			default:
				c.opts.Logger.Error("periodic checkpoint failed", "location", c.loc.String(), "err", err)
			}
		}
	}
}

// Shutdown stops the periodic loop (cancelling a checkpoint it is taking),
// waits for it, and takes a final checkpoint, ignoring MinInterval (an
// Aligned Coordinator takes none: the job takes its own). If ctx
// ends first, Shutdown returns ctx's error without the final checkpoint.
// Afterwards Checkpoint, Restore and RestoreLatest fail with
// strata.ErrClosed; List and Verify still work until Close. Calling
// Shutdown again returns nil and does nothing.
func (c *Coordinator) Shutdown(ctx context.Context) error {
	c.life.Lock()
	if c.closed {
		c.life.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.life.Unlock()
	if started {
		c.cancel()
		select {
		case <-c.loopDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.opts.Aligned {
		return nil
	}
	_, err := c.checkpoint(ctx, true, nil)
	return err
}

// Close shuts the Coordinator down without a final checkpoint (see
// Shutdown for one) and closes the location New opened (not one given to
// NewAt). Afterwards every method fails. Calling Close again does nothing.
func (c *Coordinator) Close() error {
	c.life.Lock()
	c.closed = true
	started, own := c.started, c.ownLoc
	c.started, c.ownLoc = false, false
	c.life.Unlock()
	if started {
		c.cancel()
		<-c.loopDone
	}
	if own {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.loc.Close()
	}
	return nil
}

// Checkpoint takes a checkpoint now and returns its manifest. Called less
// than Options.MinInterval after the start of the previous successful
// checkpoint, it writes nothing and returns an error matching ErrTooSoon
// (not counted as a failure). After Shutdown it fails with
// strata.ErrClosed.
func (c *Coordinator) Checkpoint(ctx context.Context) (Manifest, error) {
	if c.isClosed() {
		return Manifest{}, fmt.Errorf("checkpoint: %w", strata.ErrClosed)
	}
	return c.checkpoint(ctx, false, nil)
}

// Due reports whether an aligned checkpoint is due: Interval (and
// MinInterval) have passed since the start of the last successful
// checkpoint, or none was taken yet. A job calls it between commits, which
// is cheap, and CheckpointAt when it reports true.
func (c *Coordinator) Due() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastStart.IsZero() {
		return true
	}
	since := c.opts.Clock.Now().Sub(c.lastStart)
	return since >= c.opts.Interval && since >= c.opts.MinInterval
}

// CheckpointAt takes a checkpoint now, recording cut in its manifest, and
// returns the manifest. The caller guarantees the cut: it writes nothing to
// the store until CheckpointAt returns, so the checkpoint holds exactly the
// state at cut.Offset, even on a store without point-in-time snapshots.
// The pause this costs the job is the time to read the store (for a delta,
// the keys changed since the last checkpoint). CheckpointAt ignores
// MinInterval: the job decides when, usually by asking Due.
//
// The checkpoint is published under cut.Token (see Coordinator): if the
// location already holds a checkpoint under a higher token, a newer holder
// of the job's lease is checkpointing, and CheckpointAt fails with
// ErrStale (matching strata.ErrFenced) without publishing. After Shutdown
// it fails with strata.ErrClosed.
func (c *Coordinator) CheckpointAt(ctx context.Context, cut Cut) (Manifest, error) {
	if c.isClosed() {
		return Manifest{}, fmt.Errorf("checkpoint: %w", strata.ErrClosed)
	}
	cut.FenceKey = bytes.Clone(cut.FenceKey)
	return c.checkpoint(ctx, true, &cut)
}

func (c *Coordinator) checkpoint(ctx context.Context, force bool, cut *Cut) (Manifest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.opts.Clock.Now()
	if !force && c.opts.MinInterval > 0 && !c.lastStart.IsZero() {
		if since := start.Sub(c.lastStart); since < c.opts.MinInterval {
			return Manifest{}, fmt.Errorf("%w: %v since the last one, min_interval %v", ErrTooSoon, since, c.opts.MinInterval)
		}
	}
	t0 := time.Now()
	ctx, span := c.tracer.Start(ctx, SpanCreate, trace.WithAttributes(
		attribute.String("db.system", c.opts.Source), attribute.Bool(AttrAligned, cut != nil)))
	in, ls, err := c.publish(ctx, start, cut)
	elapsed := time.Since(t0)
	if err == nil {
		span.SetAttributes(attribute.String(AttrID, in.ID), attribute.Int64(AttrEntries, in.Manifest.Entries),
			attribute.Int64(AttrBytes, in.Size), attribute.Bool(AttrDelta, in.Manifest.IsDelta()))
	}
	endSpan(span, err)
	c.statsMu.Lock()
	switch {
	case err != nil && ctx.Err() != nil:
		// cancelled (as Shutdown does to a periodic one): not a failure
	case err != nil:
		c.stats.Failures++
		c.stats.LastError = err
	default:
		c.stats.Created++
		if in.Manifest.IsDelta() {
			c.stats.Deltas++
		}
		c.stats.LastTime = in.Manifest.Created
		c.stats.LastDuration = elapsed
		c.stats.LastID = in.ID
		c.stats.LastSize = in.Size
		c.stats.TotalBytes += uint64(in.Size)
		c.durations.Observe(elapsed)
	}
	c.statsMu.Unlock()
	if err != nil {
		return Manifest{}, err
	}
	c.lastStart = start
	if err := c.retain(ctx, ls, in.ID); err != nil {
		c.opts.Logger.Warn("checkpoint retention failed", "location", c.loc.String(), "err", err)
	}
	return in.Manifest, nil
}

// parseID returns the fence token and sequence of an id the Coordinator
// made ("[tTOKEN-]SEQUENCE-TIME"); ok is false for other ids.
func parseID(id string) (token, seq uint64, ok bool) {
	rest := id
	if len(id) > 22 && id[0] == 't' && id[21] == '-' {
		t, err := strconv.ParseUint(id[1:21], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		token, rest = t, id[22:]
	}
	i := strings.IndexByte(rest, '-')
	if i <= 0 {
		return 0, 0, false
	}
	n, err := strconv.ParseUint(rest[:i], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return token, n, true
}

// publish takes one checkpoint: it lists the location (once), collects
// garbage, refuses a stale token, writes a full checkpoint or a delta and
// publishes it. It returns the published checkpoint and the listing, with
// it added, for retention.
func (c *Coordinator) publish(ctx context.Context, start time.Time, cut *Cut) (Info, Listing, error) {
	ls, err := c.loc.List(ctx)
	if err != nil {
		return Info{}, ls, err
	}
	if len(ls.Garbage) > 0 {
		if err := c.loc.Collect(ctx, ls.Garbage); err != nil {
			c.opts.Logger.Warn("removing what crashed writers left failed", "location", c.loc.String(), "err", err)
		}
	}
	var token, newest uint64
	if cut != nil {
		token = cut.Token
	}
	for _, in := range ls.Checkpoints {
		if t, n, ok := parseID(in.ID); ok {
			c.seq = max(c.seq, n)
			newest = max(newest, t)
		}
	}
	if token > 0 && newest > token {
		return Info{}, ls, fmt.Errorf("%w: checkpoint: %s holds checkpoints under fence token %d, this one is under %d (a newer lease holder checkpoints here)",
			ErrStale, c.loc, newest, token)
	}
	c.seq++
	id := fmt.Sprintf("%012d-%s", c.seq, start.UTC().Format("20060102T150405.000Z"))
	if token > 0 {
		id = fmt.Sprintf("t%020d-%s", token, id)
	}

	var ch changes
	if c.tracker != nil {
		ch = c.tracker.take()
	}
	parent := c.deltaParent(ls, ch)
	p, err := c.loc.Create(ctx, id)
	if err != nil {
		c.giveBack(ch)
		return Info{}, ls, err
	}
	var m Manifest
	wo := c.opts.writerOptions(id, cut, parent)
	if parent != nil {
		m, err = writeDelta(ctx, p, c.tracker.Unwrap(), ch.sorted(), wo)
	} else {
		m, err = WriteStore(ctx, p, c.store, wo)
	}
	if err != nil {
		p.Abort()
		c.giveBack(ch)
		return Info{}, ls, err
	}
	in, err := p.Publish(ctx, m)
	if err != nil {
		c.giveBack(ch)
		return Info{}, ls, err
	}
	if parent == nil {
		c.baseSize, c.deltaSize = in.Size, 0
	} else {
		c.deltaSize += in.Size
	}
	c.head = &in.Manifest
	ls.Checkpoints = append(ls.Checkpoints, in)
	slices.SortFunc(ls.Checkpoints, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return in, ls, nil
}

// giveBack returns the changes of a failed checkpoint to the tracker.
func (c *Coordinator) giveBack(ch changes) {
	if c.tracker != nil {
		c.tracker.giveBack(ch)
	}
}

// deltaParent returns the checkpoint the next one can be a delta over, or
// nil for a full checkpoint: the first of a Coordinator, the first after a
// restore, one whose changes the tracker lost, one whose parent is no
// longer in the location as it was published, and one that would make the
// chain longer than MaxDeltas or its deltas larger than their base.
func (c *Coordinator) deltaParent(ls Listing, ch changes) *Manifest {
	h := c.head
	if c.tracker == nil || c.opts.MaxDeltas == 0 || h == nil || !ch.known ||
		h.Depth >= c.opts.MaxDeltas || c.deltaSize >= c.baseSize {
		return nil
	}
	i, ok := slices.BinarySearchFunc(ls.Checkpoints, h.ID, func(in Info, id string) int { return strings.Compare(in.ID, id) })
	if !ok || ls.Checkpoints[i].Err != nil || ls.Checkpoints[i].Manifest.Checksum != h.Checksum {
		return nil
	}
	return h
}

// writeDelta writes a delta over opts.Parent to dst: for each of keys
// (sorted), its value and TTL read now from s, or a delete if it is gone.
func writeDelta(ctx context.Context, dst io.Writer, s strata.Store, keys [][]byte, opts *WriterOptions) (Manifest, error) {
	w, err := NewWriter(dst, opts)
	if err != nil {
		return Manifest{}, err
	}
	clock := w.opts.Clock
	const chunk = 1024
	for i := 0; i < len(keys); i += chunk {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return Manifest{}, err
		}
		es, err := strata.GetManyWithTTL(ctx, s, keys[i:min(i+chunk, len(keys))])
		if err != nil {
			w.Abort()
			return Manifest{}, err
		}
		now := clock.Now()
		for _, e := range es {
			switch {
			case e.Value == nil, e.TTL == 0:
				err = w.Delete(e.Key)
			case e.TTL == strata.NoExpiry:
				err = w.Append(e.Key, e.Value, 0)
			case e.TTL > 0:
				err = w.Append(e.Key, e.Value, storekit.ExpiryMillis(now, e.TTL))
			default:
				err = storekit.NewOpError("checkpoint_write", "checkpoint", e.Key,
					fmt.Errorf("%w: store returned ttl %v", strata.ErrInvalidTTL, e.TTL))
			}
			if err != nil {
				w.Abort()
				return Manifest{}, err
			}
		}
	}
	return w.Close()
}

// retain deletes what retention no longer keeps: the checkpoints older than
// the newest MaxCheckpoints, except keep (the one just published) and every
// checkpoint that a kept one's chain needs. It deletes newest first, so an
// interrupted retention never leaves a delta without its parent.
func (c *Coordinator) retain(ctx context.Context, ls Listing, keep string) error {
	cps := ls.Checkpoints
	if len(cps) <= c.opts.MaxCheckpoints {
		return nil
	}
	byID := indexListing(ls)
	kept := map[string]bool{}
	mark := func(id string) {
		for depth := 0; id != "" && !kept[id] && depth <= MaxDepth; depth++ {
			kept[id] = true
			in, ok := byID[id]
			if !ok || in.Err != nil || !in.Manifest.IsDelta() {
				return
			}
			id = in.Manifest.Parent
		}
	}
	mark(keep)
	for _, in := range cps[len(cps)-c.opts.MaxCheckpoints:] {
		mark(in.ID)
	}
	var errs []error
	for _, in := range slices.Backward(cps) {
		if !kept[in.ID] {
			if err := c.loc.Delete(ctx, in.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// List returns the checkpoints in the location, oldest first (by id). It
// reads each manifest but does not verify checksums: a damaged checkpoint
// may be listed with its manifest; one whose manifest is unreadable has
// Err set.
func (c *Coordinator) List() ([]Info, error) { return c.ListContext(context.Background()) }

// ListContext is List with a context.
func (c *Coordinator) ListContext(ctx context.Context) ([]Info, error) {
	ls, err := c.loc.List(ctx)
	return ls.Checkpoints, err
}

// Verify reads checkpoint id whole (see the package function Verify) and,
// for a delta, every checkpoint of its chain, checking that they form it,
// and returns its manifest. A bad id fails with ErrInvalidID, a missing
// one with ErrNoCheckpoint, a damaged one (or chain) with
// strata.ErrCorrupt.
func (c *Coordinator) Verify(ctx context.Context, id string) (Manifest, error) {
	_, ms, err := c.verifyChain(ctx, id, nil)
	if err != nil {
		return Manifest{}, err
	}
	return ms[len(ms)-1], nil
}

// Verified is the outcome of verifying one checkpoint with its chain.
type Verified struct {
	ID string
	// Manifest is the verified manifest (zero when Err is set).
	Manifest Manifest
	// Chain lists the ids restoring it applies, the full checkpoint first.
	Chain []string
	// Err says why it is not valid: strata.ErrCorrupt for a damaged
	// checkpoint or chain.
	Err error
}

// VerifyAll verifies every checkpoint in the location with its chain, as
// Verify does, reading each checkpoint once however many chains share it,
// and returns the outcomes, oldest first. Only a failure to list the
// location (or an ended ctx) is an error; damaged checkpoints are reported
// in their Verified.
func (c *Coordinator) VerifyAll(ctx context.Context) ([]Verified, error) {
	ls, err := c.loc.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := indexListing(ls)
	cache := verified{}
	out := make([]Verified, 0, len(ls.Checkpoints))
	for _, in := range ls.Checkpoints {
		v := Verified{ID: in.ID}
		chain, err := resolveChain(in, byID)
		if err == nil {
			var ms []Manifest
			ms, err = verifyChain(ctx, c.loc, chain, c.opts.Limits, cache)
			if err == nil {
				v.Manifest = ms[len(ms)-1]
				for _, m := range ms {
					v.Chain = append(v.Chain, m.ID)
				}
			}
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		v.Err = err
		out = append(out, v)
	}
	return out, nil
}

// Chain returns the checkpoints that restoring id applies, the full
// checkpoint first, as the location lists them (not verified).
func (c *Coordinator) Chain(ctx context.Context, id string) ([]Info, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	ls, err := c.loc.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := indexListing(ls)
	head, ok := byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s in %s", ErrNoCheckpoint, id, c.loc)
	}
	return resolveChain(head, byID)
}

func (c *Coordinator) verifyChain(ctx context.Context, id string, cache verified) ([]Info, []Manifest, error) {
	chain, err := c.Chain(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ms, err := verifyChain(ctx, c.loc, chain, c.opts.Limits, cache)
	return chain, ms, err
}

// Restore verifies checkpoint id whole (for a delta, its whole chain) and
// then restores it into the store: nothing is written unless every link
// verifies. Errors: ErrInvalidID, ErrNoCheckpoint, strata.ErrCorrupt, the
// store's own errors, or strata.ErrClosed after Shutdown.
func (c *Coordinator) Restore(ctx context.Context, id string) (Report, error) {
	if c.isClosed() {
		return Report{}, fmt.Errorf("checkpoint: %w", strata.ErrClosed)
	}
	if err := ValidateID(id); err != nil {
		return Report{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	ctx, span := c.startRestore(ctx, false)
	rep, err := c.restore(ctx, id)
	c.restored(span, rep, err, time.Since(start))
	return rep, err
}

func (c *Coordinator) restore(ctx context.Context, id string) (Report, error) {
	_, ms, err := c.verifyChain(ctx, id, nil)
	if err != nil {
		return Report{}, err
	}
	o, _ := c.opts.restoreOptions().resolve() // checked by New
	return applyChain(ctx, c.loc, ms, c.target(), &o)
}

// target is the store restores write to: under a Tracker, the store itself
// (the next checkpoint is a full one anyway).
func (c *Coordinator) target() strata.Store {
	if c.tracker != nil {
		return c.tracker.Unwrap()
	}
	return c.store
}

// startRestore starts the span of a restore.
func (c *Coordinator) startRestore(ctx context.Context, latest bool) (context.Context, trace.Span) {
	return c.tracer.Start(ctx, SpanRestore, trace.WithAttributes(
		attribute.String("db.system", c.opts.Source), attribute.Bool(AttrLatest, latest)))
}

// restored counts a restore and ends its span.
func (c *Coordinator) restored(span trace.Span, rep Report, err error, took time.Duration) {
	if rep.ID != "" {
		span.SetAttributes(attribute.String(AttrID, rep.ID), attribute.Int(AttrChain, len(rep.Chain)))
	}
	span.SetAttributes(attribute.Int64(AttrEntries, rep.Restored), attribute.Int(AttrSkipped, len(rep.Skipped)))
	endSpan(span, err)
	if err == nil || len(rep.Chain) > 0 {
		// The store changed: the next checkpoint cannot be a delta over
		// the last one.
		c.head = nil
	}
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.stats.Skipped += uint64(len(rep.Skipped))
	c.stats.LastSkipped = rep.Skipped
	switch {
	case err == nil:
		c.stats.Restores++
		c.restoreDurations.Observe(took)
	case errors.Is(err, ErrNoCheckpoint) && len(rep.Skipped) == 0:
		// an empty location: a first start, not a failure
	default:
		c.stats.RestoreFailures++
		c.stats.LastError = err
	}
}

// RestoreLatest restores the newest valid checkpoint into the store and
// returns its report. It verifies each candidate whole (a delta with its
// whole chain), newest first, before writing anything; a candidate that
// fails verification (a damaged file, a missing or damaged link of its
// chain) is skipped, logged, counted in Stats.Skipped and listed with its
// reason in Report.Skipped, so RestoreLatest falls back to the newest
// complete chain or full checkpoint. If none is valid the error matches
// ErrNoCheckpoint and joins every skip reason (so it also matches
// strata.ErrCorrupt when checkpoints were damaged). A store error while
// applying a verified checkpoint is returned as is: RestoreLatest does not
// fall back past a valid checkpoint.
func (c *Coordinator) RestoreLatest(ctx context.Context) (Report, error) {
	if c.isClosed() {
		return Report{}, fmt.Errorf("checkpoint: %w", strata.ErrClosed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	ctx, span := c.startRestore(ctx, true)
	rep, err := c.restoreLatest(ctx)
	c.restored(span, rep, err, time.Since(start))
	return rep, err
}

func (c *Coordinator) restoreLatest(ctx context.Context) (Report, error) {
	ls, err := c.loc.List(ctx)
	if err != nil {
		return Report{}, err
	}
	byID := indexListing(ls)
	cache := verified{}
	var skipped []Skip
	skip := func(id string, err error) {
		skipped = append(skipped, Skip{ID: id, Err: err})
		c.opts.Logger.Warn("skipping invalid checkpoint", "id", id, "err", err)
	}
	for _, in := range slices.Backward(ls.Checkpoints) {
		chain, err := resolveChain(in, byID)
		if err != nil {
			skip(in.ID, err)
			continue
		}
		ms, err := verifyChain(ctx, c.loc, chain, c.opts.Limits, cache)
		if err != nil {
			if ctx.Err() != nil {
				return Report{Skipped: skipped}, ctx.Err()
			}
			skip(in.ID, err)
			continue
		}
		o, _ := c.opts.restoreOptions().resolve() // checked by New
		rep, err := applyChain(ctx, c.loc, ms, c.target(), &o)
		rep.Skipped = skipped
		return rep, err
	}
	errs := []error{fmt.Errorf("%w in %s (%d skipped as invalid)", ErrNoCheckpoint, c.loc, len(skipped))}
	for _, s := range skipped {
		errs = append(errs, s.Err)
	}
	return Report{Skipped: skipped}, errors.Join(errs...)
}

// verifyFile reads the checkpoint file at path whole and returns its
// manifest.
func verifyFile(ctx context.Context, path string, limits *Limits) (Manifest, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrNoCheckpoint, path)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	m, err := Verify(ctx, f, limits)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return m, nil
}

// checkFile reads f back and checks both SHA-256 sums against the footer and
// m, without decoding the blocks: it proves the bytes on disk are the ones
// written. It returns the file size.
func checkFile(f *os.File, m Manifest) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	size := st.Size()
	fm, err := ReadManifest(f, size)
	if err != nil {
		return 0, err
	}
	if fm.Checksum != m.Checksum || fm.CompressedBytes != m.CompressedBytes || fm.CompressedBytes > size-trailerLen {
		return 0, corrupt("read back a different manifest")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fm.CompressedBytes)); err != nil {
		return 0, fmt.Errorf("checkpoint: read back: %w", err)
	}
	if "sha256:"+hex.EncodeToString(h.Sum(nil)) != m.Checksum {
		return 0, corrupt("read back data does not match its checksum")
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, fm.CompressedBytes, size-trailerLen+4-fm.CompressedBytes)); err != nil {
		return 0, fmt.Errorf("checkpoint: read back: %w", err)
	}
	sum := make([]byte, 32)
	if _, err := f.ReadAt(sum, size-trailerLen+4); err != nil {
		return 0, fmt.Errorf("checkpoint: read back: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), sum) {
		return 0, corrupt("read back file does not match its checksum")
	}
	return size, nil
}
