// Package kit connects the tools for store authors that package strata
// implements, because it needs them itself, to package storekit, which
// exports them: strata fills these variables in an init function, so that
// its own documentation lists only what users call.
package kit

import (
	"context"
	"time"
)

// The implementations in package strata; set before any other package's
// init runs (every importer of storekit imports strata first).
var (
	CheckKey   func(key []byte) error
	ResolveTTL func(ttl, defaultTTL time.Duration) (time.Duration, error)
	NewOpError func(op, backend string, key []byte, err error) error
	QuoteKey   func(key []byte) string
	RedactURL  func(rawURL string) string
	// URLErrorReason is strata's urlErrReason.
	URLErrorReason func(err error) string
	ParseFence     func(v []byte) (token uint64, id []byte, err error)

	// NewOpenOption returns a strata.OpenOption of key and value.
	NewOpenOption func(key, value any) any
	// OpenValue returns the value of the open option key in ctx.
	OpenValue func(ctx context.Context, key any) (any, bool)
	// WithOpenOptions returns ctx carrying opts, a []strata.OpenOption,
	// as strata.Open hands them to openers.
	WithOpenOptions func(ctx context.Context, opts any) context.Context
)

// TracerKey is the key of strata.WithTracerProvider's option; its value is
// a trace.TracerProvider.
type TracerKey struct{}
