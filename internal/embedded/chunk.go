package embedded

import (
	"context"
	"iter"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// chunkSize is how many keys a snapshot's Entries and the sweep read per
// engine Scan.
const chunkSize = 1024

// Keys starts with firstKeysChunk keys (a loop that stops early reads
// little) and doubles up to maxKeysChunk (a full walk begins few scans).
const (
	firstKeysChunk = 128
	maxKeysChunk   = 4096
)

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// slabSize is the size of the blocks keySlab copies keys into.
const slabSize = 16 << 10

// keySlab copies keys into shared 16 KiB blocks: one allocation per block
// instead of one per key. The zero value is ready to use.
type keySlab struct{ buf []byte }

// copy returns a copy of k. Each copy's capacity is its length, so a caller
// appending to one key never writes into the next.
func (ks *keySlab) copy(k []byte) []byte {
	if cap(ks.buf)-len(ks.buf) < len(k) {
		ks.buf = make([]byte, 0, max(slabSize, len(k)))
	}
	start := len(ks.buf)
	ks.buf = append(ks.buf, k...)
	return ks.buf[start:len(ks.buf):len(ks.buf)]
}

// readKeys reads one chunk for [chunkedKeys]: it appends to chunk copies of
// up to limit live keys >= from that start with prefix, and returns the
// chunk and the key to resume from (nil when there is no more).
type readKeys func(chunk [][]byte, from, prefix []byte, limit int) (_ [][]byte, next []byte, err error)

// chunkedKeys yields the keys that read returns, chunk by chunk, from
// prefix on. It copies prefix first (the caller may reuse its buffer) and
// passes the copy to read. The first chunk has 128 keys and each next one
// twice as many, up to 4096; the chunk's array is reused, the keys in it
// are the caller's. ctx is checked before each chunk and every 64 keys; its
// error, or read's, is yielded and ends the iteration.
func chunkedKeys(ctx context.Context, prefix []byte, read readKeys) iter.Seq2[[]byte, error] {
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

// readEntries reads one chunk for [chunkedEntries]: copies of up to
// chunkSize live entries >= from under prefix, each with its absolute
// expiry in exps (Unix milliseconds, 0 for none; the entries' TTL fields
// are not read), and the key to resume from (nil when there is no more).
type readEntries func(from, prefix []byte) (chunk []strata.Entry, exps []int64, next []byte, err error)

// chunkedEntries yields the entries that read returns, chunk by chunk,
// from prefix on, each with the time it has left when it is yielded, as
// the strata.Snapshot contract says (an entry that has expired since its
// chunk was read is skipped): the caller's loop body may take long between
// two entries. now is the store's clock. It copies prefix first (the
// caller may reuse its buffer) and passes the copy to read. ctx is checked
// before each chunk; its error, or read's, is yielded and ends the
// iteration.
func chunkedEntries(ctx context.Context, prefix []byte, read readEntries, now func() time.Time) iter.Seq2[strata.Entry, error] {
	prefix = clone(prefix)
	return func(yield func(strata.Entry, error) bool) {
		from := prefix
		for {
			if err := ctx.Err(); err != nil {
				yield(strata.Entry{}, err)
				return
			}
			chunk, exps, next, err := read(from, prefix)
			if err != nil {
				yield(strata.Entry{}, err)
				return
			}
			for i, en := range chunk {
				en.TTL = strata.NoExpiry
				if exps[i] != 0 {
					if en.TTL = storekit.Remaining(now(), exps[i]); en.TTL == 0 {
						continue
					}
				}
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

// sweepChunks removes expired keys chunk by chunk from the first: expired
// reads up to chunkSize keys from from and returns the expired ones and
// where to resume (nil at the end); remove deletes, of those, the keys
// still expired and returns how many it deleted. sweepChunks returns how
// many keys it removed in all. It stops at the first error, and before the
// next chunk once ctx is done; it then returns ctx's error.
func sweepChunks(ctx context.Context, expired func(from []byte) (keys [][]byte, next []byte, err error), remove func(keys [][]byte) (int, error)) (int, error) {
	done := ctx.Done()
	var from []byte
	removed := 0
	for {
		select {
		case <-done:
			return removed, ctx.Err()
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
			return removed, ctx.Err()
		}
		from = next
	}
}
