package strata

import (
	"errors"
	"strconv"
	"strings"
)

// The sentinel errors. Match them with errors.Is; stores wrap them (see the
// package documentation's Errors section).
var (
	// ErrNotFound: the key is absent or has expired.
	ErrNotFound = errors.New("strata: not found")
	// ErrClosed: the store, snapshot or lease was closed.
	ErrClosed = errors.New("strata: closed")
	// ErrInvalidKey: the key is empty or longer than MaxKeyLen.
	ErrInvalidKey = errors.New("strata: invalid key")
	// ErrInvalidTTL: the TTL is negative and not NoExpiry.
	ErrInvalidTTL = errors.New("strata: invalid ttl")
	// ErrValueTooLarge: the value exceeds the store's MaxValueSize.
	ErrValueTooLarge = errors.New("strata: value too large")
	// ErrUnsupported: the store lacks a capability and no fallback exists.
	ErrUnsupported = errors.New("strata: unsupported")
	// ErrUnavailable: the backend could not be reached; nothing was applied.
	ErrUnavailable = errors.New("strata: backend unavailable")
	// ErrIndeterminate: the request may have been applied; its outcome is
	// unknown (for example, a timeout after the command was sent).
	ErrIndeterminate = errors.New("strata: outcome unknown")
	// ErrCorrupt: stored or checkpointed data failed validation.
	ErrCorrupt = errors.New("strata: corrupt data")
	// ErrConflict: a condition of a commit did not hold; nothing was
	// written (see ConflictError).
	ErrConflict = errors.New("strata: condition failed")
	// ErrFenced: a commit's fence holds a newer token than the committer's:
	// another writer has taken over. The ConflictError of a fence matches
	// both ErrFenced and ErrConflict.
	ErrFenced = errors.New("strata: fenced by a newer token")
	// ErrInvalidConfig: a URL or configuration value is malformed or out
	// of range. The message names the field and what it accepts.
	ErrInvalidConfig = errors.New("strata: invalid configuration")
	// ErrMismatch: Verify found the destination different from the source.
	ErrMismatch = errors.New("strata: destination differs from source")
)

// maxErrorKey bounds how much of a key an error message shows.
const maxErrorKey = 64

// OpError describes a failed operation. Stores wrap backend failures and
// rejected input in exactly one OpError; Err stays reachable through
// errors.Is and errors.As.
type OpError struct {
	Op      string // operation, such as "get" or "put_many"
	Backend string // store kind, such as "redis"
	Key     []byte // the key involved, if one; shortened in messages
	Err     error  // the cause
}

// Error formats the error as "backend op key: cause", quoting at most
// 64 bytes of the key.
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString(e.Backend)
	if e.Backend != "" {
		b.WriteByte(' ')
	}
	b.WriteString(e.Op)
	if len(e.Key) > 0 {
		b.WriteByte(' ')
		b.WriteString(quoteKey(e.Key))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// quoteKey returns key as a quoted Go string (storekit.QuoteKey), shortened to 64 bytes with
// the full length noted, for messages and logs.
func quoteKey(key []byte) string {
	if len(key) <= maxErrorKey {
		return strconv.Quote(string(key))
	}
	// strconv.Quote escapes a UTF-8 sequence split by the cut as \x bytes.
	return strconv.Quote(string(key[:maxErrorKey])) + "…(" + strconv.Itoa(len(key)) + " bytes)"
}

// newOpError wraps err in an *OpError (storekit.NewOpError) unless err is nil, is already an
// *OpError, or is one that callers match as is: ErrNotFound, ErrClosed,
// a *ConflictError and context errors stay unwrapped, so a miss costs no
// allocation.
func newOpError(op, backend string, key []byte, err error) error {
	if err == nil || err == ErrNotFound || err == ErrClosed || isContextErr(err) {
		return err
	}
	if _, ok := err.(*ConflictError); ok {
		return err
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Backend: backend, Key: append([]byte(nil), key...), Err: err}
}
