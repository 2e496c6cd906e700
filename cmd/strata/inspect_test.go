package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	if got := run(t, "get", "--store", store, "user:1"); got != "alice\n" {
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

// A data command without a store is a usage error naming the three ways
// to give one, not a success on a throwaway in-memory store.
func TestStoreIsRequired(t *testing.T) {
	t.Setenv("STRATA_STORE", "")
	dir := filepath.Join(t.TempDir(), "ckpt")
	for _, args := range [][]string{
		{"put", "foo", "bar"}, {"get", "foo"}, {"del", "foo"}, {"keys"}, {"ttl", "foo"}, {"stats"},
		{"bench", "-n", "10"}, {"checkpoint", "create", "--dir", dir}, {"checkpoint", "restore", "--dir", dir},
	} {
		out, errOut, code := runCode(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "no store: give --store URL") || !strings.Contains(errOut, "STRATA_STORE") || !strings.Contains(errOut, "--config") {
			t.Errorf("strata %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused checkpoint command made the directory: %v", err)
	}
	t.Setenv("STRATA_STORE", "pebble://"+filepath.Join(t.TempDir(), "state"))
	run(t, "put", "foo", "bar")
	if got := run(t, "get", "foo"); got != "bar\n" {
		t.Fatalf("get from STRATA_STORE = %q", got)
	}
}

// get ends its output with a newline (--raw does not); --json output of
// get, keys, ttl and stats parses back.
func TestOutputFormats(t *testing.T) {
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	run(t, "put", "--store", store, "user:1", "alice")
	run(t, "put", "--store", store, "--ttl", "1h", "user:2", "bob")
	run(t, "put", "--store", store, "--hex", "75733a00ff", "00ff")

	if got := run(t, "get", "--store", store, "user:1"); got != "alice\n" {
		t.Errorf("get = %q", got)
	}
	if got := run(t, "get", "--store", store, "--raw", "user:1"); got != "alice" {
		t.Errorf("get --raw = %q", got)
	}
	if got := run(t, "get", "--store", store, "--raw", "--hex", "75733a00ff"); got != "\x00\xff" {
		t.Errorf("get --raw of a binary value = %q", got)
	}

	var get map[string]string
	decode(t, run(t, "get", "--store", store, "--json", "user:1"), &get)
	if get["key"] != "user:1" || get["value"] != "alice" {
		t.Errorf("get --json = %v", get)
	}
	decode(t, run(t, "get", "--store", store, "--json", "--hex", "75733a00ff"), &get)
	if get["key_hex"] != "75733a00ff" || get["value_hex"] != "00ff" {
		t.Errorf("get --json --hex = %v", get)
	}

	var keys []map[string]string
	decode(t, run(t, "keys", "--store", store, "--json"), &keys)
	want := []map[string]string{{"key_hex": "75733a00ff"}, {"key": "user:1"}, {"key": "user:2"}} // in byte order
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("keys --json = %v, want %v", keys, want)
	}
	decode(t, run(t, "keys", "--store", store, "--json", "nobody"), &keys)
	if keys == nil || len(keys) != 0 {
		t.Errorf("keys --json of no key = %#v, want []", keys)
	}

	var ttl struct {
		Key     string `json:"key"`
		Expires bool   `json:"expires"`
		TTLms   *int64 `json:"ttl_ms"`
	}
	decode(t, run(t, "ttl", "--store", store, "--json", "user:2"), &ttl)
	if ttl.Key != "user:2" || !ttl.Expires || ttl.TTLms == nil || *ttl.TTLms < 3500_000 || *ttl.TTLms > 3600_000 {
		t.Errorf("ttl --json = %+v", ttl)
	}
	ttl.TTLms = nil
	decode(t, run(t, "ttl", "--store", store, "--json", "user:1"), &ttl)
	if ttl.Expires || ttl.TTLms != nil {
		t.Errorf("ttl --json without expiry = %+v", ttl)
	}

	var stats struct {
		Backend string             `json:"backend"`
		Keys    int64              `json:"keys"`
		Gauges  map[string]float64 `json:"gauges"`
	}
	decode(t, run(t, "stats", "--store", store, "--json"), &stats)
	if stats.Backend != "pebble" || stats.Gauges == nil {
		t.Errorf("stats --json = %+v", stats)
	}
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
}
