package tier

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/strata-kv/strata"
)

// Invalidator tells a tier about changes other clients make to its L2, so
// that the tier's L1 does not keep what they replaced. A tier over a store
// that only its own process writes (memory, bbolt, Pebble) needs none; a
// tier over a shared store (Redis) needs one for its reads to stay coherent
// across processes. Package tier/redistrack implements it for Redis.
//
// The tier calls Start once, from New, and Close once, from its own Close:
// one Invalidator serves one tier. From Start until the Invalidator calls
// sink.Up, and again from any sink.Down until the next sink.Up, the tier
// bypasses L1: reads go to the L2 and nothing is cached.
//
// The contract that keeps L1 coherent: from a call to sink.Up until the
// next sink.Down, every change to a key of the L2 made by another client,
// after it is applied, reaches sink.Invalidate with that key (or
// sink.Flush), within a bound the Invalidator documents. Reporting the
// tier's own writes too, as Redis does, is allowed: the tier tells them
// apart (see docs/tier.md). An Invalidator that cannot keep the contract
// any more (a lost connection) calls sink.Down before it stops reporting.
type Invalidator interface {
	// Start begins reporting changes to sink, from the Invalidator's own
	// goroutines, and returns without waiting for any I/O. It may call
	// sink's methods before it returns. An error fails New.
	Start(sink *Sink) error

	// Close stops the reports: once it returns, no method of the sink is
	// called again.
	Close() error
}

// Sink receives an [Invalidator]'s reports for one tier. The tier makes it
// and hands it to Start. Its methods are safe for concurrent use and do not
// block on I/O.
type Sink struct {
	t *Tier

	mu      sync.Mutex
	up      bool
	changed chan struct{} // closed and replaced when up changes
	lastErr error         // the cause of the last Down, until Up
}

func newSink(t *Tier) *Sink { return &Sink{t: t, changed: make(chan struct{})} }

// Invalidate reports that key may have changed. key is a key of the tier,
// as its callers pass it (without any prefix the L2 adds to it); the tier
// does not retain it.
func (s *Sink) Invalidate(key []byte) {
	s.t.c.invalidations.Add(1)
	s.t.invalidate(key)
}

// Flush reports that any key may have changed (a FLUSHALL, say): the tier
// drops all of L1 at once.
func (s *Sink) Flush() { s.t.newEpoch(false, true) }

// Down reports that changes may go unreported from now on: the tier drops
// L1 and bypasses it until Up. cause says why; Tracking and WaitTracking
// report it. Down while down only records cause.
func (s *Sink) Down(cause error) {
	if cause == nil {
		cause = errors.New("tier: invalidation stream down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = cause
	if !s.up {
		return
	}
	s.up = false
	s.t.c.disconnects.Add(1)
	s.t.newEpoch(true, false)
	s.notifyLocked()
}

// Up reports that every change from now on will be reported: the tier drops
// L1 (what it held may have changed unreported) and serves from it again.
// Up while up does nothing.
func (s *Sink) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return
	}
	s.up, s.lastErr = true, nil
	s.t.c.connects.Add(1)
	s.t.newEpoch(false, false)
	s.notifyLocked()
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sink) status() (up bool, changed <-chan struct{}, lastErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.changed, s.lastErr
}

// WaitTracking waits until the tier's Invalidator is up, so that the tier
// serves from L1, or until ctx ends (returning ctx's error joined with the
// Invalidator's last error). Without an Invalidator it returns nil at once.
func (t *Tier) WaitTracking(ctx context.Context) error {
	if t.sink == nil {
		return nil
	}
	for {
		up, changed, last := t.sink.status()
		if up {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		}
	}
}

// Tracking reports whether the tier's Invalidator is up (the tier serves
// from L1) and, while it is not, why. Without an Invalidator it reports
// true, nil.
func (t *Tier) Tracking() (ok bool, lastErr error) {
	if t.sink == nil {
		return true, nil
	}
	ok, _, lastErr = t.sink.status()
	return ok, lastErr
}

// Invalidator returns the tier's Invalidator, nil without one.
func (t *Tier) Invalidator() Invalidator { return t.inv }

// InvalidatorFunc returns the Invalidator for a tier whose L2 is base, or
// a strata.View of base under viewPrefix (the tier's key k is then base's
// key viewPrefix+k). It returns an error, which fails New, when it cannot
// follow base's changes.
type InvalidatorFunc func(base strata.Store, viewPrefix []byte) (Invalidator, error)

var registry struct {
	mu sync.RWMutex
	m  map[string]InvalidatorFunc
}

// RegisterInvalidator makes open the source of the Invalidator of every
// tier, under InvalidationAuto, whose L2 reports backend as its
// strata.Stats.Backend (looking through strata.View prefix views). The
// package that knows the backend calls it from init, as tier/redistrack
// does for "redis", so that importing the package is enough. It panics if
// backend is registered twice or open is nil.
func RegisterInvalidator(backend string, open InvalidatorFunc) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if open == nil {
		panic("tier: RegisterInvalidator with a nil function")
	}
	if _, dup := registry.m[backend]; dup {
		panic("tier: RegisterInvalidator called twice for backend " + backend)
	}
	if registry.m == nil {
		registry.m = map[string]InvalidatorFunc{}
	}
	registry.m[backend] = open
}

// sharedBackends are the built-in backends that other processes write to,
// with the package that registers their Invalidator: a tier over one of
// them without that package refuses to start under InvalidationAuto rather
// than serve other processes' old values without bound.
var sharedBackends = map[string]string{"redis": "github.com/strata-kv/strata/tier/redistrack"}

// registered returns the InvalidatorFunc registered for backend, if any.
func registered(backend string) InvalidatorFunc {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return registry.m[backend]
}

// detectInvalidator returns the Invalidator that lookup gives for l2's
// backend, nil for a backend that needs none.
func detectInvalidator(l2 strata.Store, lookup func(backend string) InvalidatorFunc) (Invalidator, error) {
	base, viewPrefix := unwrapViews(l2)
	st, ok := strata.StatsOf(base)
	if !ok {
		return nil, nil
	}
	if open := lookup(st.Backend); open != nil {
		return open(base, viewPrefix)
	}
	if pkg, shared := sharedBackends[st.Backend]; shared {
		return nil, fmt.Errorf("tier: the L2 is a %s store, which other processes may write, and no invalidator "+
			"for it is registered: import _ %q, or set Options.Invalidation to InvalidationNone and "+
			"Options.MaxLocalTTL to the staleness you accept", st.Backend, pkg)
	}
	return nil, nil
}
