package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sorted is a sorted key list that ReadKeys and ReadEntries read from, and
// records the limits and starting keys they were asked for.
type sorted struct {
	keys   [][]byte
	limits []int
	froms  []string
}

func newSorted(n int) *sorted {
	s := &sorted{}
	for i := range n {
		s.keys = append(s.keys, fmt.Appendf(nil, "k%05d", i))
	}
	return s
}

func (s *sorted) readChunk(chunk [][]byte, from, prefix []byte, limit int) ([][]byte, []byte, error) {
	s.limits = append(s.limits, limit)
	s.froms = append(s.froms, string(from))
	i, _ := slices.BinarySearchFunc(s.keys, from, bytes.Compare)
	for ; i < len(s.keys) && bytes.HasPrefix(s.keys[i], prefix); i++ {
		if len(chunk) == limit {
			return chunk, s.keys[i], nil
		}
		chunk = append(chunk, s.keys[i])
	}
	return chunk, nil, nil
}

func TestKeysChunks(t *testing.T) {
	s := newSorted(10000)
	var got [][]byte
	for k, err := range chunkedKeys(t.Context(), nil, s.readChunk) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if !slices.EqualFunc(got, s.keys, bytes.Equal) {
		t.Fatalf("Keys yielded %d keys, want the %d in order", len(got), len(s.keys))
	}
	want := []int{128, 256, 512, 1024, 2048, 4096, 4096}
	if !slices.Equal(s.limits, want) {
		t.Fatalf("chunk limits = %v, want %v", s.limits, want)
	}
	// Each chunk resumes at the key after the last one yielded.
	if s.froms[1] != "k00128" || s.froms[2] != "k00384" {
		t.Fatalf("chunks started at %q", s.froms)
	}
}

func TestKeysPrefixCopied(t *testing.T) {
	s := newSorted(1000)
	prefix := []byte("k001")
	seq := chunkedKeys(t.Context(), prefix, s.readChunk)
	prefix[1] = '9'
	n := 0
	for k, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(k, []byte("k001")) {
			t.Fatalf("Keys(k001) yielded %q", k)
		}
		n++
	}
	if n != 100 {
		t.Fatalf("Keys(k001) yielded %d keys, want 100", n)
	}
}

func TestKeysStops(t *testing.T) {
	s := newSorted(1000)
	t.Run("Break", func(t *testing.T) {
		n := 0
		for range chunkedKeys(t.Context(), nil, s.readChunk) {
			if n++; n == 200 {
				break
			}
		}
		if n != 200 {
			t.Fatalf("%d keys before the break", n)
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		var last error
		for _, err := range chunkedKeys(ctx, nil, s.readChunk) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 10 {
				cancel()
			}
		}
		// The check every 64 keys sees the cancellation within the chunk.
		if !errors.Is(last, context.Canceled) || n >= 128 {
			t.Fatalf("after cancel at key 10: %d keys, then %v", n, last)
		}
	})
	t.Run("ReadError", func(t *testing.T) {
		boom := errors.New("boom")
		var last error
		for _, err := range chunkedKeys(t.Context(), nil, func([][]byte, []byte, []byte, int) ([][]byte, []byte, error) {
			return nil, nil, boom
		}) {
			last = err
		}
		if last != boom {
			t.Fatalf("Keys with a failing read ended with %v", last)
		}
	})
}

func TestEntries(t *testing.T) {
	s := newSorted(3000)
	var froms []string
	read := func(from, prefix []byte) ([]strata.Entry, []int64, []byte, error) {
		froms = append(froms, string(from))
		var chunk []strata.Entry
		for i, _ := slices.BinarySearchFunc(s.keys, from, bytes.Compare); i < len(s.keys) && bytes.HasPrefix(s.keys[i], prefix); i++ {
			if len(chunk) == chunkSize {
				return chunk, make([]int64, len(chunk)), s.keys[i], nil
			}
			chunk = append(chunk, strata.Entry{Key: s.keys[i]})
		}
		return chunk, make([]int64, len(chunk)), nil, nil
	}
	n := 0
	for e, err := range chunkedEntries(t.Context(), []byte("k0"), read, time.Now) {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.Key, s.keys[n]) {
			t.Fatalf("entry %d = %q", n, e.Key)
		}
		n++
	}
	if n != 3000 || !slices.Equal(froms, []string{"k0", "k01024", "k02048"}) {
		t.Fatalf("Entries yielded %d entries from chunks at %q", n, froms)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, err := range chunkedEntries(ctx, nil, read, time.Now) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Entries with a cancelled context: %v", err)
		}
	}
}

func TestKeySlab(t *testing.T) {
	var slab keySlab
	a := slab.copy([]byte("a"))
	b := slab.copy([]byte("b"))
	if cap(a) != 1 || cap(b) != 1 {
		t.Fatalf("copies have capacity %d and %d, want their length", cap(a), cap(b))
	}
	a = append(a, '!')
	if string(b) != "b" {
		t.Fatalf("appending to one copy changed the next: %q", b)
	}
	big := bytes.Repeat([]byte{'x'}, 20<<10) // larger than a block
	if c := slab.copy(big); !bytes.Equal(c, big) || &c[0] == &big[0] {
		t.Fatal("a key larger than a block is not copied")
	}
}

func TestSweep(t *testing.T) {
	keys := newSorted(2500).keys
	var removed [][]byte
	expired := func(from []byte) ([][]byte, []byte, error) {
		i, _ := slices.BinarySearchFunc(keys, from, bytes.Compare)
		end := min(i+chunkSize, len(keys))
		var next []byte
		if end < len(keys) {
			next = keys[end]
		}
		var out [][]byte
		for _, k := range keys[i:end] {
			if k[len(k)-1] != '0' { // every key not ending in 0 is expired
				out = append(out, k)
			}
		}
		return out, next, nil
	}
	remove := func(ks [][]byte) (int, error) {
		removed = append(removed, ks...)
		return len(ks), nil
	}
	n, err := sweepChunks(t.Context(), expired, remove)
	if err != nil || n != 2250 || len(removed) != 2250 {
		t.Fatalf("Sweep = %d, %v (removed %d); want 2250", n, err, len(removed))
	}
	boom := errors.New("boom")
	if n, err := sweepChunks(t.Context(), expired, func([][]byte) (int, error) { return 3, boom }); n != 3 || err != boom {
		t.Fatalf("Sweep with a failing remove = %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := sweepChunks(ctx, expired, remove); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep with a cancelled context = %d, %v", n, err)
	}
}

func TestChecks(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := checkKeys(cancelled, nil); err != nil {
		t.Fatalf("CheckKeys of no keys looked at the context: %v", err)
	}
	if k, err := checkKeys(t.Context(), [][]byte{[]byte("a"), nil}); k != nil || !errors.Is(err, strata.ErrInvalidKey) {
		t.Fatalf("CheckKeys with an empty key = %q, %v", k, err)
	}
	if err := checkKey(cancelled, []byte("a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("CheckKey with a cancelled context: %v", err)
	}
}

// countingClock counts its reads.
type countingClock struct {
	*conformance.Clock
	reads int
}

func (c *countingClock) Now() time.Time { c.reads++; return c.Clock.Now() }

func TestLiveReadsClockOnce(t *testing.T) {
	clock := &countingClock{Clock: conformance.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	var now time.Time
	if !live(clock, &now, 0) || clock.reads != 0 {
		t.Fatalf("a value without expiry: read the clock %d times", clock.reads)
	}
	future := expiry(clock, time.Minute)
	past := clock.Now().Add(-time.Second).UnixMilli()
	clock.reads = 0
	if !live(clock, &now, future) || live(clock, &now, past) || clock.reads != 1 {
		t.Fatalf("two values with an expiry: read the clock %d times, want once", clock.reads)
	}
	if expiry(clock, strata.NoExpiry) != 0 || clock.reads != 1 {
		t.Fatal("Expiry of no TTL read the clock or returned an expiry")
	}
}

type closer struct {
	l      *lifecycle
	closed atomic.Int32
}

func (c *closer) Close() error {
	c.closed.Add(1)
	c.l.removeSnapshot(c)
	return nil
}

func TestLifecycle(t *testing.T) {
	var l lifecycle
	ticks := make(chan struct{}, 1)
	l.every(time.Millisecond, func(ctx context.Context) {
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	<-ticks
	if err := l.acquire(); err != nil {
		t.Fatal(err)
	}
	sn := &closer{l: &l}
	l.addSnapshot(sn)
	l.release()
	if n := l.openSnapshots(); n != 1 {
		t.Fatalf("OpenSnapshots = %d, want 1", n)
	}
	boom := errors.New("boom")
	dbClosed := 0
	if err := l.close(func() error { dbClosed++; return boom }); err != boom {
		t.Fatalf("Close = %v, want closeDB's error", err)
	}
	if err := l.close(func() error { dbClosed++; return nil }); err != nil || dbClosed != 1 {
		t.Fatalf("second Close = %v, closeDB called %d times; want nil, once", err, dbClosed)
	}
	if sn.closed.Load() != 1 || l.openSnapshots() != 0 {
		t.Fatalf("snapshot closed %d times, %d open", sn.closed.Load(), l.openSnapshots())
	}
	if err := l.acquire(); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("Acquire after Close = %v, want ErrClosed", err)
	}
	// goleak (TestMain) checks that the background goroutine is gone.
}
