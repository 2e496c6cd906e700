package redis

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// hooksKey is the key of WithHooks's option.
type hooksKey struct{}

// WithHooks is an option of strata.Open (and config.Open) that adds hooks
// to the go-redis client the Redis store opens by URL or config file, as
// Options.Hooks does for Open: to trace, log or measure its commands.
// A later WithHooks replaces an earlier one.
func WithHooks(hooks ...goredis.Hook) strata.OpenOption {
	return storekit.NewOpenOption(hooksKey{}, hooks)
}

// withOpenOptions applies the options of strata.Open that ctx carries to
// o: WithHooks's hooks, and the tracer provider of
// strata.WithTracerProvider, unless o has one.
func withOpenOptions(ctx context.Context, o *Options) {
	if v, ok := storekit.OpenValue(ctx, hooksKey{}); ok {
		o.Hooks = append(o.Hooks, v.([]goredis.Hook)...)
	}
	if tp, ok := storekit.TracerProvider(ctx); ok && o.TracerProvider == nil {
		o.TracerProvider = tp
	}
}

// instrument adds o's Hooks, then redisotel's tracing when o has a
// TracerProvider, to a client Open made, before any command.
func instrument(c goredis.UniversalClient, o *Options) error {
	for _, h := range o.Hooks {
		c.AddHook(h)
	}
	if o.TracerProvider == nil {
		return nil
	}
	err := redisotel.InstrumentTracing(c,
		redisotel.WithTracerProvider(o.TracerProvider),
		redisotel.WithDBStatement(false), // arguments hold keys and values
		redisotel.WithCallerEnabled(false))
	if err != nil {
		return fmt.Errorf("%w: redis: tracing: %w", strata.ErrInvalidConfig, err)
	}
	return nil
}
