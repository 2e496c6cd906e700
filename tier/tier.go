package tier

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/strata-kv/strata"
)

// Tier is a strata.Store that keeps a bounded in-process L1 (ristretto) in
// front of another store, its L2. Create one with New. All methods are safe
// for concurrent use.
type Tier struct {
	// Read-mostly: read by every hit, written only by Close and by
	// flushes (state), kept apart from the counters hits write.
	l2       strata.Store
	expirer  strata.Expirer // nil when the L2 cannot report TTLs
	opts     Options
	sysClock bool
	seed     maphash.Seed
	l1       *ristretto.Cache[uint64, entry]
	closed   atomic.Bool
	noTTL    atomic.Bool // the L2's Expirer answered ErrUnsupported

	// state is epoch<<1 | bypass. Every L1 entry records the state it was
	// made under and is valid only while state is unchanged, so moving to
	// a new epoch drops the whole L1 at once.
	state atomic.Uint64

	// Per-key coherence state, striped by key hash. gens[i] changes at the
	// start and at the end of every write to a key of slot i and on every
	// invalidation of such a key; inflight[i] (guarded by the slot's lock)
	// counts writes of slot i in progress.
	gens     []atomic.Uint64
	inflight []uint32
	gmask    uint64
	locks    []lockStripe
	lmask    uint64

	_      [64]byte
	shards [numShards]shard
	c      tierCounters

	bypassMu    sync.Mutex
	bypassSince time.Time     // guarded by bypassMu, zero when not bypassing
	bypassTotal time.Duration // guarded by bypassMu

	inv *invalidator // nil without Redis invalidation
}

const bypassBit = 1

// entry is one L1 entry, encoded in a single allocation so that a hit
// touches one block of memory after ristretto's map:
//
//	[0:4]   flags: flagDead, flagConfirmed (atomic), flagNegative
//	[4:8]   len(key)
//	[8:16]  gen: the key's slot generation when the entry was made
//	[16:24] state: Tier.state when the entry was made
//	[24:32] exp: Unix nanoseconds by the tier's clock; 0: no expiry
//	[32:]   the key, then the value
//
// Only flags change after the entry is made, and only from 0 to 1.
//
// Validity. An entry is made under its slot's lock with a ticket whose gen
// is current and under which no write of the slot is in flight. Until a
// reader confirms it, it is valid only while its slot's gen is unchanged:
// ristretto applies Sets asynchronously, so a writer cannot find a fresh
// entry to kill it; it bumps the gen instead. A reader that finds the entry
// in ristretto with the gen unchanged confirms it; from then on every
// writer of the key, after bumping the gen and before writing the L2, finds
// it in ristretto and marks it dead, so a confirmed entry is valid while it
// is not dead, without reading the slot's gen (the hot path). An entry
// removed from ristretto is unreachable for new readers; a reader that
// fetched it before reads a value that was current when it fetched it.
type entry []byte

const (
	entryHeader = 32

	flagDead      = 1
	flagConfirmed = 2
	flagNegative  = 4
)

func newEntry(key, value []byte, neg bool, exp int64, tk ticket) entry {
	e := make(entry, entryHeader+len(key)+len(value))
	if neg {
		binary.LittleEndian.PutUint32(e[0:], flagNegative)
	}
	binary.LittleEndian.PutUint32(e[4:], uint32(len(key)))
	binary.LittleEndian.PutUint64(e[8:], tk.gen)
	binary.LittleEndian.PutUint64(e[16:], tk.state)
	binary.LittleEndian.PutUint64(e[24:], uint64(exp))
	copy(e[entryHeader:], key)
	copy(e[entryHeader+len(key):], value)
	return e
}

// flags returns the entry's flag word. make([]byte, n) with n >= 8 is
// 8-byte aligned, so the word is aligned for atomic access.
func (e entry) flags() *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Pointer(&e[0])) }
func (e entry) gen() uint64           { return binary.LittleEndian.Uint64(e[8:]) }
func (e entry) state() uint64         { return binary.LittleEndian.Uint64(e[16:]) }
func (e entry) exp() int64            { return int64(binary.LittleEndian.Uint64(e[24:])) }
func (e entry) key() []byte           { return e[entryHeader : entryHeader+binary.LittleEndian.Uint32(e[4:])] }
func (e entry) value() []byte         { return e[entryHeader+binary.LittleEndian.Uint32(e[4:]):] }

// lockStripe guards the coherence state of the slots that map to it and the
// read-through fills in flight for their keys.
type lockStripe struct {
	mu      sync.Mutex
	flights map[uint64]*flight // by key hash
	_       [40]byte
}

// flight is one L2 read that concurrent misses of a key share.
type flight struct {
	key        []byte // the leader's key, for the duration of its call
	gen, state uint64
	done       chan struct{} // made by the first waiter; guarded by the stripe lock
	waiters    int           // guarded by the stripe lock
	val        []byte
	err        error
}

const (
	numShards  = 64
	shardShift = 64 - 6
)

// shard counts L1 hits and the operations using the L1 right now, spread
// by key hash so that parallel readers of different keys do not share a
// cache line.
type shard struct {
	active   atomic.Int64
	hits     atomic.Uint64
	hitBytes atomic.Uint64
	negHits  atomic.Uint64
	_        [32]byte
}

var (
	_ strata.Store         = (*Tier)(nil)
	_ strata.Batcher       = (*Tier)(nil)
	_ strata.Atomic        = (*Tier)(nil)
	_ strata.Expirer       = (*Tier)(nil)
	_ strata.Snapshotter   = (*Tier)(nil)
	_ strata.Pinger        = (*Tier)(nil)
	_ strata.StatsReporter = (*Tier)(nil)
)

// New returns a tier in front of l2. It fails only on invalid options, or
// when opts.Invalidation is InvalidationRedis and no Redis client is known.
//
// With Redis invalidation the tier starts in bypass (reads go to the L2,
// nothing is cached) until its tracking connections are up; see
// [Tier.WaitTracking]. The tier owns l2 and closes it on Close unless
// opts.KeepL2Open is set.
func New(l2 strata.Store, opts *Options) (*Tier, error) {
	if l2 == nil {
		return nil, errors.New("tier: nil L2 store")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Tier{l2: l2, opts: o, seed: maphash.MakeSeed()}
	if e, ok := l2.(strata.Expirer); ok {
		t.expirer = e
	}
	_, t.sysClock = o.Clock.(strata.SystemClock)

	slots := nextPow2(min(max(o.MaxBytes/256, 4096), 1<<22))
	t.gens = make([]atomic.Uint64, slots)
	t.inflight = make([]uint32, slots)
	t.gmask = uint64(slots - 1)
	t.locks = make([]lockStripe, 1024)
	t.lmask = uint64(len(t.locks) - 1)

	redis := o.Redis
	if redis == nil && o.Invalidation != InvalidationNone {
		// Look through prefix views: the tier key k is the Redis key
		// storePrefix+viewPrefixes+k.
		base, viewPrefix := l2, ""
		for v, ok := base.(strata.View); ok; v, ok = base.(strata.View) {
			base, viewPrefix = v.Unwrap(), string(v.Prefix())+viewPrefix
		}
		switch rb := base.(type) {
		case RedisBacked:
			redis = &RedisInvalidation{Client: rb.Client(), KeyPrefix: rb.KeyPrefix() + viewPrefix,
				HeartbeatInterval: DefaultHeartbeatInterval, TopologyInterval: DefaultTopologyInterval}
		case redisClientOnly:
			return nil, errors.New("tier: the L2 is on Redis but does not report its key prefix (tier.RedisBacked); " +
				"set Options.Redis, or Options.Invalidation to InvalidationNone to accept stale reads across processes")
		}
	}
	if o.Invalidation == InvalidationRedis && redis == nil {
		return nil, errors.New("tier: InvalidationRedis needs Options.Redis or an L2 that implements tier.RedisBacked")
	}
	if o.Invalidation == InvalidationNone {
		redis = nil
	}

	t.l1, err = ristretto.NewCache(&ristretto.Config[uint64, entry]{
		NumCounters:        max(o.MaxBytes/64, 1024),
		MaxCost:            o.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[entry]) { t.c.evictions.Add(1) },
		OnReject:           func(*ristretto.Item[entry]) { t.c.rejections.Add(1) },
	})
	if err != nil {
		return nil, err
	}
	if redis != nil {
		t.state.Store(bypassBit)
		t.bypassSince = time.Now()
		t.inv = startInvalidator(t, redis)
	}
	return t, nil
}

func nextPow2(n int64) int64 { return 1 << bits.Len64(uint64(n-1)) }

// L2 returns the store behind the tier.
func (t *Tier) L2() strata.Store { return t.l2 }

func (t *Tier) hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

func (t *Tier) now() int64 {
	if t.sysClock {
		return time.Now().UnixNano()
	}
	return t.opts.Clock.Now().UnixNano()
}

// enter marks an L1 access for Close to wait for. It reports false, having
// undone the mark, when the tier is closed.
func (t *Tier) enter(h uint64) (*shard, bool) {
	sh := &t.shards[h>>shardShift]
	sh.active.Add(1)
	if t.closed.Load() {
		sh.active.Add(-1)
		return nil, false
	}
	return sh, true
}

// lookup returns the valid L1 entry for key, if any. The caller holds the
// shard mark.
func (t *Tier) lookup(key []byte, h uint64) (entry, bool) {
	e, ok := t.l1.Get(h)
	if !ok || len(e) < entryHeader {
		return nil, false
	}
	f := e.flags().Load()
	if f&flagDead != 0 || e.state() != t.state.Load() || !bytes.Equal(e.key(), key) {
		return nil, false
	}
	for f&flagConfirmed == 0 {
		// See entry: valid only if no write of the slot began since the
		// entry was made; confirming it makes later writers responsible
		// for killing it. A writer's mark between the two steps fails the
		// CompareAndSwap; so does another reader's confirmation, which is
		// fine.
		if e.gen() != t.gens[h&t.gmask].Load() {
			return nil, false
		}
		if e.flags().CompareAndSwap(f, f|flagConfirmed) {
			break
		}
		if f = e.flags().Load(); f&flagDead != 0 {
			return nil, false
		}
	}
	if x := e.exp(); x != 0 && t.now() >= x {
		return nil, false
	}
	return e, true
}

// kill marks the entry ristretto holds under h dead (see entry). Writers
// call it after bumping the slot's gen and before writing the L2.
func (t *Tier) kill(h uint64) {
	if sh, ok := t.enter(h); ok {
		if e, ok := t.l1.Get(h); ok && len(e) >= entryHeader {
			e.flags().Or(flagDead)
		}
		sh.active.Add(-1)
	}
}

// Get returns the value of key from L1, or reads it from the L2 (one read
// for all concurrent misses of the key) and caches it for the time the L2
// says it has left, capped by MaxLocalTTL.
func (t *Tier) Get(ctx context.Context, key []byte) ([]byte, error) {
	h := t.hash(key)
	sh, ok := t.enter(h)
	if !ok {
		return nil, strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		sh.active.Add(-1)
		return nil, err
	}
	if e, ok := t.lookup(key, h); ok {
		sh.active.Add(-1)
		if e.flags().Load()&flagNegative != 0 {
			sh.negHits.Add(1)
			return nil, strata.ErrNotFound
		}
		v := clone(e.value())
		sh.hits.Add(1)
		sh.hitBytes.Add(uint64(len(v)))
		return v, nil
	}
	sh.active.Add(-1)
	t.c.l1Misses.Add(1)
	for {
		v, retry, err := t.load(ctx, key, h)
		if !retry {
			t.countRead(v, err)
			return v, err
		}
	}
}

// countRead counts the outcome of a read that went to the L2.
func (t *Tier) countRead(v []byte, err error) {
	switch {
	case err == nil:
		t.c.l2Hits.Add(1)
		t.c.l2Bytes.Add(uint64(len(v)))
	case errors.Is(err, strata.ErrNotFound):
		t.c.l2Misses.Add(1)
	default:
		t.countErr(err)
	}
}

// ticket is what a fill or a write records before it goes to the L2, to
// check afterwards that nothing overtook it.
type ticket struct {
	gen, state uint64
	ok         bool // the result may be installed
}

// slot returns the coherence slot of h and its lock.
func (t *Tier) slot(h uint64) (uint64, *lockStripe) {
	i := h & t.gmask
	return i, &t.locks[i&t.lmask]
}

// fillTicketLocked returns the ticket of a read-through fill: installable
// only when no write of the key's slot is in flight and the tier is not
// bypassing. The caller holds the slot's lock.
func (t *Tier) fillTicketLocked(i uint64) ticket {
	tk := ticket{gen: t.gens[i].Load(), state: t.state.Load()}
	tk.ok = t.inflight[i] == 0 && tk.state&bypassBit == 0 && t.expirer != nil && !t.noTTL.Load()
	return tk
}

// stillLocked reports whether tk may install now. The caller holds the
// slot's lock.
func (t *Tier) stillLocked(i uint64, tk ticket) bool {
	return tk.ok && t.gens[i].Load() == tk.gen && t.state.Load() == tk.state
}

// load reads key from the L2, sharing the read with concurrent misses of
// the same key and generation, and installs the result if no write or
// invalidation of the key overlapped the read. retry asks the caller to
// load again: the shared read failed only because its leader's context
// ended.
func (t *Tier) load(ctx context.Context, key []byte, h uint64) (v []byte, retry bool, err error) {
	i, ls := t.slot(h)
	ls.mu.Lock()
	tk := t.fillTicketLocked(i)
	var f *flight
	if tk.ok {
		if g := ls.flights[h]; g != nil && g.gen == tk.gen && g.state == tk.state && bytes.Equal(g.key, key) {
			// Same key, and no write or invalidation since g's leader took
			// its ticket: g's answer is current for us too.
			g.waiters++
			if g.done == nil {
				g.done = make(chan struct{})
			}
			done := g.done
			ls.mu.Unlock()
			t.c.joined.Add(1)
			select {
			case <-done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if g.err != nil {
				if isContextErr(g.err) && ctx.Err() == nil {
					return nil, true, nil
				}
				return nil, false, g.err
			}
			return clone(g.val), false, nil
		}
		f = &flight{key: key, gen: tk.gen, state: tk.state}
		if ls.flights == nil {
			ls.flights = make(map[uint64]*flight)
		}
		ls.flights[h] = f
	}
	ls.mu.Unlock()

	start := t.now()
	var ttl time.Duration
	t.c.l2Reads.Add(1)
	if tk.ok {
		v, ttl, err = t.expirer.GetWithTTL(ctx, key)
		if errors.Is(err, strata.ErrUnsupported) {
			// A view (such as strata.WithPrefix) over a store without TTLs:
			// never fill from it again.
			t.noTTL.Store(true)
			v, err = t.l2.Get(ctx, key)
			tk.ok = false
		}
	} else {
		v, err = t.l2.Get(ctx, key)
	}
	if f == nil {
		return v, false, err
	}

	ls.mu.Lock()
	if ls.flights[h] == f {
		delete(ls.flights, h)
	}
	if t.stillLocked(i, tk) {
		switch {
		case err == nil:
			t.installLocked(key, h, v, false, t.expiry(start, ttl), tk)
		case errors.Is(err, strata.ErrNotFound) && t.opts.NegativeTTL > 0:
			t.installLocked(key, h, nil, true, t.expiry(start, t.opts.NegativeTTL), tk)
		}
	} else if tk.ok {
		t.c.fillsDropped.Add(1)
	}
	f.val, f.err = v, err
	waiters, done := f.waiters, f.done
	ls.mu.Unlock()
	if done != nil {
		close(done)
	}
	if waiters > 0 && err == nil {
		// The waiters copy f.val; hand the caller its own copy.
		v = clone(v)
	}
	return v, false, err
}

// expiry returns the absolute L1 expiry of an entry whose L2 copy had ttl
// left (or was written with ttl) no earlier than start: start+ttl capped by
// MaxLocalTTL; 0 for no expiry; -1 when the entry must not be cached.
func (t *Tier) expiry(start int64, ttl time.Duration) int64 {
	switch {
	case ttl == strata.NoExpiry:
		ttl = 0
	case ttl <= 0:
		return -1
	}
	if m := t.opts.MaxLocalTTL; m > 0 && (ttl == 0 || ttl > m) {
		ttl = m
	}
	if ttl == 0 {
		return 0
	}
	if int64(ttl) > math.MaxInt64-start {
		return math.MaxInt64
	}
	return start + int64(ttl)
}

// installLocked puts a copy of key and value in L1 under tk. exp < 0 means
// do not cache. The caller holds the slot's lock, which orders this Set
// before any later write's Set of the key.
func (t *Tier) installLocked(key []byte, h uint64, value []byte, neg bool, exp int64, tk ticket) {
	if exp < 0 {
		return
	}
	var rttl time.Duration
	if exp != 0 {
		left := exp - t.now()
		if left <= 0 {
			return
		}
		rttl = time.Duration(left)
	}
	sh, ok := t.enter(h)
	if !ok {
		return
	}
	defer sh.active.Add(-1)
	e := newEntry(key, value, neg, exp, tk)
	// ristretto's own TTL (wall clock) only frees memory early; validity is
	// decided by e.exp against the tier's clock.
	if t.l1.SetWithTTL(h, e, int64(len(key)+len(value)+EntryOverhead), rttl) {
		t.c.fills.Add(1)
	} else {
		t.c.setsDropped.Add(1)
	}
}

// drop removes key's L1 entry to free its memory. Correctness never
// depends on it: a stale entry is already invalid by its generation.
func (t *Tier) drop(h uint64) {
	if sh, ok := t.enter(h); ok {
		t.l1.Del(h)
		sh.active.Add(-1)
	}
}

// beginWrite marks a write to the key of h as in flight: it bumps the
// slot's generation, counts the write in inflight and kills the key's
// confirmed entry, all before the write reaches the L2.
func (t *Tier) beginWrite(h uint64) ticket {
	i, ls := t.slot(h)
	ls.mu.Lock()
	tk := ticket{gen: t.gens[i].Add(1), state: t.state.Load(), ok: true}
	t.inflight[i]++
	ls.mu.Unlock()
	t.kill(h)
	return tk
}

// endWrite ends a write begun with tk. When install is set, the write
// succeeded, no other write of the slot overlapped it and no invalidation
// arrived meanwhile, the written value goes to L1 (a nil value with neg
// caches an absence). It reports whether it installed.
func (t *Tier) endWrite(key []byte, h uint64, tk ticket, install bool, value []byte, neg bool, exp int64) bool {
	i, ls := t.slot(h)
	ls.mu.Lock()
	t.inflight[i]--
	alone := t.inflight[i] == 0 && t.gens[i].Load() == tk.gen && t.state.Load() == tk.state && tk.state&bypassBit == 0
	// A fill that took its ticket while this write was in flight was not
	// installable; one taken from now on sees the new generation.
	tk.gen = t.gens[i].Add(1)
	done := false
	if install && alone && exp >= 0 {
		t.installLocked(key, h, value, neg, exp, tk)
		done = true
	}
	ls.mu.Unlock()
	return done
}

// invalidate forgets key (a write elsewhere changed it).
func (t *Tier) invalidate(key []byte) {
	h := t.hash(key)
	i, ls := t.slot(h)
	ls.mu.Lock()
	t.gens[i].Add(1)
	ls.mu.Unlock()
	t.kill(h)
	t.drop(h)
}

// newEpoch drops the whole L1 at once by moving to a new epoch, and sets
// the bypass bit to bypass (keep: leave it as it is). It reports whether
// the bypass bit changed.
func (t *Tier) newEpoch(bypass, keep bool) bool {
	t.bypassMu.Lock()
	defer t.bypassMu.Unlock()
	var old uint64
	for {
		old = t.state.Load()
		next := ((old >> 1) + 1) << 1
		if (keep && old&bypassBit != 0) || (!keep && bypass) {
			next |= bypassBit
		}
		if t.state.CompareAndSwap(old, next) {
			break
		}
	}
	t.c.flushes.Add(1)
	if keep {
		return false
	}
	switch {
	case bypass && t.bypassSince.IsZero():
		t.bypassSince = time.Now()
		return true
	case !bypass && !t.bypassSince.IsZero():
		t.bypassTotal += time.Since(t.bypassSince)
		t.bypassSince = time.Time{}
		return true
	}
	return false
}

// Close closes the tier: it stops the invalidation connections, releases
// the L1 and closes the L2 (unless Options.KeepL2Open). Afterwards every
// method fails with strata.ErrClosed. Closing twice returns nil.
func (t *Tier) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	if t.inv != nil {
		t.inv.close()
	}
	for i := range t.shards {
		for t.shards[i].active.Load() != 0 {
			runtime.Gosched()
		}
	}
	t.l1.Close()
	if t.opts.KeepL2Open {
		return nil
	}
	return t.l2.Close()
}

func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
