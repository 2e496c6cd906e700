// Package locks is the contract for distributed locks: a [Locker] hands out
// [Lease]s, each carrying a fencing token, renewing itself until it is
// released and signalling on [Lease.Done] the moment it is lost.
//
// Two implementations live beside it: locks/redis (SET NX PX with an owner
// id, Lua release and extend, works on Redis Cluster) and locks/postgres (a
// session advisory lock held on one dedicated connection). Package
// conformance runs the same suite (conformance.RunLocker) against both,
// and against any Locker a user writes. The machinery both share lives
// here: [NewLease] (renewal, loss detection, Done), [Retry] (backoff with
// jitter) and the fenced-write helpers [FencedPut] and [FencedGet].
//
// # Why a lease is not enough: fencing tokens
//
// A lease is a lock with a time limit, and a time limit can be broken by the
// holder without it noticing. Martin Kleppmann's "How to do distributed
// locking" (2016) gives the canonical failure: client 1 acquires the lease
// and then stops (a garbage-collection pause, a SIGSTOP, a page fault on a
// swapped-out heap, a slow network) for longer than the lease. The lease
// expires; client 2 acquires it and writes to the protected resource.
// Client 1 wakes up, still believing it holds the lease (it has not yet run
// the code that would check), and writes too: the write of a client that no
// longer holds the lock corrupts the resource. No amount of checking Done
// before the write closes the gap, because the pause can fall between the
// check and the write, or inside the network on the way to the resource.
//
// The remedy is to make the resource itself check. Every lease carries a
// fencing token ([Lease.Token]) that is strictly greater than the token of
// every earlier lease on the same name, across holders and processes. The
// holder sends its token with each write, and the resource remembers the
// highest token it has accepted and rejects any write that carries a lower
// one. In the scenario above client 2's token is higher, so client 1's late
// write is rejected instead of applied. [FencedPut] does this on any store
// with the [strata.Atomic] capability (a compare-and-swap loop over a value
// that carries its token); locks/redis has an atomic Lua version; on SQL,
// "UPDATE ... SET value = $v, token = $t WHERE id = $id AND token <= $t" is
// the same thing.
//
// The lock still matters: it keeps honest clients from doing the work twice,
// and in the common case it is enough. Fencing is what keeps the rare case
// (a pause, a clock jump, a partition) from corrupting data.
//
// # Leases
//
// A lease renews itself every third of its TTL, until [Lease.Release] is
// called. It is valid for TTL from the moment the last successful renewal
// (or the acquisition) was sent, measured on the local monotonic clock; that
// instant is never later than the moment the backend itself would let the
// lock go (barring a jump of the server's clock, or a clock that runs
// slow), so the holder normally learns of the loss first. Fencing covers
// the cases where it does not. A renewal that
// fails transiently is retried until that validity runs out; then, or as
// soon as the backend says the lock belongs to someone else, the lease is
// lost: [Lease.Done] is closed and [Lease.Err] says why (an error matching
// [ErrLost]). Leases taken with [Options.DisableRenewal] are kept alive only
// by [Lease.Extend].
//
// # Errors
//
//   - [ErrHeld]: TryAcquire found the lock held by someone else.
//   - [ErrLost]: the lease is gone (expired, taken over, the connection that
//     held it ended); Err, Extend and Release report it.
//   - [ErrReleased] (which also matches [strata.ErrClosed]): the lease was
//     released; Extend reports it, Err returns it.
//   - [ErrStaleToken]: a fenced write carried a token lower than one the
//     resource has already accepted.
//   - [strata.ErrInvalidKey], [strata.ErrInvalidTTL]: a bad name or TTL,
//     rejected before any I/O.
//   - [strata.ErrInvalidConfig]: bad Options (or a nil client or pool)
//     given to a Locker's constructor or to [Retry].
//   - [strata.ErrUnavailable], [strata.ErrIndeterminate]: the backend could
//     not be reached, or the outcome of a request is unknown, wrapped in a
//     [*strata.OpError].
//
// A cancelled or expired context yields an error for which
// errors.Is(err, ctx.Err()) holds.
package locks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Locker hands out leases on named locks. Implementations are safe for
// concurrent use.
type Locker interface {
	// Acquire takes the lock name for ttl, waiting while another owner
	// holds it: it retries with exponential backoff and jitter until it
	// succeeds, ctx ends, or an error other than ErrHeld or
	// strata.ErrUnavailable occurs. ctx bounds only the wait: the lease
	// outlives it.
	//
	// name is any non-empty byte string of at most MaxNameLen bytes; ttl
	// must be positive and is rounded up to the millisecond.
	Acquire(ctx context.Context, name string, ttl time.Duration) (Lease, error)

	// TryAcquire takes the lock name for ttl if it is free, and otherwise
	// fails at once with an error matching ErrHeld. It does not retry.
	TryAcquire(ctx context.Context, name string, ttl time.Duration) (Lease, error)
}

// Lease is one holding of a lock. Its methods are safe for concurrent use.
type Lease interface {
	// Name returns the lock's name.
	Name() string

	// Token returns the fencing token: greater than the token of every
	// earlier lease on the same name, whichever process or Locker took it.
	// Only the order of tokens means anything. Send it with every write
	// to the protected resource (see FencedPut).
	Token() uint64

	// Done returns a channel closed as soon as the lease ends: released,
	// or lost (expired without renewal, taken over, its connection gone).
	Done() <-chan struct{}

	// Err returns nil while the lease is held; afterwards ErrReleased, or
	// an error matching ErrLost that says why the lease was lost, or the
	// error that made Release give the lease up.
	Err() error

	// Extend renews the lease for ttl from now and makes ttl its TTL for
	// later automatic renewals. It fails with an error matching ErrLost
	// (and the lease is lost) if the lock is no longer this lease's, with
	// ErrReleased after Release, and with a backend error otherwise (the
	// lease then stays valid until its current TTL runs out).
	Extend(ctx context.Context, ttl time.Duration) error

	// Release stops renewal and frees the lock, if this lease still holds
	// it: only the owner's release has any effect. It returns nil once the
	// backend confirmed; an error matching ErrLost if the lease had been
	// lost (the lock, possibly held by someone else now, is untouched); or
	// a backend error, in which case the lease is given up all the same
	// and the lock frees itself when its TTL runs out (Redis) or its
	// connection is closed (Postgres). Either way Done is closed when
	// Release returns. A Release still waiting for the backend when the
	// lease's validity runs out does not hold Done open: Done closes then,
	// and Release returns an error matching ErrLost. Releasing a released
	// lease returns nil.
	Release(ctx context.Context) error
}

// MaxNameLen is the longest lock name, in bytes.
const MaxNameLen = strata.MaxKeyLen

// The sentinel errors of package locks. Match them with errors.Is.
var (
	// ErrHeld: the lock is held by another owner (TryAcquire).
	ErrHeld = errors.New("locks: held by another owner")
	// ErrLost: the lease ended without Release: it expired, someone else
	// took the lock, or the connection that held it ended.
	ErrLost = errors.New("locks: lease lost")
	// ErrReleased: the lease was released. It also matches strata.ErrClosed.
	ErrReleased = fmt.Errorf("locks: lease released (%w)", strata.ErrClosed)
	// ErrStaleToken: a fenced write carried a token lower than the highest
	// the resource has accepted, and was rejected. It also matches
	// strata.ErrFenced, which a fenced commit reports.
	ErrStaleToken = fmt.Errorf("locks: stale fencing token (%w)", strata.ErrFenced)
)

// CheckName returns an error matching strata.ErrInvalidKey if name is empty
// or longer than MaxNameLen. Any byte is allowed.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty lock name", strata.ErrInvalidKey)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: lock name of %d bytes, limit %d", strata.ErrInvalidKey, len(name), MaxNameLen)
	}
	return nil
}

// maxTTL keeps deadlines far from overflow.
const maxTTL = time.Duration(1 << 62)

// CheckTTL returns the ttl rounded up to the millisecond, or an error
// matching strata.ErrInvalidTTL if ttl is not positive. Leases have no
// "no expiry": a crashed holder must not block the lock forever.
func CheckTTL(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 || ttl > maxTTL {
		return 0, fmt.Errorf("%w: lease ttl must be positive and at most %v, got %v", strata.ErrInvalidTTL, maxTTL, ttl)
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond), nil
}

// CheckRequest validates the name and ttl of an Acquire or TryAcquire, as
// CheckName and CheckTTL do, and returns the rounded ttl. A failure is
// wrapped in a *strata.OpError naming backend.
func CheckRequest(backend, name string, ttl time.Duration) (time.Duration, error) {
	if err := CheckName(name); err != nil {
		return 0, storekit.NewOpError("acquire", backend, []byte(name), err)
	}
	ttl, err := CheckTTL(ttl)
	if err != nil {
		return 0, storekit.NewOpError("acquire", backend, []byte(name), err)
	}
	return ttl, nil
}

// Options configure what both built-in lockers share. The zero value (and
// a nil *Options) means the defaults.
type Options struct {
	// MinBackoff is Acquire's first wait between attempts; each later wait
	// doubles, up to MaxBackoff, and is drawn at random from its upper
	// half (jitter). Default 5ms.
	MinBackoff time.Duration

	// MaxBackoff caps Acquire's wait between attempts. Default 500ms.
	MaxBackoff time.Duration

	// DisableRenewal turns automatic renewal off: leases are then kept
	// alive only by Extend, and are lost when their TTL runs out. Default
	// false (leases renew themselves every third of their TTL).
	DisableRenewal bool

	// TracerProvider makes the spans of acquisitions, renewals, releases
	// and losses (SpanAcquire and the others). Default: the global
	// provider (otel.GetTracerProvider()), which makes none until the
	// program installs one.
	TracerProvider trace.TracerProvider
}

// The defaults of Options.
const (
	DefaultMinBackoff = 5 * time.Millisecond
	DefaultMaxBackoff = 500 * time.Millisecond
)

// EnsureDefaults fills in the zero fields of o with their defaults.
func (o *Options) EnsureDefaults() {
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
}

// Validate reports a MinBackoff that is not positive or a MaxBackoff below
// it, with an error matching strata.ErrInvalidConfig. Call it after
// EnsureDefaults (which turns zero fields into the defaults).
func (o *Options) Validate() error {
	if o.MinBackoff <= 0 || o.MaxBackoff < o.MinBackoff {
		return fmt.Errorf("%w: locks: backoff must satisfy 0 < MinBackoff (%v) <= MaxBackoff (%v)",
			strata.ErrInvalidConfig, o.MinBackoff, o.MaxBackoff)
	}
	return nil
}
