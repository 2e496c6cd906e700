package strata

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxTTL keeps absolute expiry times far from overflow (about 146 years).
const maxTTL = time.Duration(1 << 62)

var errEmptyKey = fmt.Errorf("%w: empty key", ErrInvalidKey)

// checkKey returns an error matching ErrInvalidKey if key is empty or
// longer than MaxKeyLen (storekit.CheckKey).
func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return errEmptyKey
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// resolveTTL applies the TTL rules of [Store.Put] (storekit.ResolveTTL): it returns the TTL to
// store, either a positive duration rounded up to the millisecond or
// NoExpiry. ttl == 0 resolves to defaultTTL (no expiry if defaultTTL <= 0).
// A negative ttl other than NoExpiry fails with ErrInvalidTTL.
func resolveTTL(ttl, defaultTTL time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0 && defaultTTL > 0:
		ttl = defaultTTL
	case ttl == 0 || ttl == NoExpiry:
		return NoExpiry, nil
	case ttl < 0:
		return 0, fmt.Errorf("%w: %v (use strata.NoExpiry for none)", ErrInvalidTTL, ttl)
	}
	if ttl > maxTTL {
		return 0, fmt.Errorf("%w: %v exceeds the limit of %v", ErrInvalidTTL, ttl, maxTTL)
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond), nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
