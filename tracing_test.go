package strata_test

import (
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/strata-kv/strata"
	_ "github.com/strata-kv/strata/stores/memory"
)

// recorder returns a tracer provider whose spans the returned recorder
// keeps, shut down when t ends.
func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	return tp, rec
}

// attrs returns a span's attributes by key.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// A store opened with a tracer provider makes a span per operation, with
// its kind, operation and outcome, and neither keys nor values.
func TestOpenWithTracing(t *testing.T) {
	ctx := t.Context()
	tp, rec := recorder(t)
	s, err := strata.Open(ctx, "mem://", strata.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, []byte("secret-key"), []byte("secret-value"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []byte("secret-key")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []byte("absent")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := strata.GetMany(ctx, s, [][]byte{[]byte("secret-key"), []byte("absent")}); err != nil {
		t.Fatal(err)
	}
	b := (&strata.WriteBatch{}).Put([]byte("k2"), []byte("v2"), 0).IfAbsent([]byte("k2"))
	if err := strata.Commit(ctx, s, b); err != nil {
		t.Fatal(err)
	}
	if err := strata.Commit(ctx, s, b); !errors.Is(err, strata.ErrConflict) {
		t.Fatalf("second commit: %v", err)
	}
	for range s.Keys(ctx, nil) {
	}

	spans := rec.Ended()
	want := []struct {
		name  string
		extra map[attribute.Key]any
	}{
		{"strata.put", nil},
		{"strata.get", map[attribute.Key]any{strata.AttrHit: true}},
		{"strata.get", map[attribute.Key]any{strata.AttrHit: false}},
		{"strata.get_many", map[attribute.Key]any{strata.AttrKeys: int64(2), strata.AttrHits: int64(1)}},
		{"strata.commit", map[attribute.Key]any{strata.AttrWrites: int64(1), strata.AttrConditions: int64(1), strata.AttrApplied: true}},
		{"strata.commit", map[attribute.Key]any{strata.AttrApplied: false}},
		{"strata.keys", map[attribute.Key]any{strata.AttrKeys: int64(2)}},
	}
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d", len(spans), len(want))
	}
	for i, w := range want {
		sp := spans[i]
		a := attrs(sp)
		if sp.Name() != w.name || a[strata.AttrDBSystem].AsString() != "memory" ||
			"strata."+a[strata.AttrDBOperation].AsString() != w.name {
			t.Errorf("span %d: %s %v, want %s", i, sp.Name(), a, w.name)
		}
		for k, v := range w.extra {
			if a[k].AsInterface() != v {
				t.Errorf("span %d (%s): %s = %v, want %v", i, sp.Name(), k, a[k].AsInterface(), v)
			}
		}
		if sp.Status().Code == codes.Error {
			t.Errorf("span %d (%s): status %v", i, sp.Name(), sp.Status())
		}
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.Emit(), "secret") {
				t.Errorf("span %d (%s) shows %s", i, sp.Name(), kv.Key)
			}
		}
	}
}

// trace=true in a URL traces through the global provider, and a failure
// is an error span.
func TestOpenTraceParameter(t *testing.T) {
	tp, rec := recorder(t)
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)
	s, err := strata.Open(t.Context(), "mem://?trace=true&max_value_size=4")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), []byte("k"), []byte("too large"), 0); !errors.Is(err, strata.ErrValueTooLarge) {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "strata.put" || spans[0].Status().Code != codes.Error {
		t.Fatalf("spans %v", spans)
	}
	if _, err := strata.Open(t.Context(), "mem://?trace=maybe"); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("trace=maybe: %v", err)
	}
}
