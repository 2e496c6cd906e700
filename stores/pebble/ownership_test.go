package pebble_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/pebble"
)

// TestKeysOwnership: Keys and Entries copy the prefix they are given when
// called, and the keys they yield are the caller's (see
// storetest.KeysOwnership).
func TestKeysOwnership(t *testing.T) {
	storetest.KeysOwnership(t, storetest.OpenTemp(t, open, storetest.Config{}))
}

// TestPutManyTooLarge: a batch that reaches Pebble's 4 GiB batch limit is
// rejected as input (ErrValueTooLarge) before anything is written; Pebble
// itself would panic. The four values share one untouched 1 GiB array, so
// the test costs address space, not memory.
func TestPutManyTooLarge(t *testing.T) {
	s := storetest.OpenTemp(t, open, storetest.Config{})
	ctx := t.Context()
	big := make([]byte, pebble.DefaultMaxValueSize)
	entries := make([]strata.Entry, 4)
	for i := range entries {
		entries[i] = strata.Entry{Key: fmt.Appendf(nil, "k%d", i), Value: big}
	}
	if err := s.PutMany(ctx, entries); !errors.Is(err, strata.ErrValueTooLarge) {
		t.Fatalf("PutMany of 4 GiB = %v, want ErrValueTooLarge", err)
	}
	if _, err := s.Get(ctx, []byte("k0")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("Get after the refused batch = %v, want ErrNotFound", err)
	}
}
