package locks

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Stats count what a Locker did, for monitoring. Counters only grow.
type Stats struct {
	Acquired  uint64 // leases handed out (Acquire and TryAcquire)
	Contended uint64 // TryAcquire calls that found the lock held
	Failed    uint64 // Acquire/TryAcquire calls that failed otherwise (ctx included)
	Released  uint64 // leases ended by Release
	Lost      uint64 // leases ended by loss (expiry, takeover, backend gone)
	Held      int64  // leases held now
}

// InstrumentedLocker is a Locker that counts its work; see [Instrument].
type InstrumentedLocker struct {
	l Locker
	s struct {
		acquired, contended, failed, released, lost atomic.Uint64
		held                                        atomic.Int64
	}
}

var _ Locker = (*InstrumentedLocker)(nil)

// Instrument wraps l so that it counts acquisitions, contention, releases
// and losses. Each lease it hands out is watched by a goroutine that ends
// with the lease.
func Instrument(l Locker) *InstrumentedLocker { return &InstrumentedLocker{l: l} }

// Stats returns a copy of the counters.
func (i *InstrumentedLocker) Stats() Stats {
	return Stats{
		Acquired:  i.s.acquired.Load(),
		Contended: i.s.contended.Load(),
		Failed:    i.s.failed.Load(),
		Released:  i.s.released.Load(),
		Lost:      i.s.lost.Load(),
		Held:      i.s.held.Load(),
	}
}

// Acquire calls the wrapped Locker's Acquire and counts the outcome.
func (i *InstrumentedLocker) Acquire(ctx context.Context, name string, ttl time.Duration) (Lease, error) {
	return i.count(i.l.Acquire(ctx, name, ttl))
}

// TryAcquire calls the wrapped Locker's TryAcquire and counts the outcome.
func (i *InstrumentedLocker) TryAcquire(ctx context.Context, name string, ttl time.Duration) (Lease, error) {
	return i.count(i.l.TryAcquire(ctx, name, ttl))
}

func (i *InstrumentedLocker) count(l Lease, err error) (Lease, error) {
	switch {
	case errors.Is(err, ErrHeld):
		i.s.contended.Add(1)
		return l, err
	case err != nil:
		i.s.failed.Add(1)
		return l, err
	}
	i.s.acquired.Add(1)
	i.s.held.Add(1)
	go func() {
		<-l.Done()
		i.s.held.Add(-1)
		if errors.Is(l.Err(), ErrLost) {
			i.s.lost.Add(1)
		} else {
			i.s.released.Add(1)
		}
	}()
	return l, nil
}
