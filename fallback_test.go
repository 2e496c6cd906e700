package strata_test

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/memory"
)

// bare is a store with only the required methods, as a user's minimal store
// would be: every helper must fall back (or report ErrUnsupported).
type bare struct{ s strata.Store }

func (b bare) Get(ctx context.Context, k []byte) ([]byte, error) { return b.s.Get(ctx, k) }
func (b bare) Put(ctx context.Context, k, v []byte, ttl time.Duration) error {
	return b.s.Put(ctx, k, v, ttl)
}
func (b bare) Delete(ctx context.Context, k []byte) error { return b.s.Delete(ctx, k) }
func (b bare) Keys(ctx context.Context, p []byte) iter.Seq2[[]byte, error] {
	return b.s.Keys(ctx, p)
}
func (b bare) Close() error { return b.s.Close() }

func openBare(tb testing.TB, o conformance.Options) strata.Store {
	return bare{memory.New(&memory.Options{DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, Clock: o.Clock})}
}

// The conformance suite on a store with no capabilities exercises every
// fallback helper: batches loop, snapshots scan, atomics are unsupported.
func TestConformanceFallbacks(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open:          openBare,
		Capabilities:  0,
		FakeClock:     true,
		LiveSnapshots: true, // ScanSnapshot reads live
	})
}

// A prefix view over a store without capabilities still offers them, with
// the helpers' behaviour: batches work, atomics report ErrUnsupported.
func TestWithPrefixOverBareStore(t *testing.T) {
	ctx := t.Context()
	inner := openBare(t, conformance.Options{})
	defer inner.Close()
	v := strata.WithPrefix(inner, []byte("p:"))
	if err := strata.PutMany(ctx, v, []strata.Entry{{Key: []byte("a"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	got, err := strata.GetMany(ctx, v, [][]byte{[]byte("a"), []byte("b")})
	if err != nil || string(got[0]) != "1" || got[1] != nil {
		t.Fatalf("GetMany = %q, %v", got, err)
	}
	if raw, err := inner.Get(ctx, []byte("p:a")); err != nil || string(raw) != "1" {
		t.Fatalf("the view did not write under its prefix: %q, %v", raw, err)
	}
	if _, err := v.(strata.Atomic).PutIfAbsent(ctx, []byte("a"), nil, 0); !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("PutIfAbsent = %v, want ErrUnsupported", err)
	}
	if _, err := v.(strata.Expirer).TTL(ctx, []byte("a")); !errors.Is(err, strata.ErrUnsupported) {
		t.Fatalf("TTL = %v, want ErrUnsupported", err)
	}
	if _, ok := strata.StatsOf(inner); ok {
		t.Fatal("bare store reports stats")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Get(ctx, []byte("p:a")); err != nil {
		t.Fatalf("closing the view closed the store: %v", err)
	}
	if _, err := v.Get(ctx, []byte("a")); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("Get on a closed view = %v, want ErrClosed", err)
	}
}

// The prefix view reports a key too long for its prefix clearly.
func TestWithPrefixKeyLimit(t *testing.T) {
	s := memory.New(nil)
	defer s.Close()
	v := strata.WithPrefix(s, []byte("1234"))
	err := v.Put(t.Context(), make([]byte, strata.MaxKeyLen-3), nil, 0)
	if !errors.Is(err, strata.ErrInvalidKey) {
		t.Fatalf("Put = %v, want ErrInvalidKey", err)
	}
	if err := v.Put(t.Context(), make([]byte, strata.MaxKeyLen-4), nil, 0); err != nil {
		t.Fatalf("Put at the limit: %v", err)
	}
}
