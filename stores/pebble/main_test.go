package pebble_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The process tests re-run this binary as a child that writes to or
	// holds a store; see process_test.go.
	if code, ok := proc.Child(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
