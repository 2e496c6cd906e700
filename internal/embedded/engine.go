// Package embedded is the strata store over an ordered key-value database
// in the process: one implementation of the contract and of every optional
// capability, shared by stores/bolt and stores/pebble, above a small
// [Engine] interface that each of them implements for its database.
//
// The split follows the driver pattern: the [Store] checks input before any
// I/O, holds the store open against Close, encodes and decodes the TTL header
// of every value (package internal/ttlval), decides liveness against the
// clock, counts, and wraps every failure in exactly one *strata.OpError. The
// engine only reads and writes raw bytes: a point read, a short scan, an
// atomic read-modify-write over declared keys, a point-in-time snapshot,
// its gauges and Close.
//
// A store package opens its database, wraps it in its engine and hands it to
// [New] with a [Config]; its exported Store type embeds the *Store.
package embedded

// Engine is an ordered key-value database as the [Store] drives it. Keys
// are non-empty byte strings in byte order; values are raw stored bytes
// (a ttlval header, then the caller's value) that the engine keeps as given.
//
// Every method is safe for concurrent use. The Store calls none after
// Close, and calls Close once.
//
// Errors: an engine returns its database's errors as they are; the Store
// wraps each in one *strata.OpError. Damage the engine detects (a failed
// checksum, a panic of the database on a damaged page) is returned as an
// error matching strata.ErrCorrupt, never as a panic.
type Engine interface {
	// Get reads the current value of key (see [Reader]).
	Reader

	// View calls fn with a Reader valid only during fn. The engine says
	// whether the reads of one view see one instant (a read transaction
	// does); the Store uses a view for the reads of one batch call.
	View(fn func(r Reader) error) error

	// Scan calls fn with each key >= from that starts with prefix, in
	// byte order, and its raw value, until fn returns false or the keys run
	// out. key and raw are valid only during the call. A Scan is one short
	// read (a read transaction, an iterator); the Store calls it once per
	// chunk of keys and holds nothing open between calls.
	Scan(from, prefix []byte, fn func(key, raw []byte) bool) error

	// Update runs fn in the engine's atomic section for keys and, if fn
	// returns nil, applies the writes fn made through tx, all of them or
	// none, and with d == Durable makes them durable before it returns
	// (unless the engine was opened without fsync). If fn returns an error,
	// nothing is written and Update returns that error as it is.
	//
	// fn reads and writes only keys in keys. Update is atomic against every
	// other Update that shares a key with it: no write of another Update
	// lands between fn's reads and its writes, and no reader sees part of
	// fn's writes. Whether reads through tx see fn's own earlier writes is
	// up to the engine: fn must not depend on it. fn must not call the
	// engine. The engine may keep the slices given to tx until Update
	// returns.
	Update(keys [][]byte, d Durability, fn func(tx Txn) error) error

	// Snapshot returns a point-in-time view of the database that later
	// writes do not change, held until it is closed.
	Snapshot() (Snapshot, error)

	// Gauges returns the database's own readings for strata.Stats.Gauges,
	// named in snake_case with their unit as a suffix. The map is the
	// caller's.
	Gauges() map[string]float64

	// Close closes the database.
	Close() error
}

// Reader reads single keys.
type Reader interface {
	// Get appends the raw value of key to dst and returns the extended
	// slice, which the caller owns, with ok == true; or dst unchanged and
	// ok == false when key is absent.
	Get(key, dst []byte) (raw []byte, ok bool, err error)
}

// Txn is what fn of [Engine.Update] reads and writes through. Writes take
// effect when Update returns nil.
type Txn interface {
	Reader

	// Put stores raw under key. The engine may keep both slices until
	// Update returns: the caller does not change them meanwhile.
	Put(key, raw []byte) error

	// Delete removes key; an absent key is not an error.
	Delete(key []byte) error
}

// Snapshot is a point-in-time view from [Engine.Snapshot]. The Store calls
// its methods from one goroutine at a time, and none after Close.
type Snapshot interface {
	// Scan is [Engine.Scan] over the snapshot.
	Scan(from, prefix []byte, fn func(key, raw []byte) bool) error

	// Close releases the snapshot.
	Close() error
}

// Durability says when the writes of an [Engine.Update] must be on disk.
type Durability uint8

const (
	// Durable writes are on disk when Update returns, unless the engine
	// was opened without fsync.
	Durable Durability = iota
	// Lazy writes may reach the disk later. The Store uses it for writes
	// whose loss no reader could see: the sweep's deletions of expired
	// keys. An engine may treat it as Durable.
	Lazy
)
