package embedded

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
	"github.com/strata-kv/strata/storekit"
)

// Config is what a Store needs besides its engine: the store's options as
// resolved by the store package, and the limits of the engine.
type Config struct {
	// Backend names the store kind in Stats and errors, such as "bolt".
	Backend string

	// Name names the database in messages, such as its path.
	Name string

	// Clock tells the time for expiry; nil means the system clock.
	Clock strata.Clock

	// DefaultTTL applies to writes with ttl == 0; 0 means none.
	DefaultTTL time.Duration

	// MaxValueSize bounds values, in bytes; 0, or more than ValueLimit,
	// means ValueLimit.
	MaxValueSize int

	// ValueLimit is the largest value the engine can store behind the
	// header.
	ValueLimit int

	// BatchLimit bounds the bytes of one write batch (PutMany, Commit),
	// reckoned as key, header and value plus 16 bytes of record overhead per
	// entry; a batch that reaches it fails with strata.ErrValueTooLarge
	// before any I/O. 0 means no limit.
	BatchLimit uint64

	// SweepInterval is how often the background sweep removes expired
	// keys; 0 or less means no background sweep.
	SweepInterval time.Duration

	// BlindDeletes makes Delete write without reading the key first, as an
	// LSM tree can; Stats then count every Delete, live key or not. Without
	// it, Delete reads the key in its atomic section and counts only a live
	// key.
	BlindDeletes bool

	// GaugeHelp explains the engine's Gauges, one sentence each, for
	// strata.Stats.GaugeHelp. The store hands out copies.
	GaugeHelp map[string]string
}

// batchOverhead is what BatchLimit reckons per entry besides its bytes.
const batchOverhead = 16

// Store is a strata.Store over an [Engine], with every optional
// capability: strata.Batcher, Atomic, Expirer, BatchExpirer, Snapshotter,
// Pinger, StatsReporter and Committer. Create one with [New]; it is safe
// for concurrent use.
//
// Keys and snapshots yield keys in byte order, each exactly once, reading
// them in chunks (128 keys doubling to 4096 for Keys, 1024 for a
// snapshot's Entries), one engine Scan per chunk, resuming after the last
// key: nothing is held open while the caller's loop body runs. Expired keys
// are invisible to every read at once; the sweep removes them.
type Store struct {
	eng   Engine
	cfg   Config
	clock strata.Clock
	stats storekit.Counters

	// life is acquired by every method while it uses eng and closed by
	// Close, so that eng is never used after it is closed; it also holds
	// the open snapshots and runs the background sweep.
	life lifecycle
}

var (
	_ strata.Store         = (*Store)(nil)
	_ strata.Batcher       = (*Store)(nil)
	_ strata.Atomic        = (*Store)(nil)
	_ strata.Expirer       = (*Store)(nil)
	_ strata.BatchExpirer  = (*Store)(nil)
	_ strata.Snapshotter   = (*Store)(nil)
	_ strata.Pinger        = (*Store)(nil)
	_ strata.StatsReporter = (*Store)(nil)
	_ strata.Committer     = (*Store)(nil)
)

// New returns a Store over eng, which it owns from then on: Close closes
// it, and so does New when it fails. New checks that the first stored value
// has a strata header (the database may be some other program's) and
// starts the background sweep. Its errors are *strata.OpError, matching
// strata.ErrCorrupt for a database strata did not write.
func New(eng Engine, cfg Config) (*Store, error) {
	if cfg.Clock == nil {
		cfg.Clock = strata.SystemClock{}
	}
	if cfg.MaxValueSize <= 0 || cfg.MaxValueSize > cfg.ValueLimit {
		cfg.MaxValueSize = cfg.ValueLimit
	}
	s := &Store{eng: eng, cfg: cfg, clock: cfg.Clock}
	if err := s.checkFirst(); err != nil {
		eng.Close()
		return nil, storekit.NewOpError("open", cfg.Backend, nil, err)
	}
	if cfg.SweepInterval > 0 {
		// Errors are counted in Stats.Errors; the next tick retries.
		s.life.every(cfg.SweepInterval, func(ctx context.Context) { s.Sweep(ctx) })
	}
	return s, nil
}

// checkFirst fails if the first stored value has no strata header.
func (s *Store) checkFirst() error {
	var bad []byte
	var err error
	serr := s.eng.Scan(nil, nil, func(k, raw []byte) bool {
		if _, err = ttlval.Expiry(raw); err != nil {
			bad = clone(k)
		}
		return false
	})
	if serr != nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("%s is not a strata store (key %s): %w", s.cfg.Name, storekit.QuoteKey(bad), err)
	}
	return nil
}

// rejected wraps rejected input or a context error; it is not counted.
func (s *Store) rejected(op string, key []byte, err error) error {
	return storekit.NewOpError(op, s.cfg.Backend, key, err)
}

// fail counts and wraps a failure of the engine or of a stored value. It
// returns nil and strata.ErrClosed as they are.
func (s *Store) fail(op string, key []byte, err error) error {
	if err == nil || err == strata.ErrClosed {
		return err
	}
	s.stats.Error()
	return storekit.NewOpError(op, s.cfg.Backend, key, err)
}

// update runs fn in the engine's atomic section for keys while the store
// is open, and returns the engine's error or fn's as they are.
func (s *Store) update(keys [][]byte, d Durability, fn func(tx Txn) error) error {
	if err := s.life.acquire(); err != nil {
		return err
	}
	defer s.life.release()
	return s.eng.Update(keys, d, fn)
}

// checkWrite validates a write and resolves its TTL.
func (s *Store) checkWrite(ctx context.Context, key, value []byte, ttl time.Duration) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return storekit.CheckEntry(key, value, ttl, s.cfg.DefaultTTL, s.cfg.MaxValueSize)
}

// checkBatchSize fails with strata.ErrValueTooLarge if a batch of size
// bytes (see Config.BatchLimit) reaches the engine's limit.
func (s *Store) checkBatchSize(size uint64) error {
	if s.cfg.BatchLimit > 0 && size >= s.cfg.BatchLimit {
		return fmt.Errorf("%w: the batch needs %d bytes, the limit is %d", strata.ErrValueTooLarge, size, s.cfg.BatchLimit)
	}
	return nil
}

// Close releases open snapshots, stops the sweep and closes the engine.
// Every method then fails with strata.ErrClosed; closing again returns nil.
func (s *Store) Close() error {
	if err := s.life.close(s.eng.Close); err != nil {
		return storekit.NewOpError("close", s.cfg.Backend, nil, err)
	}
	return nil
}

// Ping checks that the store is open and its database answers a read.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.life.acquire(); err != nil {
		return err
	}
	_, _, err := s.eng.Get([]byte{0}, nil)
	s.life.release()
	return s.fail("ping", nil, err)
}

// Stats returns the store's counters. Keys is -1: counting live keys
// means reading them all. Gauges are the engine's, while the store is
// open.
func (s *Store) Stats() strata.Stats {
	st := s.stats.Stats(s.cfg.Backend, -1)
	if s.life.acquire() != nil {
		return st
	}
	st.Gauges = s.eng.Gauges()
	st.GaugeHelp = maps.Clone(s.cfg.GaugeHelp)
	s.life.release()
	return st
}

// Capabilities is every interface a Store implements. A store package
// whose Store embeds one checks it at compile time:
//
//	var _ embedded.Capabilities = (*Store)(nil)
type Capabilities interface {
	strata.Store
	strata.Batcher
	strata.Atomic
	strata.Expirer
	strata.BatchExpirer
	strata.Snapshotter
	strata.Pinger
	strata.StatsReporter
	strata.Committer
}
