package tier

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata"
)

// Own writes and their echoes (docs/tier.md, "Own writes over Redis").
//
// Redis reports every write of a key under the tracked prefix, this tier's
// own included, and merges the writes of one event-loop iteration into
// one report per key: a foreign write of a key in the same iteration as
// the tier's own write of it gives the same single report as the own write
// alone. So an own write's echo cannot be counted and dropped without
// dropping, now and then, a foreign write with it. Instead the tier checks:
// a report for a key whose slot had an own write in flight or recently
// (EchoWindow) is a possible echo, and the verifier reads the key from the
// L2 and keeps the entry only if it matches.

// echoSlots is the size of the array of own-write times: a power of two,
// small, indexed by key hash. Keys sharing a slot only turn a foreign
// write's report into a possible echo (verified instead of dropped).
const echoSlots = 1 << 14

// verifyBatch is the most keys one verification reads.
const verifyBatch = 256

// ownWrite records that an own write of the key of h begins or ends now.
// The caller holds the slot's lock.
func (t *Tier) ownWrite(h uint64) {
	if t.echoes != nil {
		t.echoes[h&(echoSlots-1)].Store(t.mono())
	}
}

// recentOwnWrite reports whether an own write of the key of h's echo slot
// began or ended within EchoWindow.
func (t *Tier) recentOwnWrite(h uint64) bool {
	last := t.echoes[h&(echoSlots-1)].Load()
	return last != 0 && t.mono()-last < int64(t.opts.EchoWindow)
}

// mono returns monotonic nanoseconds since New, never 0. Reports and
// verification are timed on the system clock whatever Options.Clock is:
// they measure delivery, not expiry.
func (t *Tier) mono() int64 { return int64(time.Since(t.born)) + 1 }

// verifier checks possible echoes against the L2, in batches, from one
// goroutine.
type verifier struct {
	t *Tier

	mu      sync.Mutex
	pending map[string]int64 // key → when its first unverified report arrived (mono)
	waiting map[string]int64 // keys to look at again after a write ends, likewise
	nWait   atomic.Int64     // len(waiting), or more during a round; read by endWrite without mu

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func startVerifier(t *Tier) *verifier {
	ctx, cancel := context.WithCancel(context.Background())
	v := &verifier{t: t, pending: map[string]int64{}, waiting: map[string]int64{},
		kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go v.loop()
	return v
}

func (v *verifier) close() {
	v.cancel()
	<-v.done
}

func (v *verifier) poke() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// add queues key (hash h) for verification.
func (v *verifier) add(key []byte, h uint64) {
	now := v.t.mono()
	v.mu.Lock()
	if _, ok := v.pending[string(key)]; !ok {
		v.pending[string(key)] = now
	}
	v.mu.Unlock()
	v.poke()
}

// writesEnded tells the verifier that a slot's last write in flight ended:
// keys waiting for it may be verified now.
func (v *verifier) writesEnded() {
	if v.nWait.Load() > 0 {
		v.poke()
	}
}

func (v *verifier) loop() {
	defer close(v.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-v.kick:
		case <-timer.C:
		}
		next := v.round()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if next > 0 {
			timer.Reset(next)
		}
	}
}

// pendingKey is a key taken from the queues for one round.
type pendingKey struct {
	key   []byte
	h     uint64
	since int64
}

// round verifies one batch of keys, invalidates those past VerifyTimeout,
// and returns when to look again (0: when kicked).
func (v *verifier) round() time.Duration {
	t := v.t
	bound := int64(t.opts.VerifyTimeout)
	now := t.mono()
	var batch, late []pendingKey
	v.mu.Lock()
	// Keys that waited for a write are looked at again: they go back to
	// waiting below if the write is still in flight.
	for k, since := range v.waiting {
		if _, ok := v.pending[k]; !ok || since < v.pending[k] {
			v.pending[k] = since
		}
	}
	clear(v.waiting)
	for k, since := range v.pending {
		p := pendingKey{key: []byte(k), since: since}
		p.h = t.hash(p.key)
		switch {
		case now-since >= bound:
			late = append(late, p)
		case len(batch) < verifyBatch:
			batch = append(batch, p)
		default:
			continue
		}
		delete(v.pending, k)
	}
	more := len(v.pending) > 0
	v.mu.Unlock()

	for _, p := range late {
		t.c.verifyFailures.Add(1)
		t.forget(p.h)
	}
	// Announce that keys may wait before looking at the writes in flight:
	// a write that ends after the look then sees it and kicks the loop.
	v.nWait.Add(1)
	waiting, again := v.verify(batch)

	v.mu.Lock()
	for _, p := range waiting {
		if since, ok := v.waiting[string(p.key)]; !ok || p.since < since {
			v.waiting[string(p.key)] = p.since
		}
	}
	for _, p := range again {
		if since, ok := v.pending[string(p.key)]; !ok || p.since < since {
			v.pending[string(p.key)] = p.since
		}
	}
	more = more || len(again) > 0
	v.nWait.Store(int64(len(v.waiting)))
	first := int64(-1)
	for _, since := range v.waiting {
		if first < 0 || since < first {
			first = since
		}
	}
	v.mu.Unlock()
	if more {
		v.poke()
	}
	if first < 0 {
		return 0
	}
	// Look again when the oldest waiting key is due, if no write's end
	// kicks the verifier before.
	return max(time.Duration(first+bound-t.mono()), time.Millisecond)
}

// verify checks batch against the L2. It returns the keys whose slot has
// a write in flight, to verify after it ends, and those a write of another
// key of their slot overtook, to verify again at once.
func (v *verifier) verify(batch []pendingKey) (waiting, again []pendingKey) {
	if len(batch) == 0 {
		return nil, nil
	}
	t := v.t
	tks := make([]ticket, 0, len(batch))
	keys := make([][]byte, 0, len(batch))
	todo := batch[:0]
	oldest := int64(-1)
	for _, p := range batch {
		i, ls := t.slot(p.h)
		ls.mu.Lock()
		tk := ticket{gen: t.gens[i].Load(), state: t.state.Load(), ok: true}
		busy := t.inflight[i].Load() != 0
		ls.mu.Unlock()
		switch {
		case tk.state&bypassBit != 0:
			// L1 is bypassed and will be dropped before it is used again.
		case busy:
			waiting = append(waiting, p)
		default:
			todo = append(todo, p)
			tks = append(tks, tk)
			keys = append(keys, p.key)
			if oldest < 0 || p.since < oldest {
				oldest = p.since
			}
		}
	}
	if len(todo) == 0 {
		return waiting, nil
	}
	// The read must end by the oldest key's deadline.
	left := time.Duration(oldest + int64(t.opts.VerifyTimeout) - t.mono())
	ctx, cancel := context.WithTimeout(v.ctx, left)
	start := t.now()
	es, err := strata.GetManyWithTTL(ctx, t.l2, keys)
	cancel()
	if err == nil && len(es) != len(keys) {
		err = fmt.Errorf("%w: the L2 returned %d entries for %d keys", strata.ErrCorrupt, len(es), len(keys))
	}
	if err != nil {
		if v.ctx.Err() == nil {
			t.countErr(err)
		}
		for _, p := range todo {
			t.c.verifyFailures.Add(1)
			t.forget(p.h)
		}
		return waiting, nil
	}
	// Every Set issued before the tickets were taken is applied now, so
	// the entry a key is compared with below is the last one installed.
	if sh, ok := t.enter(0); ok {
		t.l1.wait()
		sh.active.Add(-1)
	}
	for j, p := range todo {
		if t.settle(p.key, p.h, tks[j], es[j], start) {
			again = append(again, p)
		}
	}
	return waiting, again
}

// settle ends the verification of key under tk, which read e from the L2
// at start. If no write of the key's slot began or ended since the ticket,
// the entry stays when it matches e and is otherwise replaced by e (or
// dropped), as a write's end installs. If one did, the read may be older
// than the L2 and is not used: when the key's entry was installed after
// the ticket (by that write, or by a fill that read after the report) or
// there is none, nothing older than the report is left and the
// verification is over; when the entry is older than the ticket (the write
// was of another key of the slot), settle asks to verify the key again.
func (t *Tier) settle(key []byte, h uint64, tk ticket, e strata.Entry, start int64) (again bool) {
	i, ls := t.slot(h)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if t.state.Load() != tk.state {
		return false // L1 was dropped
	}
	sh, ok := t.enter(h)
	if !ok {
		return false
	}
	cur, valid := t.lookup(key, h)
	sh.active.Add(-1)
	if t.gens[i].Load() != tk.gen {
		return valid && cur.gen() <= tk.gen
	}
	t.c.verifications.Add(1)
	neg, exp := e.Value == nil, int64(-1)
	if neg {
		exp = t.negExpiry(start)
	} else {
		exp = t.expiry(start, e.TTL)
	}
	if valid && cur.matches(e.Value, neg, exp) {
		return false
	}
	if valid && !cur.sameValue(e.Value, neg) {
		// (An entry replaced only for an earlier expiry is not counted: the
		// L2's TTL read just after a write is often a little short.)
		t.c.corrections.Add(1)
	}
	tk = ticket{gen: t.gens[i].Add(1), state: tk.state, ok: true}
	t.kill(h)
	if exp < 0 {
		if sh, ok := t.enter(h); ok {
			t.l1.del(h)
			sh.active.Add(-1)
		}
		return false
	}
	t.installLocked(key, h, e.Value, neg, exp, tk)
	return false
}

// matches reports whether e holds what the L2 holds: the same value (or
// both absent), and an expiry no later than exp, the one the L2's TTL
// gives (0: none).
func (e entry) matches(value []byte, neg bool, exp int64) bool {
	if exp < 0 || !e.sameValue(value, neg) {
		return false
	}
	x := e.exp()
	return neg || exp == 0 || (x != 0 && x <= exp)
}

// sameValue reports whether e holds value (neg: an absence).
func (e entry) sameValue(value []byte, neg bool) bool {
	if e.flags().Load()&flagNegative != 0 {
		return neg
	}
	return !neg && bytes.Equal(e.value(), value)
}

// forget invalidates the key of h as another client's write: its slot's
// generation moves and its entry dies.
func (t *Tier) forget(h uint64) {
	i, ls := t.slot(h)
	ls.mu.Lock()
	t.gens[i].Add(1)
	ls.mu.Unlock()
	t.kill(h)
	t.drop(h)
}
