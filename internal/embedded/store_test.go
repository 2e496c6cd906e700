package embedded_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/embedded"
	"github.com/strata-kv/strata/internal/ttlval"
)

// mapEngine is the smallest engine that keeps the Engine contract: a
// sorted key list and a map under one lock. Update holds the lock for
// writing, so it is atomic against everything; its writes are applied
// when fn returns nil.
type mapEngine struct {
	mu     sync.RWMutex
	keys   [][]byte // sorted
	values map[string][]byte
	getErr error // returned by every Get when set
}

func newMapEngine() *mapEngine { return &mapEngine{values: map[string][]byte{}} }

func (e *mapEngine) get(key, dst []byte) ([]byte, bool, error) {
	if e.getErr != nil {
		return dst, false, e.getErr
	}
	v, ok := e.values[string(key)]
	if !ok {
		return dst, false, nil
	}
	return append(dst, v...), true, nil
}

func (e *mapEngine) Get(key, dst []byte) ([]byte, bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.get(key, dst)
}

type lockedReader struct{ e *mapEngine }

func (r lockedReader) Get(key, dst []byte) ([]byte, bool, error) { return r.e.get(key, dst) }

func (e *mapEngine) View(fn func(r embedded.Reader) error) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return fn(lockedReader{e})
}

func scanSorted(keys [][]byte, values map[string][]byte, from, prefix []byte, fn func(k, raw []byte) bool) {
	i, _ := slices.BinarySearchFunc(keys, from, bytes.Compare)
	for ; i < len(keys) && bytes.HasPrefix(keys[i], prefix); i++ {
		if !fn(keys[i], values[string(keys[i])]) {
			return
		}
	}
}

func (e *mapEngine) Scan(from, prefix []byte, fn func(k, raw []byte) bool) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	scanSorted(e.keys, e.values, from, prefix, fn)
	return nil
}

type write struct {
	key, raw []byte
	del      bool
}

type mapTxn struct {
	lockedReader
	writes []write
}

func (t *mapTxn) Put(key, raw []byte) error {
	t.writes = append(t.writes, write{key: key, raw: raw})
	return nil
}

func (t *mapTxn) Delete(key []byte) error {
	t.writes = append(t.writes, write{key: key, del: true})
	return nil
}

func (e *mapEngine) Update(_ [][]byte, _ embedded.Durability, fn func(tx embedded.Txn) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &mapTxn{lockedReader: lockedReader{e}}
	if err := fn(t); err != nil {
		return err
	}
	for _, w := range t.writes {
		i, found := slices.BinarySearchFunc(e.keys, w.key, bytes.Compare)
		switch {
		case w.del && found:
			e.keys = slices.Delete(e.keys, i, i+1)
			delete(e.values, string(w.key))
		case !w.del:
			if !found {
				e.keys = slices.Insert(e.keys, i, bytes.Clone(w.key))
			}
			e.values[string(w.key)] = bytes.Clone(w.raw)
		}
	}
	return nil
}

type mapSnapshot struct {
	keys   [][]byte
	values map[string][]byte
}

func (sn mapSnapshot) Scan(from, prefix []byte, fn func(k, raw []byte) bool) error {
	scanSorted(sn.keys, sn.values, from, prefix, fn)
	return nil
}

func (mapSnapshot) Close() error { return nil }

func (e *mapEngine) Snapshot() (embedded.Snapshot, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	values := make(map[string][]byte, len(e.values))
	for k, v := range e.values {
		values[k] = v // values are replaced, never changed in place
	}
	return mapSnapshot{keys: slices.Clone(e.keys), values: values}, nil
}

func (e *mapEngine) Gauges() map[string]float64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return map[string]float64{"keys": float64(len(e.keys)), "snapshots_open": 0}
}

func (e *mapEngine) Close() error { return nil }

func config(o conformance.Options) embedded.Config {
	return embedded.Config{
		Backend: "map", Name: "a map", Clock: o.Clock, DefaultTTL: o.DefaultTTL,
		MaxValueSize: o.MaxValueSize, ValueLimit: 1 << 20,
	}
}

// TestConformance runs the whole suite on the shared store over mapEngine:
// what the store does above the engine keeps the contract with any engine
// that keeps the Engine contract.
func TestConformance(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s, err := embedded.New(newMapEngine(), config(o))
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
		CommitRounds: 1000,
	})
}

// TestEngineErrors checks that an engine's failure reaches the caller
// wrapped in exactly one *strata.OpError that keeps the cause, and is
// counted.
func TestEngineErrors(t *testing.T) {
	e := newMapEngine()
	s, err := embedded.New(e, config(conformance.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("disk on fire")
	e.getErr = boom
	_, err = s.Get(t.Context(), []byte("k"))
	var oe *strata.OpError
	if !errors.Is(err, boom) || !errors.As(err, &oe) || oe.Op != "get" || oe.Backend != "map" || string(oe.Key) != "k" {
		t.Fatalf("Get with a failing engine = %v, want one *OpError around the cause", err)
	}
	if errors.As(oe.Err, new(*strata.OpError)) {
		t.Fatalf("%v is wrapped twice", err)
	}
	err = strata.Commit(t.Context(), s, new(strata.WriteBatch).IfAbsent([]byte("c")).Put([]byte("c"), nil, 0))
	if !errors.Is(err, boom) {
		t.Fatalf("Commit reading through a failing engine = %v", err)
	}
	if st := s.Stats(); st.Errors != 2 || st.Gauges["keys"] != 0 {
		t.Fatalf("Stats after two failures = %+v", st)
	}
}

// TestForeignDatabase checks that New refuses an engine whose first value
// has no strata header, and closes it.
func TestForeignDatabase(t *testing.T) {
	e := newMapEngine()
	good := ttlval.Encode(0, []byte("v"))
	e.Update(nil, embedded.Durable, func(tx embedded.Txn) error {
		tx.Put([]byte("a"), []byte("not strata"))
		return tx.Put([]byte("b"), good)
	})
	if _, err := embedded.New(e, config(conformance.Options{})); !errors.Is(err, strata.ErrCorrupt) {
		t.Fatalf("New over a foreign database = %v, want ErrCorrupt", err)
	}
}
