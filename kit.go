package strata

import (
	"context"

	"github.com/strata-kv/strata/internal/kit"
)

// The tools strata uses itself and package storekit exports to store
// authors.
func init() {
	kit.CheckKey = checkKey
	kit.ResolveTTL = resolveTTL
	kit.NewOpError = newOpError
	kit.QuoteKey = quoteKey
	kit.RedactURL = redactURL
	kit.URLErrorReason = urlErrReason
	kit.ParseFence = parseFence
	kit.NewOpenOption = func(key, value any) any { return OpenOption{key, value} }
	kit.OpenValue = openValue
	kit.WithOpenOptions = func(ctx context.Context, opts any) context.Context {
		o, _ := opts.([]OpenOption)
		return withOpenOptions(ctx, o)
	}
}
