package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-kv/strata"
)

// dirLocation keeps checkpoints as files ID.ckpt in one directory.
type dirLocation struct {
	dir string

	mu      sync.Mutex
	footers map[string]footerEntry // by file name: manifests already read
}

// footerEntry is a file's footer, valid while its size and time hold.
type footerEntry struct {
	size    int64
	modTime time.Time
	m       Manifest
	err     error
}

var _ Location = (*dirLocation)(nil)

// DirLocation returns the Location of checkpoint files in directory dir,
// creating it if needed. Its layout is the one checkpoints have always had:
// a checkpoint with id ID is the self-contained file dir/ID.ckpt.
//
// Each checkpoint is written to a temporary file in the directory
// (".ID.PID-N.tmp"), synced, read back to check both SHA-256 sums, linked to
// ID.ckpt (a hard link, which fails if ID.ckpt exists: ErrExist) and the
// directory synced: a crash at any point leaves the previous set of
// checkpoints or the new one. List reports the temporary files of
// processes that no longer run as garbage.
func DirLocation(dir string) (Location, error) {
	if dir == "" {
		return nil, invalid("checkpoint directory is empty")
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		// Make the new directory's entry durable, or a crash could lose
		// the directory with the checkpoints published into it.
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &dirLocation{dir: dir, footers: map[string]footerEntry{}}, nil
}

func (l *dirLocation) String() string {
	abs, err := filepath.Abs(l.dir)
	if err != nil {
		return l.dir
	}
	return (&url.URL{Scheme: "file", Path: abs}).String()
}

func (l *dirLocation) Close() error { return nil }

func (l *dirLocation) path(id string) string { return filepath.Join(l.dir, id+Ext) }

func (l *dirLocation) List(ctx context.Context) (Listing, error) {
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return Listing{}, fmt.Errorf("checkpoint: %w", err)
	}
	var out Listing
	seen := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		if isDeadTemp(name) {
			out.Garbage = append(out.Garbage, name)
			continue
		}
		id, ok := strings.CutSuffix(name, Ext)
		if !ok || !de.Type().IsRegular() || ValidateID(id) != nil {
			continue
		}
		seen[name] = true
		in := Info{ID: id, Path: filepath.Join(l.dir, name)}
		st, err := de.Info()
		if err != nil {
			in.Err = fmt.Errorf("checkpoint: %w", err)
			out.Checkpoints = append(out.Checkpoints, in)
			continue
		}
		in.Size, in.ModTime = st.Size(), st.ModTime()
		in.Manifest, in.Err = l.footer(name, in.Path, st)
		out.Checkpoints = append(out.Checkpoints, in)
	}
	l.mu.Lock()
	for name := range l.footers {
		if !seen[name] {
			delete(l.footers, name)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(out.Checkpoints, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// footer returns the manifest in the footer of the file name, read once
// per size and modification time.
func (l *dirLocation) footer(name, path string, st fs.FileInfo) (Manifest, error) {
	l.mu.Lock()
	e, ok := l.footers[name]
	l.mu.Unlock()
	if ok && e.size == st.Size() && e.modTime.Equal(st.ModTime()) {
		return e.m, e.err
	}
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint: %w", err)
	}
	m, err := ReadManifest(f, st.Size())
	f.Close()
	if err == nil || errors.Is(err, strata.ErrCorrupt) {
		l.mu.Lock()
		l.footers[name] = footerEntry{size: st.Size(), modTime: st.ModTime(), m: m, err: err}
		l.mu.Unlock()
	}
	return m, err
}

// isDeadTemp reports whether name is a temporary file (".ID.PID-N.tmp", or
// ".ID.PID.tmp" as earlier versions named them) of a process that no
// longer runs, or of this one that no Pending writes.
func isDeadTemp(name string) bool {
	rest, ok := strings.CutSuffix(name, ".tmp")
	if !ok || !strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return false
	}
	seg := rest[i+1:] // PID, or PID-N
	if j := strings.IndexByte(seg, '-'); j >= 0 {
		seg = seg[:j]
	}
	pid, err := strconv.Atoi(seg)
	if err != nil || pid <= 0 {
		return false
	}
	return pid == os.Getpid() && !livePending(name) || pid != os.Getpid() && !processAlive(pid)
}

// pendingNames are the temporary files this process is writing: they are
// not garbage although their process lives. tempSeq tells apart those of
// one id.
var (
	pendingNames sync.Map
	tempSeq      atomic.Uint64
)

func livePending(name string) bool {
	_, ok := pendingNames.Load(name)
	return ok
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

func (l *dirLocation) Collect(ctx context.Context, garbage []string) error {
	var errs []error
	for _, name := range garbage {
		if name != filepath.Base(name) || !isDeadTemp(name) {
			continue // not ours to delete, or its writer came back
		}
		if err := os.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("checkpoint: remove temporary file: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (l *dirLocation) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(l.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoCheckpoint, l.path(id))
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return f, nil
}

func (l *dirLocation) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := os.Remove(l.path(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("checkpoint: %w", err)
	}
	return syncDir(l.dir)
}

func (l *dirLocation) Create(ctx context.Context, id string) (Pending, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	name := "." + id + "." + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(tempSeq.Add(1), 10) + ".tmp"
	pendingNames.Store(name, true)
	tmp := filepath.Join(l.dir, name)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		pendingNames.Delete(name)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &dirPending{l: l, id: id, name: name, tmp: tmp, f: f}, nil
}

// dirPending is a checkpoint being written to a temporary file.
type dirPending struct {
	l    *dirLocation
	id   string
	name string
	tmp  string
	f    *os.File
	done bool
}

func (p *dirPending) Write(b []byte) (int, error) { return p.f.Write(b) }

func (p *dirPending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	os.Remove(p.tmp)
	pendingNames.Delete(p.name)
}

func (p *dirPending) Publish(ctx context.Context, m Manifest) (Info, error) {
	if p.done {
		return Info{}, fmt.Errorf("checkpoint: publish: %w", errDone)
	}
	fail := func(err error) (Info, error) {
		p.Abort()
		return Info{}, err
	}
	if m.ID != p.id {
		return fail(invalid("publishing checkpoint %s under id %s", m.ID, p.id))
	}
	if err := p.f.Sync(); err != nil {
		return fail(fmt.Errorf("checkpoint: sync: %w", err))
	}
	size, err := checkFile(p.f, m)
	if err != nil {
		return fail(err)
	}
	if err := p.f.Close(); err != nil {
		return fail(fmt.Errorf("checkpoint: %w", err))
	}
	final := p.l.path(p.id)
	// A hard link publishes only if the name is free; rename would
	// replace another writer's checkpoint.
	if err := os.Link(p.tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(fmt.Errorf("%w: %s", ErrExist, final))
		}
		// A file system without hard links: rename, after checking.
		if _, serr := os.Lstat(final); serr == nil {
			return fail(fmt.Errorf("%w: %s", ErrExist, final))
		}
		if err := os.Rename(p.tmp, final); err != nil {
			return fail(fmt.Errorf("checkpoint: publish: %w", err))
		}
	}
	p.done = true
	os.Remove(p.tmp)
	pendingNames.Delete(p.name)
	if err := syncDir(p.l.dir); err != nil {
		return Info{}, err
	}
	in := Info{ID: p.id, Path: final, Size: size, Manifest: m}
	if st, err := os.Stat(final); err == nil {
		in.ModTime = st.ModTime()
	}
	return in, nil
}

var errDone = errors.New("already published or aborted")

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
