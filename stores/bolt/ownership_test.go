package bolt_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/strata-kv/strata"
)

// TestKeysOwnership: Keys and Entries copy the prefix they are given when
// called (a caller may reuse its buffer, before the loop or in its body,
// and later chunks must still use the prefix it passed), and the keys they
// yield are the caller's: appending to one never writes into another.
func TestKeysOwnership(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "state.db"), nil)
	ctx := t.Context()
	const n = 300 // more than the first chunk of Keys
	var entries []strata.Entry
	for i := range n {
		for _, p := range []string{"a", "b"} {
			k := fmt.Appendf(nil, "%s%03d", p, i)
			entries = append(entries, strata.Entry{Key: k, Value: k})
		}
	}
	if err := s.PutMany(ctx, entries); err != nil {
		t.Fatal(err)
	}

	prefix := []byte("a")
	keys := s.Keys(ctx, prefix)
	prefix[0] = 'b' // after Keys returned, before the loop
	var got [][]byte
	for k, err := range keys {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if len(got) != n || got[0][0] != 'a' {
		t.Fatalf("Keys(a) with the prefix changed before the loop: %d keys, first %q; want %d under a", len(got), got[0], n)
	}
	// Append to every key: none may change another.
	for i := range got {
		got[i] = append(got[i], '!')
	}
	for i, k := range got {
		if want := fmt.Sprintf("a%03d!", i); string(k) != want {
			t.Fatalf("key %d after appending to each = %q, want %q", i, k, want)
		}
	}

	prefix = []byte("a")
	count := 0
	for k, err := range s.Keys(ctx, prefix) {
		if err != nil {
			t.Fatal(err)
		}
		prefix[0] = 'b' // in the loop body
		if k[0] != 'a' {
			t.Fatalf("Keys(a) yielded %q", k)
		}
		count++
	}
	if count != n {
		t.Fatalf("Keys(a) with the prefix changed in the loop body: %d keys, want %d", count, n)
	}

	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	prefix = []byte("a")
	seq := snap.Entries(ctx, prefix)
	prefix[0] = 'b'
	count = 0
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if e.Key[0] != 'a' || !bytes.Equal(e.Key, e.Value) {
			t.Fatalf("Entries(a) with the prefix changed before the loop yielded %q=%q", e.Key, e.Value)
		}
		count++
	}
	if count != n {
		t.Fatalf("Entries(a) with the prefix changed before the loop: %d entries, want %d", count, n)
	}
}
