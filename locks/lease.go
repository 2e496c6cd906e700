package locks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata/storekit"
)

// LeaseBackend is what a Locker implementation provides for one held lock;
// [NewLease] builds the rest of a [Lease] (renewal, validity, Done, Err)
// around it. Calls to Renew, Release and Abandon never overlap.
type LeaseBackend interface {
	// Renew extends the lock to ttl from now. It returns an error matching
	// ErrLost when the lock is provably no longer this lease's; any other
	// error is taken as transient and the renewal is retried until the
	// lease's validity runs out.
	Renew(ctx context.Context, ttl time.Duration) error

	// Release frees the lock. It returns an error matching ErrLost if the
	// lock was no longer this lease's. Whatever it returns, it must leave
	// no resource behind.
	Release(ctx context.Context) error

	// Abandon frees what the backend holds for the lease (a connection,
	// a goroutine) once the lease is lost. It is called at most once,
	// never after Release, and should not block for long.
	Abandon()
}

// LeaseConfig describes a lock just acquired, for [NewLease].
type LeaseConfig struct {
	// Name and Token are what Lease.Name and Lease.Token return.
	Name  string
	Token uint64

	// TTL is the lease's TTL (see CheckTTL).
	TTL time.Duration

	// Sent is when the request that acquired the lock was sent: the lease
	// is valid until Sent+TTL unless renewed. Zero means now.
	Sent time.Time

	// Backend names the backend in errors, such as "redis".
	Backend string

	// Lock is the backend side of the lease.
	Lock LeaseBackend

	// Options are the Locker's options (nil: defaults); NewLease reads
	// DisableRenewal and TracerProvider.
	Options *Options

	// Acquired is the span context of the acquisition
	// (trace.SpanContextFromContext of the context [TraceAcquire] gave),
	// which the lease's spans link to. Optional.
	Acquired trace.SpanContext
}

// lease states.
const (
	stateHeld = iota
	stateReleasing
	stateEnded
)

// ManagedLease is the [Lease] built by [NewLease]: it renews the lock every
// third of its TTL through its [LeaseBackend], and ends as soon as the
// backend reports the lock gone, the validity runs out without a successful
// renewal, or the backend calls [ManagedLease.Lose].
//
// It runs no goroutine of its own while idle: renewal and expiry are
// timers, so a lease taken and released within a third of its TTL costs
// no goroutine at all.
type ManagedLease struct {
	name    string
	token   uint64
	backend string
	lock    LeaseBackend

	// opMu serializes calls into lock; it is taken before mu.
	opMu sync.Mutex

	mu         sync.Mutex
	state      int
	ttl        time.Duration
	validUntil time.Time
	nextRenew  time.Time
	lastErr    error       // last transient renewal failure
	expiry     *time.Timer // fires at validUntil
	renew      *time.Timer // fires at nextRenew; nil without renewal
	err        error
	done       chan struct{}
	doneClosed bool // Done may close before stateEnded (see expire)
	tracer     trace.Tracer
	acquired   trace.SpanContext
	ctx        context.Context // cancelled when the lease ends
	cancel     context.CancelFunc
}

var _ Lease = (*ManagedLease)(nil)

// NewLease returns a lease for a lock just acquired and starts its renewal.
// The backend's Abandon is called once the lease is lost; Release calls the
// backend's Release.
func NewLease(c LeaseConfig) *ManagedLease {
	sent := c.Sent
	if sent.IsZero() {
		sent = time.Now()
	}
	l := &ManagedLease{
		name:    c.Name,
		token:   c.Token,
		backend: c.Backend,
		lock:    c.Lock,
		done:    make(chan struct{}),

		tracer:   c.Options.tracer(),
		acquired: c.Acquired,
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expiry = time.AfterFunc(time.Hour, l.expire)
	if c.Options == nil || !c.Options.DisableRenewal {
		l.renew = time.AfterFunc(time.Hour, l.renewTick)
	}
	l.setValidLocked(sent, c.TTL)
	return l
}

// Name returns the lock's name.
func (l *ManagedLease) Name() string { return l.name }

// Token returns the fencing token.
func (l *ManagedLease) Token() uint64 { return l.token }

// Done returns a channel closed when the lease ends.
func (l *ManagedLease) Done() <-chan struct{} { return l.done }

// Err returns why the lease ended, or nil while it is held. A lease whose
// validity has run out is lost from that instant, even if its expiry timer
// has not fired yet (a process stopped past the TTL wakes up before its
// timers run): Err ends it then and reports it.
func (l *ManagedLease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil && l.state != stateEnded && !time.Now().Before(l.validUntil) {
		l.expireLocked()
	}
	return l.err
}

// Lose ends the lease as lost, with cause (wrapped in an error matching
// ErrLost unless it already matches). Backends call it when they learn
// that the lock is gone, for example when the connection that held it
// breaks. It does nothing once the lease has ended or is being released.
func (l *ManagedLease) Lose(cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateHeld {
		l.loseLocked(cause)
	}
}

// setValidLocked records a successful acquisition or renewal sent at sent.
func (l *ManagedLease) setValidLocked(sent time.Time, ttl time.Duration) {
	l.ttl = ttl
	l.validUntil = sent.Add(ttl)
	l.nextRenew = sent.Add(ttl / 3)
	l.lastErr = nil
	l.expiry.Reset(time.Until(l.validUntil))
	if l.renew != nil {
		l.renew.Reset(time.Until(l.nextRenew))
	}
}

// loseLocked ends the lease as lost and abandons the lock.
func (l *ManagedLease) loseLocked(cause error) {
	if !errors.Is(cause, ErrLost) {
		cause = fmt.Errorf("%w: %w", ErrLost, cause)
	}
	l.endLocked(cause)
	l.traceLost(cause)
	// Not inline: the caller may be the backend itself (Lose) or hold
	// opMu (a renewal).
	go func() {
		l.opMu.Lock()
		defer l.opMu.Unlock()
		l.lock.Abandon()
	}()
}

// endLocked stops the timers and, unless Done is already closed, records
// err and closes Done.
func (l *ManagedLease) endLocked(err error) {
	l.state = stateEnded
	l.expiry.Stop()
	if l.renew != nil {
		l.renew.Stop()
	}
	l.cancel()
	l.closeDoneLocked(err)
}

// closeDoneLocked records err and closes Done, once.
func (l *ManagedLease) closeDoneLocked(err error) {
	if !l.doneClosed {
		l.doneClosed = true
		l.err = err
		close(l.done)
	}
}

// expire runs when the validity ends without a renewal. It keeps running
// while a Release is in flight: a Release that hangs (a partitioned
// network) must not keep Done open once the backend may have let the lock
// go; Release still does the cleanup when it returns.
func (l *ManagedLease) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked()
}

// expireLocked ends the lease as lost if its validity has run out.
func (l *ManagedLease) expireLocked() {
	if l.state == stateEnded || time.Now().Before(l.validUntil) {
		return // renewed meanwhile: the timer was reset
	}
	cause := errors.New("not renewed within its ttl")
	if l.lastErr != nil {
		cause = fmt.Errorf("not renewed within its ttl (%v): last renewal failed: %w", l.ttl, l.lastErr)
	} else if l.renew == nil {
		cause = fmt.Errorf("ttl of %v ran out (automatic renewal disabled)", l.ttl)
	}
	if l.state == stateReleasing {
		err := fmt.Errorf("%w: %w, while Release was in flight", ErrLost, cause)
		if !l.doneClosed {
			l.traceLost(err)
		}
		l.closeDoneLocked(err)
		return
	}
	l.loseLocked(cause)
}

// renewTick sends one renewal when it is due, bounded by the lease's
// validity, and schedules the next.
func (l *ManagedLease) renewTick() {
	l.opMu.Lock()
	l.mu.Lock()
	if l.state != stateHeld {
		l.mu.Unlock()
		l.opMu.Unlock()
		return
	}
	if wait := time.Until(l.nextRenew); wait > 0 { // rescheduled meanwhile
		l.renew.Reset(wait)
		l.mu.Unlock()
		l.opMu.Unlock()
		return
	}
	ttl, validUntil := l.ttl, l.validUntil
	l.mu.Unlock()

	sent := time.Now()
	var err error
	if sent.Before(validUntil) {
		ctx, cancel := context.WithDeadline(l.ctx, validUntil)
		ctx, s := l.span(ctx, SpanRenew)
		err = l.lock.Renew(ctx, ttl)
		endSpan(s, err)
		cancel()
	} else {
		err = context.DeadlineExceeded // lapsed while waiting: never revive
	}
	l.opMu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateHeld {
		return
	}
	switch {
	case err == nil && validUntil.Equal(l.validUntil):
		l.setValidLocked(sent, ttl)
	case err == nil: // extended meanwhile
		l.renew.Reset(time.Until(l.nextRenew))
	case errors.Is(err, ErrLost):
		l.loseLocked(err)
	default:
		l.lastErr = err
		// Retry soon, but not in a tight loop against a dead backend.
		retry := min(max(ttl/10, 10*time.Millisecond), ttl/3)
		l.nextRenew = time.Now().Add(retry)
		l.renew.Reset(retry)
	}
}

// Extend renews the lease for ttl from now.
func (l *ManagedLease) Extend(ctx context.Context, ttl time.Duration) error {
	ttl, err := CheckTTL(ttl)
	if err != nil {
		return storekit.NewOpError("extend", l.backend, []byte(l.name), err)
	}
	if err := l.heldErr(); err != nil {
		return err
	}
	l.opMu.Lock()
	if err := l.heldErr(); err != nil {
		l.opMu.Unlock()
		return err
	}
	sent := time.Now()
	sctx, s := l.span(ctx, SpanExtend)
	err = l.lock.Renew(sctx, ttl)
	endSpan(s, err)
	l.opMu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateHeld {
		if l.err != nil {
			return l.err
		}
		return ErrReleased
	}
	switch {
	case err == nil:
		if sent.Before(l.validUntil) {
			l.setValidLocked(sent, ttl)
			return nil
		}
		// The lease lapsed while the request was in flight: the expiry
		// timer is about to end it, and it must not be revived.
		l.loseLocked(errors.New("ttl ran out while Extend was in flight"))
		return l.err
	case errors.Is(err, ErrLost):
		l.loseLocked(err)
		return l.err
	}
	return err
}

// heldErr returns nil while the lease is held and otherwise why not.
func (l *ManagedLease) heldErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.state == stateHeld:
		return nil
	case l.err != nil:
		return l.err
	}
	return ErrReleased
}

// Release stops renewal and frees the lock.
func (l *ManagedLease) Release(ctx context.Context) error {
	l.mu.Lock()
	switch l.state {
	case stateReleasing:
		l.mu.Unlock()
		<-l.done
		if err := l.Err(); !errors.Is(err, ErrReleased) {
			return err
		}
		return nil
	case stateEnded:
		err := l.err
		l.mu.Unlock()
		if errors.Is(err, ErrReleased) {
			return nil
		}
		return err
	}
	l.state = stateReleasing
	if l.renew != nil {
		l.renew.Stop()
	}
	// The expiry timer keeps running: if the validity runs out before the
	// backend answers, Done closes then (see expire).
	l.mu.Unlock()

	// An in-flight renewal finishes first (it is bounded by the validity):
	// cancelling it could leave the connection in doubt.
	l.opMu.Lock()
	sctx, s := l.span(ctx, SpanRelease)
	err := l.lock.Release(sctx)
	endSpan(s, err)
	l.opMu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		err = ErrReleased
	}
	// ErrLost, or a failure that gave the lease up; or, if the validity ran
	// out meanwhile, the loss expire recorded.
	l.endLocked(err)
	if errors.Is(l.err, ErrReleased) {
		return nil
	}
	return l.err
}
