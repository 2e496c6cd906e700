package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

// A lease whose key is deleted on Redis is lost at its next renewal, and
// the loss is a span linked to the acquisition's, as are the renewals.
func TestTraceLeaseLoss(t *testing.T) {
	srv := testserver.StartRedis(t, nil)
	c := srv.Client(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	lk := newLocker(t, c, uniquePrefix(), locks.Options{TracerProvider: tp})
	ctx := t.Context()

	lease, err := lk.TryAcquire(ctx, "job", 600*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lk.TryAcquire(ctx, "job", time.Second); !errors.Is(err, locks.ErrHeld) {
		t.Fatalf("second TryAcquire: %v", err)
	}
	if err := c.Del(ctx, lk.LockKey("job")).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lease.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("lease not lost 10s after its key was deleted")
	}
	if !errors.Is(lease.Err(), locks.ErrLost) {
		t.Fatalf("lease ended with %v", lease.Err())
	}

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		byName[sp.Name()] = append(byName[sp.Name()], sp)
	}
	tries := byName[locks.SpanTryAcquire]
	if len(tries) != 2 || tries[0].Status().Code == codes.Error || !hasBool(tries[1], locks.AttrContended) {
		t.Fatalf("try_acquire spans %v", tries)
	}
	acquired := tries[0].SpanContext()
	lost := byName[locks.SpanLost]
	if len(lost) != 1 || lost[0].Status().Code != codes.Error || len(lost[0].Links()) != 1 ||
		lost[0].Links()[0].SpanContext.SpanID() != acquired.SpanID() {
		t.Fatalf("lost spans %v", lost)
	}
	if len(byName[locks.SpanRenew]) == 0 {
		t.Fatal("no renewal span")
	}
}

func hasBool(sp sdktrace.ReadOnlySpan, key string) bool {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsBool()
		}
	}
	return false
}
