package conformance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func (s *suite) testList(t *testing.T) {
	t.Run("Empty", func(t *testing.T) {
		e := s.store(t)
		if got := e.keys(""); len(got) != 0 {
			t.Fatalf("Keys of an empty store = %q", got)
		}
	})
	t.Run("Prefix", func(t *testing.T) {
		e := s.store(t)
		for _, k := range []string{"a", "ab", "abc", "b", "ba", "B", "a/"} {
			e.put(k, "v", 0)
		}
		for prefix, want := range map[string][]string{
			"":   {"B", "a", "a/", "ab", "abc", "b", "ba"},
			"a":  {"a", "a/", "ab", "abc"},
			"ab": {"ab", "abc"},
			"a/": {"a/"},
			"b":  {"b", "ba"},
			"c":  nil,
			"A":  nil,
		} {
			e.wantKeys(prefix, want)
		}
	})
	t.Run("FFEdges", func(t *testing.T) {
		// A prefix's upper bound is found by incrementing its last byte
		// that is not 0xff; stores that get this wrong lose or add keys.
		e := s.store(t)
		for _, k := range []string{"a\xfe", "a\xfe\xff", "a\xff", "a\xff\x00", "a\xff\xff", "a\xff\xff\xff", "b",
			"\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\x01", "\x00", "\x00\xff"} {
			e.put(k, "v", 0)
		}
		for prefix, want := range map[string][]string{
			"a\xfe":        {"a\xfe", "a\xfe\xff"},
			"a\xff":        {"a\xff", "a\xff\x00", "a\xff\xff", "a\xff\xff\xff"},
			"a\xff\xff":    {"a\xff\xff", "a\xff\xff\xff"},
			"\xff":         {"\xff", "\xff\x00", "\xff\xff", "\xff\xff\x01"},
			"\xff\xff":     {"\xff\xff", "\xff\xff\x01"},
			"\xfe":         {"\xfe\xff"},
			"\x00":         {"\x00", "\x00\xff"},
			"\xff\xff\xff": nil,
		} {
			e.wantKeys(prefix, want)
		}
	})
	t.Run("OrderAndCount", func(t *testing.T) {
		e := s.store(t)
		want := make([]string, 2000)
		for i := range want {
			want[i] = fmt.Sprintf("k%05d", i)
		}
		for _, i := range rand.Perm(len(want)) {
			e.put(want[i], "v", 0)
		}
		got, err := collectKeys(e.ctx, e.s, nil)
		noErr(t, "Keys", err)
		if e.h.UnorderedKeys {
			got = sortUnique(got)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Keys yielded %d keys (first %q), want the %d written in byte order", len(got), head(got), len(want))
		}
	})
	t.Run("EarlyStop", func(t *testing.T) {
		e := s.store(t)
		for i := range 500 {
			e.put(fmt.Sprintf("k%04d", i), "v", 0)
		}
		for range 200 {
			n := 0
			for _, err := range e.s.Keys(e.ctx, []byte("k")) {
				noErr(t, "Keys", err)
				if n++; n == 3 {
					break
				}
			}
			if n != 3 {
				t.Fatalf("Keys yielded %d keys before the break, want 3", n)
			}
		}
		// Abandoned iterations must hold nothing that blocks writers: grow
		// the store well past its first size, under a deadline.
		e.within(30*time.Second, "writes after abandoned iterations", func() error {
			big := make([]byte, 4096)
			for i := range 2000 {
				if err := e.s.Put(e.ctx, fmt.Appendf(nil, "big%05d", i), big, 0); err != nil {
					return fmt.Errorf("Put: %w", err)
				}
			}
			return nil
		})
	})
	t.Run("WriteDuringIteration", func(t *testing.T) {
		e := s.store(t)
		var want []string
		for i := range 600 {
			k := fmt.Sprintf("a/%04d", i)
			want = append(want, k)
			e.put(k, "v", 0)
			e.put(fmt.Sprintf("c/%04d", i), "v", 0)
		}
		var got []string
		e.within(30*time.Second, "Keys with writes in the loop body", func() error {
			i := 0
			for k, err := range e.s.Keys(e.ctx, []byte("a/")) {
				if err != nil {
					return fmt.Errorf("Keys: %w", err)
				}
				got = append(got, string(k))
				if err := e.s.Put(e.ctx, fmt.Appendf(nil, "b/%04d", i), []byte("v"), 0); err != nil {
					return fmt.Errorf("Put in the loop: %w", err)
				}
				if err := e.s.Delete(e.ctx, fmt.Appendf(nil, "c/%04d", i)); err != nil {
					return fmt.Errorf("Delete in the loop: %w", err)
				}
				i++
			}
			return nil
		})
		if e.h.UnorderedKeys {
			got = sortUnique(got)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Keys yielded %d keys, want the %d that were live throughout", len(got), len(want))
		}
	})
}

// wantKeys fails unless Keys(prefix) yields want (as a set with
// UnorderedKeys).
func (e *env) wantKeys(prefix string, want []string) {
	e.t.Helper()
	got := e.keys(prefix)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("Keys(%q) = %q, want %q", prefix, got, want)
	}
}

// within runs f and fails the test if f fails or does not return within d
// (a deadlock in the store under test must fail, not hang the run).
func (e *env) within(d time.Duration, what string, f func() error) {
	e.t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		noErr(e.t, what, err)
	case <-time.After(d):
		e.t.Fatalf("%s did not finish within %v (deadlock?)", what, d)
	}
}

func head(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}
