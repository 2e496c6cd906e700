package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCheckpointCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	created := regexp.MustCompile(`created (\S+):`)

	run(t, "put", "--store", store, "offset", "100")
	first := created.FindStringSubmatch(run(t, "checkpoint", "create", "--store", store, "--dir", dir))
	run(t, "put", "--store", store, "offset", "200")
	second := created.FindStringSubmatch(run(t, "checkpoint", "create", "--store", store, "--dir", dir))
	if first == nil || second == nil || first[1] == second[1] {
		t.Fatalf("checkpoint ids %q and %q", first, second)
	}
	list := run(t, "checkpoint", "list", "--dir", dir)
	if !strings.Contains(list, first[1]) || !strings.Contains(list, second[1]) {
		t.Fatalf("list:\n%s", list)
	}
	if out := run(t, "checkpoint", "verify", "--dir", dir); strings.Count(out, ": ok") != 2 {
		t.Fatalf("verify:\n%s", out)
	}
	if out := run(t, "checkpoint", "inspect", "--dir", dir, second[1]); !strings.Contains(out, "entries   1") || !strings.Contains(out, "offset = 200 (no expiry)") {
		t.Fatalf("inspect:\n%s", out)
	}

	// Damage one byte in the middle of the newest checkpoint.
	path := filepath.Join(dir, second[1]+".ckpt")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runErr(t, "checkpoint", "verify", "--dir", dir)
	if err == nil || !strings.Contains(err.Error(), second[1]) || !strings.Contains(out, second[1]+": FAILED") || !strings.Contains(out, first[1]+": ok") {
		t.Fatalf("verify of a damaged checkpoint: %v\n%s", err, out)
	}

	// Restore falls back to the previous checkpoint and says why.
	run(t, "put", "--store", store, "offset", "300")
	out = run(t, "checkpoint", "restore", "--store", store, "--dir", dir)
	if !strings.Contains(out, "skipped "+second[1]) || !strings.Contains(out, "restored "+first[1]) {
		t.Fatalf("restore:\n%s", out)
	}
	if got := run(t, "get", "--store", store, "offset"); got != "100\n" {
		t.Fatalf("offset after restore = %q, want the first checkpoint's 100", got)
	}
}
