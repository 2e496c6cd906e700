package tier

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/strata-kv/strata"
)

// Tier is a strata.Store that keeps a bounded in-process L1 (an Engine:
// otter or ristretto) in front of another store, its L2. Create one with New. All methods are safe
// for concurrent use.
type Tier struct {
	ids commitIDs // batch IDs committed through the tier

	// Read-mostly: read by every hit, written only by Close and by
	// flushes (state), kept apart from the counters hits write.
	l2       strata.Store
	expirer  strata.Expirer // nil when the L2 cannot report TTLs
	batchTTL bool           // the L2 (under its views) is a strata.BatchExpirer
	opts     Options
	fixed    int64 // Engine.FixedCost(opts.MaxBytes)
	sysClock bool
	seed     maphash.Seed
	l1       engine
	closed   atomic.Bool
	noTTL    atomic.Bool // the L2's Expirer answered ErrUnsupported

	// state is epoch<<1 | bypass. Every L1 entry records the state it was
	// made under and is valid only while state is unchanged, so moving to
	// a new epoch drops the whole L1 at once.
	state atomic.Uint64

	// Per-key coherence state, striped by key hash. gens[i] changes at the
	// start and at the end of every write to a key of slot i and on every
	// invalidation of such a key; inflight[i] counts writes of slot i in
	// progress. Both change only under the slot's lock; GetMany reads them
	// without it (see Tier.GetMany).
	gens     []atomic.Uint64
	inflight []atomic.Uint32
	gmask    uint64
	locks    []lockStripe
	lmask    uint64

	_      [64]byte
	shards [numShards]shard
	c      tierCounters

	bypassMu    sync.Mutex
	bypassSince time.Time     // guarded by bypassMu, zero when not bypassing
	bypassTotal time.Duration // guarded by bypassMu

	inv  Invalidator // nil without one
	sink *Sink       // inv's; nil without one

	// With an Invalidator (and EchoWindow >= 0): when own writes of each
	// echo slot last began or ended (mono), and the verifier of possible
	// echoes. See verify.go.
	echoes []atomic.Int64
	born   time.Time
	ver    *verifier
}

const bypassBit = 1

// entry is one L1 entry, encoded in a single allocation so that a hit
// touches one block of memory after the engine's map:
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
// the engine may apply sets asynchronously (ristretto does), so a writer
// cannot find a fresh entry to kill it; it bumps the gen instead. A reader
// that finds the entry in the engine with the gen unchanged confirms it;
// from then on every writer of the key, after bumping the gen and before
// writing the L2, finds it in the engine and marks it dead, so a confirmed
// entry is valid while it is not dead, without reading the slot's gen (the
// hot path). An entry removed from the engine is unreachable for new
// readers; a reader that fetched it before reads a value that was current
// when it fetched it.
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
	echoes  uint64             // possible echoes of its slots' keys so far
	_       [32]byte
}

// flight is one L2 read that concurrent misses of a key share.
type flight struct {
	key     []byte        // the leader's key, for the duration of its call
	tk      ticket        // the leader's
	done    chan struct{} // made by the first waiter; guarded by the stripe lock
	waiters int           // guarded by the stripe lock
	val     []byte
	err     error
}

const (
	numShards  = 64
	shardShift = 64 - 6
	numStripes = 1024 // lock stripes
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
	_ strata.Committer     = (*Tier)(nil)
	_ strata.BatchExpirer  = (*Tier)(nil)
)

// New returns a tier in front of l2. It fails on invalid options, when the
// Invalidator fails to start, and when it finds no Invalidator but needs
// one (see [InvalidationAuto] and [InvalidationRequired]).
//
// With an Invalidator the tier starts in bypass (reads go to the L2,
// nothing is cached) until the Invalidator is up; see [Tier.WaitTracking].
// The tier owns l2 and closes it on Close unless opts.KeepL2Open is set.
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
	// A prefix view always has GetManyWithTTL, as a loop of GetWithTTL
	// when the store under it has none; GetMany misses use it only when
	// it is one round trip.
	base, _ := unwrapViews(l2)
	_, t.batchTTL = base.(strata.BatchExpirer)
	_, t.sysClock = o.Clock.(strata.SystemClock)

	slots := coherenceSlots(o.MaxBytes)
	t.gens = make([]atomic.Uint64, slots)
	t.inflight = make([]atomic.Uint32, slots)
	t.gmask = uint64(slots - 1)
	t.locks = make([]lockStripe, numStripes)
	t.lmask = uint64(len(t.locks) - 1)

	inv := o.Invalidator
	if o.Invalidation == InvalidationNone {
		inv = nil
	} else if inv == nil {
		if inv, err = detectInvalidator(l2, registered); err != nil {
			return nil, err
		}
	}
	if o.Invalidation == InvalidationRequired && inv == nil {
		return nil, errors.New("tier: InvalidationRequired, but no Invalidator is set in Options or registered for the L2's backend")
	}

	t.fixed = o.Engine.FixedCost(o.MaxBytes)
	if t.l1, err = newEngine(o.Engine, o.MaxBytes); err != nil {
		return nil, err
	}
	if inv != nil {
		t.state.Store(bypassBit)
		t.bypassSince = time.Now()
		if o.EchoWindow >= 0 {
			t.born = time.Now()
			t.echoes = make([]atomic.Int64, echoSlots)
			t.ver = startVerifier(t)
		}
		t.inv, t.sink = inv, newSink(t)
		if err := inv.Start(t.sink); err != nil {
			err = errors.Join(err, inv.Close())
			if t.ver != nil {
				t.ver.close()
			}
			t.l1.close()
			return nil, err
		}
	}
	return t, nil
}

// unwrapViews returns the store under s's strata.View prefix views, and
// their prefix: the key k of s is the key prefix+k of base.
func unwrapViews(s strata.Store) (base strata.Store, prefix []byte) {
	base = s
	for v, ok := base.(strata.View); ok; v, ok = base.(strata.View) {
		base, prefix = v.Unwrap(), append(slices.Clone(v.Prefix()), prefix...)
	}
	return base, prefix
}

func nextPow2(n int64) int64 { return 1 << bits.Len64(uint64(n-1)) }

// Engine returns the engine that holds the tier's L1 entries.
func (t *Tier) Engine() Engine { return t.opts.Engine }

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

// Close closes the tier: it closes its Invalidator, releases
// the L1 and closes the L2 (unless Options.KeepL2Open). Afterwards every
// method fails with strata.ErrClosed. Closing twice returns nil.
func (t *Tier) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	var err error
	if t.inv != nil {
		err = t.inv.Close()
	}
	if t.ver != nil {
		t.ver.close()
	}
	for i := range t.shards {
		for t.shards[i].active.Load() != 0 {
			runtime.Gosched()
		}
	}
	t.l1.close()
	if t.opts.KeepL2Open {
		return err
	}
	return errors.Join(err, t.l2.Close())
}

func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
