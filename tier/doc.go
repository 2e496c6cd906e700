// Package tier puts a bounded in-process cache (L1: otter v2 by default,
// or ristretto v2, see Engine) in front of any strata.Store (the L2). A
// *Tier is itself a strata.Store. Options.MaxBytes bounds the heap the L1
// uses, its fixed structures included (see Engine.Budget).
//
//	l2, _ := redis.Open(ctx, cfg)
//	t, err := tier.New(l2, &tier.Options{MaxBytes: 256 << 20})
//	...
//	v, err := t.Get(ctx, key) // from L1, or read through from the L2
//
// # Semantics
//
//   - Write-through: Put, Delete, batches, commits and atomic operations
//     go to the L2 first; only once the L2 succeeded does L1 change. A failed write
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
//     L2 GetMany; with respect to this tier's writes it is as consistent as
//     that L2 call (it never sees part of a Commit made through the tier).
//   - Negative caching (Options.NegativeTTL) remembers absent keys briefly.
//   - Other processes: with an [Invalidator] (see below), another
//     client's write evicts this process's entry within a small measured
//     bound. Without one, only this tier's own writes change its L1, and
//     another process's write stays invisible for up to MaxLocalTTL: set
//     one for a shared L2 without invalidation.
//
// Reads of TTL, GetWithTTL and GetManyWithTTL (L1 only knows a lower bound
// of the TTL), Keys and Snapshot go to the L2; L1 never holds a key the L2
// lacks.
//
// # Capabilities
//
// *Tier implements every strata capability interface and forwards each to
// the L2 where the L2 has it, so batches stay batches and atomic operations
// stay atomic. Where the L2 lacks one, the tier does what the strata
// helpers do for such a store: GetMany and PutMany loop, atomic operations,
// Commit and TTL fail with strata.ErrUnsupported, Snapshot scans. This mirrors
// strata.WithPrefix: one concrete type (with TierStats, WaitTracking and
// Tracking) instead of one type per combination of capabilities. Code
// should call capabilities through the strata helpers, which behave the
// same on the tier as on its L2. Without an L2 Expirer the tier cannot know
// TTLs and never fills L1 from reads; it caches only writes with an
// explicit TTL.
//
// # Invalidation across processes
//
// A tier learns about other clients' writes to its L2 from an
// [Invalidator]: it reports changed keys, a flush of everything, and
// whether its stream of reports is up. While it is not up (at start, after
// a loss) the tier bypasses L1: every read goes to the L2 and nothing is
// cached; WaitTracking waits for it to be up. Package tier/redistrack
// implements it with Redis CLIENT TRACKING; importing it (stores/all
// does) registers it for the "redis" backend, so that a tier over a Redis
// store, or a strata.WithPrefix view of one, tracks it under
// InvalidationAuto. A tier over a Redis store with no invalidator
// registered refuses to start rather than serve stale reads without bound:
// import tier/redistrack, or choose InvalidationNone with a MaxLocalTTL.
// Other backends register theirs with [RegisterInvalidator]; an explicit
// one goes in Options.Invalidator.
//
// Redis also reports the tier's own writes, and cannot tell them from
// another client's write of the same key made at the same moment. A report
// of a key the tier wrote itself lately (Options.EchoWindow) is therefore
// verified, not obeyed: the entry stays while a background read compares
// it with the L2, and is replaced if it differs, within
// Options.VerifyTimeout. Own writes stay cached; another client's write
// still reaches L1 within the invalidator's delivery bound plus
// VerifyTimeout (docs/tier.md has the argument and the measurements).
//
// # Errors
//
// The tier returns the L2's errors as they are (wrapped once by the L2);
// it adds strata.ErrClosed after Close and the context's error for a
// cancelled or expired context, also on an L1 hit. Options errors come
// from New. Close waits for calls using L1, closes the Invalidator and
// closes the L2 unless Options.KeepL2Open.
package tier
