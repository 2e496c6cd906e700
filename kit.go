package strata

import "github.com/strata-kv/strata/internal/kit"

// The tools strata uses itself and package storekit exports to store
// authors.
func init() {
	kit.CheckKey = checkKey
	kit.ResolveTTL = resolveTTL
	kit.NewOpError = newOpError
	kit.QuoteKey = quoteKey
	kit.RedactURL = redactURL
	kit.ParseFence = parseFence
}
