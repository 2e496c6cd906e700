package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata/internal/storetest"
)

// TestKeysOwnership: Keys and Entries copy the prefix they are given when
// called, and the keys they yield are the caller's (see
// storetest.KeysOwnership).
func TestKeysOwnership(t *testing.T) {
	storetest.KeysOwnership(t, openAt(t, filepath.Join(t.TempDir(), "state.db"), nil))
}
