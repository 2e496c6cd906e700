package checkpoint_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/stores/memory"
)

// childEnv names the child role when the test binary re-executes itself
// for the crash and recovery tests.
const childEnv = "STRATA_CHECKPOINT_CHILD"

func TestMain(m *testing.M) {
	switch role := os.Getenv(childEnv); role {
	case "":
	case "crash":
		os.Exit(crashChild())
	case "job":
		os.Exit(jobChild())
	case "chain":
		os.Exit(chainChild())
	default:
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		os.Exit(2)
	}
	goleak.VerifyTestMain(m)
}

var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// item is one entry as a test compares it: TTL is exact under a fake clock.
type item struct {
	Value string
	TTL   time.Duration
}

// dump returns every live entry of s with its remaining TTL.
func dump(tb testing.TB, s strata.Store) map[string]item {
	tb.Helper()
	ctx := context.Background()
	out := map[string]item{}
	for k, err := range s.Keys(ctx, nil) {
		if err != nil {
			tb.Fatalf("Keys: %v", err)
		}
		v, ttl, err := strata.GetWithTTL(ctx, s, k)
		if err != nil {
			tb.Fatalf("GetWithTTL(%q): %v", k, err)
		}
		out[string(k)] = item{string(v), ttl}
	}
	return out
}

// diff describes the first differences between two dumps, or "".
func diff(got, want map[string]item) string {
	var b bytes.Buffer
	keys := make([]string, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := 0
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		if gok == wok && g == w {
			continue
		}
		if n++; n > 5 {
			b.WriteString("...\n")
			break
		}
		fmt.Fprintf(&b, "key %q: got %v (present %v), want %v (present %v)\n", k, short(g), gok, short(w), wok)
	}
	if len(got) != len(want) {
		fmt.Fprintf(&b, "got %d keys, want %d\n", len(got), len(want))
	}
	return b.String()
}

func short(i item) string {
	v := i.Value
	if len(v) > 20 {
		v = fmt.Sprintf("%q…(%d bytes)", v[:20], len(v))
	} else {
		v = fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("{%s ttl %v}", v, i.TTL)
}

// newMem returns a memory store on clock (nil: the system clock), closed
// when tb ends.
func newMem(tb testing.TB, clock strata.Clock) *memory.Store {
	s := memory.New(&memory.Options{Clock: clock})
	tb.Cleanup(func() { s.Close() })
	return s
}

func fakeClock() *conformance.Clock { return conformance.NewClock(epoch) }

// put writes entries or fails tb.
func put(tb testing.TB, s strata.Store, entries ...strata.Entry) {
	tb.Helper()
	if err := strata.PutMany(context.Background(), s, entries); err != nil {
		tb.Fatalf("PutMany: %v", err)
	}
}

// sampleEntries returns n entries with awkward keys and values: bytes 0x00
// and 0xff, empty values, a few large values, and a mix of TTLs.
func sampleEntries(n int) []strata.Entry {
	es := make([]strata.Entry, 0, n)
	for i := range n {
		k := fmt.Appendf(nil, "k\x00%05d\xff", i)
		v := fmt.Appendf(nil, "value-%d", i*i)
		ttl := strata.NoExpiry
		switch i % 5 {
		case 1:
			ttl = time.Minute + time.Duration(i+1)*time.Second
		case 2:
			ttl = time.Duration(i+1)*time.Hour + 7*time.Millisecond
		case 3:
			v = []byte{}
		}
		es = append(es, strata.Entry{Key: k, Value: v, TTL: ttl})
	}
	return es
}
