package strata

import (
	"context"
	"iter"
	"time"
)

// MaxKeyLen is the longest key, in bytes, that any store accepts.
const MaxKeyLen = 16 << 10

// NoExpiry, passed as a TTL, stores a key that never expires, even when the
// store has a default TTL. [Expirer.TTL] reports it for keys without expiry.
const NoExpiry time.Duration = -1

// Store is the contract every backend meets. All methods are safe for
// concurrent use.
//
// Keys are 1 to MaxKeyLen bytes, any bytes (storekit.CheckKey checks
// them); values may be empty. Stores copy the slices they are given before
// returning and return slices the caller owns and may modify.
type Store interface {
	// Get returns the value stored under key. It returns ErrNotFound when the
	// key is absent or expired. A present empty value is a non-nil, empty
	// slice.
	Get(ctx context.Context, key []byte) ([]byte, error)

	// Put stores value under key, replacing any previous value and TTL.
	// ttl > 0 expires the key after ttl (rounded up to the millisecond);
	// ttl == 0 applies the store's default TTL, if any; ttl == NoExpiry keeps
	// the key forever. Any other negative ttl fails with ErrInvalidTTL.
	Put(ctx context.Context, key, value []byte, ttl time.Duration) error

	// Delete removes key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key []byte) error

	// Keys iterates over the live keys that start with prefix (every key if
	// prefix is empty). Each key live for the whole iteration is yielded at
	// least once; a store may document stronger guarantees (the built-in
	// embedded stores yield each key exactly once, in byte order). Keys
	// written or deleted during the iteration may or may not appear.
	//
	// An error is yielded as (nil, err) and ends the iteration. Breaking out
	// of the loop early releases every resource the iteration held.
	Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error]

	// Close releases the store. Afterwards every method fails with
	// ErrClosed. Closing twice returns nil.
	Close() error
}

// Entry is one key, its value and its TTL.
//
// When written ([Batcher.PutMany]), TTL follows the rules of [Store.Put].
// When read from a [Snapshot], TTL is the time left at the moment the entry
// was yielded, or NoExpiry.
type Entry struct {
	Key   []byte
	Value []byte
	TTL   time.Duration
}

// Batcher is implemented by stores that can act on many keys in one round
// trip or one transaction. Use the helpers [GetMany], [PutMany] and
// [DeleteMany], which fall back to a loop for stores without it.
type Batcher interface {
	// GetMany returns one value per key, in order; result[i] is nil exactly
	// when keys[i] is absent or expired.
	GetMany(ctx context.Context, keys [][]byte) ([][]byte, error)

	// PutMany stores every entry. Embedded stores apply the batch atomically;
	// network stores document what a failure part-way leaves behind. Every
	// entry is validated before anything is written.
	PutMany(ctx context.Context, entries []Entry) error

	// DeleteMany removes every key and reports how many of them were live.
	DeleteMany(ctx context.Context, keys [][]byte) (deleted int, err error)
}

// Atomic is implemented by stores that offer read-modify-write operations
// that are atomic against every other client of the same backend. There is
// no fallback: the helpers return ErrUnsupported for stores without it.
type Atomic interface {
	// PutIfAbsent stores value only if key is absent or expired and reports
	// whether it did.
	PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error)

	// GetAndDelete removes key and returns the value it held, or
	// ErrNotFound.
	GetAndDelete(ctx context.Context, key []byte) ([]byte, error)

	// CompareAndSwap stores new (with ttl) only if the current value equals
	// old, and reports whether it did. A nil old means the key must be
	// absent; an empty, non-nil old means the key must hold an empty value.
	CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error)
}

// Expirer is implemented by stores that can report the time a key has left.
type Expirer interface {
	// TTL returns the time key has left, NoExpiry if it never expires, or
	// ErrNotFound.
	TTL(ctx context.Context, key []byte) (time.Duration, error)

	// GetWithTTL returns the value and remaining TTL of key in one round
	// trip, or ErrNotFound.
	GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error)
}

// BatchExpirer is implemented by stores that read the values and remaining
// TTLs of many keys in one round trip or one transaction: a cache in front
// of the store fills itself from the misses of a GetMany through it. Use the
// helper [GetManyWithTTL], which falls back to GetWithTTL per key.
type BatchExpirer interface {
	// GetManyWithTTL returns one entry per key, in order: Key is keys[i];
	// Value is nil exactly when the key is absent or expired, and otherwise
	// TTL is the time it has left (NoExpiry for none).
	GetManyWithTTL(ctx context.Context, keys [][]byte) ([]Entry, error)
}

// Snapshotter is implemented by stores that can iterate their content.
type Snapshotter interface {
	// Snapshot returns a view of the store. The built-in embedded stores
	// return a point-in-time view unaffected by later writes; network stores
	// document their weaker guarantee. The caller must Close it.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is a readable view of a store's entries.
type Snapshot interface {
	// Entries iterates over the live entries whose key starts with prefix.
	// An error is yielded as (Entry{}, err) and ends the iteration. Entries
	// may be called more than once.
	Entries(ctx context.Context, prefix []byte) iter.Seq2[Entry, error]

	// Close releases the snapshot. It is safe to call more than once.
	Close() error
}

// Pinger is implemented by stores that can check their backend is healthy.
type Pinger interface {
	// Ping returns nil when the backend answers.
	Ping(ctx context.Context) error
}

// StatsReporter is implemented by stores that count their work.
type StatsReporter interface {
	// Stats returns a copy of the store's counters.
	Stats() Stats
}

// Stats are the counters every built-in store keeps. Counters only grow
// for the life of the store.
type Stats struct {
	// Backend names the store kind, such as "memory" or "redis".
	Backend string

	Gets    uint64 // keys read (Get, GetMany per key, GetWithTTL, GetAndDelete)
	Hits    uint64 // reads that found a live key
	Misses  uint64 // reads that found nothing
	Puts    uint64 // keys written (Put, PutMany per entry, atomic writes)
	Deletes uint64 // keys deleted (Delete, DeleteMany per key)
	Errors  uint64 // operations that failed for a reason other than bad input or a miss

	BytesRead    uint64 // value bytes returned to callers
	BytesWritten uint64 // key and value bytes accepted from callers

	// Keys is the number of live keys when the store knows it cheaply, or -1.
	Keys int64

	// Gauges holds backend-specific readings, named in snake_case with their
	// unit as a suffix (for example "memtable_size_bytes"), ready to export.
	// A name ending in _total is a counter: it only grows.
	Gauges map[string]float64

	// GaugeHelp explains readings of Gauges, by name, each in a sentence
	// that an exporter can use as the metric's help text. A reading
	// without an entry is explained only by its name.
	GaugeHelp map[string]string

	// Latency is the distribution of the time the store's operations take
	// (a batch is one operation), for stores that time them; nil for the
	// others.
	Latency *Histogram
}

// HitRate returns Hits/(Hits+Misses), or 0 before the first read.
func (s Stats) HitRate() float64 {
	n := s.Hits + s.Misses
	if n == 0 {
		return 0
	}
	return float64(s.Hits) / float64(n)
}

// Clock tells the time. Stores take one as an option so that tests control
// expiry; nil means the system clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
