// Package tier puts a bounded in-process cache (L1, ristretto v2) in front
// of any strata.Store (the L2). A *Tier is itself a strata.Store.
//
//	l2, _ := redis.Open(ctx, cfg)
//	t, err := tier.New(l2, &tier.Options{MaxBytes: 256 << 20})
//	...
//	v, err := t.Get(ctx, key) // from L1, or read through from the L2
//
// # Semantics
//
//   - Write-through: Put, Delete, batches and atomic operations go to the
//     L2 first; only once the L2 succeeded does L1 change. A failed write
//     (including one that may have been applied, strata.ErrIndeterminate)
//     leaves no L1 entry for its key.
//   - TTL: an L1 entry never outlives its L2 copy. Read-through fills use
//     the L2's GetWithTTL (one round trip) and keep the entry for the time
//     the L2 reported left, counted from before the read, capped by
//     Options.MaxLocalTTL. A write with ttl > 0 or strata.NoExpiry is cached
//     for that long (capped likewise). A write with ttl == 0 means the L2's
//     default TTL, which the tier does not know: it is not cached, and the
//     next read fills it with the real TTL. Expiry is checked against
//     Options.Clock, the clock the L2 uses.
//   - Linearizable per key within one process: every Get returns a value
//     the key held at some instant during the call. A read-through fill
//     racing a write never installs the older value (see the coherence
//     protocol in docs/tier.md). Concurrent misses of one key make one L2
//     read. GetMany serves what L1 holds and reads all the misses with one
//     L2 GetMany; each key is linearizable on its own, the batch is not a
//     snapshot.
//   - Negative caching (Options.NegativeTTL) remembers absent keys briefly.
//   - Other processes: with Redis invalidation (see below), another
//     client's write evicts this process's entry within a small measured
//     bound. Without it, only this tier's own writes change its L1, and
//     another process's write stays invisible for up to MaxLocalTTL: set
//     one for a shared L2 without invalidation.
//
// Reads of TTL, GetWithTTL (L1 only knows a lower bound of the TTL), Keys
// and Snapshot go to the L2; L1 never holds a key the L2 lacks.
//
// # Capabilities
//
// *Tier implements every strata capability interface and forwards each to
// the L2 where the L2 has it, so batches stay batches and atomic operations
// stay atomic. Where the L2 lacks one, the tier does what the strata
// helpers do for such a store: GetMany and PutMany loop, atomic operations
// and TTL fail with strata.ErrUnsupported, Snapshot scans. This mirrors
// strata.WithPrefix: one concrete type (with TierStats, WaitTracking and
// Tracking) instead of one type per combination of capabilities. Code
// should call capabilities through the strata helpers, which behave the
// same on the tier as on its L2. Without an L2 Expirer the tier cannot know
// TTLs and never fills L1 from reads; it caches only writes with an
// explicit TTL.
//
// # Redis invalidation
//
// When the L2 lives in Redis (it implements [RedisBacked], or
// Options.Redis is set) the tier opens one dedicated connection per master
// and runs CLIENT TRACKING ON BCAST PREFIX <key prefix> over RESP3 on it:
// Redis then pushes the name of every key under the prefix that any client
// modifies, every key it evicts under maxmemory, and FLUSHALL as a whole. A pushed key is
// evicted from L1 at once. For a Cluster the tier lists the masters every
// TopologyInterval, and at once when the cluster client meets a new node,
// and keeps one connection per master. Each connection is pinged every
// HeartbeatInterval. While any connection is down (lost, silent for two
// heartbeats, or not yet established on a new master) the tier flushes L1
// and bypasses it: every read goes to the L2 and nothing is cached, until
// all connections track again. The tier starts that way; WaitTracking
// waits for it to end. The ACL user needs HELLO, CLIENT (TRACKING,
// SETNAME), PING and, for a Cluster, CLUSTER SLOTS.
//
// A tier over strata.WithPrefix(redisStore, p) cannot see through the view:
// set Options.Redis with the whole prefix (the store's, then p). A tier
// over a store that reveals its Redis client but not its key prefix
// refuses to start under InvalidationAuto rather than serve stale reads.
//
// Redis also pushes invalidations for the tier's own writes, so an entry
// written through is evicted again shortly after the write; reads of it
// then fill from the L2.
//
// # Errors
//
// The tier returns the L2's errors as they are (wrapped once by the L2);
// it adds strata.ErrClosed after Close and the context's error for a
// cancelled or expired context, also on an L1 hit. Options errors come
// from New. Close waits for calls using L1, stops the tracking
// connections and closes the L2 unless Options.KeepL2Open.
package tier
