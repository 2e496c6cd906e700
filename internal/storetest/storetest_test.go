package storetest_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata/internal/storetest"
	"github.com/strata-kv/strata/stores/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The shared checks pass on the reference store.
func TestOnMemory(t *testing.T) {
	s := memory.New(nil)
	defer s.Close()
	storetest.KeysOwnership(t, s)
}

func TestChildOnlyInAChild(t *testing.T) {
	p := storetest.Process{Env: "STRATA_STORETEST_NEVER_SET", Open: func(string, storetest.Config) (storetest.Store, error) {
		t.Fatal("Open called in the parent")
		return nil, nil
	}}
	if _, ok := p.Child(); ok {
		t.Fatal("Child ran its side without the environment variable")
	}
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	storetest.WaitFor(t, "a few milliseconds", func() bool { return time.Since(start) > 5*time.Millisecond })
}

func TestCrashValues(t *testing.T) {
	if string(storetest.CrashKey(7)) != "k00000007" || string(storetest.CrashValue(2)) != "value-2-xx" {
		t.Fatalf("CrashKey(7) = %q, CrashValue(2) = %q", storetest.CrashKey(7), storetest.CrashValue(2))
	}
	if len(storetest.RandomBytes(17)) != 17 {
		t.Fatal("RandomBytes(17) is not 17 bytes")
	}
}

// BenchmarkPaired runs the paired driver on two trivial operations.
func BenchmarkPaired(b *testing.B) {
	n := 0
	storetest.Paired(b, func(int) { n++ }, func(int) { n-- })
}

// BenchmarkLoop runs the CPU-time driver on a trivial operation.
func BenchmarkLoop(b *testing.B) {
	n := 0
	storetest.Loop(b, func(i int) { n += i })
}
