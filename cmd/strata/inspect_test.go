package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
)

func TestInspectCommands(t *testing.T) {
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	run(t, "put", "--store", store, "user:1", "alice")
	run(t, "put", "--store", store, "--ttl", "1h", "user:2", "bob")
	run(t, "put", "--store", store, "--hex", "00ff", "0102")
	if got := run(t, "get", "--store", store, "user:1"); got != "alice" {
		t.Fatalf("get = %q", got)
	}
	if got := run(t, "keys", "--store", store, "user:"); got != "user:1\nuser:2\n" {
		t.Fatalf("keys = %q", got)
	}
	if got := run(t, "keys", "--store", store); !strings.HasPrefix(got, "\"\\x00\\xff\"\n") {
		t.Fatalf("keys shows binary keys quoted: %q", got)
	}
	if got := run(t, "get", "--store", store, "--hex", "00ff"); got != "0102\n" {
		t.Fatalf("get --hex = %q", got)
	}
	if got := run(t, "ttl", "--store", store, "user:1"); got != "no expiry\n" {
		t.Fatalf("ttl = %q", got)
	}
	if got := run(t, "ttl", "--store", store, "user:2"); !strings.HasPrefix(got, "59m") && !strings.HasPrefix(got, "1h0m0s") {
		t.Fatalf("ttl = %q", got)
	}
	if got := run(t, "del", "--store", store, "user:1", "nobody"); got != "1\n" {
		t.Fatalf("del = %q", got)
	}
	if _, err := runErr(t, "get", "--store", store, "user:1"); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("get of a deleted key = %v", err)
	}
	if got := run(t, "stats", "--store", store); !strings.Contains(got, "backend") || !strings.Contains(got, "pebble") {
		t.Fatalf("stats = %q", got)
	}
	if _, err := runErr(t, "get", "--store", "nosuch://x", "k"); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("get from an unknown scheme = %v", err)
	}
}

// Every command documents itself.
func TestHelp(t *testing.T) {
	for _, c := range newRoot().Commands() {
		out := run(t, c.Name(), "--help")
		if !strings.Contains(out, "Usage:") || c.Short == "" {
			t.Errorf("%s --help = %q", c.Name(), out)
		}
		for _, sub := range c.Commands() {
			if out := run(t, c.Name(), sub.Name(), "--help"); !strings.Contains(out, "Usage:") || sub.Short == "" {
				t.Errorf("%s %s --help = %q", c.Name(), sub.Name(), out)
			}
		}
	}
}
