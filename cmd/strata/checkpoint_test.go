package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/memory"
)

func TestCheckpointCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	created := regexp.MustCompile(`created (\S+) in `)

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
	if got := run(t, "get", "--store", store, "offset"); got != "100" {
		t.Fatalf("offset after restore = %q, want the first checkpoint's 100", got)
	}
}

// TestCheckpointChains: list, verify, inspect and restore show and handle a
// chain of deltas that a job's Coordinator wrote.
func TestCheckpointChains(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "ckpt")
	s := memory.New(nil)
	defer s.Close()
	tr, err := checkpoint.Track(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.New(tr, &checkpoint.Options{Dir: dir, MaxDeltas: 5, Aligned: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 200 { // a base large enough for deltas to be worth it
		tr.Put(ctx, []byte("base/"+strconv.Itoa(i)), []byte("some value of the base state"), strata.NoExpiry)
	}
	var ids []string
	for i := range 3 {
		tr.Put(ctx, []byte("offset"), []byte(strconv.Itoa(i)), strata.NoExpiry)
		tr.Put(ctx, []byte("k"+strconv.Itoa(i)), []byte("v"), strata.NoExpiry)
		if i == 2 {
			tr.Delete(ctx, []byte("k0"))
		}
		m, err := c.CheckpointAt(ctx, checkpoint.Cut{Offset: strconv.Itoa(i), Token: 7})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	list := run(t, "checkpoint", "list", "--dir", dir)
	if !strings.Contains(list, "full") || !strings.Contains(list, "delta 2 over "+ids[1]) || strings.Count(list, " 7 ") != 3 {
		t.Fatalf("list:\n%s", list)
	}
	verify := run(t, "checkpoint", "verify", "--dir", dir)
	if strings.Count(verify, ": ok") != 3 || !strings.Contains(verify, "chain of 3 from "+ids[0]) {
		t.Fatalf("verify:\n%s", verify)
	}
	inspect := run(t, "checkpoint", "inspect", "--location", "file://"+dir, ids[2])
	for _, want := range []string{`delta 2 over ` + ids[1], `base +` + ids[0], `deletes +1\n`, `chain \(3 checkpoints`,
		ids[0] + `  full \(base\)`, `delta 1`, `cut token +7`, `k0 deleted`, `offset = 2 \(no expiry\)`} {
		if !regexp.MustCompile(want).MatchString(inspect) {
			t.Fatalf("inspect does not show %q:\n%s", want, inspect)
		}
	}
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	out := run(t, "checkpoint", "restore", "--store", store, "--dir", dir)
	if !strings.Contains(out, "restored "+ids[2]+" ("+ids[0]+" and 2 deltas)") || !strings.Contains(out, "1 deleted") {
		t.Fatalf("restore:\n%s", out)
	}
	if got := run(t, "get", "--store", store, "offset"); got != "2" {
		t.Fatalf("offset after restore = %q", got)
	}
	if _, err := runErr(t, "get", "--store", store, "k0"); err == nil {
		t.Fatal("k0, deleted by the last delta, was restored")
	}
	// A missing link breaks the chain: verify and inspect say so.
	if err := os.Remove(filepath.Join(dir, ids[1]+".ckpt")); err != nil {
		t.Fatal(err)
	}
	if out, err := runErr(t, "checkpoint", "verify", "--dir", dir); err == nil || !strings.Contains(out, ids[2]+": FAILED") {
		t.Fatalf("verify of a broken chain: %v\n%s", err, out)
	}
	if out := run(t, "checkpoint", "inspect", "--dir", dir, ids[2]); !strings.Contains(out, "chain: BROKEN") {
		t.Fatalf("inspect of a broken chain:\n%s", out)
	}
	if _, err := runErr(t, "checkpoint", "list", "--dir", dir, "--location", "file://"+dir); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("--dir and --location: %v", err)
	}
}

// TestCheckpointS3: the commands on an s3:// location.
func TestCheckpointS3(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	loc := srv.URL("cli")
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	run(t, "put", "--store", store, "offset", "100")
	out := run(t, "checkpoint", "create", "--store", store, "--location", loc)
	if !strings.Contains(out, "in s3://strata/cli/") {
		t.Fatalf("create:\n%s", out)
	}
	id := regexp.MustCompile(`created (\S+) `).FindStringSubmatch(out)[1]
	if out := run(t, "checkpoint", "list", "--location", loc); !strings.Contains(out, id) || !strings.Contains(out, "full") {
		t.Fatalf("list:\n%s", out)
	}
	if out := run(t, "checkpoint", "verify", "--location", loc); !strings.Contains(out, id+": ok") {
		t.Fatalf("verify:\n%s", out)
	}
	if out := run(t, "checkpoint", "inspect", "--location", loc, id); !strings.Contains(out, "offset = 100") || !strings.Contains(out, "s3://strata/cli/") {
		t.Fatalf("inspect:\n%s", out)
	}
	run(t, "put", "--store", store, "offset", "200")
	if out := run(t, "checkpoint", "restore", "--store", store, "--location", loc); !strings.Contains(out, "restored "+id) {
		t.Fatalf("restore:\n%s", out)
	}
	if got := run(t, "get", "--store", store, "offset"); got != "100" {
		t.Fatalf("offset = %q", got)
	}
}
