package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
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
	out = run(t, "checkpoint", "restore", "--store", store, "--dir", dir, "--yes")
	if !strings.Contains(out, "skipped "+second[1]) || !strings.Contains(out, "restored "+first[1]) {
		t.Fatalf("restore:\n%s", out)
	}
	if got := run(t, "get", "--store", store, "offset"); got != "100\n" {
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
	if got := run(t, "get", "--store", store, "offset"); got != "2\n" {
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
	if out := run(t, "checkpoint", "restore", "--store", store, "--location", loc, "--yes"); !strings.Contains(out, "restored "+id) {
		t.Fatalf("restore:\n%s", out)
	}
	if got := run(t, "get", "--store", store, "offset"); got != "100\n" {
		t.Fatalf("offset = %q", got)
	}
}

// A checkpoint directory or id that does not exist is not found (exit
// 3), and reading commands do not create the directory.
func TestCheckpointNotFound(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	empty := t.TempDir()
	store := "mem://"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoint", "verify", "--dir", missing}, "strata: checkpoint directory " + missing + ": not found\n"},
		{[]string{"checkpoint", "list", "--dir", missing}, "checkpoint directory " + missing + ": not found"},
		{[]string{"checkpoint", "inspect", "--dir", missing, "000000000001-20250102T150405.123Z"}, "not found"},
		{[]string{"checkpoint", "restore", "--store", store, "--dir", missing}, "not found"},
		{[]string{"checkpoint", "verify", "--dir", empty}, "no checkpoint in file://" + empty},
		{[]string{"checkpoint", "verify", "--dir", empty, "000000000001-20250102T150405.123Z"}, "no checkpoint"},
		{[]string{"checkpoint", "inspect", "--dir", empty, "000000000001-20250102T150405.123Z"}, "no checkpoint"},
		{[]string{"checkpoint", "restore", "--store", store, "--dir", empty}, "no checkpoint in file://" + empty},
	} {
		out, errOut, code := runCode(t, c.args...)
		if code != exitNotFound || !strings.Contains(errOut, c.want) {
			t.Errorf("strata %s: exit %d, want %d with %q:\n%s%s", strings.Join(c.args, " "), code, exitNotFound, c.want, out, errOut)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a reading command made the directory: %v", err)
	}
	if _, errOut, code := runCode(t, "checkpoint", "verify", "--dir", empty, "../x"); code != exitUsage {
		t.Errorf("verify of a malformed id: exit %d:\n%s", code, errOut)
	}
}

// checkpoint list and inspect print JSON that parses back.
func TestCheckpointJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	store := "pebble://" + filepath.Join(t.TempDir(), "state")
	run(t, "put", "--store", store, "--ttl", "1h", "a", "1")
	run(t, "put", "--store", store, "--hex", "00ff", "0102")
	id := regexp.MustCompile(`created (\S+) in `).FindStringSubmatch(run(t, "checkpoint", "create", "--store", store, "--dir", dir))[1]

	var list []struct {
		ID       string `json:"id"`
		Size     int64  `json:"size_bytes"`
		Manifest struct {
			ID      string `json:"id"`
			Entries int64  `json:"entries"`
			Source  string `json:"source"`
		} `json:"manifest"`
		Error *string `json:"error"`
	}
	decode(t, run(t, "checkpoint", "list", "--dir", dir, "--json"), &list)
	if len(list) != 1 || list[0].ID != id || list[0].Manifest.ID != id || list[0].Manifest.Entries != 2 || list[0].Manifest.Source != "pebble" || list[0].Size == 0 || list[0].Error != nil {
		t.Errorf("list --json = %+v", list)
	}

	var in struct {
		Manifest struct {
			ID      string `json:"id"`
			Entries int64  `json:"entries"`
		} `json:"manifest"`
		Records []map[string]any `json:"records"`
	}
	decode(t, run(t, "checkpoint", "inspect", "--dir", dir, "--json", id), &in)
	if in.Manifest.ID != id || in.Manifest.Entries != 2 || len(in.Records) != 2 {
		t.Fatalf("inspect --json = %+v", in)
	}
	if r := in.Records[0]; r["key_hex"] != "00ff" || r["value"] != "\x01\x02" || r["expires"] != false {
		t.Errorf("first record = %v", r)
	}
	if r := in.Records[1]; r["key"] != "a" || r["value"] != "1" || r["expires"] != true || r["ttl_ms"].(float64) < 3500_000 {
		t.Errorf("second record = %v", r)
	}
}

// checkpointOf writes n keys into a bbolt store and returns a directory
// with one checkpoint of it, and the checkpoint's id.
func checkpointOf(t *testing.T, n int) (dir, id string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "ckpt")
	out := run(t, "checkpoint", "create", "--store", fillBolt(t, n), "--dir", dir)
	m := regexp.MustCompile(`created (\S+) in `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("checkpoint create:\n%s", out)
	}
	return dir, m[1]
}

// Restoring over a store that holds keys (a whole Redis database here)
// asks first on a terminal, and refuses without --yes elsewhere; --dry-run
// says what would happen and writes nothing.
func TestRestoreConfirmation(t *testing.T) {
	dir, id := checkpointOf(t, 30)
	r := testserver.StartRedis(t, nil)
	for i := range 5 {
		r.CLI(t, "SET", fmt.Sprintf("other:%d", i), "x")
	}
	dbsize := func() string { return r.CLI(t, "DBSIZE") }
	restore := []string{"checkpoint", "restore", "--store", r.URL(), "--dir", dir}

	out, errOut, code := runCode(t, restore...)
	if code != exitUsage || !strings.Contains(errOut, r.URL()+" holds 5 keys") || !strings.Contains(errOut, "every key of the database") ||
		!strings.Contains(errOut, "--yes") || !strings.Contains(errOut, "--dry-run") || dbsize() != "5" {
		t.Fatalf("restore over 5 keys without --yes: exit %d, DBSIZE %s\n%s%s", code, dbsize(), out, errOut)
	}

	out, errOut, code = runCode(t, append(restore, "--dry-run")...)
	if code != exitOK || dbsize() != "5" ||
		!strings.Contains(out, "would restore checkpoint "+id) || !strings.Contains(out, "30 entries, 0 of them expired by now, so 30 written") ||
		!strings.Contains(out, "holds 5 keys: all deleted first (replace)") {
		t.Fatalf("restore --dry-run: exit %d, DBSIZE %s\n%s%s", code, dbsize(), out, errOut)
	}
	out, _, _ = runCode(t, append(restore, "--dry-run", "--merge")...)
	if !strings.Contains(out, "holds 5 keys: kept (merge)") || dbsize() != "5" {
		t.Fatalf("restore --dry-run --merge:\n%s", out)
	}

	// On a terminal it asks; anything but yes writes nothing.
	term, code := runTerminal(t, "n\n", restore...)
	if code != exitFailure || !strings.Contains(term, "Restore checkpoint "+id+" (30 entries") || !strings.Contains(term, "deleting its 5 keys") ||
		!strings.Contains(term, "[y/N]") || !strings.Contains(term, "not confirmed") || dbsize() != "5" {
		t.Fatalf("restore answered n: exit %d, DBSIZE %s\n%s", code, dbsize(), term)
	}
	term, code = runTerminal(t, "y\n", restore...)
	if code != exitOK || !strings.Contains(term, "restored "+id+": 30 entries") || dbsize() != "30" {
		t.Fatalf("restore answered y: exit %d, DBSIZE %s\n%s", code, dbsize(), term)
	}

	// --merge clears nothing, so it asks nothing.
	r.CLI(t, "SET", "other:0", "x")
	if out := run(t, append(restore, "--merge")...); !strings.Contains(out, "restored "+id) || dbsize() != "31" {
		t.Fatalf("restore --merge: DBSIZE %s\n%s", dbsize(), out)
	}
	if out := run(t, append(restore, "--yes")...); !strings.Contains(out, "30 entries, 0 deleted (0 expired, 31 keys cleared first)") || dbsize() != "30" {
		t.Fatalf("restore --yes: DBSIZE %s\n%s", dbsize(), out)
	}
}

// A restore stopped with Ctrl-C says how to finish it, and doing so
// restores every entry.
func TestRestoreInterrupted(t *testing.T) {
	const n = 100_000
	dir, id := checkpointOf(t, n)
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)

	cmd := command(t, "checkpoint", "restore", "--store", r.URL(), "--dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	wait.For(t, 30*time.Second, "the restore to write 10000 keys", func() bool {
		size, err := c.DBSize(t.Context()).Result()
		return err == nil && size >= 10_000
	})
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	partial, _ := c.DBSize(t.Context()).Result()
	if partial >= n {
		t.Fatalf("the restore finished before the interrupt (%d keys): the test proves nothing", partial)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("interrupted restore: exit %d, want %d\n%s", code, exitInterrupted, out.String())
	}
	rerun := regexp.MustCompile(`(?m)^  strata (checkpoint restore .*)$`).FindStringSubmatch(out.String())
	if !strings.Contains(out.String(), "The restore of checkpoint "+id+" stopped part-way") || rerun == nil ||
		!strings.Contains(rerun[1], id+" --yes") {
		t.Fatalf("interrupted restore output:\n%s", out.String())
	}
	if res := run(t, strings.Fields(rerun[1])...); !strings.Contains(res, fmt.Sprintf("restored %s: %d entries", id, n)) {
		t.Fatalf("%s:\n%s", rerun[1], res)
	}
	if size, _ := c.DBSize(t.Context()).Result(); size != n {
		t.Fatalf("DBSIZE after finishing the restore = %d, want %d", size, n)
	}
}
