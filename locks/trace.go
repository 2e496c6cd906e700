package locks

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the spans of leases and of
// the built-in lockers.
const TracerName = "github.com/strata-kv/strata/locks"

// The spans of locks (see Options.TracerProvider). The acquisition spans
// are made by the lockers through [TraceAcquire]; the others by every
// [ManagedLease], as roots linked to the span of the acquisition.
const (
	SpanAcquire    = "strata.lock.acquire"     // Acquire, waits included
	SpanTryAcquire = "strata.lock.try_acquire" // TryAcquire
	SpanRenew      = "strata.lock.renew"       // an automatic renewal sent to the backend
	SpanExtend     = "strata.lock.extend"      // Extend
	SpanRelease    = "strata.lock.release"     // Release
	// SpanLost marks the loss of a lease, when Done closes with ErrLost:
	// expiry, takeover, backend gone. Its status is Error, with the cause.
	SpanLost = "strata.lock.lost"
)

// The attributes of lock spans, besides db.system (the backend, "redis"
// or "postgres").
const (
	AttrName      = "strata.lock.name"      // the lock's name
	AttrToken     = "strata.lock.token"     // the lease's fencing token
	AttrTTL       = "strata.lock.ttl"       // the TTL asked for, in seconds
	AttrContended = "strata.lock.contended" // TryAcquire found the lock held (ErrHeld: not an error span)
)

// tracer returns the tracer of o's TracerProvider, or of the global one.
func (o *Options) tracer() trace.Tracer {
	var tp trace.TracerProvider
	if o != nil {
		tp = o.TracerProvider
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(TracerName)
}

// TraceAcquire runs acquire, a Locker's Acquire or TryAcquire (wait
// says which), in a span of o's tracer (see Options.TracerProvider), with
// backend as db.system. acquire receives the span's context: a lease
// built with [NewLease] from it (LeaseConfig.Acquired) links its later
// spans to the acquisition. ErrHeld ends the span as contended, not as an
// error.
func TraceAcquire(ctx context.Context, o *Options, backend, name string, ttlSeconds float64, wait bool,
	acquire func(ctx context.Context) (Lease, error)) (Lease, error) {
	span := SpanTryAcquire
	if wait {
		span = SpanAcquire
	}
	ctx, s := o.tracer().Start(ctx, span, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("db.system", backend), attribute.String(AttrName, name), attribute.Float64(AttrTTL, ttlSeconds)))
	l, err := acquire(ctx)
	switch {
	case err == nil:
		s.SetAttributes(attribute.Int64(AttrToken, int64(l.Token())))
	case errors.Is(err, ErrHeld):
		s.SetAttributes(attribute.Bool(AttrContended, true))
	default:
		s.RecordError(err)
		s.SetStatus(codes.Error, err.Error())
	}
	s.End()
	return l, err
}

// span starts a span of the lease, linked to its acquisition.
func (l *ManagedLease) span(ctx context.Context, name string) (context.Context, trace.Span) {
	return l.tracer.Start(ctx, name, trace.WithLinks(trace.Link{SpanContext: l.acquired}), trace.WithAttributes(
		attribute.String("db.system", l.backend), attribute.String(AttrName, l.name), attribute.Int64(AttrToken, int64(l.token))))
}

// endSpan records err, if any, and ends s.
func endSpan(s trace.Span, err error) {
	if err != nil && !errors.Is(err, ErrReleased) {
		s.RecordError(err)
		s.SetStatus(codes.Error, err.Error())
	}
	s.End()
}

// traceLost makes the span of the lease's loss.
func (l *ManagedLease) traceLost(cause error) {
	_, s := l.span(context.Background(), SpanLost)
	endSpan(s, cause)
}
