// Package wait holds the one polling helper the tests share: wait for a
// condition with a deadline, never sleep for things to settle.
package wait

import (
	"testing"
	"time"
)

// For polls cond until it holds, and fails tb if it still does not after
// timeout. Polls start 1ms apart and back off to 10ms.
func For(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}
