package locks

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/latency"
)

// Stats count what a Locker did, for monitoring. Counters only grow.
type Stats struct {
	Acquired  uint64 // leases handed out (Acquire and TryAcquire)
	Contended uint64 // TryAcquire calls that found the lock held
	Failed    uint64 // Acquire/TryAcquire calls that failed otherwise (ctx included)
	Released  uint64 // leases ended by Release
	Lost      uint64 // leases ended by loss (expiry, takeover, backend gone)
	Held      int64  // leases held now

	// AcquireDurations is the distribution of the time the successful
	// Acquire and TryAcquire calls took, waits for a held lock included.
	AcquireDurations strata.Histogram
}

// InstrumentedLocker is a Locker that counts its work; see [Instrument].
type InstrumentedLocker struct {
	l Locker
	s struct {
		acquired, contended, failed, released, lost atomic.Uint64
		held                                        atomic.Int64
		acquire                                     *latency.Recorder
	}
}

var _ Locker = (*InstrumentedLocker)(nil)

// Instrument wraps l so that it counts acquisitions, contention, releases
// and losses. Each lease it hands out is watched by a goroutine that ends
// with the lease.
func Instrument(l Locker) *InstrumentedLocker {
	i := &InstrumentedLocker{l: l}
	i.s.acquire = latency.New(latency.OperationBounds)
	return i
}

// Stats returns a copy of the counters.
func (i *InstrumentedLocker) Stats() Stats {
	return Stats{
		Acquired:  i.s.acquired.Load(),
		Contended: i.s.contended.Load(),
		Failed:    i.s.failed.Load(),
		Released:  i.s.released.Load(),
		Lost:      i.s.lost.Load(),
		Held:      i.s.held.Load(),

		AcquireDurations: i.s.acquire.Histogram(),
	}
}

// Acquire calls the wrapped Locker's Acquire and counts the outcome.
func (i *InstrumentedLocker) Acquire(ctx context.Context, name string, ttl time.Duration) (Lease, error) {
	start := time.Now()
	l, err := i.l.Acquire(ctx, name, ttl)
	return i.count(start, l, err)
}

// TryAcquire calls the wrapped Locker's TryAcquire and counts the outcome.
func (i *InstrumentedLocker) TryAcquire(ctx context.Context, name string, ttl time.Duration) (Lease, error) {
	start := time.Now()
	l, err := i.l.TryAcquire(ctx, name, ttl)
	return i.count(start, l, err)
}

func (i *InstrumentedLocker) count(start time.Time, l Lease, err error) (Lease, error) {
	switch {
	case errors.Is(err, ErrHeld):
		i.s.contended.Add(1)
		return l, err
	case err != nil:
		i.s.failed.Add(1)
		return l, err
	}
	i.s.acquire.Since(start)
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
