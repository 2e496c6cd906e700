package storekit

import "github.com/strata-kv/strata/internal/kit"

// NewOpError wraps err in a *strata.OpError naming the operation, the
// store kind and the key, unless err is nil, is already an OpError (errors
// are wrapped once), or is one that callers match as is:
// strata.ErrNotFound, strata.ErrClosed, a *strata.ConflictError and
// context errors stay unwrapped, so that a miss costs no allocation.
func NewOpError(op, backend string, key []byte, err error) error {
	return kit.NewOpError(op, backend, key, err)
}

// QuoteKey returns key as a quoted Go string, shortened to 64 bytes with
// the full length noted, for messages and logs.
func QuoteKey(key []byte) string { return kit.QuoteKey(key) }

// RedactURL returns rawURL with every password it can carry replaced: the
// user information's password, an opaque form's user information, and
// the values of query parameters whose names suggest a secret (password,
// pwd, pass, secret, token, auth, credential, api_key, private,
// signature), the part of a path before its last "@", and any fragment. A string that does not parse as a URL is reduced to its
// scheme. Use it for every URL that goes into an error, a log line or
// printed output.
func RedactURL(rawURL string) string { return kit.RedactURL(rawURL) }

// URLErrorReason returns the reason of a url.Parse error without the
// parts of the URL the parser quotes, which may be a password: put it in
// an error beside RedactURL's form of the URL, never the error itself.
func URLErrorReason(err error) string { return kit.URLErrorReason(err) }
