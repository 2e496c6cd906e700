package storekit

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/kit"
)

// NewOpenOption returns a strata.OpenOption that hands value to the
// store's opener under key, for a store package's own options (the way
// redis.WithHooks passes go-redis hooks). Use an unexported key type of
// the package, as for context values.
func NewOpenOption(key, value any) strata.OpenOption {
	return kit.NewOpenOption(key, value).(strata.OpenOption)
}

// OpenValue returns the value of the option made by NewOpenOption with
// key, from the context strata.Open passes to an opener (see
// strata.Register), and whether the caller gave one.
func OpenValue(ctx context.Context, key any) (any, bool) {
	return kit.OpenValue(ctx, key)
}

// TracerProvider returns the provider given to strata.Open with
// strata.WithTracerProvider (or the global one for a URL with trace=true),
// from the context an opener receives, for a store that traces its own
// work beneath the spans of strata.WithTracing.
func TracerProvider(ctx context.Context) (trace.TracerProvider, bool) {
	v, ok := kit.OpenValue(ctx, kit.TracerKey{})
	tp, _ := v.(trace.TracerProvider)
	return tp, ok && tp != nil
}
