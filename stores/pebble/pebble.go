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
// Every write (Put, Delete, PutMany, DeleteMany, Commit and the atomic
// operations) is one Pebble batch, appended to the write-ahead log and fsynced before
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
// then reclaims their space. The Store's Sweep method runs a pass on
// demand.
//
// # Atomicity and ordering
//
// The atomic operations (PutIfAbsent, GetAndDelete, CompareAndSwap) are a
// read and a write made under a lock on the key's stripe (one of 512
// mutexes chosen by a hash of the key); every other write takes the same
// lock for its keys (PutMany, DeleteMany and Commit lock their stripes in
// order, or, for more than 32 keys, a store-wide lock that excludes every
// other write), so no write lands between the read and the write of an
// atomic operation.
// Reads take no lock. PutMany and DeleteMany are one batch each: all or
// nothing. A Commit locks every key it touches (condition keys, fence keys
// and written keys) that way, reads its conditions and commits its batch
// before it unlocks, so it is atomic against every other write of
// those keys; a reader sees the whole batch or none of it (a Pebble batch
// commits atomically), and a crash leaves all of it or none. A batch of 4 GiB or more (Pebble's limit) fails with
// strata.ErrValueTooLarge before anything is written.
//
// Keys and snapshots yield keys in byte order, each exactly once. Keys reads
// in chunks (128 keys, doubling to 4096), each through its own short-lived
// iterator bounded by the prefix, and resumes after the last key it yielded:
// no iterator is open while the caller's loop body runs. A key written or
// deleted during the iteration may or may not appear; a key live throughout
// appears exactly once. GetMany and GetManyWithTTL read their keys from one
// Pebble snapshot, so their values are from one instant. A [strata.Snapshot] is a Pebble snapshot: a point-in-time view
// that later writes do not change, read in chunks the same way. An open
// snapshot keeps the versions it sees from being compacted away; close it
// promptly. Close on the store releases any snapshot left open.
//
// # Statistics
//
// Stats counts every Delete, live key or not: finding out would cost a
// read. Stats.Keys is -1: counting live keys means reading them all.
// Stats.Gauges hold Pebble's metrics that matter most:
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
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/embedded"
	"github.com/strata-kv/strata/storekit"
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

// maxBatchSize is Pebble's limit on the size of one batch (it panics
// beyond it): PutMany and Commit refuse a batch that would reach it.
const maxBatchSize uint64 = 4 << 30

// Store is a strata.Store in a Pebble directory. Create one with Open; it is
// safe for concurrent use.
//
// Its methods are those of strata.Store and of every optional capability
// (strata.Batcher, Atomic, Expirer, BatchExpirer, Snapshotter, Pinger,
// StatsReporter, Committer), as the package documentation describes them
// for Pebble, plus Sweep, which removes expired keys now and returns how
// many.
type Store struct {
	*store
	eng *engine
}

// store is the implementation the embedded stores share; embedded under an
// unexported name, its methods are Store's.
type store = embedded.Store

var _ embedded.Capabilities = (*Store)(nil)

// Open opens the Pebble database in dir, creating the directory and the
// database if needed. Close the store to release it and stop its sweep.
//
// Open fails with an error matching strata.ErrUnavailable if another
// process or Store holds the directory, and strata.ErrCorrupt if dir is a
// file, a directory of something other than Pebble, or a damaged database.
func Open(dir string, opts *Options) (*Store, error) {
	existed, err := checkDir(dir)
	if err != nil {
		return nil, storekit.NewOpError("open", backend, nil, err)
	}
	o := opts.withDefaults()
	events := new(eventCounts)
	po, fsCloser := pebbleOptions(o, events)
	if po.Comparer != nil && po.Comparer.Name != pebbledb.DefaultComparer.Name {
		fsCloser.Close()
		return nil, storekit.NewOpError("open", backend, nil, fmt.Errorf(
			"%w: Configure set the Comparer %q: the store needs Pebble's default byte order", strata.ErrInvalidConfig, po.Comparer.Name))
	}
	db, err := openDB(dir, po)
	if err != nil {
		fsCloser.Close()
		return nil, storekit.NewOpError("open", backend, nil, openError(dir, existed, err))
	}
	eng := &engine{db: db, wo: writeOptions(o), locks: newKeyLocks(), events: events, fsCloser: fsCloser}
	s, err := embedded.New(eng, embedded.Config{
		Backend:       backend,
		Name:          dir,
		Clock:         o.Clock,
		DefaultTTL:    o.DefaultTTL,
		MaxValueSize:  o.MaxValueSize,
		ValueLimit:    DefaultMaxValueSize,
		BatchLimit:    maxBatchSize,
		SweepInterval: o.SweepInterval,
		BlindDeletes:  true,
		GaugeHelp:     gaugeHelp,
	})
	if err != nil {
		return nil, err
	}
	return &Store{store: s, eng: eng}, nil
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

func init() { embedded.Register("pebble", "directory", urlOptions, Open) }

// urlOptions reads the parameters of a pebble URL.
func urlOptions(q *storekit.Query) *Options {
	return &Options{
		NoSync:        q.Bool("no_sync", false),
		CacheSize:     int64(q.Int("cache_size", 0)),
		DefaultTTL:    q.Duration("default_ttl", 0),
		MaxValueSize:  q.Int("max_value_size", 0),
		SweepInterval: q.Duration("sweep_interval", 0),
	}
}
