package checkpoint_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/stores/memory"
)

// A checkpoint and a restore are spans with their checkpoint's id and
// entries.
func TestTraceCheckpointAndRestore(t *testing.T) {
	ctx := t.Context()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	mem := memory.New(nil)
	defer mem.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := mem.Put(ctx, []byte(k), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	co, err := checkpoint.New(mem, &checkpoint.Options{Dir: t.TempDir(), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	m, err := co.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := co.RestoreLatest(ctx); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, want := range []struct {
		name  string
		attrs map[string]any
	}{
		{checkpoint.SpanCreate, map[string]any{checkpoint.AttrID: m.ID, checkpoint.AttrEntries: int64(3), checkpoint.AttrDelta: false, "db.system": "memory"}},
		{checkpoint.SpanRestore, map[string]any{checkpoint.AttrID: m.ID, checkpoint.AttrEntries: int64(3), checkpoint.AttrLatest: true, checkpoint.AttrSkipped: int64(0)}},
	} {
		sp := spans[i]
		got := map[attribute.Key]attribute.Value{}
		for _, kv := range sp.Attributes() {
			got[kv.Key] = kv.Value
		}
		if sp.Name() != want.name {
			t.Errorf("span %d: %s, want %s", i, sp.Name(), want.name)
		}
		for k, v := range want.attrs {
			if got[attribute.Key(k)].AsInterface() != v {
				t.Errorf("%s: %s = %v, want %v", sp.Name(), k, got[attribute.Key(k)].AsInterface(), v)
			}
		}
	}
}
