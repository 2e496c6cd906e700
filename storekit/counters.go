package storekit

import (
	"sync/atomic"

	"github.com/strata-kv/strata"
)

// Counters are the common strata.Stats counters of one store, updated
// lock-free on the hot path. The zero value is ready to use.
type Counters struct {
	hits, misses, puts, deletes, errors atomic.Uint64
	bytesRead, bytesWritten             atomic.Uint64
}

// Hit counts a read that returned n value bytes.
func (c *Counters) Hit(n int) {
	c.hits.Add(1)
	c.bytesRead.Add(uint64(n))
}

// Miss counts a read that found nothing.
func (c *Counters) Miss() {
	c.misses.Add(1)
}

// Reads counts a batch read of keys keys, of which hits were found,
// returning n value bytes.
func (c *Counters) Reads(keys, hits, n int) {
	c.hits.Add(uint64(hits))
	c.misses.Add(uint64(keys - hits))
	c.bytesRead.Add(uint64(n))
}

// Put counts keys writes carrying n key and value bytes.
func (c *Counters) Put(keys, n int) {
	c.puts.Add(uint64(keys))
	c.bytesWritten.Add(uint64(n))
}

// Delete counts keys deletions.
func (c *Counters) Delete(keys int) { c.deletes.Add(uint64(keys)) }

// Error counts a failed operation.
func (c *Counters) Error() { c.errors.Add(1) }

// Stats returns the counters as strata.Stats with Keys set to keys (-1 if
// unknown).
func (c *Counters) Stats(backend string, keys int64) strata.Stats {
	// Every read is a hit or a miss: Gets is derived, one atomic less on
	// the read path.
	hits, misses := c.hits.Load(), c.misses.Load()
	return strata.Stats{
		Backend:      backend,
		Gets:         hits + misses,
		Hits:         hits,
		Misses:       misses,
		Puts:         c.puts.Load(),
		Deletes:      c.deletes.Load(),
		Errors:       c.errors.Load(),
		BytesRead:    c.bytesRead.Load(),
		BytesWritten: c.bytesWritten.Load(),
		Keys:         keys,
	}
}
