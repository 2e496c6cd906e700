package conformance_test

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/storekit"
)

// mapStore is a store a user could write in an afternoon, with the tools
// of package storekit: the required methods only (the strata helpers fall
// back for the rest), input checked before any work, errors wrapped once,
// expiry kept as absolute milliseconds, the common counters.
type mapStore struct {
	opts  conformance.Options
	stats storekit.Counters

	mu     sync.Mutex
	m      map[string]mapItem
	closed bool
}

type mapItem struct {
	value []byte
	exp   int64 // Unix milliseconds, 0 for never
}

const mapBackend = "map"

func (s *mapStore) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock.Now()
	}
	return time.Now()
}

// live returns the item under key if it has not expired. The caller holds
// mu.
func (s *mapStore) live(key string) (mapItem, bool) {
	it, ok := s.m[key]
	if !ok || storekit.Expired(s.now(), it.exp) {
		return mapItem{}, false
	}
	return it, true
}

func (s *mapStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storekit.CheckKey(key); err != nil {
		return nil, storekit.NewOpError("get", mapBackend, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, strata.ErrClosed
	}
	it, ok := s.live(string(key))
	if !ok {
		s.stats.Miss()
		return nil, strata.ErrNotFound
	}
	s.stats.Hit(len(it.value))
	return append([]byte{}, it.value...), nil
}

func (s *mapStore) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ttl, err := storekit.CheckEntry(key, value, ttl, s.opts.DefaultTTL, s.opts.MaxValueSize)
	if err != nil {
		return storekit.NewOpError("put", mapBackend, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return strata.ErrClosed
	}
	s.m[string(key)] = mapItem{value: append([]byte{}, value...), exp: storekit.ExpiryMillis(s.now(), ttl)}
	s.stats.Put(1, len(key)+len(value))
	return nil
}

func (s *mapStore) Delete(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storekit.CheckKey(key); err != nil {
		return storekit.NewOpError("delete", mapBackend, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return strata.ErrClosed
	}
	if _, ok := s.live(string(key)); ok {
		s.stats.Delete(1)
	}
	delete(s.m, string(key))
	return nil
}

// Keys lists a sorted copy of the live keys taken when the iteration
// starts: each live key exactly once, in byte order.
func (s *mapStore) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	prefix = bytes.Clone(prefix)
	return func(yield func([]byte, error) bool) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			yield(nil, strata.ErrClosed)
			return
		}
		var keys [][]byte
		for k := range s.m {
			if _, ok := s.live(k); ok && bytes.HasPrefix([]byte(k), prefix) {
				keys = append(keys, []byte(k))
			}
		}
		s.mu.Unlock()
		slices.SortFunc(keys, bytes.Compare)
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if !yield(k, nil) {
				return
			}
		}
	}
}

func (s *mapStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Stats makes the store a strata.StatsReporter.
func (s *mapStore) Stats() strata.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Stats(mapBackend, int64(len(s.m)))
}

// TestThirdPartyStore runs the suite against mapStore, as a store's author
// does from the store's own tests.
func TestThirdPartyStore(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			return &mapStore{opts: o, m: map[string]mapItem{}}
		},
		Capabilities:  conformance.Stats,
		FakeClock:     true,
		LiveSnapshots: true, // strata.ScanSnapshot reads the store live
	})
}
