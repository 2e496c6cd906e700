package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	out := run(t, "demo", "--events", "2000", "--window", "1s")
	if !strings.Contains(out, "processed 2000 events") || !strings.Contains(out, "hold 2000 events") {
		t.Fatalf("demo output:\n%s", out)
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"demo", "--window", "0s"})
	root.SetOut(&bytes.Buffer{})
	if err := root.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), "--window") {
		t.Fatalf("demo --window 0s = %v", err)
	}
}
