package tier_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/tier"
)

// The histories are checked against a register per key: Get returns the
// value of the last Put, or absent after a Delete.

type linOp int

const (
	opGet linOp = iota
	opPut
	opDelete
)

type linInput struct {
	op    linOp
	key   string
	value string
}

type linOutput struct {
	value string
	found bool
}

// register is the model state of one key.
type register struct {
	value string
	found bool
}

var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			k := op.Input.(linInput).key
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
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(register), input.(linInput), output.(linOutput)
		switch in.op {
		case opGet:
			return out.found == s.found && out.value == s.value, s
		case opPut:
			return true, register{value: in.value, found: true}
		default:
			return true, register{}
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch in.op {
		case opGet:
			if !out.found {
				return fmt.Sprintf("get(%s) -> absent", in.key)
			}
			return fmt.Sprintf("get(%s) -> %s", in.key, out.value)
		case opPut:
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("delete(%s)", in.key)
	},
}

// linWorkload is one recorded run.
type linWorkload struct {
	clients, ops int
	keys         []string
	// jitter, when set, runs inside the L2 around reads and writes to widen
	// the windows in which fills and writes overlap.
	jitter func()
}

// record runs the workload against s and returns its history. Puts use
// a mix of TTLs: NoExpiry and 1h (cached on write) and 0 (not cached).
func (w linWorkload) record(t *testing.T, s strata.Store) []porcupine.Operation {
	t.Helper()
	ctx := context.Background()
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	ttls := []time.Duration{strata.NoExpiry, time.Hour, 0}
	histories := make([][]porcupine.Operation, w.clients)
	var wg sync.WaitGroup
	for c := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(base.UnixNano())))
			for i := range w.ops {
				in := linInput{key: w.keys[rng.IntN(len(w.keys))]}
				direct := false
				switch r := rng.IntN(100); {
				case r < 55:
					in.op = opGet
					// Some reads go through GetWithTTL, which always reads the
					// L2: mixing both kinds catches an L1 entry that outlives
					// a write already applied to the L2.
					direct = r < 15
				case r < 85:
					in.op = opPut
					in.value = fmt.Sprintf("c%d-%d", c, i)
				default:
					in.op = opDelete
				}
				var out linOutput
				call := now()
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
						out = linOutput{value: string(v), found: true}
					} else if err == strata.ErrNotFound {
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
	wg.Wait()
	var all []porcupine.Operation
	for _, h := range histories {
		all = append(all, h...)
	}
	return all
}

// checkLinearizable fails t unless history is linearizable, writing a
// visualization of a failure for inspection.
func checkLinearizable(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("linearizability check of %d operations timed out", len(history))
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tier-linearizability-%d.html", time.Now().UnixNano()))
	if f, err := os.Create(path); err == nil {
		porcupine.Visualize(registerModel, info, f)
		f.Close()
	}
	t.Fatalf("history of %d operations is not linearizable; visualization: %s", len(history), path)
}

// roundKeys returns n keys no earlier round used.
func roundKeys(round, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("r%d/%c", round, 'a'+i)
	}
	return keys
}

func gosched() {
	if rand.IntN(4) == 0 {
		runtime.Gosched()
	}
}

// TestLinearizableMemory checks recorded concurrent histories of Get, Put
// and Delete on a few keys, through a tier whose L1 is small enough to
// evict, over the memory store.
func TestLinearizableMemory(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  tier.Options
		evict bool // the L1 is small enough that evictions must happen
	}{
		{"SmallL1", tier.Options{MaxBytes: 4 * tier.EntryOverhead}, true},
		{"SmallL1Negative", tier.Options{MaxBytes: 4 * tier.EntryOverhead, NegativeTTL: time.Hour}, true},
		{"LargeL1", tier.Options{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l2 := newHooked(nil)
			l2.setHooks(func([]byte) { gosched() }, func([]byte) { gosched() }, func([]byte) { gosched() })
			tr, err := tier.New(l2, &c.opts)
			noErr(t, err)
			defer tr.Close()
			for round := range 5 {
				// Fresh keys each round: the model starts from empty registers.
				w := linWorkload{clients: 8, ops: 400, keys: roundKeys(round, 6)}
				checkLinearizable(t, w.record(t, tr))
			}
			s := tr.TierStats()
			t.Logf("L1: %d hits, %d misses, %d fills, %d refused, %d evictions, %d rejections",
				s.L1Hits+s.L1NegativeHits, s.L1Misses, s.Fills, s.FillsRefused, s.L1Evictions, s.L1Rejections)
			if (c.evict && s.L1Evictions == 0) || s.L1Hits == 0 || s.FillsRefused == 0 {
				t.Fatalf("the run did not exercise evictions, hits and refused fills: %+v", s)
			}
		})
	}
}

// TestLinearizableRedis records the same histories through a tier over
// Redis (standalone and Cluster), with invalidation on: the tier's own
// writes come back as invalidations while it reads.
func TestLinearizableRedis(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	for _, tc := range []struct {
		name   string
		target redisTarget
	}{{"Standalone", standalone(r)}, {"Cluster", cluster(c)}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := openRedisTier(t, tc.target, fmt.Sprintf("lin%d:", seq.Add(1)), conformance.Options{},
				tier.Options{MaxBytes: 4 * tier.EntryOverhead})
			defer tr.Close()
			for round := range 3 {
				w := linWorkload{clients: 8, ops: 250, keys: roundKeys(round, 6)}
				checkLinearizable(t, w.record(t, tr))
			}
			s := tr.TierStats()
			t.Logf("L1: %d hits, %d misses, %d fills, %d refused, %d evictions, %d invalidations",
				s.L1Hits, s.L1Misses, s.Fills, s.FillsRefused, s.L1Evictions, s.Invalidations)
			if s.L1Hits == 0 || s.L1Evictions == 0 || s.Invalidations == 0 {
				t.Fatalf("the run did not exercise hits, evictions and invalidations: %+v", s)
			}
		})
	}
}
