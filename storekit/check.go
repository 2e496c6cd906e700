package storekit

import (
	"fmt"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/kit"
)

// CheckKey returns an error matching strata.ErrInvalidKey if key is empty
// or longer than strata.MaxKeyLen. Stores call it before any I/O.
func CheckKey(key []byte) error { return kit.CheckKey(key) }

// CheckValue returns an error matching strata.ErrValueTooLarge if
// maxSize > 0 and value is longer than maxSize.
func CheckValue(value []byte, maxSize int) error {
	if maxSize > 0 && len(value) > maxSize {
		return fmt.Errorf("%w: %d bytes, limit %d", strata.ErrValueTooLarge, len(value), maxSize)
	}
	return nil
}

// ResolveTTL applies the TTL rules of strata.Store.Put: it returns the TTL
// to store, either a positive duration rounded up to the millisecond or
// strata.NoExpiry. ttl == 0 resolves to defaultTTL (no expiry if
// defaultTTL <= 0). A negative ttl other than strata.NoExpiry fails with
// strata.ErrInvalidTTL.
func ResolveTTL(ttl, defaultTTL time.Duration) (time.Duration, error) {
	return kit.ResolveTTL(ttl, defaultTTL)
}

// CheckEntry validates a write: the value against maxValueSize first, then
// the key, then the TTL, which it resolves as [ResolveTTL] does.
func CheckEntry(key, value []byte, ttl, defaultTTL time.Duration, maxValueSize int) (time.Duration, error) {
	if err := CheckValue(value, maxValueSize); err != nil {
		return 0, err
	}
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	return ResolveTTL(ttl, defaultTTL)
}

// ExpiryMillis returns the absolute expiry, in Unix milliseconds, of a key
// written at now with a TTL resolved by [ResolveTTL]; 0 means never. The
// expiry is rounded up so that a key lives at least ttl.
func ExpiryMillis(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	ns := now.UnixNano() + int64(ttl)
	return (ns + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// Remaining returns the time left at now before expiryMillis (from
// [ExpiryMillis]): strata.NoExpiry for 0, and 0 once expired.
func Remaining(now time.Time, expiryMillis int64) time.Duration {
	if expiryMillis == 0 {
		return strata.NoExpiry
	}
	left := time.Duration(expiryMillis*int64(time.Millisecond) - now.UnixNano())
	if left <= 0 {
		return 0
	}
	return left
}

// Expired reports whether a key with expiryMillis is expired at now.
func Expired(now time.Time, expiryMillis int64) bool {
	return expiryMillis != 0 && now.UnixNano() >= expiryMillis*int64(time.Millisecond)
}
