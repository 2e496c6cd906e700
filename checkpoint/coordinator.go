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
	"syscall"
	"time"

	"github.com/strata-kv/strata"
)

// Options configure a Coordinator; the names in parentheses are the keys of
// the [checkpoint] section of the configuration. Only Dir is required.
type Options struct {
	// Dir is the directory of the checkpoints (checkpoint_dir). It is
	// created if missing. One Coordinator writes to a directory at a time.
	Dir string

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
	case r.Dir == "":
		return bad("Options.Dir (checkpoint_dir) is required")
	case r.Interval < 0:
		return bad("interval %v is negative", r.Interval)
	case r.MaxCheckpoints < 0:
		return bad("max_checkpoints %d is negative", r.MaxCheckpoints)
	case r.MinInterval < 0:
		return bad("min_interval %v is negative", r.MinInterval)
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
	if _, err := r.writerOptions("x", nil).resolve(); err != nil {
		return r, err
	}
	if _, err := r.restoreOptions().resolve(); err != nil {
		return r, err
	}
	return r, nil
}

func (o *Options) writerOptions(id string, cut *Cut) *WriterOptions {
	return &WriterOptions{
		ID:           id,
		Cut:          cut,
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

// Stats are a Coordinator's counters (the seed's CheckpointStats).
type Stats struct {
	Created         uint64 // checkpoints published
	Failures        uint64 // checkpoints that failed (neither ErrTooSoon nor a cancelled context count)
	Restores        uint64 // successful restores
	RestoreFailures uint64 // failed restores (not counting an empty directory)
	Skipped         uint64 // invalid checkpoints RestoreLatest passed over

	LastTime     time.Time     // creation time of the last published checkpoint
	LastDuration time.Duration // how long it took, publish included
	LastID       string        // its id
	TotalBytes   uint64        // file bytes of every checkpoint published

	LastError   error  // the last checkpoint or restore failure, if any
	LastSkipped []Skip // what the last RestoreLatest skipped
}

// Info describes a checkpoint file, as List finds it.
type Info struct {
	ID      string
	Path    string
	Size    int64
	ModTime time.Time
	// Manifest is read from the footer, without verifying the checksums.
	Manifest Manifest
	// Err is set when the footer cannot be read: the file cannot be a
	// valid checkpoint. It matches strata.ErrCorrupt.
	Err error
}

// Coordinator takes, keeps and restores the checkpoints of one store in one
// directory: periodically (Start), on demand (Checkpoint) and at Shutdown.
//
// Each checkpoint is written to a temporary file in the directory
// (".ID.PID.tmp"), synced, checked (both SHA-256 sums read back), renamed
// to ID.ckpt and the directory synced: a crash at any point leaves the
// previous set of checkpoints or the new one, never a partial file with a
// checkpoint's name. Temporary files of processes that no longer run are
// removed by New and before each checkpoint.
//
// Ids are "SEQUENCE-TIME" (000000000042-20250102T150405.123Z): the sequence
// continues from the highest one in the directory at each checkpoint, so
// ids sort in creation order even if the clock moves back or another
// Coordinator published into the directory meanwhile. List, retention and
// RestoreLatest order checkpoints by id.
//
// Checkpoints and restores run one at a time. A Coordinator does not close
// its store.
type Coordinator struct {
	store strata.Store
	opts  Options

	mu        sync.Mutex // one checkpoint or restore at a time
	seq       uint64
	lastStart time.Time // start of the last successful checkpoint

	statsMu sync.Mutex
	stats   Stats

	life     sync.Mutex
	started  bool
	closed   bool
	cancel   context.CancelFunc
	loopDone chan struct{}
}

// New returns a Coordinator for store in opts.Dir, creating the directory if
// needed and removing temporary files left by crashed runs. Invalid options
// fail with an error matching strata.ErrInvalidConfig.
func New(store strata.Store, opts *Options) (*Coordinator, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if o.Source == "" {
		o.Source = "unknown"
		if st, ok := strata.StatsOf(store); ok && st.Backend != "" {
			o.Source = st.Backend
		}
	}
	if _, err := os.Stat(o.Dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		// Make the new directory's entry durable, or a crash could lose
		// the directory with the checkpoints published into it.
		if err := syncDir(filepath.Dir(filepath.Clean(o.Dir))); err != nil {
			return nil, err
		}
	}
	c := &Coordinator{store: store, opts: o}
	if err := c.removeTemps(); err != nil {
		return nil, err
	}
	return c, nil
}

// nextID returns the id of the next checkpoint. Its sequence continues from
// the highest in the directory, read now rather than once in New: another
// Coordinator (the strata checkpoint command, say) may have published
// meanwhile, and the new id must still sort after its checkpoints.
func (c *Coordinator) nextID(start time.Time) (string, error) {
	ids, err := c.ids()
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if i := strings.IndexByte(id, '-'); i > 0 {
			if n, err := strconv.ParseUint(id[:i], 10, 64); err == nil && n > c.seq {
				c.seq = n
			}
		}
	}
	c.seq++
	return fmt.Sprintf("%012d-%s", c.seq, start.UTC().Format("20060102T150405.000Z")), nil
}

// Dir returns the checkpoint directory.
func (c *Coordinator) Dir() string { return c.opts.Dir }

// Path returns the file of checkpoint id, or an error matching ErrInvalidID.
func (c *Coordinator) Path(id string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return filepath.Join(c.opts.Dir, id+Ext), nil
}

// Stats returns a copy of the counters.
func (c *Coordinator) Stats() Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	s := c.stats
	s.LastSkipped = slices.Clone(s.LastSkipped)
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
				c.opts.Logger.Error("periodic checkpoint failed", "dir", c.opts.Dir, "err", err)
			}
		}
	}
}

// Shutdown stops the periodic loop (cancelling a checkpoint it is taking),
// waits for it, and takes a final checkpoint, ignoring MinInterval (an
// Aligned Coordinator takes none: the job takes its own). If ctx
// ends first, Shutdown returns ctx's error without the final checkpoint.
// Afterwards Checkpoint, Restore and RestoreLatest fail with
// strata.ErrClosed; List and Verify still work. Calling Shutdown again
// returns nil and does nothing.
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
// The pause this costs the job is the time to read the store. CheckpointAt
// ignores MinInterval: the job decides when, usually by asking Due. After
// Shutdown it fails with strata.ErrClosed.
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
	m, size, err := c.publish(ctx, start, cut)
	elapsed := time.Since(t0)
	c.statsMu.Lock()
	switch {
	case err != nil && ctx.Err() != nil:
		// cancelled (as Shutdown does to a periodic one): not a failure
	case err != nil:
		c.stats.Failures++
		c.stats.LastError = err
	default:
		c.stats.Created++
		c.stats.LastTime = m.Created
		c.stats.LastDuration = elapsed
		c.stats.LastID = m.ID
		c.stats.TotalBytes += uint64(size)
	}
	c.statsMu.Unlock()
	if err != nil {
		return Manifest{}, err
	}
	c.lastStart = start
	if err := c.retain(m.ID); err != nil {
		c.opts.Logger.Warn("checkpoint retention failed", "dir", c.opts.Dir, "err", err)
	}
	return m, nil
}

// publish writes a checkpoint to a temporary file, checks it and renames it
// into place. It returns the manifest and the file size.
func (c *Coordinator) publish(ctx context.Context, start time.Time, cut *Cut) (Manifest, int64, error) {
	if err := c.removeTemps(); err != nil {
		return Manifest{}, 0, err
	}
	id, err := c.nextID(start)
	if err != nil {
		return Manifest{}, 0, err
	}
	final := filepath.Join(c.opts.Dir, id+Ext)
	tmp := filepath.Join(c.opts.Dir, "."+id+"."+strconv.Itoa(os.Getpid())+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Manifest{}, 0, fmt.Errorf("checkpoint: %w", err)
	}
	fail := func(err error) (Manifest, int64, error) {
		f.Close()
		os.Remove(tmp)
		return Manifest{}, 0, err
	}
	m, err := WriteStore(ctx, f, c.store, c.opts.writerOptions(id, cut))
	if err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("checkpoint: sync: %w", err))
	}
	size, err := checkFile(f, m)
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Manifest{}, 0, fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return Manifest{}, 0, fmt.Errorf("checkpoint: publish: %w", err)
	}
	if err := syncDir(c.opts.Dir); err != nil {
		return Manifest{}, 0, err
	}
	return m, size, nil
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("checkpoint: sync directory: %w", err)
	}
	return nil
}

// retain deletes the oldest checkpoints beyond MaxCheckpoints, never keep
// (the checkpoint just published and read back, so the newest valid one).
func (c *Coordinator) retain(keep string) error {
	ids, err := c.ids()
	if err != nil || len(ids) <= c.opts.MaxCheckpoints {
		return err
	}
	var errs []error
	for _, id := range ids[:len(ids)-c.opts.MaxCheckpoints] {
		if id == keep {
			continue
		}
		if err := os.Remove(filepath.Join(c.opts.Dir, id+Ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, syncDir(c.opts.Dir))
	return errors.Join(errs...)
}

// ids returns the ids of the checkpoint files in the directory, sorted.
func (c *Coordinator) ids() ([]string, error) {
	des, err := os.ReadDir(c.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var ids []string
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), Ext)
		if ok && de.Type().IsRegular() && ValidateID(id) == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// removeTemps removes the temporary files of processes that no longer run.
func (c *Coordinator) removeTemps() error {
	des, err := os.ReadDir(c.opts.Dir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		rest, ok := strings.CutSuffix(name, ".tmp")
		if !ok || !strings.HasPrefix(name, ".") {
			continue
		}
		i := strings.LastIndexByte(rest, '.')
		pid, err := strconv.Atoi(rest[i+1:])
		if err != nil || i <= 0 || (pid != os.Getpid() && processAlive(pid)) {
			continue
		}
		if err := os.Remove(filepath.Join(c.opts.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checkpoint: remove temporary file: %w", err)
		}
	}
	return nil
}

// processAlive reports whether a process with pid exists (signal 0 checks
// without sending anything).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// List returns the checkpoints in the directory, oldest first (by id). It
// reads each footer but does not verify checksums: a damaged file may be
// listed with its manifest; one whose footer is unreadable has Err set.
func (c *Coordinator) List() ([]Info, error) {
	ids, err := c.ids()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		in := Info{ID: id, Path: filepath.Join(c.opts.Dir, id+Ext)}
		f, err := os.Open(in.Path)
		if err != nil {
			in.Err = fmt.Errorf("checkpoint: %w", err)
			out = append(out, in)
			continue
		}
		if st, err := f.Stat(); err != nil {
			in.Err = fmt.Errorf("checkpoint: %w", err)
		} else {
			in.Size, in.ModTime = st.Size(), st.ModTime()
			in.Manifest, in.Err = ReadManifest(f, in.Size)
		}
		f.Close()
		out = append(out, in)
	}
	return out, nil
}

// Verify reads checkpoint id whole (see the package function Verify) and
// returns its manifest. A bad id fails with ErrInvalidID, a missing one
// with ErrNoCheckpoint, a damaged one with strata.ErrCorrupt.
func (c *Coordinator) Verify(ctx context.Context, id string) (Manifest, error) {
	path, err := c.Path(id)
	if err != nil {
		return Manifest{}, err
	}
	return verifyFile(ctx, path, c.opts.Limits)
}

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

// Restore verifies checkpoint id whole and then restores it into the store
// (see RestoreFile: nothing is written unless the whole file verifies).
// Errors: ErrInvalidID, ErrNoCheckpoint, strata.ErrCorrupt, the store's
// own errors, or strata.ErrClosed after Shutdown.
func (c *Coordinator) Restore(ctx context.Context, id string) (Report, error) {
	if c.isClosed() {
		return Report{}, fmt.Errorf("checkpoint: %w", strata.ErrClosed)
	}
	path, err := c.Path(id)
	if err != nil {
		return Report{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.restorePath(ctx, path)
	c.restored(rep, err)
	return rep, err
}

func (c *Coordinator) restorePath(ctx context.Context, path string) (Report, error) {
	return RestoreFile(ctx, path, c.store, c.opts.restoreOptions())
}

func (c *Coordinator) restored(rep Report, err error) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	c.stats.Skipped += uint64(len(rep.Skipped))
	c.stats.LastSkipped = rep.Skipped
	switch {
	case err == nil:
		c.stats.Restores++
	case errors.Is(err, ErrNoCheckpoint) && len(rep.Skipped) == 0:
		// an empty directory: a first start, not a failure
	default:
		c.stats.RestoreFailures++
		c.stats.LastError = err
	}
}

// RestoreLatest restores the newest valid checkpoint into the store and
// returns its report. It verifies each candidate whole, newest first, before
// writing anything; a candidate that fails verification is skipped, logged,
// counted in Stats.Skipped and listed with its reason in Report.Skipped. If
// none is valid the error matches ErrNoCheckpoint and joins every skip
// reason (so it also matches strata.ErrCorrupt when files were damaged).
// A store error while applying a verified checkpoint is returned as is:
// RestoreLatest does not fall back past a valid checkpoint.
func (c *Coordinator) RestoreLatest(ctx context.Context) (Report, error) {
	if c.isClosed() {
		return Report{}, fmt.Errorf("checkpoint: %w", strata.ErrClosed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, err := c.restoreLatest(ctx)
	c.restored(rep, err)
	return rep, err
}

func (c *Coordinator) restoreLatest(ctx context.Context) (Report, error) {
	ids, err := c.ids()
	if err != nil {
		return Report{}, err
	}
	var skipped []Skip
	for _, id := range slices.Backward(ids) {
		path := filepath.Join(c.opts.Dir, id+Ext)
		m, err := verifyFile(ctx, path, c.opts.Limits)
		if err != nil {
			if ctx.Err() != nil {
				return Report{Skipped: skipped}, ctx.Err()
			}
			skipped = append(skipped, Skip{ID: id, Err: err})
			c.opts.Logger.Warn("skipping invalid checkpoint", "id", id, "err", err)
			continue
		}
		o, _ := c.opts.restoreOptions().resolve() // checked by New
		rep, err := applyVerified(ctx, path, m, c.store, &o)
		rep.Skipped = skipped
		return rep, err
	}
	errs := []error{fmt.Errorf("%w in %s (%d skipped as invalid)", ErrNoCheckpoint, c.opts.Dir, len(skipped))}
	for _, s := range skipped {
		errs = append(errs, s.Err)
	}
	return Report{Skipped: skipped}, errors.Join(errs...)
}
