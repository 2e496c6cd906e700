package bolt_test

import (
	"testing"

	"github.com/strata-kv/strata/internal/storetest"
)

// TestKeysOwnership: Keys and Entries copy the prefix they are given when
// called, and the keys they yield are the caller's (see
// storetest.KeysOwnership).
func TestKeysOwnership(t *testing.T) {
	storetest.KeysOwnership(t, storetest.OpenTemp(t, open, storetest.Config{}))
}
