// Package lincheck records concurrent histories of Get, Put and Delete on a
// strata.Store and checks them for linearizability with porcupine, against
// a register per key: Get returns the value of the last Put, or absent
// after a Delete. The tier's tests use it over memory (package tier) and
// over Redis (package tier/redistrack).
//
// A workload may add another client that writes the same keys around the
// store under test (a foreign writer). A cache in front of the backend
// learns of such writes only after a delivery delay, so the model allows
// a bounded staleness for them, and only for them: a Get may also return
// a value that a foreign write replaced, if the Get started less than
// Workload.Stale after that write returned. A write through the store
// under test ends that allowance.
package lincheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/strata-kv/strata"
)

type op int

const (
	opGet op = iota
	opPut
	opDelete
)

type input struct {
	op      op
	key     string
	value   string
	foreign bool  // a write of the foreign client
	call    int64 // when the call started
	until   int64 // a foreign write: its return plus the allowed staleness
}

type output struct {
	value string
	found bool
}

// register is the model state of one key: its value, and the values that
// foreign writes replaced, each readable until a deadline.
type register struct {
	value string
	found bool
	stale []staleValue
}

type staleValue struct {
	value string
	found bool
	until int64
}

func (r register) write(in input) register {
	next := register{value: in.value, found: in.op == opPut}
	if in.foreign {
		next.stale = append(append(next.stale, r.stale...), staleValue{r.value, r.found, in.until})
	}
	return next
}

func (r register) reads(in input, out output) bool {
	if out.found == r.found && out.value == r.value {
		return true
	}
	for _, s := range r.stale {
		if out.found == s.found && out.value == s.value && in.call < s.until {
			return true
		}
	}
	return false
}

var model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			k := op.Input.(input).key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return register{} },
	Step: func(state, in, out any) (bool, any) {
		s, i := state.(register), in.(input)
		if i.op == opGet {
			return s.reads(i, out.(output)), s
		}
		return true, s.write(i)
	},
	Equal: func(a, b any) bool {
		x, y := a.(register), b.(register)
		return x.value == y.value && x.found == y.found && slices.Equal(x.stale, y.stale)
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		who := ""
		if i.foreign {
			who = "foreign "
		}
		switch i.op {
		case opGet:
			if !o.found {
				return fmt.Sprintf("get(%s) -> absent", i.key)
			}
			return fmt.Sprintf("get(%s) -> %s", i.key, o.value)
		case opPut:
			return fmt.Sprintf("%sput(%s, %s)", who, i.key, i.value)
		}
		return fmt.Sprintf("%sdelete(%s)", who, i.key)
	},
}

// Workload is one recorded run: Clients goroutines each make Ops calls on
// keys chosen at random from Keys. 55% are reads (a quarter of them through
// GetWithTTL, which always reads the L2 of a tier: mixing both kinds
// catches an L1 entry that outlives a write already applied to the L2),
// 30% Puts with a mix of TTLs (NoExpiry, 1h, and 0: the store's default),
// 15% Deletes.
//
// With Foreign set, one more goroutine makes ForeignOps writes of the same
// keys through it, a Put of value or, for value "", a Delete: another
// client of the backend, writing around the store under test. Gets may
// return what such a write replaced until Stale after it returned.
type Workload struct {
	Clients, Ops int
	Keys         []string

	Foreign    func(ctx context.Context, key, value string) error
	ForeignOps int
	Stale      time.Duration
}

// Record runs the workload against s and returns its history.
func (w Workload) Record(t *testing.T, s strata.Store) []porcupine.Operation {
	t.Helper()
	ctx := context.Background()
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	ttls := []time.Duration{strata.NoExpiry, time.Hour, 0}
	histories := make([][]porcupine.Operation, w.Clients+1) // the last: the foreign client's
	var wg sync.WaitGroup
	for c := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(base.UnixNano())))
			for i := range w.Ops {
				in := input{key: w.Keys[rng.IntN(len(w.Keys))]}
				direct := false
				switch r := rng.IntN(100); {
				case r < 55:
					in.op = opGet
					direct = r < 15
				case r < 85:
					in.op = opPut
					in.value = fmt.Sprintf("c%d-%d", c, i)
				default:
					in.op = opDelete
				}
				var out output
				call := now()
				in.call = call
				var err error
				switch in.op {
				case opGet:
					var v []byte
					if direct {
						v, _, err = strata.GetWithTTL(ctx, s, []byte(in.key))
					} else {
						v, err = s.Get(ctx, []byte(in.key))
					}
					if err == nil {
						out = output{value: string(v), found: true}
					} else if errors.Is(err, strata.ErrNotFound) {
						err = nil
					}
				case opPut:
					err = s.Put(ctx, []byte(in.key), []byte(in.value), ttls[rng.IntN(len(ttls))])
				default:
					err = s.Delete(ctx, []byte(in.key))
				}
				ret := now()
				if err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				histories[c] = append(histories[c], porcupine.Operation{ClientId: c, Input: in, Output: out, Call: call, Return: ret})
			}
		}()
	}
	if w.Foreign != nil {
		c := w.Clients
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(base.UnixNano())))
			for i := range w.ForeignOps {
				in := input{op: opPut, key: w.Keys[rng.IntN(len(w.Keys))], value: fmt.Sprintf("f-%d", i), foreign: true}
				if rng.IntN(4) == 0 {
					in.op, in.value = opDelete, ""
				}
				call := now()
				in.call = call
				if err := w.Foreign(ctx, in.key, in.value); err != nil {
					t.Errorf("foreign client: %v", err)
					return
				}
				ret := now()
				in.until = ret + int64(w.Stale)
				histories[c] = append(histories[c], porcupine.Operation{ClientId: c, Input: in, Call: call, Return: ret})
				Jitter()
			}
		}()
	}
	wg.Wait()
	var all []porcupine.Operation
	for _, h := range histories {
		all = append(all, h...)
	}
	return all
}

// Check fails t unless history is linearizable, writing a visualization of
// a failure to a temporary file for inspection.
func Check(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(model, history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("linearizability check of %d operations timed out", len(history))
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tier-linearizability-%d.html", time.Now().UnixNano()))
	if f, err := os.Create(path); err == nil {
		porcupine.Visualize(model, info, f)
		f.Close()
	}
	t.Fatalf("history of %d operations is not linearizable; visualization: %s", len(history), path)
}

// RoundKeys returns n keys that no other round uses.
func RoundKeys(round, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("r%d/%c", round, 'a'+i)
	}
	return keys
}

// Jitter yields the processor now and then: run inside a store's calls, it
// widens the windows in which concurrent calls overlap.
func Jitter() {
	if rand.IntN(4) == 0 {
		runtime.Gosched()
	}
}
