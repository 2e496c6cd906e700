package main

import (
	"bytes"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

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
