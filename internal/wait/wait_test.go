package wait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	var n atomic.Int32
	For(t, 5*time.Second, "the third poll", func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Fatalf("cond polled %d times, want 3", n.Load())
	}
}

// fakeTB records a failure instead of ending the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestForTimesOut(t *testing.T) {
	tb := &fakeTB{TB: t}
	var polls atomic.Int32
	// Fatalf does not stop a fake: cond ends the loop after the failure.
	For(tb, 20*time.Millisecond, "never", func() bool { return tb.failed != "" || polls.Add(1) < 0 })
	if tb.failed == "" {
		t.Fatal("For did not fail after its timeout")
	}
}
