// Package bolt is a durable strata store in one file, over bbolt
// (go.etcd.io/bbolt): a copy-on-write B+tree with a single writer and
// lock-free readers, in a memory-mapped file.
//
// Open a store with [Open], or through strata.Open with a URL:
//
//	bolt:///var/lib/app/state.db?bucket=state&no_sync=false&open_timeout=5s
//
// Parameters (all optional): bucket, file_mode (octal, such as 0600),
// open_timeout, no_sync, default_ttl, max_value_size, sweep_interval,
// initial_mmap_size, verify. They mean what the [Options] fields of the same
// name mean; an unknown parameter or a malformed value is an error matching
// strata.ErrInvalidConfig. A relative path is written bolt:relative/state.db.
//
// # Durability
//
// Every write (Put, Delete, PutMany, DeleteMany, Commit and the atomic
// operations) is one bbolt read-write transaction, committed and fsynced
// before the method returns: once it returns nil, the write survives a process crash or
// a power loss. With [Options.NoSync] the fsync is skipped: writes are much
// faster, a process crash still loses nothing (the page cache has them), but
// a power loss or kernel crash may lose recent writes or, as bbolt warns,
// leave the file unusable. Writes are serialized (bbolt has one writer);
// reads run in parallel with each other and with the writer. A Commit reads
// its conditions inside its transaction and writes only if all hold, so it
// is atomic against every other write, and a reader sees all of it or
// none; a crash leaves all of it or none.
//
// # Values and TTLs
//
// Every value is stored behind a 9-byte header (see package
// internal/ttlval): a version byte (1) and the absolute expiry in Unix
// milliseconds, big-endian, 0 for never. An expired key is invisible to
// every read at once (Get, GetMany, Keys, TTL, snapshots; the atomic
// operations treat it as absent and DeleteMany does not count it). A
// background sweep removes expired keys every [Options.SweepInterval],
// walking the bucket in chunks of 1024 keys with one short transaction per
// chunk, so that it never holds the writer for long; the Store's Sweep
// method runs a pass on demand.
//
// # Ordering
//
// Keys and snapshots yield keys in byte order, each exactly once. Keys reads
// the bucket in chunks (128 keys, doubling to 4096), each in its own short
// read transaction, and resumes after the last key it yielded; no
// transaction is open while the caller's loop body runs, so the body may
// write to the store. A key written or deleted during the iteration may or
// may not appear; a key live throughout appears exactly once. GetMany and
// GetManyWithTTL read every key in one read transaction, so their values
// are from one instant. A
// [strata.Snapshot] is a bbolt read transaction: a point-in-time view that
// later writes do not change.
//
// A snapshot keeps its read transaction open until closed, and bbolt must
// re-map the file to grow past its mapped size, which waits for every open
// read transaction: while a snapshot is open, a write that grows the file
// past [Options.InitialMmapSize] blocks until the snapshot is closed. Close
// snapshots promptly; Close on the store releases any left open.
//
// # Statistics
//
// Stats counts a Delete only if the key was live (the transaction reads it
// anyway). Stats.Keys is -1: counting live keys means reading them all.
// Stats.Gauges hold bbolt's own statistics:
//
//	file_size_bytes         size of the data file
//	read_tx_total           read transactions started
//	read_tx_open            read transactions open now (snapshots included)
//	free_pages              pages on the freelist
//	pending_pages           pages freed but still visible to a reader
//	free_alloc_bytes        bytes in free pages
//	freelist_inuse_bytes    bytes the freelist takes
//	tx_page_alloc_bytes     bytes allocated by write transactions
//	tx_node_splits_total    node splits
//	tx_rebalances_total     node rebalances
//	tx_writes_total         page writes
//	tx_write_seconds_total  time spent writing pages
//	tx_spill_seconds_total  time spent spilling nodes
//	snapshots_open          strata snapshots not yet closed
//
// # Errors
//
//   - strata.ErrNotFound: the key is absent or expired.
//   - strata.ErrInvalidKey, strata.ErrValueTooLarge, strata.ErrInvalidTTL:
//     rejected input, before any I/O.
//   - strata.ErrClosed: the store or snapshot was closed.
//   - strata.ErrCorrupt: the file is not a bbolt file, its meta pages fail
//     their checksum, the bucket holds values without a strata header, or
//     bbolt found a damaged page.
//   - strata.ErrUnavailable: Open could not lock the file within
//     [Options.OpenTimeout] because another process (or another Store in
//     this process) has it open.
//   - a context error: the context was cancelled or expired.
//
// Other failures (a full disk, an I/O error) are wrapped in one
// *strata.OpError with the bbolt error as its cause.
package bolt

import (
	"errors"
	"fmt"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/embedded"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

const backend = "bolt"

// Defaults of the Options fields.
const (
	DefaultBucket          = "strata"
	DefaultFileMode        = os.FileMode(0o600)
	DefaultOpenTimeout     = 5 * time.Second
	DefaultSweepInterval   = time.Minute
	DefaultInitialMmapSize = 256 << 20
)

// maxValueSize is the largest value bbolt can hold behind our header.
const maxValueSize = bbolt.MaxValueSize - ttlval.HeaderSize

// Options configure a Store. A nil *Options, or the zero value of a field,
// gives the default.
type Options struct {
	// Bucket is the bbolt bucket that holds the keys. Several stores may
	// share one file, each in its own bucket, but not at the same time: one
	// process opens the file once. Default "strata".
	Bucket string

	// FileMode is the permission of a newly created file. Default 0600.
	FileMode os.FileMode

	// OpenTimeout bounds how long Open waits for the file lock held by
	// another process; Open then fails with an error matching
	// strata.ErrUnavailable. Default 5s.
	OpenTimeout time.Duration

	// NoSync skips the fsync at each commit (see the package documentation
	// on durability). Default false: every write is durable on return.
	NoSync bool

	// DefaultTTL applies to writes with ttl == 0. Default: none.
	DefaultTTL time.Duration

	// MaxValueSize bounds values, in bytes. Default 0: bbolt's own limit,
	// 2 GiB less 11 bytes.
	MaxValueSize int

	// Clock tells the time for expiry. Default: the system clock.
	Clock strata.Clock

	// SweepInterval is how often the background sweep removes expired
	// keys. Default 1m; a negative value disables the sweep (expired keys
	// stay invisible and keep their space until overwritten or deleted).
	SweepInterval time.Duration

	// InitialMmapSize is the size, in bytes, of the file's first memory
	// mapping; the file can grow to it without a re-map, which an open
	// snapshot would block. It reserves address space, not memory, and the
	// file grows in steps of 16 MiB once the mapping exceeds that. Default
	// 256 MiB; a negative value uses bbolt's default (32 KiB, doubling).
	InitialMmapSize int

	// Verify runs bbolt's consistency check over the whole file at Open and
	// fails with strata.ErrCorrupt if it finds damage. It reads every page,
	// so it costs time in proportion to the file. Default false.
	Verify bool
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Bucket == "" {
		out.Bucket = DefaultBucket
	}
	if out.FileMode == 0 {
		out.FileMode = DefaultFileMode
	}
	if out.OpenTimeout <= 0 {
		out.OpenTimeout = DefaultOpenTimeout
	}
	if out.SweepInterval == 0 {
		out.SweepInterval = DefaultSweepInterval
	}
	if out.InitialMmapSize == 0 {
		out.InitialMmapSize = DefaultInitialMmapSize
	}
	return out
}

// Store is a strata.Store in a bbolt file. Create one with Open; it is safe
// for concurrent use.
//
// Its methods are those of strata.Store and of every optional capability
// (strata.Batcher, Atomic, Expirer, BatchExpirer, Snapshotter, Pinger,
// StatsReporter, Committer), as the package documentation describes them
// for bbolt, plus Sweep, which removes expired keys now and returns how
// many.
type Store struct {
	*store
	eng *engine
}

// store is the implementation the embedded stores share; embedded under an
// unexported name, its methods are Store's.
type store = embedded.Store

var _ embedded.Capabilities = (*Store)(nil)

// Open opens the bbolt file at path, creating it if needed, and the bucket
// in it. Close the store to release the file and stop its sweep.
//
// Open fails with an error matching strata.ErrUnavailable if another
// process holds the file beyond opts.OpenTimeout, and strata.ErrCorrupt if
// the file is not a bbolt file, is damaged, or its bucket holds values that
// strata did not write.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	bo := &bbolt.Options{
		Timeout:      o.OpenTimeout,
		NoSync:       o.NoSync,
		FreelistType: bbolt.FreelistMapType,
	}
	if o.InitialMmapSize > 0 {
		bo.InitialMmapSize = o.InitialMmapSize
	}
	db, err := openDB(path, o.FileMode, bo)
	if err != nil {
		return nil, storekit.NewOpError("open", backend, nil, openError(path, o.OpenTimeout, err))
	}
	if err := prepare(db, path, o); err != nil {
		db.Close()
		return nil, storekit.NewOpError("open", backend, nil, err)
	}
	eng := &engine{db: db, bucket: []byte(o.Bucket), path: path}
	s, err := embedded.New(eng, embedded.Config{
		Backend:       backend,
		Name:          fmt.Sprintf("bucket %q of %s", o.Bucket, path),
		Clock:         o.Clock,
		DefaultTTL:    o.DefaultTTL,
		MaxValueSize:  o.MaxValueSize,
		ValueLimit:    maxValueSize,
		SweepInterval: o.SweepInterval,
		GaugeHelp:     gaugeHelp,
	})
	if err != nil {
		return nil, err
	}
	return &Store{store: s, eng: eng}, nil
}

// openDB calls bbolt.Open, turning a panic on a damaged file into an error.
func openDB(path string, mode os.FileMode, bo *bbolt.Options) (db *bbolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: bbolt failed on the file: %v", strata.ErrCorrupt, r)
		}
	}()
	return bbolt.Open(path, mode, bo)
}

// openError classifies an error of bbolt.Open.
func openError(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s is locked by another process or store (waited %v): %w",
			strata.ErrUnavailable, path, timeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("%w: %s is not a usable bbolt file: %w", strata.ErrCorrupt, path, err)
	case errors.Is(err, strata.ErrCorrupt):
		return err
	}
	return fmt.Errorf("opening %s: %w", path, err)
}

// prepare creates the bucket if needed and runs the optional full check.
// (The Store checks that the bucket holds strata values.)
func prepare(db *bbolt.DB, path string, o Options) (err error) {
	defer recoverCorrupt(&err)
	return db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists([]byte(o.Bucket)); err != nil {
			return err
		}
		if o.Verify {
			for err := range tx.Check() {
				return fmt.Errorf("%w: consistency check of %s: %w", strata.ErrCorrupt, path, err)
			}
		}
		return nil
	})
}

func init() { embedded.Register("bolt", "file", urlOptions, Open) }

// urlOptions reads the parameters of a bolt URL.
func urlOptions(q *storekit.Query) *Options {
	return &Options{
		Bucket:          q.String("bucket", ""),
		FileMode:        os.FileMode(q.Uint32("file_mode", 0)),
		OpenTimeout:     q.Duration("open_timeout", 0),
		NoSync:          q.Bool("no_sync", false),
		DefaultTTL:      q.Duration("default_ttl", 0),
		MaxValueSize:    q.Int("max_value_size", 0),
		SweepInterval:   q.Duration("sweep_interval", 0),
		InitialMmapSize: q.Int("initial_mmap_size", 0),
		Verify:          q.Bool("verify", false),
	}
}
