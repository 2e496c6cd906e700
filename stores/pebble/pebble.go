// Package pebble is a durable strata store in a directory, over Pebble
// (github.com/cockroachdb/pebble/v2): a log-structured merge tree with a
// write-ahead log, concurrent writers and compaction in the background.
//
// Open a store with [Open], or through strata.Open with a URL:
//
//	pebble:///var/lib/app/state?cache_size=67108864&no_sync=false
//
// Parameters (all optional): no_sync, cache_size (bytes), default_ttl,
// max_value_size, sweep_interval. They mean what the [Options] fields of the
// same name mean; an unknown parameter or a malformed value is an error
// matching strata.ErrInvalidConfig. A relative path is written
// pebble:relative/dir.
//
// # Durability
//
// Every write (Put, Delete, PutMany, DeleteMany and the atomic operations)
// is one Pebble batch, appended to the write-ahead log and fsynced before
// the method returns: once it returns nil, the write survives a process
// crash or a power loss. Concurrent writers share fsyncs (Pebble's commit
// pipeline groups them). With [Options.NoSync] the fsync is skipped: a
// process crash loses nothing, a power loss may lose the latest writes but
// never leaves a batch half applied.
//
// # Values and TTLs
//
// Every value is stored behind a 9-byte header (see package
// internal/ttlval): a version byte (1) and the absolute expiry in Unix
// milliseconds, big-endian, 0 for never. An expired key is invisible to
// every read at once (Get, GetMany, Keys, TTL, snapshots; the atomic
// operations treat it as absent and DeleteMany does not count it). A
// background sweep deletes expired keys every [Options.SweepInterval],
// walking the keys in chunks of 1024 with one batch per chunk; compaction
// then reclaims their space. [Store.Sweep] runs a pass on demand.
//
// # Atomicity and ordering
//
// The atomic operations (PutIfAbsent, GetAndDelete, CompareAndSwap) are a
// read and a write made under a lock on the key's stripe (one of 512
// mutexes chosen by a hash of the key); every other write takes the same
// lock for its keys (PutMany and DeleteMany lock their stripes in order),
// so no write lands between the read and the write of an atomic operation.
// Reads take no lock. PutMany and DeleteMany are one batch each: all or
// nothing.
//
// Keys and snapshots yield keys in byte order, each exactly once. Keys reads
// in chunks (128 keys, doubling to 4096), each through its own short-lived
// iterator bounded by the prefix, and resumes after the last key it yielded:
// no iterator is open while the caller's loop body runs. A key written or
// deleted during the iteration may or may not appear; a key live throughout
// appears exactly once. GetMany reads its keys one by one (not from one
// instant). A [strata.Snapshot] is a Pebble snapshot: a point-in-time view
// that later writes do not change, read in chunks the same way. An open
// snapshot keeps the versions it sees from being compacted away; close it
// promptly. Close on the store releases any snapshot left open.
//
// # Errors
//
//   - strata.ErrNotFound: the key is absent or expired.
//   - strata.ErrInvalidKey, strata.ErrValueTooLarge, strata.ErrInvalidTTL:
//     rejected input, before any I/O.
//   - strata.ErrClosed: the store or snapshot was closed.
//   - strata.ErrCorrupt: Pebble reported corruption (a damaged MANIFEST,
//     WAL or table), the path is a file or a directory of something else, or
//     a stored value has no valid strata header.
//   - strata.ErrUnavailable: Open found the directory locked by another
//     process or another Store of this process.
//   - a context error: the context was cancelled or expired.
//
// Other failures (a full disk, an I/O error) are wrapped in one
// *strata.OpError with the Pebble error as its cause.
package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"iter"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/counters"
	"github.com/strata-kv/strata/internal/embedded"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/internal/urlopt"
)

const backend = "pebble"

// Defaults of the Options fields.
const (
	DefaultCacheSize     = 64 << 20
	DefaultSweepInterval = time.Minute
	DefaultMaxValueSize  = 1 << 30
)

// Options configure a Store. A nil *Options, or the zero value of a field,
// gives the default.
type Options struct {
	// NoSync commits writes without waiting for the write-ahead log to
	// reach the disk (see the package documentation on durability).
	// Default false: every write is durable on return.
	NoSync bool

	// CacheSize is the size of Pebble's block cache, in bytes. Default
	// 64 MiB.
	CacheSize int64

	// DefaultTTL applies to writes with ttl == 0. Default: none.
	DefaultTTL time.Duration

	// MaxValueSize bounds values, in bytes. Default 1 GiB, also the
	// largest value accepted.
	MaxValueSize int

	// Clock tells the time for expiry. Default: the system clock.
	Clock strata.Clock

	// SweepInterval is how often the background sweep deletes expired
	// keys. Default 1m; a negative value disables the sweep (expired keys
	// stay invisible and keep their space until overwritten or deleted).
	SweepInterval time.Duration

	// Configure, if set, is called with the Pebble options strata built
	// (CacheSize set, a Logger that drops Pebble's informational messages,
	// an EventListener that reports on-disk corruption as errors instead of
	// exiting the process, the default file system with disk-health checks,
	// everything else Pebble's default) just before the
	// database is opened, and may change any of them: memtable size,
	// compaction concurrency, logger, file system. The Comparer must stay
	// Pebble's default (byte order); Open refuses another with an error
	// matching strata.ErrInvalidConfig.
	Configure func(*pebbledb.Options)
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.CacheSize <= 0 {
		out.CacheSize = DefaultCacheSize
	}
	if out.MaxValueSize <= 0 || out.MaxValueSize > DefaultMaxValueSize {
		out.MaxValueSize = DefaultMaxValueSize
	}
	if out.Clock == nil {
		out.Clock = strata.SystemClock{}
	}
	if out.SweepInterval == 0 {
		out.SweepInterval = DefaultSweepInterval
	}
	return out
}

// quietLogger is Pebble's default logger without its informational
// messages (one per WAL replayed, per open), which would flood the logs of
// a program that opens stores often. Errors and fatal errors still go to
// the standard logger.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { pebbledb.DefaultLogger.Errorf(format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { pebbledb.DefaultLogger.Fatalf(format, args...) }

// pebbleOptions returns the Pebble options for o (with defaults applied).
// Corruption found by a read or in the background is logged and counted in
// events rather than ending the process (Pebble's default): the read that
// met it returns ErrCorrupt.
//
// The file system is Pebble's default one with disk-health checks, made
// here rather than by Pebble because Pebble leaks the checker's goroutine
// when Open fails; the returned closer stops it (after the DB is closed, or
// at once if Open failed).
func pebbleOptions(o Options, events *eventCounts) (*pebbledb.Options, io.Closer) {
	fs, fsCloser := vfs.WithDiskHealthChecks(vfs.Default, 5*time.Second, nil, func(info vfs.DiskSlowInfo) {
		events.diskSlow.Add(1)
		pebbledb.DefaultLogger.Errorf("strata: pebble disk slow: %s", info)
	})
	po := &pebbledb.Options{CacheSize: o.CacheSize, Logger: quietLogger{}, FS: fs}
	po.EventListener = &pebbledb.EventListener{
		DataCorruption: func(info pebbledb.DataCorruptionInfo) {
			// Every read of a damaged block reports it again: log the
			// first, count them all.
			if events.corruptions.Add(1) == 1 {
				pebbledb.DefaultLogger.Errorf("strata: pebble found on-disk corruption (further reports are counted in the corruptions_total gauge): %s", info)
			}
		},
		BackgroundError: func(err error) {
			events.backgroundErrors.Add(1)
			pebbledb.DefaultLogger.Errorf("strata: pebble background error: %s", err)
		},
	}
	if o.Configure != nil {
		o.Configure(po)
	}
	return po, fsCloser
}

// writeOptions returns the Pebble write options for o.
func writeOptions(o Options) *pebbledb.WriteOptions {
	if o.NoSync {
		return pebbledb.NoSync
	}
	return pebbledb.Sync
}

// eventCounts counts the Pebble events that Stats reports.
type eventCounts struct {
	corruptions, backgroundErrors, diskSlow atomic.Uint64
}

// stripes is the number of key locks; a power of two.
const stripes = 512

type stripeSet [stripes / 64]uint64

// paddedMutex keeps each stripe on its own cache line.
type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

// Store is a strata.Store in a Pebble directory. Create one with Open; it is
// safe for concurrent use.
type Store struct {
	db     *pebbledb.DB
	dir    string
	opts   Options
	clock  strata.Clock
	wo     *pebbledb.WriteOptions
	stats  counters.Set
	seed   maphash.Seed
	locks  [stripes]paddedMutex
	events *eventCounts
	// fsCloser stops the disk-health checker, after db is closed.
	fsCloser io.Closer

	// life is acquired by every method while it uses db and closed by
	// Close (Pebble panics when used after Close); it also holds the open
	// snapshots and runs the background sweep.
	life embedded.Lifecycle
}

var (
	_ strata.Store         = (*Store)(nil)
	_ strata.Batcher       = (*Store)(nil)
	_ strata.Atomic        = (*Store)(nil)
	_ strata.Expirer       = (*Store)(nil)
	_ strata.Snapshotter   = (*Store)(nil)
	_ strata.Pinger        = (*Store)(nil)
	_ strata.StatsReporter = (*Store)(nil)
)

func init() {
	strata.Register("pebble", func(ctx context.Context, u *url.URL) (strata.Store, error) {
		dir, opts, err := parseURL(u)
		if err != nil {
			return nil, err
		}
		return Open(dir, opts)
	})
}

// parseURL reads a pebble URL into a directory and options.
func parseURL(u *url.URL) (string, *Options, error) {
	q := urlopt.New(u)
	opts := &Options{
		NoSync:        q.Bool("no_sync", false),
		CacheSize:     int64(q.Int("cache_size", 0)),
		DefaultTTL:    q.Duration("default_ttl", 0),
		MaxValueSize:  q.Int("max_value_size", 0),
		SweepInterval: q.Duration("sweep_interval", 0),
	}
	if err := q.Err(); err != nil {
		return "", nil, err
	}
	dir := u.Path
	switch {
	case u.Opaque != "":
		dir = u.Opaque
	case u.Host != "":
		return "", nil, fmt.Errorf("%w: store URL %q: a pebble URL names a directory, not a host: write pebble:///absolute/dir or pebble:relative/dir",
			strata.ErrInvalidConfig, strata.RedactURL(u.String()))
	}
	if dir == "" {
		return "", nil, fmt.Errorf("%w: store URL %q: no directory (pebble:///var/lib/app/state)", strata.ErrInvalidConfig, strata.RedactURL(u.String()))
	}
	return dir, opts, nil
}

// Open opens the Pebble database in dir, creating the directory and the
// database if needed. Close the store to release it and stop its sweep.
//
// Open fails with an error matching strata.ErrUnavailable if another
// process or Store holds the directory, and strata.ErrCorrupt if dir is a
// file, a directory of something other than Pebble, or a damaged database.
func Open(dir string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	existed, err := checkDir(dir)
	if err != nil {
		return nil, strata.NewOpError("open", backend, nil, err)
	}
	events := new(eventCounts)
	po, fsCloser := pebbleOptions(o, events)
	if po.Comparer != nil && po.Comparer.Name != pebbledb.DefaultComparer.Name {
		fsCloser.Close()
		return nil, strata.NewOpError("open", backend, nil, fmt.Errorf(
			"%w: Configure set the Comparer %q: the store needs Pebble's default byte order", strata.ErrInvalidConfig, po.Comparer.Name))
	}
	db, err := openDB(dir, po)
	if err != nil {
		fsCloser.Close()
		return nil, strata.NewOpError("open", backend, nil, openError(dir, existed, err))
	}
	s := &Store{
		events:   events,
		fsCloser: fsCloser,
		db:       db,
		dir:      dir,
		opts:     o,
		clock:    o.Clock,
		wo:       writeOptions(o),
		seed:     maphash.MakeSeed(),
	}
	if err := s.checkFirst(); err != nil {
		db.Close()
		fsCloser.Close()
		return nil, strata.NewOpError("open", backend, nil, err)
	}
	if o.SweepInterval > 0 {
		// Errors are counted in Stats.Errors; the next tick retries.
		s.life.Every(o.SweepInterval, func(ctx context.Context) { s.Sweep(ctx) })
	}
	return s, nil
}

// checkDir refuses a path that exists but is not a Pebble directory: a
// regular file, or a directory holding other files. An absent path or an
// empty directory is fine: Pebble creates the database.
//
// It reports whether dir already held a database.
func checkDir(dir string) (existed bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, fmt.Errorf("%w: %s is a file, not a Pebble directory", strata.ErrCorrupt, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(entries) == 0 {
		return false, nil
	}
	for _, e := range entries {
		name := e.Name()
		if name == "CURRENT" || strings.HasPrefix(name, "MANIFEST-") || strings.HasPrefix(name, "marker.manifest.") {
			return true, nil
		}
	}
	for _, e := range entries {
		name := e.Name()
		if name == "LOCK" || strings.HasPrefix(name, "OPTIONS-") {
			return false, nil // created, never written: Pebble starts afresh
		}
	}
	return false, fmt.Errorf("%w: %s holds files but no Pebble database (no MANIFEST, OPTIONS or LOCK file)", strata.ErrCorrupt, dir)
}

// openDB calls pebbledb.Open, turning a panic on a damaged database into an
// error.
func openDB(dir string, po *pebbledb.Options) (db *pebbledb.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: pebble failed opening %s: %v", strata.ErrCorrupt, dir, r)
		}
	}()
	return pebbledb.Open(dir, po)
}

// openError classifies an error of pebbledb.Open.
func openError(dir string, existed bool, err error) error {
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EACCES) && !errors.Is(err, os.ErrPermission),
		strings.Contains(err.Error(), "lock held by current process"):
		return fmt.Errorf("%w: %s is locked by another process or store: %w", strata.ErrUnavailable, dir, err)
	case pebbledb.IsCorruptionError(err):
		return fmt.Errorf("%w: %s: %w", strata.ErrCorrupt, dir, err)
	case errors.Is(err, os.ErrNotExist) && existed:
		// The directory held a database (checkDir saw to that) and a file
		// its manifest names is gone.
		return fmt.Errorf("%w: %s: a file of the database is missing: %w", strata.ErrCorrupt, dir, err)
	case errors.Is(err, strata.ErrCorrupt):
		return err
	}
	return fmt.Errorf("opening %s: %w", dir, err)
}

// checkFirst reads the first stored value and fails if it has no strata
// header: the directory holds some other program's Pebble database.
func (s *Store) checkFirst() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.First() {
		return it.Error()
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return err
	}
	if _, err := ttlval.Expiry(v); err != nil {
		return fmt.Errorf("%s is not a strata store (key %s): %w", s.dir, strata.QuoteKey(it.Key()), err)
	}
	return nil
}

func inputErr(op string, key []byte, err error) error {
	return strata.NewOpError(op, backend, key, err)
}

// fail counts and wraps a backend failure, marking Pebble's corruption
// errors as strata.ErrCorrupt.
func (s *Store) fail(op string, key []byte, err error) error {
	if err == nil || err == strata.ErrClosed {
		return err
	}
	s.stats.Error()
	if pebbledb.IsCorruptionError(err) && !errors.Is(err, strata.ErrCorrupt) {
		err = fmt.Errorf("%w: %w", strata.ErrCorrupt, err)
	}
	return strata.NewOpError(op, backend, key, err)
}

// check validates a write and resolves its TTL.
func (s *Store) check(ctx context.Context, key, value []byte, ttl time.Duration) (time.Duration, error) {
	return embedded.CheckEntry(ctx, key, value, ttl, s.opts.DefaultTTL, s.opts.MaxValueSize)
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// stripe returns the lock index of key.
func (s *Store) stripe(key []byte) int {
	return int(maphash.Bytes(s.seed, key) & (stripes - 1))
}

// lockKeys locks the stripes of keys in ascending order (no deadlock
// between two multi-key writers) and returns the set to pass to unlock.
//
// With n keys or more than half the stripes, it locks every stripe rather
// than hashing each key: most stripes would be taken anyway.
func (s *Store) lockKeys(n int, keys func(yield func([]byte) bool)) *stripeSet {
	set := new(stripeSet)
	if n > stripes/2 {
		for w := range set {
			set[w] = ^uint64(0)
		}
	} else {
		for k := range keys {
			i := s.stripe(k)
			set[i/64] |= 1 << (i % 64)
		}
	}
	for w, bits := range set {
		for b := 0; bits != 0; b, bits = b+1, bits>>1 {
			if bits&1 != 0 {
				s.locks[w*64+b].Lock()
			}
		}
	}
	return set
}

func (s *Store) unlockKeys(set *stripeSet) {
	for w, bits := range set {
		for b := 0; bits != 0; b, bits = b+1, bits>>1 {
			if bits&1 != 0 {
				s.locks[w*64+b].Unlock()
			}
		}
	}
}

// read returns the stored value of key, decoded, if it is live. v is a
// copy when copyValue is set, else nil. The clock is read only for a key
// that can expire, once per *now (a zero *now is filled in).
func (s *Store) read(key []byte, copyValue bool, now *time.Time) (exp int64, v []byte, live bool, err error) {
	raw, closer, err := s.db.Get(key)
	if err != nil {
		if errors.Is(err, pebbledb.ErrNotFound) {
			return 0, nil, false, nil
		}
		return 0, nil, false, err
	}
	defer closer.Close()
	exp, val, err := ttlval.Decode(raw)
	if err != nil {
		return 0, nil, false, err
	}
	if !embedded.Live(s.clock, now, exp) {
		return 0, nil, false, nil
	}
	if copyValue {
		v = clone(val)
	}
	return exp, v, true, nil
}

// Get returns a copy of the value under key, or strata.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, _, err := s.getWithTTL(ctx, "get", key)
	return v, err
}

// GetWithTTL returns a copy of the value under key and the time it has
// left (strata.NoExpiry if none), from one read.
func (s *Store) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	return s.getWithTTL(ctx, "get_with_ttl", key)
}

func (s *Store) getWithTTL(ctx context.Context, op string, key []byte) ([]byte, time.Duration, error) {
	if err := embedded.CheckKey(ctx, key); err != nil {
		return nil, 0, inputErr(op, key, err)
	}
	if err := s.life.Acquire(); err != nil {
		return nil, 0, err
	}
	var now time.Time
	exp, v, live, err := s.read(key, true, &now)
	s.life.Release()
	switch {
	case err != nil:
		return nil, 0, s.fail(op, key, err)
	case !live:
		s.stats.Miss()
		return nil, 0, strata.ErrNotFound
	}
	s.stats.Hit(len(v))
	return v, strata.Remaining(now, exp), nil
}

// TTL returns the time key has left, strata.NoExpiry, or
// strata.ErrNotFound.
func (s *Store) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	if err := embedded.CheckKey(ctx, key); err != nil {
		return 0, inputErr("ttl", key, err)
	}
	if err := s.life.Acquire(); err != nil {
		return 0, err
	}
	var now time.Time
	exp, _, live, err := s.read(key, false, &now)
	s.life.Release()
	switch {
	case err != nil:
		return 0, s.fail("ttl", key, err)
	case !live:
		return 0, strata.ErrNotFound
	}
	return strata.Remaining(now, exp), nil
}

// set writes key with its header and value in one batch, encoding the value
// in place in the batch (no intermediate copy). The caller holds the key's
// stripe lock.
func (s *Store) set(key []byte, exp int64, value []byte) error {
	b := s.db.NewBatch()
	op := b.SetDeferred(len(key), ttlval.Size(len(value)))
	copy(op.Key, key)
	ttlval.Append(op.Value[:0], exp, value)
	if err := op.Finish(); err != nil {
		b.Close()
		return err
	}
	err := b.Commit(s.wo)
	b.Close()
	return err
}

// Put stores value under key.
func (s *Store) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return inputErr("put", key, err)
	}
	exp := embedded.Expiry(s.clock, ttl)
	if err := s.life.Acquire(); err != nil {
		return err
	}
	l := &s.locks[s.stripe(key)]
	l.Lock()
	err = s.set(key, exp, value)
	l.Unlock()
	s.life.Release()
	if err != nil {
		return s.fail("put", key, err)
	}
	s.stats.Put(1, len(key)+len(value))
	return nil
}

// Delete removes key. Stats count every Delete, live key or not: finding
// out would cost a read.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := embedded.CheckKey(ctx, key); err != nil {
		return inputErr("delete", key, err)
	}
	if err := s.life.Acquire(); err != nil {
		return err
	}
	l := &s.locks[s.stripe(key)]
	l.Lock()
	err := s.db.Delete(key, s.wo)
	l.Unlock()
	s.life.Release()
	if err != nil {
		return s.fail("delete", key, err)
	}
	s.stats.Delete(1)
	return nil
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix, or nil if there is none (prefix empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := clone(prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}

// reader is what Keys and snapshots iterate: the DB or a Pebble snapshot.
type reader interface {
	NewIter(*pebbledb.IterOptions) (*pebbledb.Iterator, error)
}

// scan reads up to limit live entries >= from under prefix (upper is
// prefixEnd(prefix)) from r, calling add for each with the key and value
// (valid only during the call) and the time left, and returns the key to
// resume from, nil at the end.
func scan(r reader, from, prefix, upper []byte, limit int, now time.Time, add func(k, v []byte, left time.Duration)) (next, bad []byte, err error) {
	it, err := newIter(r, from, upper)
	if err != nil {
		return nil, nil, err
	}
	defer closeIter(it, &err)
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			break
		}
		if n == limit {
			return clone(k), nil, nil
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, clone(k), err
		}
		exp, v, err := ttlval.Decode(raw)
		if err != nil {
			return nil, clone(k), err
		}
		n++
		left := strata.Remaining(now, exp)
		if left == 0 {
			continue
		}
		add(k, v, left)
	}
	return nil, nil, it.Error()
}

// newIter returns an iterator over [lower, upper) of r (nil: unbounded).
func newIter(r reader, lower, upper []byte) (*pebbledb.Iterator, error) {
	if len(lower) == 0 {
		// Pebble's invariant checks (on in race builds) index a non-nil
		// empty seek key.
		lower = nil
	}
	return r.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
}

// closeIter closes it, keeping the first error in *err.
func closeIter(it *pebbledb.Iterator, err *error) {
	if cerr := it.Close(); *err == nil {
		*err = cerr
	}
}

// Keys yields the live keys that start with prefix, in byte order, each
// exactly once. It reads them in chunks (see embedded.Keys), each through
// its own iterator, and holds no iterator while the loop body runs.
func (s *Store) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	upper := prefixEnd(prefix)
	return embedded.Keys(ctx, prefix, func(chunk [][]byte, from, prefix []byte, limit int) ([][]byte, []byte, error) {
		return s.keysFrom(chunk, from, prefix, upper, limit)
	})
}

// keysFrom appends to chunk copies of up to limit live keys >= from under
// prefix, and returns the key to resume from (nil when there is no more).
func (s *Store) keysFrom(chunk [][]byte, from, prefix, upper []byte, limit int) ([][]byte, []byte, error) {
	if err := s.life.Acquire(); err != nil {
		return nil, nil, err
	}
	defer s.life.Release()
	var slab embedded.KeySlab
	next, bad, err := scan(s.db, from, prefix, upper, limit, s.clock.Now(), func(k, _ []byte, _ time.Duration) {
		chunk = append(chunk, slab.Copy(k))
	})
	if err != nil {
		return nil, nil, s.fail("keys", bad, err)
	}
	return chunk, next, nil
}

// Close releases open snapshots, stops the sweep and closes the database.
// Every method then fails with strata.ErrClosed; closing again returns nil.
func (s *Store) Close() error {
	err := s.life.Close(func() error {
		err := s.db.Close()
		s.fsCloser.Close()
		return err
	})
	if err != nil {
		return strata.NewOpError("close", backend, nil, err)
	}
	return nil
}

// GetMany returns copies of the values of keys, nil for each absent or
// expired key. Each key is read on its own: the values need not be from one
// instant.
func (s *Store) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if k, err := embedded.CheckKeys(ctx, keys); err != nil {
		return nil, inputErr("get_many", k, err)
	}
	if err := s.life.Acquire(); err != nil {
		return nil, err
	}
	defer s.life.Release()
	out := make([][]byte, len(keys))
	hits, n := 0, 0
	var now time.Time
	for i, k := range keys {
		_, v, live, err := s.read(k, true, &now)
		if err != nil {
			return nil, s.fail("get_many", k, err)
		}
		if live {
			out[i] = v
			hits++
			n += len(v)
		}
	}
	s.stats.Reads(len(keys), hits, n)
	return out, nil
}

// maxBatchSize is Pebble's limit on the size of one batch (it panics
// beyond it); the 16 bytes per entry that PutMany adds for record headers
// over-estimate them, so that a batch it accepts fits.
const maxBatchSize uint64 = 4 << 30

// PutMany writes every entry in one batch: all of them or, on any error,
// none. Every entry is validated before anything is written; a batch of
// 4 GiB or more fails with strata.ErrValueTooLarge.
func (s *Store) PutMany(ctx context.Context, entries []strata.Entry) error {
	size := 0
	ttls := make([]time.Duration, len(entries))
	for i, e := range entries {
		ttl, err := s.check(ctx, e.Key, e.Value, e.TTL)
		if err != nil {
			return inputErr("put_many", e.Key, err)
		}
		ttls[i] = ttl
		size += len(e.Key) + ttlval.Size(len(e.Value)) + 16
	}
	if uint64(size) >= maxBatchSize {
		return inputErr("put_many", nil, fmt.Errorf("%w: the batch needs %d bytes, Pebble's limit is %d", strata.ErrValueTooLarge, size, maxBatchSize))
	}
	if len(entries) == 0 {
		return nil
	}
	now := s.clock.Now()
	if err := s.life.Acquire(); err != nil {
		return err
	}
	defer s.life.Release()
	b := s.db.NewBatchWithSize(size)
	defer b.Close()
	n := 0
	for i, e := range entries {
		op := b.SetDeferred(len(e.Key), ttlval.Size(len(e.Value)))
		copy(op.Key, e.Key)
		ttlval.Append(op.Value[:0], strata.ExpiryMillis(now, ttls[i]), e.Value)
		_ = op.Finish() // fails only for an indexed batch
		n += len(e.Key) + len(e.Value)
	}
	set := s.lockKeys(len(entries), func(yield func([]byte) bool) {
		for _, e := range entries {
			if !yield(e.Key) {
				return
			}
		}
	})
	err := b.Commit(s.wo)
	s.unlockKeys(set)
	if err != nil {
		return s.fail("put_many", nil, err)
	}
	s.stats.Put(len(entries), n)
	return nil
}

// DeleteMany removes keys in one batch and reports how many were live
// (absent, expired and repeated keys do not count).
func (s *Store) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	if k, err := embedded.CheckKeys(ctx, keys); err != nil {
		return 0, inputErr("delete_many", k, err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	if err := s.life.Acquire(); err != nil {
		return 0, err
	}
	defer s.life.Release()
	set := s.lockKeys(len(keys), slices.Values(keys))
	defer s.unlockKeys(set)
	b := s.db.NewBatch()
	defer b.Close()
	var (
		now  time.Time
		seen map[string]struct{}
	)
	if len(keys) > 1 {
		seen = make(map[string]struct{}, len(keys))
	}
	deleted := 0
	for _, k := range keys {
		if seen != nil {
			if _, dup := seen[string(k)]; dup {
				continue
			}
			seen[string(k)] = struct{}{}
		}
		_, _, live, err := s.read(k, false, &now)
		if err != nil && !errors.Is(err, strata.ErrCorrupt) {
			return 0, s.fail("delete_many", k, err)
		}
		if live {
			deleted++
		}
		if err := b.Delete(k, nil); err != nil {
			return 0, s.fail("delete_many", k, err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		return 0, s.fail("delete_many", nil, err)
	}
	s.stats.Delete(deleted)
	return deleted, nil
}

// lockKey locks the stripe of key and returns its mutex.
func (s *Store) lockKey(key []byte) *paddedMutex {
	l := &s.locks[s.stripe(key)]
	l.Lock()
	return l
}

// PutIfAbsent stores value only if key is absent or expired.
func (s *Store) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return false, inputErr("put_if_absent", key, err)
	}
	exp := embedded.Expiry(s.clock, ttl)
	if err := s.life.Acquire(); err != nil {
		return false, err
	}
	defer s.life.Release()
	l := s.lockKey(key)
	defer l.Unlock()
	_, _, live, err := s.read(key, false, new(time.Time))
	if err != nil {
		return false, s.fail("put_if_absent", key, err)
	}
	if live {
		return false, nil
	}
	if err := s.set(key, exp, value); err != nil {
		return false, s.fail("put_if_absent", key, err)
	}
	s.stats.Put(1, len(key)+len(value))
	return true, nil
}

// GetAndDelete removes key and returns its value, or strata.ErrNotFound.
func (s *Store) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if err := embedded.CheckKey(ctx, key); err != nil {
		return nil, inputErr("get_and_delete", key, err)
	}
	if err := s.life.Acquire(); err != nil {
		return nil, err
	}
	defer s.life.Release()
	l := s.lockKey(key)
	defer l.Unlock()
	_, v, live, err := s.read(key, true, new(time.Time))
	if err != nil {
		return nil, s.fail("get_and_delete", key, err)
	}
	if !live {
		s.stats.Miss()
		return nil, strata.ErrNotFound
	}
	if err := s.db.Delete(key, s.wo); err != nil {
		return nil, s.fail("get_and_delete", key, err)
	}
	s.stats.Hit(len(v))
	s.stats.Delete(1)
	return v, nil
}

// CompareAndSwap stores new (with ttl) only if the current value equals old
// (old == nil: only if the key is absent or expired).
func (s *Store) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, new, ttl)
	if err != nil {
		return false, inputErr("compare_and_swap", key, err)
	}
	exp := embedded.Expiry(s.clock, ttl)
	if err := s.life.Acquire(); err != nil {
		return false, err
	}
	defer s.life.Release()
	l := s.lockKey(key)
	defer l.Unlock()
	var now time.Time
	_, cur, live, err := s.read(key, true, &now)
	if err != nil {
		return false, s.fail("compare_and_swap", key, err)
	}
	if live != (old != nil) || (live && !bytes.Equal(cur, old)) {
		return false, nil
	}
	if err := s.set(key, exp, new); err != nil {
		return false, s.fail("compare_and_swap", key, err)
	}
	s.stats.Put(1, len(key)+len(new))
	return true, nil
}

// Ping checks that the store is open and can read.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.life.Acquire(); err != nil {
		return err
	}
	defer s.life.Release()
	_, closer, err := s.db.Get([]byte{0})
	switch {
	case err == nil:
		closer.Close()
	case errors.Is(err, pebbledb.ErrNotFound):
		err = nil
	}
	return s.fail("ping", nil, err)
}

// Stats returns the store's counters. Keys is -1: counting live keys
// means reading them all. Gauges hold Pebble's metrics that matter most:
//
//	disk_usage_bytes             bytes on disk (tables, WAL, manifests)
//	memtable_size_bytes          bytes in memtables
//	memtables                    memtables, flushing ones included
//	wal_size_bytes               live write-ahead log bytes
//	flushes_total                memtable flushes
//	compactions_total            compactions
//	compaction_debt_bytes        bytes compaction must still rewrite
//	compactions_in_progress      compactions running now
//	read_amplification           sub-levels a read may visit
//	sstables                     live table files
//	block_cache_size_bytes       bytes in the block cache
//	block_cache_hits_total       block cache hits
//	block_cache_misses_total     block cache misses
//	snapshots_open               Pebble snapshots open (strata's included)
//	tombstones                   point deletions not yet compacted away
//	corruptions_total            on-disk corruptions Pebble reported
//	background_errors_total      failed flushes and compactions
//	disk_slow_total              disk operations slower than 5s
func (s *Store) Stats() strata.Stats {
	st := s.stats.Stats(backend, -1)
	if s.life.Acquire() != nil {
		return st
	}
	m := s.db.Metrics()
	s.life.Release()
	total := m.Total()
	st.Gauges = map[string]float64{
		"disk_usage_bytes":         float64(m.DiskSpaceUsage()),
		"memtable_size_bytes":      float64(m.MemTable.Size),
		"memtables":                float64(m.MemTable.Count),
		"wal_size_bytes":           float64(m.WAL.Size),
		"flushes_total":            float64(m.Flush.Count),
		"compactions_total":        float64(m.Compact.Count),
		"compaction_debt_bytes":    float64(m.Compact.EstimatedDebt),
		"compactions_in_progress":  float64(m.Compact.NumInProgress),
		"read_amplification":       float64(m.ReadAmp()),
		"sstables":                 float64(total.TablesCount),
		"block_cache_size_bytes":   float64(m.BlockCache.Size),
		"block_cache_hits_total":   float64(m.BlockCache.Hits),
		"block_cache_misses_total": float64(m.BlockCache.Misses),
		"snapshots_open":           float64(m.Snapshots.Count),
		"tombstones":               float64(m.Keys.TombstoneCount),
		"corruptions_total":        float64(s.events.corruptions.Load()),
		"background_errors_total":  float64(s.events.backgroundErrors.Load()),
		"disk_slow_total":          float64(s.events.diskSlow.Load()),
	}
	return st
}

// Sweep deletes every expired key now, in batches of at most 1024 keys, and
// returns how many it deleted. The background sweep calls it every
// SweepInterval. It stops early with ctx's error.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	return embedded.Sweep(ctx, s.expiredFrom, s.removeExpired)
}

// expiredFrom reads up to embedded.Chunk keys from from and returns the
// expired ones and where to resume (nil at the end). Values with a damaged
// header are left alone: a read reports them.
func (s *Store) expiredFrom(from []byte) (expired [][]byte, next []byte, err error) {
	if err := s.life.Acquire(); err != nil {
		return nil, nil, err
	}
	defer s.life.Release()
	now := s.clock.Now()
	err = func() (err error) {
		it, err := newIter(s.db, from, nil)
		if err != nil {
			return err
		}
		defer closeIter(it, &err)
		n := 0
		for valid := it.First(); valid; valid = it.Next() {
			if n == embedded.Chunk {
				next = clone(it.Key())
				return nil
			}
			n++
			raw, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if exp, err := ttlval.Expiry(raw); err == nil && exp != 0 && strata.Expired(now, exp) {
				expired = append(expired, clone(it.Key()))
			}
		}
		return it.Error()
	}()
	if err != nil {
		return nil, nil, s.fail("sweep", nil, err)
	}
	return expired, next, nil
}

// removeExpired deletes, in one batch, the keys that are still expired
// under their stripe locks: a key rewritten since it was read is kept.
// Sweep batches are not synced: a lost deletion of an expired key changes
// nothing a reader can see.
func (s *Store) removeExpired(keys [][]byte) (int, error) {
	if err := s.life.Acquire(); err != nil {
		return 0, err
	}
	defer s.life.Release()
	set := s.lockKeys(len(keys), slices.Values(keys))
	defer s.unlockKeys(set)
	now := s.clock.Now()
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for _, k := range keys {
		raw, closer, err := s.db.Get(k)
		if errors.Is(err, pebbledb.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, s.fail("sweep", k, err)
		}
		exp, derr := ttlval.Expiry(raw)
		closer.Close()
		if derr != nil || exp == 0 || !strata.Expired(now, exp) {
			continue
		}
		if err := b.Delete(k, nil); err != nil {
			return 0, s.fail("sweep", k, err)
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebbledb.NoSync); err != nil {
		return 0, s.fail("sweep", nil, err)
	}
	return n, nil
}

// Snapshot returns a point-in-time view of the store: a Pebble snapshot,
// held until the snapshot is closed.
func (s *Store) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.life.Acquire(); err != nil {
		return nil, err
	}
	defer s.life.Release()
	sn := &snapshot{s: s, snap: s.db.NewSnapshot()}
	s.life.AddSnapshot(sn)
	return sn, nil
}

// snapshot is a Pebble snapshot. Its methods take mu while they read, so
// that Close (the snapshot's or the store's) never races a reader.
type snapshot struct {
	s    *Store
	mu   sync.Mutex
	snap *pebbledb.Snapshot // nil once closed
}

// Entries yields copies of the live entries under prefix, in key order, in
// chunks (see embedded.Entries): no iterator is open while the loop body
// runs.
func (sn *snapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[strata.Entry, error] {
	upper := prefixEnd(prefix)
	return embedded.Entries(ctx, prefix, func(from, prefix []byte) ([]strata.Entry, []byte, error) {
		return sn.entriesFrom(from, prefix, upper)
	})
}

// entriesFrom copies up to embedded.Chunk live entries >= from under prefix
// (upper is prefixEnd(prefix)) and returns where to resume (nil when done).
func (sn *snapshot) entriesFrom(from, prefix, upper []byte) ([]strata.Entry, []byte, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.snap == nil {
		return nil, nil, strata.ErrClosed
	}
	var chunk []strata.Entry
	next, bad, err := scan(sn.snap, from, prefix, upper, embedded.Chunk, sn.s.clock.Now(), func(k, v []byte, left time.Duration) {
		chunk = append(chunk, strata.Entry{Key: clone(k), Value: clone(v), TTL: left})
	})
	if err != nil {
		return nil, nil, sn.s.fail("snapshot_entries", bad, err)
	}
	return chunk, next, nil
}

// Close releases the Pebble snapshot. It is safe to call more than once and
// after the store is closed.
func (sn *snapshot) Close() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.snap == nil {
		return nil
	}
	// Released under mu: the store's Close, which also takes mu, must not
	// close the database while this is in flight.
	err := sn.snap.Close()
	sn.snap = nil
	sn.s.life.RemoveSnapshot(sn)
	return err
}
