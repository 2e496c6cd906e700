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
// Every write (Put, Delete, PutMany, DeleteMany and the atomic operations)
// is one bbolt read-write transaction, committed and fsynced before the
// method returns: once it returns nil, the write survives a process crash or
// a power loss. With [Options.NoSync] the fsync is skipped: writes are much
// faster, a process crash still loses nothing (the page cache has them), but
// a power loss or kernel crash may lose recent writes or, as bbolt warns,
// leave the file unusable. Writes are serialized (bbolt has one writer);
// reads run in parallel with each other and with the writer.
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
// chunk, so that it never holds the writer for long; [Store.Sweep] runs a
// pass on demand.
//
// # Ordering
//
// Keys and snapshots yield keys in byte order, each exactly once. Keys reads
// the bucket in chunks (128 keys, doubling to 4096), each in its own short
// read transaction, and resumes after the last key it yielded; no
// transaction is open while the caller's loop body runs, so the body may
// write to the store. A key written or deleted during the iteration may or
// may not appear; a key live throughout appears exactly once. GetMany reads
// every key in one read transaction, so its values are from one instant. A
// [strata.Snapshot] is a bbolt read transaction: a point-in-time view that
// later writes do not change.
//
// A snapshot keeps its read transaction open until closed, and bbolt must
// re-map the file to grow past its mapped size, which waits for every open
// read transaction: while a snapshot is open, a write that grows the file
// past [Options.InitialMmapSize] blocks until the snapshot is closed. Close
// snapshots promptly; Close on the store releases any left open.
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
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"os"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/counters"
	"github.com/strata-kv/strata/internal/embedded"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/internal/urlopt"
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
	if out.Clock == nil {
		out.Clock = strata.SystemClock{}
	}
	if out.SweepInterval == 0 {
		out.SweepInterval = DefaultSweepInterval
	}
	if out.InitialMmapSize == 0 {
		out.InitialMmapSize = DefaultInitialMmapSize
	}
	if out.MaxValueSize <= 0 || out.MaxValueSize > maxValueSize {
		out.MaxValueSize = maxValueSize
	}
	return out
}

// Store is a strata.Store in a bbolt file. Create one with Open; it is safe
// for concurrent use.
type Store struct {
	db     *bbolt.DB
	bucket []byte
	opts   Options
	clock  strata.Clock
	path   string
	stats  counters.Set

	// life is acquired by every method while it uses db and closed by
	// Close, so that db is never used after it is closed; it also holds the
	// open snapshots and runs the background sweep.
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
	strata.Register("bolt", func(ctx context.Context, u *url.URL) (strata.Store, error) {
		path, opts, err := parseURL(u)
		if err != nil {
			return nil, err
		}
		return Open(path, opts)
	})
}

// parseURL reads a bolt URL into a path and options.
func parseURL(u *url.URL) (string, *Options, error) {
	q := urlopt.New(u)
	opts := &Options{
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
	if err := q.Err(); err != nil {
		return "", nil, err
	}
	path := u.Path
	switch {
	case u.Opaque != "":
		path = u.Opaque
	case u.Host != "":
		return "", nil, fmt.Errorf("%w: store URL %q: a bolt URL names a file, not a host: write bolt:///absolute/path or bolt:relative/path",
			strata.ErrInvalidConfig, strata.RedactURL(u.String()))
	}
	if path == "" {
		return "", nil, fmt.Errorf("%w: store URL %q: no file path (bolt:///var/lib/app/state.db)", strata.ErrInvalidConfig, strata.RedactURL(u.String()))
	}
	return path, opts, nil
}

// Open opens the bbolt file at path, creating it if needed, and the bucket
// in it. Close the store to release the file and stop its sweep.
//
// Open fails with an error matching strata.ErrUnavailable if another
// process holds the file beyond opts.OpenTimeout, and strata.ErrCorrupt if
// the file is not a bbolt file, is damaged, or its bucket holds values that
// strata did not write.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	s := &Store{
		bucket: []byte(o.Bucket),
		opts:   o,
		clock:  o.Clock,
		path:   path,
	}
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
		return nil, strata.NewOpError("open", backend, nil, s.openError(err))
	}
	s.db = db
	if err := s.prepare(); err != nil {
		db.Close()
		return nil, strata.NewOpError("open", backend, nil, err)
	}
	if o.SweepInterval > 0 {
		// Errors are counted in Stats.Errors; the next tick retries.
		s.life.Every(o.SweepInterval, func(ctx context.Context) { s.Sweep(ctx) })
	}
	return s, nil
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
func (s *Store) openError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s is locked by another process or store (waited %v): %w",
			strata.ErrUnavailable, s.path, s.opts.OpenTimeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("%w: %s is not a usable bbolt file: %w", strata.ErrCorrupt, s.path, err)
	case errors.Is(err, strata.ErrCorrupt):
		return err
	}
	return fmt.Errorf("opening %s: %w", s.path, err)
}

// prepare creates the bucket if needed, checks that an existing bucket
// holds strata values, and runs the optional full check.
func (s *Store) prepare() error {
	return s.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(s.bucket)
		if err != nil {
			return err
		}
		if k, v := b.Cursor().First(); k != nil {
			if v == nil {
				return fmt.Errorf("%w: bucket %q of %s holds a nested bucket %s: not a strata store",
					strata.ErrCorrupt, s.bucket, s.path, strata.QuoteKey(k))
			}
			if _, err := ttlval.Expiry(v); err != nil {
				return fmt.Errorf("bucket %q of %s is not a strata store (key %s): %w", s.bucket, s.path, strata.QuoteKey(k), err)
			}
		}
		if s.opts.Verify {
			for err := range tx.Check() {
				return fmt.Errorf("%w: consistency check of %s: %w", strata.ErrCorrupt, s.path, err)
			}
		}
		return nil
	})
}

// errNoBucket is returned if the bucket disappeared (another program
// deleted it while the file was closed, or the file was replaced).
var errNoBucket = fmt.Errorf("%w: the store's bucket is missing", strata.ErrCorrupt)

// view runs fn in a read transaction on the store's bucket. A panic in bbolt
// (it panics on damaged pages) becomes an error matching ErrCorrupt.
func (s *Store) view(fn func(b *bbolt.Bucket) error) (err error) {
	defer recoverCorrupt(&err)
	return s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return errNoBucket
		}
		return fn(b)
	})
}

// update runs fn in a read-write transaction, committed on success.
func (s *Store) update(fn func(tx *bbolt.Tx) error) (err error) {
	defer recoverCorrupt(&err)
	return s.db.Update(fn)
}

// updateBucket runs fn in a read-write transaction on the store's bucket.
func (s *Store) updateBucket(fn func(b *bbolt.Bucket) error) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return errNoBucket
		}
		return fn(b)
	})
}

func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: bbolt failed reading the file: %v", strata.ErrCorrupt, r)
	}
}

// inputErr wraps rejected input or a context error.
func inputErr(op string, key []byte, err error) error {
	return strata.NewOpError(op, backend, key, err)
}

// fail counts and wraps a backend failure.
func (s *Store) fail(op string, key []byte, err error) error {
	if err == nil || err == strata.ErrClosed {
		return err
	}
	s.stats.Error()
	return strata.NewOpError(op, backend, key, err)
}

// check validates a write and resolves its TTL.
func (s *Store) check(ctx context.Context, key, value []byte, ttl time.Duration) (time.Duration, error) {
	return embedded.CheckEntry(ctx, key, value, ttl, s.opts.DefaultTTL, s.opts.MaxValueSize)
}

// readLive decodes a stored value and reports whether it is live; v
// aliases raw and a nil raw (absent key) is not live. The clock is read only
// for a key that can expire, once per *now: a zero *now is filled in.
func (s *Store) readLive(raw []byte, now *time.Time) (exp int64, v []byte, live bool, err error) {
	if raw == nil {
		return 0, nil, false, nil
	}
	exp, v, err = ttlval.Decode(raw)
	if err != nil {
		return 0, nil, false, err
	}
	if !embedded.Live(s.clock, now, exp) {
		return 0, nil, false, nil
	}
	return exp, v, true, nil
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// Get returns a copy of the value under key, or strata.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, _, err := s.getWithTTL(ctx, "get", key)
	return v, err
}

// GetWithTTL returns a copy of the value under key and the time it has
// left (strata.NoExpiry if none), from one read transaction.
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
	var (
		out  []byte
		exp  int64
		live bool
		now  time.Time
	)
	err := s.view(func(b *bbolt.Bucket) error {
		var v []byte
		var err error
		exp, v, live, err = s.readLive(b.Get(key), &now)
		if live {
			out = clone(v)
		}
		return err
	})
	s.life.Release()
	switch {
	case err != nil:
		return nil, 0, s.fail(op, key, err)
	case !live:
		s.stats.Miss()
		return nil, 0, strata.ErrNotFound
	}
	s.stats.Hit(len(out))
	return out, strata.Remaining(now, exp), nil
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
	var (
		exp  int64
		live bool
		now  time.Time
	)
	err := s.view(func(b *bbolt.Bucket) error {
		var err error
		exp, _, live, err = s.readLive(b.Get(key), &now)
		return err
	})
	s.life.Release()
	switch {
	case err != nil:
		return 0, s.fail("ttl", key, err)
	case !live:
		return 0, strata.ErrNotFound
	}
	return strata.Remaining(now, exp), nil
}

// Put stores value under key in one durable transaction.
func (s *Store) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return inputErr("put", key, err)
	}
	raw := ttlval.Encode(embedded.Expiry(s.clock, ttl), value)
	if err := s.life.Acquire(); err != nil {
		return err
	}
	err = s.updateBucket(func(b *bbolt.Bucket) error { return b.Put(key, raw) })
	s.life.Release()
	if err != nil {
		return s.fail("put", key, err)
	}
	s.stats.Put(1, len(key)+len(value))
	return nil
}

// Delete removes key in one durable transaction. Stats count it only if
// the key was live.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := embedded.CheckKey(ctx, key); err != nil {
		return inputErr("delete", key, err)
	}
	if err := s.life.Acquire(); err != nil {
		return err
	}
	var live bool
	err := s.updateBucket(func(b *bbolt.Bucket) error {
		raw := b.Get(key)
		if raw == nil {
			return nil
		}
		// A damaged value is still deleted: that is how a caller repairs it.
		_, _, live, _ = s.readLive(raw, new(time.Time))
		return b.Delete(key)
	})
	s.life.Release()
	if err != nil {
		return s.fail("delete", key, err)
	}
	if live {
		s.stats.Delete(1)
	}
	return nil
}

// Keys yields the live keys that start with prefix, in byte order, each
// exactly once. It reads them in chunks (see embedded.Keys), each in its own
// short read transaction, and holds no transaction while the loop body runs.
func (s *Store) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	return embedded.Keys(ctx, prefix, s.keysFrom)
}

// keysFrom appends to chunk copies of up to limit live keys >= from that
// start with prefix, and returns the key to resume from (nil when there is
// no more).
func (s *Store) keysFrom(chunk [][]byte, from, prefix []byte, limit int) (_ [][]byte, next []byte, err error) {
	if err := s.life.Acquire(); err != nil {
		return nil, nil, err
	}
	defer s.life.Release()
	now := s.clock.Now()
	var (
		bad  []byte
		slab embedded.KeySlab
	)
	err = s.view(func(b *bbolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(chunk) == limit {
				next = clone(k)
				return nil
			}
			exp, err := ttlval.Expiry(v)
			if err != nil {
				bad = clone(k)
				return err
			}
			if exp == 0 || !strata.Expired(now, exp) {
				chunk = append(chunk, slab.Copy(k))
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, s.fail("keys", bad, err)
	}
	return chunk, next, nil
}

// Close releases open snapshots, stops the sweep and closes the file. Every
// method then fails with strata.ErrClosed; closing again returns nil.
func (s *Store) Close() error {
	if err := s.life.Close(s.db.Close); err != nil {
		return strata.NewOpError("close", backend, nil, err)
	}
	return nil
}

// GetMany returns copies of the values of keys, nil for each absent or
// expired key, read in one transaction.
func (s *Store) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if k, err := embedded.CheckKeys(ctx, keys); err != nil {
		return nil, inputErr("get_many", k, err)
	}
	if err := s.life.Acquire(); err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	hits, n := 0, 0
	var (
		bad []byte
		now time.Time
	)
	err := s.view(func(b *bbolt.Bucket) error {
		for i, k := range keys {
			_, v, live, err := s.readLive(b.Get(k), &now)
			if err != nil {
				bad = k
				return err
			}
			if live {
				out[i] = clone(v)
				hits++
				n += len(v)
			}
		}
		return nil
	})
	s.life.Release()
	if err != nil {
		return nil, s.fail("get_many", bad, err)
	}
	s.stats.Reads(len(keys), hits, n)
	return out, nil
}

// PutMany writes every entry in one durable transaction: all of them or,
// on any error, none. Every entry is validated before anything is written.
func (s *Store) PutMany(ctx context.Context, entries []strata.Entry) error {
	size := 0
	ttls := make([]time.Duration, len(entries))
	for i, e := range entries {
		ttl, err := s.check(ctx, e.Key, e.Value, e.TTL)
		if err != nil {
			return inputErr("put_many", e.Key, err)
		}
		ttls[i] = ttl
		size += ttlval.Size(len(e.Value))
	}
	if len(entries) == 0 {
		return nil
	}
	// Encode every value into one buffer before the transaction, so that
	// the writer lock is held only for the tree work.
	now := s.clock.Now()
	buf := make([]byte, 0, size)
	raws := make([][]byte, len(entries))
	n := 0
	for i, e := range entries {
		start := len(buf)
		buf = ttlval.Append(buf, strata.ExpiryMillis(now, ttls[i]), e.Value)
		raws[i] = buf[start:len(buf):len(buf)]
		n += len(e.Key) + len(e.Value)
	}
	if err := s.life.Acquire(); err != nil {
		return err
	}
	var bad []byte
	err := s.updateBucket(func(b *bbolt.Bucket) error {
		for i, e := range entries {
			if err := b.Put(e.Key, raws[i]); err != nil {
				bad = e.Key
				return err
			}
		}
		return nil
	})
	s.life.Release()
	if err != nil {
		return s.fail("put_many", bad, err)
	}
	s.stats.Put(len(entries), n)
	return nil
}

// DeleteMany removes keys in one durable transaction and reports how many
// were live (absent, expired and repeated keys do not count).
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
	deleted := 0
	var bad []byte
	err := s.updateBucket(func(b *bbolt.Bucket) error {
		deleted = 0
		var now time.Time
		for _, k := range keys {
			raw := b.Get(k)
			if raw == nil {
				continue
			}
			if _, _, live, _ := s.readLive(raw, &now); live {
				deleted++
			}
			if err := b.Delete(k); err != nil {
				bad = k
				return err
			}
		}
		return nil
	})
	s.life.Release()
	if err != nil {
		return 0, s.fail("delete_many", bad, err)
	}
	s.stats.Delete(deleted)
	return deleted, nil
}

// PutIfAbsent stores value only if key is absent or expired, in one
// read-write transaction.
func (s *Store) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return false, inputErr("put_if_absent", key, err)
	}
	raw := ttlval.Encode(embedded.Expiry(s.clock, ttl), value)
	if err := s.life.Acquire(); err != nil {
		return false, err
	}
	stored := false
	err = s.updateBucket(func(b *bbolt.Bucket) error {
		_, _, live, err := s.readLive(b.Get(key), new(time.Time))
		if err != nil || live {
			return err
		}
		stored = true
		return b.Put(key, raw)
	})
	s.life.Release()
	if err != nil {
		return false, s.fail("put_if_absent", key, err)
	}
	if stored {
		s.stats.Put(1, len(key)+len(value))
	}
	return stored, nil
}

// GetAndDelete removes key and returns its value, in one read-write
// transaction, or strata.ErrNotFound.
func (s *Store) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if err := embedded.CheckKey(ctx, key); err != nil {
		return nil, inputErr("get_and_delete", key, err)
	}
	if err := s.life.Acquire(); err != nil {
		return nil, err
	}
	var out []byte
	err := s.updateBucket(func(b *bbolt.Bucket) error {
		raw := b.Get(key)
		if raw == nil {
			return nil
		}
		_, v, live, err := s.readLive(raw, new(time.Time))
		if err != nil {
			return err
		}
		if live {
			out = clone(v)
		}
		// An expired key is removed as well: it is dead weight.
		return b.Delete(key)
	})
	s.life.Release()
	switch {
	case err != nil:
		return nil, s.fail("get_and_delete", key, err)
	case out == nil:
		s.stats.Miss()
		return nil, strata.ErrNotFound
	}
	s.stats.Hit(len(out))
	s.stats.Delete(1)
	return out, nil
}

// CompareAndSwap stores new (with ttl) only if the current value equals old
// (old == nil: only if the key is absent or expired), in one read-write
// transaction.
func (s *Store) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, new, ttl)
	if err != nil {
		return false, inputErr("compare_and_swap", key, err)
	}
	raw := ttlval.Encode(embedded.Expiry(s.clock, ttl), new)
	if err := s.life.Acquire(); err != nil {
		return false, err
	}
	swapped := false
	var now time.Time
	err = s.updateBucket(func(b *bbolt.Bucket) error {
		_, cur, live, err := s.readLive(b.Get(key), &now)
		if err != nil {
			return err
		}
		if live != (old != nil) || (live && !bytes.Equal(cur, old)) {
			return nil
		}
		swapped = true
		return b.Put(key, raw)
	})
	s.life.Release()
	if err != nil {
		return false, s.fail("compare_and_swap", key, err)
	}
	if swapped {
		s.stats.Put(1, len(key)+len(new))
	}
	return swapped, nil
}

// Ping checks that the store is open and its bucket readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.life.Acquire(); err != nil {
		return err
	}
	err := s.view(func(*bbolt.Bucket) error { return nil })
	s.life.Release()
	return s.fail("ping", nil, err)
}

// Stats returns the store's counters. Keys is -1: counting live keys
// means reading them all. Gauges hold bbolt's own statistics:
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
func (s *Store) Stats() strata.Stats {
	st := s.stats.Stats(backend, -1)
	nsnaps := s.life.OpenSnapshots()
	if s.life.Acquire() != nil {
		return st
	}
	defer s.life.Release()
	ds := s.db.Stats()
	tx := &ds.TxStats
	st.Gauges = map[string]float64{
		"read_tx_total":          float64(ds.TxN),
		"read_tx_open":           float64(ds.OpenTxN),
		"free_pages":             float64(ds.FreePageN),
		"pending_pages":          float64(ds.PendingPageN),
		"free_alloc_bytes":       float64(ds.FreeAlloc),
		"freelist_inuse_bytes":   float64(ds.FreelistInuse),
		"tx_page_alloc_bytes":    float64(tx.GetPageAlloc()),
		"tx_node_splits_total":   float64(tx.GetSplit()),
		"tx_rebalances_total":    float64(tx.GetRebalance()),
		"tx_writes_total":        float64(tx.GetWrite()),
		"tx_write_seconds_total": tx.GetWriteTime().Seconds(),
		"tx_spill_seconds_total": tx.GetSpillTime().Seconds(),
		"snapshots_open":         float64(nsnaps),
	}
	if fi, err := os.Stat(s.path); err == nil {
		st.Gauges["file_size_bytes"] = float64(fi.Size())
	}
	return st
}

// Sweep removes every expired key now, in chunks of at most 1024 keys per
// transaction, and returns how many it removed. The background sweep calls
// it every SweepInterval. It stops early with ctx's error.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	return embedded.Sweep(ctx, s.expiredFrom, s.removeExpired)
}

// expiredFrom reads up to embedded.Chunk keys from from and returns the
// expired ones and where to resume (nil at the end of the bucket). Values
// with a damaged header are left alone: a read reports them.
func (s *Store) expiredFrom(from []byte) (expired [][]byte, next []byte, err error) {
	if err := s.life.Acquire(); err != nil {
		return nil, nil, err
	}
	defer s.life.Release()
	now := s.clock.Now()
	err = s.view(func(b *bbolt.Bucket) error {
		c := b.Cursor()
		n := 0
		for k, v := c.Seek(from); k != nil; k, v = c.Next() {
			if n == embedded.Chunk {
				next = clone(k)
				return nil
			}
			n++
			if exp, err := ttlval.Expiry(v); err == nil && exp != 0 && strata.Expired(now, exp) {
				expired = append(expired, clone(k))
			}
		}
		return nil
	})
	return expired, next, s.fail("sweep", nil, err)
}

// removeExpired deletes the keys that are still expired, in one
// transaction: a key rewritten since it was read is kept.
func (s *Store) removeExpired(keys [][]byte) (int, error) {
	if err := s.life.Acquire(); err != nil {
		return 0, err
	}
	defer s.life.Release()
	now := s.clock.Now()
	n := 0
	err := s.updateBucket(func(b *bbolt.Bucket) error {
		n = 0
		for _, k := range keys {
			exp, err := ttlval.Expiry(b.Get(k))
			if err != nil || exp == 0 || !strata.Expired(now, exp) {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("sweep", nil, err)
	}
	return n, nil
}

// Snapshot returns a point-in-time view of the store: a bbolt read
// transaction, held until the snapshot is closed (see the package
// documentation for what an open snapshot costs writers).
func (s *Store) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.life.Acquire(); err != nil {
		return nil, err
	}
	defer s.life.Release()
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, s.fail("snapshot", nil, err)
	}
	b := tx.Bucket(s.bucket)
	if b == nil {
		tx.Rollback()
		return nil, s.fail("snapshot", nil, errNoBucket)
	}
	sn := &snapshot{s: s, tx: tx, b: b}
	s.life.AddSnapshot(sn)
	return sn, nil
}

// snapshot is a read transaction. Its methods take mu while they use tx, so
// that Close (the snapshot's or the store's) never races a reader.
type snapshot struct {
	s  *Store
	mu sync.Mutex
	tx *bbolt.Tx // nil once closed
	b  *bbolt.Bucket
}

// Entries yields copies of the live entries under prefix, in key order,
// reading them from the snapshot's transaction in chunks (see
// embedded.Entries): the snapshot's lock is not held while the loop body
// runs.
func (sn *snapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[strata.Entry, error] {
	return embedded.Entries(ctx, prefix, sn.entriesFrom)
}

// entriesFrom copies up to embedded.Chunk live entries >= from under prefix
// and returns where to resume (nil when done).
func (sn *snapshot) entriesFrom(from, prefix []byte) (chunk []strata.Entry, next []byte, err error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tx == nil {
		return nil, nil, strata.ErrClosed
	}
	defer recoverCorrupt(&err)
	now := sn.s.clock.Now()
	c := sn.b.Cursor()
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(chunk) == embedded.Chunk {
			return chunk, clone(k), nil
		}
		exp, val, err := ttlval.Decode(v)
		if err != nil {
			return nil, nil, sn.s.fail("snapshot_entries", clone(k), err)
		}
		left := strata.Remaining(now, exp)
		if left == 0 {
			continue
		}
		chunk = append(chunk, strata.Entry{Key: clone(k), Value: clone(val), TTL: left})
	}
	return chunk, nil, nil
}

// Close ends the snapshot's read transaction. It is safe to call more than
// once and after the store is closed.
func (sn *snapshot) Close() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.tx == nil {
		return nil
	}
	// Rolled back under mu: the store's Close, which also takes mu, must
	// not close the file while this is in flight.
	err := sn.tx.Rollback()
	sn.tx, sn.b = nil, nil
	sn.s.life.RemoveSnapshot(sn)
	return err
}
