package storetest

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/ttlval"
)

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

// BadOpen is a case of [OpenFails]: Make spoils the path, where Open must
// then fail.
type BadOpen struct {
	Name   string
	Make   func(t *testing.T, path string)
	Target error // what the error of Open must match; nil: any error
}

// OpenFails runs each case in a subtest on a new path, named name in the
// subtest's temporary directory: open of the spoiled path must fail within
// 5 seconds with an error matching the case's Target.
func OpenFails(t *testing.T, name string, open func(path string) (strata.Store, error), cases []BadOpen) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			c.Make(t, path)
			start := time.Now()
			s, err := open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if c.Target != nil && !errors.Is(err, c.Target) {
				t.Fatalf("Open: %v, want an error matching %v", err, c.Target)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Open took %v", took)
			}
			t.Logf("Open: %.300v", err)
		})
	}
}

// DamageReported opens the store at path, whose database held the keys
// CrashKey(0) to CrashKey(n-1) before it was damaged (what names the
// damage: "file", "table"). Open may fail, with an error matching
// strata.ErrCorrupt. Otherwise it reads CrashKey(0), CrashKey(step), ...
// and then every key: every call must return, each error must match
// strata.ErrCorrupt, at least one call must report the damage, and Close
// must succeed (the store stays usable for what is intact). It returns how
// many calls failed.
func DamageReported(t *testing.T, open Open, path, what string, n, step int) int {
	t.Helper()
	s, err := open(path, Config{})
	if err != nil {
		if !errors.Is(err, strata.ErrCorrupt) {
			t.Fatalf("Open of a damaged %s: %v, want ErrCorrupt", what, err)
		}
		t.Logf("Open: %.300v", err)
		return 0
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}()
	ctx := t.Context()
	errs := 0
	check := func(op string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, strata.ErrNotFound) {
			return
		}
		errs++
		if !errors.Is(err, strata.ErrCorrupt) {
			t.Errorf("%s on a damaged %s: %v, want ErrCorrupt", op, what, err)
		}
	}
	for i := 0; i < n; i += step {
		_, err := s.Get(ctx, CrashKey(i))
		check("Get", err)
	}
	for _, err := range s.Keys(ctx, nil) {
		if err != nil {
			check("Keys", err)
			break
		}
	}
	if errs == 0 {
		t.Fatalf("no call on the damaged %s reported the damage", what)
	}
	return errs
}

// Malformed checks what a store makes of values that strata did not
// write: it opens the store at path and writes "a" with a good value; once
// the store is closed, rawSet writes the given values into the database at
// path directly: under "b" a value too short for a strata header and under
// "c" one with an unknown header version. The reopened store must pass
// [MalformedValues].
func Malformed(t *testing.T, open Open, path string, rawSet func(values map[string][]byte)) {
	s := openAt(t, open, path, Config{})
	if err := s.Put(t.Context(), []byte("a"), []byte("good"), strata.NoExpiry); err != nil {
		t.Fatal(err)
	}
	s.Close()
	bad := ttlval.Encode(0, []byte("x"))
	bad[0] = 7 // an unknown header version
	rawSet(map[string][]byte{"b": []byte("short"), "c": bad})
	s = openAt(t, open, path, Config{})
	defer s.Close()
	MalformedValues(t, s)
}

// MalformedValues checks a store that holds "a" with a good value, "b"
// with a value too short for a strata header and "c" with an unknown header
// version: every read of b or c reports strata.ErrCorrupt in one
// *strata.OpError, and writing over or deleting a damaged value repairs it.
func MalformedValues(t *testing.T, s Store) {
	ctx := t.Context()
	for _, k := range []string{"b", "c"} {
		key := []byte(k)
		_, err := s.Get(ctx, key)
		wantCorrupt(t, "Get", err)
		_, err = s.TTL(ctx, key)
		wantCorrupt(t, "TTL", err)
		_, err = s.GetMany(ctx, [][]byte{[]byte("a"), key})
		wantCorrupt(t, "GetMany", err)
		_, err = s.GetAndDelete(ctx, key)
		wantCorrupt(t, "GetAndDelete", err)
		_, err = s.CompareAndSwap(ctx, key, nil, []byte("v"), 0)
		wantCorrupt(t, "CompareAndSwap", err)
		_, err = s.PutIfAbsent(ctx, key, []byte("v"), 0)
		wantCorrupt(t, "PutIfAbsent", err)
	}
	var last error
	for _, err := range s.Keys(ctx, nil) {
		last = err
	}
	wantCorrupt(t, "Keys", last)
	sn, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last = nil
	for _, err := range sn.Entries(ctx, nil) {
		last = err
	}
	sn.Close()
	wantCorrupt(t, "Entries", last)
	// Writing over or deleting a damaged value repairs it.
	if err := s.Put(ctx, []byte("b"), []byte("fixed"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k, err := range s.Keys(ctx, nil) {
		if err != nil {
			t.Fatalf("Keys after the repair: %v", err)
		}
		keys = append(keys, string(k))
	}
	if strings.Join(keys, ",") != "a,b" {
		t.Fatalf("Keys after the repair = %q", keys)
	}
}

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, strata.ErrCorrupt) {
		t.Errorf("%s of a malformed value: %v, want ErrCorrupt", what, err)
	}
	var oe *strata.OpError
	if err != nil && !errors.As(err, &oe) {
		t.Errorf("%s: %v is not wrapped in a *strata.OpError", what, err)
	}
}
