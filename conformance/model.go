package conformance

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// modelEntry is what the model holds for one key.
type modelEntry struct {
	value string
	exp   int64 // Unix ms, 0 for never
}

// model is a map that follows the contract, against which random operation
// histories on the store are checked (as Pebble's metamorphic tests and
// bbolt's QuickDB do). Failures shrink and replay from rapid's seed.
type model struct {
	e *env
	m map[string]modelEntry
}

// modelKeys is small on purpose: operations collide, and prefixes overlap
// at the 0x00 and 0xff edges.
var modelKeys = []string{"a", "ab", "abc", "b", "a\xff", "a\xff\xff", "\xff", "\x00", "b\x00"}

var modelPrefixes = []string{"", "a", "ab", "a\xff", "\xff", "b", "c"}

func (s *suite) testModel(t *testing.T) {
	e := s.store(t)
	rapid.Check(t, func(rt *rapid.T) {
		stale := e.allKeys(rt)
		if _, err := strata.DeleteMany(e.ctx, e.s, stale); err != nil {
			rt.Fatalf("clearing the store: %v", err)
		}
		m := &model{e: e, m: map[string]modelEntry{}}
		rt.Repeat(m.actions())
		m.checkAll(rt)
	})
}

func (e *env) allKeys(rt *rapid.T) [][]byte {
	var keys [][]byte
	for k, err := range e.s.Keys(e.ctx, nil) {
		if err != nil {
			rt.Fatalf("Keys: %v", err)
		}
		keys = append(keys, k)
	}
	return keys
}

func (m *model) now() time.Time {
	if m.e.clock != nil {
		return m.e.clock.Now()
	}
	return time.Now()
}

// live returns the model's entry for key if it has not expired.
func (m *model) live(key string) (modelEntry, bool) {
	en, ok := m.m[key]
	if !ok || storekit.Expired(m.now(), en.exp) {
		return modelEntry{}, false
	}
	return en, true
}

func (m *model) set(key, value string, ttl time.Duration) {
	ttl, _ = storekit.ResolveTTL(ttl, 0)
	m.m[key] = modelEntry{value: value, exp: storekit.ExpiryMillis(m.now(), ttl)}
}

func (m *model) liveKeys(prefix string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m.m)) {
		if _, ok := m.live(k); ok && strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// ttls are the TTLs the model writes with. With a real clock only TTLs that
// cannot pass during the test are used.
func (m *model) ttls() []time.Duration {
	if m.e.clock != nil {
		return []time.Duration{0, strata.NoExpiry, time.Millisecond, 5 * time.Second, 10 * time.Second}
	}
	return []time.Duration{0, strata.NoExpiry, time.Hour}
}

func (m *model) draw(rt *rapid.T) (key []byte, value []byte, ttl time.Duration) {
	key = []byte(rapid.SampledFrom(modelKeys).Draw(rt, "key"))
	value = []byte(rapid.SampledFrom([]string{"", "x", "y", "long value"}).Draw(rt, "value"))
	ttl = rapid.SampledFrom(m.ttls()).Draw(rt, "ttl")
	return key, value, ttl
}

func (m *model) drawKeys(rt *rapid.T) [][]byte {
	ks := rapid.SliceOfN(rapid.SampledFrom(modelKeys), 0, 6).Draw(rt, "keys")
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

func (m *model) actions() map[string]func(*rapid.T) {
	e := m.e
	a := map[string]func(*rapid.T){
		"Put": func(rt *rapid.T) {
			k, v, ttl := m.draw(rt)
			if err := e.s.Put(e.ctx, k, v, ttl); err != nil {
				rt.Fatalf("Put: %v", err)
			}
			m.set(string(k), string(v), ttl)
		},
		"Get": func(rt *rapid.T) {
			k, _, _ := m.draw(rt)
			m.checkGet(rt, string(k))
		},
		"Delete": func(rt *rapid.T) {
			k, _, _ := m.draw(rt)
			if err := e.s.Delete(e.ctx, k); err != nil {
				rt.Fatalf("Delete: %v", err)
			}
			delete(m.m, string(k))
		},
		"GetMany": func(rt *rapid.T) {
			keys := m.drawKeys(rt)
			got, err := strata.GetMany(e.ctx, e.s, keys)
			if err != nil {
				rt.Fatalf("GetMany: %v", err)
			}
			for i, k := range keys {
				en, ok := m.live(string(k))
				if ok != (got[i] != nil) || (ok && string(got[i]) != en.value) {
					rt.Fatalf("GetMany[%q] = %q (nil %v), model has %q (present %v)", k, got[i], got[i] == nil, en.value, ok)
				}
			}
		},
		"PutMany": func(rt *rapid.T) {
			n := rapid.IntRange(0, 5).Draw(rt, "n")
			entries := make([]strata.Entry, n)
			for i := range entries {
				k, v, ttl := m.draw(rt)
				entries[i] = strata.Entry{Key: k, Value: v, TTL: ttl}
			}
			if err := strata.PutMany(e.ctx, e.s, entries); err != nil {
				rt.Fatalf("PutMany: %v", err)
			}
			for _, en := range entries {
				m.set(string(en.Key), string(en.Value), en.TTL)
			}
		},
		"DeleteMany": func(rt *rapid.T) {
			keys := m.drawKeys(rt)
			want := 0
			seen := map[string]bool{}
			for _, k := range keys {
				if _, ok := m.live(string(k)); ok && !seen[string(k)] {
					want++
				}
				seen[string(k)] = true
			}
			n, err := strata.DeleteMany(e.ctx, e.s, keys)
			if err != nil || n != want {
				rt.Fatalf("DeleteMany(%q) = %d, %v; model says %d were live", keys, n, err, want)
			}
			for _, k := range keys {
				delete(m.m, string(k))
			}
		},
		"Keys": func(rt *rapid.T) {
			prefix := rapid.SampledFrom(modelPrefixes).Draw(rt, "prefix")
			m.checkKeys(rt, prefix)
		},
	}
	if e.clock != nil {
		a["Advance"] = func(rt *rapid.T) {
			d := rapid.SampledFrom([]time.Duration{time.Millisecond, time.Second, 5 * time.Second, time.Minute}).Draw(rt, "d")
			e.clock.Advance(d)
		}
	}
	if e.has(Atomic) {
		a["PutIfAbsent"] = func(rt *rapid.T) {
			k, v, ttl := m.draw(rt)
			ok, err := strata.PutIfAbsent(e.ctx, e.s, k, v, ttl)
			_, present := m.live(string(k))
			if err != nil || ok == present {
				rt.Fatalf("PutIfAbsent(%q) = %v, %v; model has the key: %v", k, ok, err, present)
			}
			if ok {
				m.set(string(k), string(v), ttl)
			}
		}
		a["GetAndDelete"] = func(rt *rapid.T) {
			k, _, _ := m.draw(rt)
			got, err := strata.GetAndDelete(e.ctx, e.s, k)
			en, ok := m.live(string(k))
			switch {
			case !ok && !errors.Is(err, strata.ErrNotFound):
				rt.Fatalf("GetAndDelete(%q) = %q, %v; want ErrNotFound", k, got, err)
			case ok && (err != nil || string(got) != en.value):
				rt.Fatalf("GetAndDelete(%q) = %q, %v; want %q", k, got, err, en.value)
			}
			delete(m.m, string(k))
		}
		a["CompareAndSwap"] = func(rt *rapid.T) {
			k, v, ttl := m.draw(rt)
			en, present := m.live(string(k))
			var old []byte
			switch rapid.IntRange(0, 2).Draw(rt, "old") {
			case 0: // the current value, when there is one
				if present {
					old = []byte(en.value)
				}
			case 1:
				old = []byte(rapid.SampledFrom([]string{"", "x", "y"}).Draw(rt, "oldValue"))
			}
			want := present == (old != nil) && (!present || bytes.Equal(old, []byte(en.value)))
			ok, err := strata.CompareAndSwap(e.ctx, e.s, k, old, v, ttl)
			if err != nil || ok != want {
				rt.Fatalf("CompareAndSwap(%q, old=%q (nil %v)) = %v, %v; model says %v", k, old, old == nil, ok, err, want)
			}
			if ok {
				m.set(string(k), string(v), ttl)
			}
		}
	}
	if e.has(Commit) && !e.h.SingleSlotCommits {
		a["Commit"] = m.commitAction
	}
	if e.has(Expiry) {
		a["GetManyWithTTL"] = func(rt *rapid.T) {
			keys := m.drawKeys(rt)
			got, err := strata.GetManyWithTTL(e.ctx, e.s, keys)
			if err != nil || len(got) != len(keys) {
				rt.Fatalf("GetManyWithTTL(%q) = %d entries, %v", keys, len(got), err)
			}
			for i, k := range keys {
				en, ok := m.live(string(k))
				g := got[i]
				if ok != (g.Value != nil) || (ok && string(g.Value) != en.value) {
					rt.Fatalf("GetManyWithTTL[%q] = %q (nil %v), model has %q (present %v)", k, g.Value, g.Value == nil, en.value, ok)
				}
				switch {
				case !ok:
				case en.exp == 0 && g.TTL != strata.NoExpiry:
					rt.Fatalf("GetManyWithTTL[%q] TTL = %v, want NoExpiry", k, g.TTL)
				case en.exp != 0 && m.e.clock != nil && g.TTL != storekit.Remaining(m.now(), en.exp):
					rt.Fatalf("GetManyWithTTL[%q] TTL = %v, want %v", k, g.TTL, storekit.Remaining(m.now(), en.exp))
				}
			}
		}
		a["TTL"] = func(rt *rapid.T) {
			k, _, _ := m.draw(rt)
			got, err := strata.TTL(e.ctx, e.s, k)
			en, ok := m.live(string(k))
			switch {
			case !ok:
				if !errors.Is(err, strata.ErrNotFound) {
					rt.Fatalf("TTL(%q) = %v, %v; want ErrNotFound", k, got, err)
				}
			case err != nil:
				rt.Fatalf("TTL(%q): %v", k, err)
			case en.exp == 0:
				if got != strata.NoExpiry {
					rt.Fatalf("TTL(%q) = %v, want NoExpiry", k, got)
				}
			case m.e.clock != nil:
				if want := storekit.Remaining(m.now(), en.exp); got != want {
					rt.Fatalf("TTL(%q) = %v, want %v", k, got, want)
				}
			default:
				if want := storekit.Remaining(m.now(), en.exp); got <= 0 || got > want+time.Second {
					rt.Fatalf("TTL(%q) = %v, want about %v", k, got, want)
				}
			}
		}
	}
	return a
}

// commitAction commits a random batch of puts and deletes with random
// conditions, and checks that it applied exactly when the model says every
// condition holds, and otherwise failed on the first that does not.
func (m *model) commitAction(rt *rapid.T) {
	e := m.e
	b := new(strata.WriteBatch)
	for range rapid.IntRange(0, 2).Draw(rt, "conditions") {
		k, v, _ := m.draw(rt)
		en, present := m.live(string(k))
		switch rapid.IntRange(0, 2).Draw(rt, "kind") {
		case 0:
			b.IfAbsent(k)
		case 1: // the current value, when there is one
			if present {
				v = []byte(en.value)
			}
			b.IfEqual(k, v)
		default:
			b.IfEqual(k, v)
		}
	}
	for range rapid.IntRange(0, 4).Draw(rt, "writes") {
		k, v, ttl := m.draw(rt)
		if rapid.Bool().Draw(rt, "delete") {
			b.Delete(k)
		} else {
			b.Put(k, v, ttl)
		}
	}
	failed := -1
	for i, c := range b.Conditions {
		en, present := m.live(string(c.Key))
		holds := !present
		if c.Kind == strata.CondEqual {
			holds = present && en.value == string(c.Value)
		}
		if !holds {
			failed = i
			break
		}
	}
	err := strata.Commit(e.ctx, e.s, b)
	var ce *strata.ConflictError
	switch {
	case failed < 0 && err != nil:
		rt.Fatalf("Commit(%+v): %v; the model says every condition holds", b, err)
	case failed >= 0 && (!errors.As(err, &ce) || ce.Index != failed):
		rt.Fatalf("Commit(%+v) = %v; the model says condition %d fails", b, err, failed)
	case failed >= 0:
		return
	}
	for _, w := range b.Writes {
		if w.Delete {
			delete(m.m, string(w.Key))
		} else {
			m.set(string(w.Key), string(w.Value), w.TTL)
		}
	}
}

func (m *model) checkGet(rt *rapid.T, key string) {
	got, err := m.e.s.Get(m.e.ctx, []byte(key))
	en, ok := m.live(key)
	switch {
	case !ok && !errors.Is(err, strata.ErrNotFound):
		rt.Fatalf("Get(%q) = %q, %v; model: absent", key, got, err)
	case ok && (err != nil || string(got) != en.value || got == nil):
		rt.Fatalf("Get(%q) = %q, %v; model: %q", key, got, err, en.value)
	}
}

func (m *model) checkKeys(rt *rapid.T, prefix string) {
	got, err := collectKeys(m.e.ctx, m.e.s, []byte(prefix))
	if err != nil {
		rt.Fatalf("Keys(%q): %v", prefix, err)
	}
	if m.e.h.UnorderedKeys {
		got = sortUnique(got)
	}
	if want := m.liveKeys(prefix); !slices.Equal(got, want) {
		rt.Fatalf("Keys(%q) = %q, model has %q", prefix, got, want)
	}
}

// checkAll compares every key and a snapshot with the model.
func (m *model) checkAll(rt *rapid.T) {
	for _, k := range modelKeys {
		m.checkGet(rt, k)
	}
	m.checkKeys(rt, "")
	sn, err := strata.SnapshotOf(m.e.ctx, m.e.s)
	if err != nil {
		rt.Fatalf("Snapshot: %v", err)
	}
	defer sn.Close()
	got := map[string]string{}
	for en, err := range sn.Entries(m.e.ctx, nil) {
		if err != nil {
			rt.Fatalf("Entries: %v", err)
		}
		got[string(en.Key)] = string(en.Value)
	}
	want := map[string]string{}
	for _, k := range m.liveKeys("") {
		want[k] = m.m[k].value
	}
	if !mapsEqual(got, want) {
		rt.Fatalf("snapshot = %q, model = %q", got, want)
	}
}
