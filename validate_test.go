package strata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

func TestCheckKey(t *testing.T) {
	for _, c := range []struct {
		key  []byte
		want error
	}{
		{nil, strata.ErrInvalidKey},
		{[]byte{}, strata.ErrInvalidKey},
		{[]byte{0}, nil},
		{[]byte{0xff}, nil},
		{bytes.Repeat([]byte("k"), strata.MaxKeyLen), nil},
		{bytes.Repeat([]byte("k"), strata.MaxKeyLen+1), strata.ErrInvalidKey},
	} {
		if err := storekit.CheckKey(c.key); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("CheckKey(%d bytes) = %v, want %v", len(c.key), err, c.want)
		}
	}
}

func TestCheckValue(t *testing.T) {
	if err := storekit.CheckValue(make([]byte, 10), 10); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if err := storekit.CheckValue(make([]byte, 11), 10); !errors.Is(err, strata.ErrValueTooLarge) || !strings.Contains(err.Error(), "11 bytes, limit 10") {
		t.Errorf("over the limit: %v", err)
	}
	if err := storekit.CheckValue(make([]byte, 1<<20), 0); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

func TestResolveTTL(t *testing.T) {
	for _, c := range []struct {
		ttl, def, want time.Duration
		err            error
	}{
		{0, 0, strata.NoExpiry, nil},
		{0, time.Minute, time.Minute, nil},
		{strata.NoExpiry, time.Minute, strata.NoExpiry, nil},
		{time.Nanosecond, 0, time.Millisecond, nil},
		{1500 * time.Microsecond, 0, 2 * time.Millisecond, nil},
		{time.Second, time.Minute, time.Second, nil},
		{-2, 0, 0, strata.ErrInvalidTTL},
		{-time.Hour, time.Minute, 0, strata.ErrInvalidTTL},
		{1<<63 - 1, 0, 0, strata.ErrInvalidTTL},
	} {
		got, err := storekit.ResolveTTL(c.ttl, c.def)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("ResolveTTL(%v, %v) = %v, %v; want %v, %v", c.ttl, c.def, got, err, c.want, c.err)
		}
	}
}

func TestExpiry(t *testing.T) {
	now := time.UnixMilli(1_000_000).Add(300 * time.Microsecond)
	exp := storekit.ExpiryMillis(now, time.Second)
	if exp != 1_001_001 {
		t.Fatalf("ExpiryMillis = %d, want 1001001 (rounded up)", exp)
	}
	if storekit.ExpiryMillis(now, strata.NoExpiry) != 0 {
		t.Fatal("ExpiryMillis(NoExpiry) != 0")
	}
	if left := storekit.Remaining(now, exp); left != time.Second+700*time.Microsecond {
		t.Fatalf("Remaining = %v", left)
	}
	if storekit.Remaining(now, 0) != strata.NoExpiry {
		t.Fatal("Remaining(0) != NoExpiry")
	}
	at := time.UnixMilli(exp)
	if !storekit.Expired(at, exp) || storekit.Expired(at.Add(-time.Nanosecond), exp) || storekit.Expired(at, 0) {
		t.Fatal("Expired is wrong at the boundary")
	}
	if storekit.Remaining(at, exp) != 0 {
		t.Fatal("Remaining at expiry is not 0")
	}
}

func TestOpError(t *testing.T) {
	err := storekit.NewOpError("get", "redis", []byte("user:1"), strata.ErrUnavailable)
	if got := err.Error(); got != `redis get "user:1": strata: backend unavailable` {
		t.Fatalf("Error() = %q", got)
	}
	if !errors.Is(err, strata.ErrUnavailable) {
		t.Fatal("cause not reachable")
	}
	var oe *strata.OpError
	if !errors.As(err, &oe) || oe.Op != "get" || oe.Backend != "redis" {
		t.Fatalf("errors.As = %+v", oe)
	}
	// Wrapped once: wrapping again returns the same error.
	if again := storekit.NewOpError("put", "tier", nil, err); again != err {
		t.Fatalf("NewOpError wrapped an *OpError again: %v", again)
	}
	wrapped := fmt.Errorf("context: %w", err)
	if again := storekit.NewOpError("put", "tier", nil, wrapped); again != wrapped {
		t.Fatalf("NewOpError wrapped a chain holding an *OpError: %v", again)
	}
	// Misses, closes and context errors pass through unwrapped.
	for _, e := range []error{nil, strata.ErrNotFound, strata.ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if got := storekit.NewOpError("get", "x", nil, e); got != e {
			t.Errorf("NewOpError(%v) = %v, want it unwrapped", e, got)
		}
	}
	long := storekit.NewOpError("get", "x", bytes.Repeat([]byte("k"), 1000), strata.ErrInvalidKey).Error()
	if len(long) > 200 || !strings.Contains(long, "(1000 bytes)") {
		t.Fatalf("a long key is not shortened: %q", long)
	}
}
