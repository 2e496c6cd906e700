// Package embedded holds what the embedded stores, stores/bolt and
// stores/pebble, have in common: the parts of a strata.Store over an ordered
// key-value database in the process that do not depend on which database it
// is.
//
//   - [Lifecycle]: the lock that keeps the database from being used after
//     Close, the snapshots Close releases first, and the background work it
//     stops.
//   - [Keys] and [Entries]: iteration in chunks, each read by the store in a
//     short transaction (or through a short-lived iterator), resuming after
//     the last key: nothing is held open while the caller's loop body runs.
//   - [KeySlab]: copies of keys in shared blocks, for the chunks of Keys.
//   - [Sweep]: a pass that removes expired keys chunk by chunk.
//   - [CheckKey], [CheckKeys], [CheckEntry], [Live], [Expiry]: the input
//     checks made before any I/O and the expiry rules, reading the clock only
//     for keys that can expire.
//
// Each store keeps what is specific to its database: how a chunk is read,
// how values are written and deleted, its locking of keys, its errors and
// its statistics.
package embedded

import (
	"context"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/strata-kv/strata"
)

// Chunk is how many keys a snapshot's Entries and the sweep read per
// transaction or iterator.
const Chunk = 1024

// Keys starts with firstKeysChunk keys (a loop that stops early reads
// little) and doubles up to maxKeysChunk (a full walk begins few
// transactions).
const (
	firstKeysChunk = 128
	maxKeysChunk   = 4096
)

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// CheckKey checks ctx and the key of an operation: ctx's error, or
// strata.CheckKey's.
func CheckKey(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return strata.CheckKey(key)
}

// CheckKeys runs CheckKey on each of keys in turn and returns the first
// failure and its key. It does not look at ctx if keys is empty.
func CheckKeys(ctx context.Context, keys [][]byte) (bad []byte, err error) {
	for _, k := range keys {
		if err := CheckKey(ctx, k); err != nil {
			return k, err
		}
	}
	return nil, nil
}

// CheckEntry checks ctx and a write, and resolves its TTL: ctx's error, or
// what strata.CheckEntry returns for the store's defaultTTL and
// maxValueSize.
func CheckEntry(ctx context.Context, key, value []byte, ttl, defaultTTL time.Duration, maxValueSize int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return strata.CheckEntry(key, value, ttl, defaultTTL, maxValueSize)
}

// Live reports whether a value with the absolute expiry exp (Unix
// milliseconds, 0 for never) is live. The clock is read only for a value
// that can expire, once per *now: a zero *now is filled in.
func Live(clock strata.Clock, now *time.Time, exp int64) bool {
	// Small enough to inline: a value without expiry costs no call.
	return exp == 0 || unexpired(clock, now, exp)
}

func unexpired(clock strata.Clock, now *time.Time, exp int64) bool {
	if now.IsZero() {
		*now = clock.Now()
	}
	return !strata.Expired(*now, exp)
}

// Expiry returns the absolute expiry of a write made now with a resolved
// ttl, reading the clock only for a key that expires.
func Expiry(clock strata.Clock, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return strata.ExpiryMillis(clock.Now(), ttl)
}

// slabSize is the size of the blocks KeySlab copies keys into.
const slabSize = 16 << 10

// KeySlab copies keys into shared 16 KiB blocks: one allocation per block
// instead of one per key. The zero value is ready to use.
type KeySlab struct{ buf []byte }

// Copy returns a copy of k. Each copy's capacity is its length, so a caller
// appending to one key never writes into the next.
func (ks *KeySlab) Copy(k []byte) []byte {
	if cap(ks.buf)-len(ks.buf) < len(k) {
		ks.buf = make([]byte, 0, max(slabSize, len(k)))
	}
	start := len(ks.buf)
	ks.buf = append(ks.buf, k...)
	return ks.buf[start:len(ks.buf):len(ks.buf)]
}

// ReadKeys reads one chunk for [Keys]: it appends to chunk copies of up to
// limit live keys >= from that start with prefix, and returns the chunk and
// the key to resume from (nil when there is no more).
type ReadKeys func(chunk [][]byte, from, prefix []byte, limit int) (_ [][]byte, next []byte, err error)

// Keys is a store's Keys: it yields the keys that read returns, chunk by
// chunk, from prefix on. It copies prefix first (the caller may reuse its
// buffer) and passes the copy to read. The first chunk has 128 keys and
// each next one twice as many, up to 4096; the chunk's array is reused, the
// keys in it are the caller's. ctx is checked before each chunk and every 64
// keys; its error, or read's, is yielded and ends the iteration.
func Keys(ctx context.Context, prefix []byte, read ReadKeys) iter.Seq2[[]byte, error] {
	prefix = clone(prefix)
	return func(yield func([]byte, error) bool) {
		from := prefix
		done := ctx.Done()
		buf := make([][]byte, 0, firstKeysChunk)
		limit := firstKeysChunk
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			chunk, next, err := read(buf[:0], from, prefix, limit)
			buf, limit = chunk, min(2*limit, maxKeysChunk)
			if err != nil {
				yield(nil, err)
				return
			}
			for i, k := range chunk {
				if i%64 == 63 {
					select {
					case <-done:
						yield(nil, ctx.Err())
						return
					default:
					}
				}
				if !yield(k, nil) {
					return
				}
			}
			if next == nil {
				return
			}
			from = next
		}
	}
}

// ReadEntries reads one chunk for [Entries]: copies of up to [Chunk] live
// entries >= from under prefix, and the key to resume from (nil when there
// is no more).
type ReadEntries func(from, prefix []byte) (chunk []strata.Entry, next []byte, err error)

// Entries is a snapshot's Entries: it yields the entries that read returns,
// chunk by chunk, from prefix on. It copies prefix first (the caller may
// reuse its buffer) and passes the copy to read. ctx is checked before each
// chunk; its error, or read's, is yielded and ends the iteration.
func Entries(ctx context.Context, prefix []byte, read ReadEntries) iter.Seq2[strata.Entry, error] {
	prefix = clone(prefix)
	return func(yield func(strata.Entry, error) bool) {
		from := prefix
		for {
			if err := ctx.Err(); err != nil {
				yield(strata.Entry{}, err)
				return
			}
			chunk, next, err := read(from, prefix)
			if err != nil {
				yield(strata.Entry{}, err)
				return
			}
			for _, en := range chunk {
				if !yield(en, nil) {
					return
				}
			}
			if next == nil {
				return
			}
			from = next
		}
	}
}

// Sweep removes a store's expired keys, walking them chunk by chunk from
// the first: expired reads up to [Chunk] keys from from and returns the
// expired ones and where to resume (nil at the end); remove deletes, of
// those, the keys still expired and returns how many it deleted. Sweep
// returns how many keys it removed in all. It stops at the first error,
// and before the next chunk once ctx is done; it then returns ctx's error.
func Sweep(ctx context.Context, expired func(from []byte) (keys [][]byte, next []byte, err error), remove func(keys [][]byte) (int, error)) (int, error) {
	n, err := sweep(ctx.Done(), expired, remove)
	if err == nil {
		err = ctx.Err()
	}
	return n, err
}

func sweep(done <-chan struct{}, expired func(from []byte) ([][]byte, []byte, error), remove func([][]byte) (int, error)) (int, error) {
	var from []byte
	removed := 0
	for {
		select {
		case <-done:
			return removed, nil
		default:
		}
		keys, next, err := expired(from)
		if err != nil {
			return removed, err
		}
		if len(keys) > 0 {
			n, err := remove(keys)
			removed += n
			if err != nil {
				return removed, err
			}
		}
		if next == nil {
			return removed, nil
		}
		from = next
	}
}

// Lifecycle is the open or closed state of an embedded store: a lock that
// every method holds for reading while it uses the database and Close holds
// for writing (so that the database is never used after it is closed), the
// open snapshots Close releases, and the background work Close stops. The
// zero value is an open store with nothing running.
type Lifecycle struct {
	mu     sync.RWMutex
	closed bool

	snapMu sync.Mutex
	snaps  map[io.Closer]struct{} // open snapshots, released by Close

	cancel context.CancelFunc // stops the background work; nil if none
	wg     sync.WaitGroup
}

// Acquire takes the lock for reading, or returns strata.ErrClosed once the
// store is closed. The caller calls Release when Acquire returned nil.
func (l *Lifecycle) Acquire() error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return strata.ErrClosed
	}
	return nil
}

// Release releases the lock Acquire took.
func (l *Lifecycle) Release() { l.mu.RUnlock() }

// Every runs fn every interval in a goroutine until Close, with a context
// that Close cancels. Call it in Open, before the store is in use, at most
// once.
func (l *Lifecycle) Every(interval time.Duration, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
}

// AddSnapshot records an open snapshot, for Close to close. The snapshot's
// Close calls RemoveSnapshot. Call it while holding the lock (after
// Acquire), so that Close does not miss it.
func (l *Lifecycle) AddSnapshot(sn io.Closer) {
	l.snapMu.Lock()
	if l.snaps == nil {
		l.snaps = make(map[io.Closer]struct{})
	}
	l.snaps[sn] = struct{}{}
	l.snapMu.Unlock()
}

// RemoveSnapshot forgets a snapshot that has been closed.
func (l *Lifecycle) RemoveSnapshot(sn io.Closer) {
	l.snapMu.Lock()
	delete(l.snaps, sn)
	l.snapMu.Unlock()
}

// OpenSnapshots returns how many snapshots are open.
func (l *Lifecycle) OpenSnapshots() int {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	return len(l.snaps)
}

// Close closes the open snapshots, marks the store closed, closes the
// snapshots taken meanwhile, calls closeDB under the lock, then stops the
// background work and waits for it. It returns closeDB's error; once the
// store is closed, it returns nil at once.
//
// Snapshots are closed before the lock is taken: a writer may wait for
// their transactions (bbolt's re-map does), and Close waits for that
// writer.
func (l *Lifecycle) Close(closeDB func() error) error {
	l.closeSnapshots()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.closeSnapshots() // any taken while Close waited for the lock
	err := closeDB()
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	return err
}

func (l *Lifecycle) closeSnapshots() {
	l.snapMu.Lock()
	snaps := make([]io.Closer, 0, len(l.snaps))
	for sn := range l.snaps {
		snaps = append(snaps, sn)
	}
	l.snapMu.Unlock()
	for _, sn := range snaps {
		sn.Close()
	}
}
