package strata

import (
	"context"
	"errors"
	"iter"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the spans [WithTracing]
// makes.
const TracerName = "github.com/strata-kv/strata"

// The attributes of the spans [WithTracing] makes. Keys and values are
// never recorded: they may be personal data, and values may be large.
const (
	// AttrDBSystem names the store kind, as Stats.Backend does ("redis",
	// "pebble", "tier", ...).
	AttrDBSystem = attribute.Key("db.system")
	// AttrDBOperation names the operation: "get", "put_many", "commit", ...
	// (the Op of an *OpError).
	AttrDBOperation = attribute.Key("db.operation")
	// AttrKeys is the number of keys of a batch operation (GetMany,
	// PutMany, DeleteMany, GetManyWithTTL), or the keys Keys yielded.
	AttrKeys = attribute.Key("strata.keys")
	// AttrHit tells whether a single-key read found a live key; AttrHits
	// counts the keys a batch read found.
	AttrHit  = attribute.Key("strata.hit")
	AttrHits = attribute.Key("strata.hits")
	// AttrWrites and AttrConditions count the writes and conditions of a
	// commit.
	AttrWrites     = attribute.Key("strata.writes")
	AttrConditions = attribute.Key("strata.conditions")
	// AttrApplied tells whether an atomic operation (PutIfAbsent,
	// CompareAndSwap) or a commit changed the store; a commit whose
	// condition failed sets it false, and is not an error span.
	AttrApplied = attribute.Key("strata.applied")
)

// WithTracing returns s with an OpenTelemetry span around each of its
// operations, made by tp's tracer [TracerName]; a nil tp means the global
// provider (otel.GetTracerProvider()), which makes no spans until the
// program installs one. [Open] with [WithTracerProvider], or a URL with
// trace=true, returns a store wrapped this way.
//
// Each span is named "strata.<operation>" (strata.get, strata.put,
// strata.delete, strata.keys, strata.get_many, strata.put_many,
// strata.delete_many, strata.put_if_absent, strata.get_and_delete,
// strata.compare_and_swap, strata.ttl, strata.get_with_ttl,
// strata.get_many_with_ttl, strata.snapshot, strata.ping, strata.commit),
// of kind client, with the attributes db.system and db.operation, and
// those of the Attr constants that apply: key counts, hits, whether a
// write applied. A span for Keys covers the iteration, from its start to
// its end. A failed operation's span records the error and has status
// Error, except for a missing key (ErrNotFound) and a failed condition
// (ErrConflict), which are outcomes, not failures. Values, URLs and
// passwords never appear in a span, nor do keys, except shortened in the
// message of a recorded error (as *OpError quotes them).
//
// The returned store has every capability, as [WithPrefix]'s view does:
// where s has one it is used, otherwise the package helper's fallback. It
// is a [View] with an empty prefix, so that wrappers looking for the store
// underneath (a tier tracking Redis keys) find s. Closing it closes s.
func WithTracing(s Store, tp trace.TracerProvider) Store {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	backend := "unknown"
	if st, ok := StatsOf(s); ok && st.Backend != "" {
		backend = st.Backend
	}
	return &tracedStore{s: s, tracer: tp.Tracer(TracerName), system: AttrDBSystem.String(backend)}
}

type tracedStore struct {
	s      Store
	tracer trace.Tracer
	system attribute.KeyValue
}

var (
	_ View          = (*tracedStore)(nil)
	_ Batcher       = (*tracedStore)(nil)
	_ Atomic        = (*tracedStore)(nil)
	_ Expirer       = (*tracedStore)(nil)
	_ BatchExpirer  = (*tracedStore)(nil)
	_ Snapshotter   = (*tracedStore)(nil)
	_ Pinger        = (*tracedStore)(nil)
	_ StatsReporter = (*tracedStore)(nil)
	_ Committer     = (*tracedStore)(nil)
)

func (t *tracedStore) Unwrap() Store  { return t.s }
func (t *tracedStore) Prefix() []byte { return nil }

// start begins the span of op.
func (t *tracedStore) start(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "strata."+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, t.system, AttrDBOperation.String(op))...))
}

// end ends span with err's outcome.
func end(span trace.Span, err error, attrs ...attribute.KeyValue) {
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		attrs = append(attrs, AttrHit.Bool(false))
	case errors.Is(err, ErrConflict):
		attrs = append(attrs, AttrApplied.Bool(false))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(attrs...)
	span.End()
}

// read ends the span of a single-key read.
func read(span trace.Span, err error) {
	if err == nil {
		end(span, nil, AttrHit.Bool(true))
		return
	}
	end(span, err)
}

func hits(values [][]byte) attribute.KeyValue {
	n := 0
	for _, v := range values {
		if v != nil {
			n++
		}
	}
	return AttrHits.Int(n)
}

func (t *tracedStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	ctx, span := t.start(ctx, "get")
	v, err := t.s.Get(ctx, key)
	read(span, err)
	return v, err
}

func (t *tracedStore) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ctx, span := t.start(ctx, "put")
	err := t.s.Put(ctx, key, value, ttl)
	end(span, err)
	return err
}

func (t *tracedStore) Delete(ctx context.Context, key []byte) error {
	ctx, span := t.start(ctx, "delete")
	err := t.s.Delete(ctx, key)
	end(span, err)
	return err
}

func (t *tracedStore) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	prefix = append([]byte(nil), prefix...) // the caller may reuse it before iterating
	return func(yield func([]byte, error) bool) {
		ctx, span := t.start(ctx, "keys")
		n := 0
		var err error
		for k, e := range t.s.Keys(ctx, prefix) {
			if e != nil {
				err = e
			} else {
				n++
			}
			if !yield(k, e) {
				break
			}
		}
		end(span, err, AttrKeys.Int(n))
	}
}

func (t *tracedStore) Close() error { return t.s.Close() }

func (t *tracedStore) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	ctx, span := t.start(ctx, "get_many", AttrKeys.Int(len(keys)))
	vs, err := GetMany(ctx, t.s, keys)
	end(span, err, hits(vs))
	return vs, err
}

func (t *tracedStore) PutMany(ctx context.Context, entries []Entry) error {
	ctx, span := t.start(ctx, "put_many", AttrKeys.Int(len(entries)))
	err := PutMany(ctx, t.s, entries)
	end(span, err)
	return err
}

func (t *tracedStore) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	ctx, span := t.start(ctx, "delete_many", AttrKeys.Int(len(keys)))
	n, err := DeleteMany(ctx, t.s, keys)
	end(span, err, AttrHits.Int(n))
	return n, err
}

func (t *tracedStore) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	ctx, span := t.start(ctx, "put_if_absent")
	ok, err := PutIfAbsent(ctx, t.s, key, value, ttl)
	end(span, err, AttrApplied.Bool(ok))
	return ok, err
}

func (t *tracedStore) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	ctx, span := t.start(ctx, "get_and_delete")
	v, err := GetAndDelete(ctx, t.s, key)
	read(span, err)
	return v, err
}

func (t *tracedStore) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	ctx, span := t.start(ctx, "compare_and_swap")
	ok, err := CompareAndSwap(ctx, t.s, key, old, new, ttl)
	end(span, err, AttrApplied.Bool(ok))
	return ok, err
}

func (t *tracedStore) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	ctx, span := t.start(ctx, "ttl")
	d, err := TTL(ctx, t.s, key)
	read(span, err)
	return d, err
}

func (t *tracedStore) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	ctx, span := t.start(ctx, "get_with_ttl")
	v, d, err := GetWithTTL(ctx, t.s, key)
	read(span, err)
	return v, d, err
}

func (t *tracedStore) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]Entry, error) {
	ctx, span := t.start(ctx, "get_many_with_ttl", AttrKeys.Int(len(keys)))
	es, err := GetManyWithTTL(ctx, t.s, keys)
	n := 0
	for _, e := range es {
		if e.Value != nil {
			n++
		}
	}
	end(span, err, AttrHits.Int(n))
	return es, err
}

func (t *tracedStore) Snapshot(ctx context.Context) (Snapshot, error) {
	ctx, span := t.start(ctx, "snapshot")
	sn, err := SnapshotOf(ctx, t.s)
	end(span, err)
	return sn, err
}

func (t *tracedStore) Ping(ctx context.Context) error {
	ctx, span := t.start(ctx, "ping")
	err := Ping(ctx, t.s)
	end(span, err)
	return err
}

// Stats returns s's stats, or none but the backend's name.
func (t *tracedStore) Stats() Stats {
	if st, ok := StatsOf(t.s); ok {
		return st
	}
	return Stats{Backend: t.system.Value.AsString(), Keys: -1}
}

func (t *tracedStore) Commit(ctx context.Context, b *WriteBatch) error {
	ctx, span := t.start(ctx, "commit", AttrWrites.Int(len(b.Writes)), AttrConditions.Int(len(b.Conditions)))
	err := Commit(ctx, t.s, b)
	if err == nil {
		end(span, nil, AttrApplied.Bool(true))
		return nil
	}
	end(span, err)
	return err
}
