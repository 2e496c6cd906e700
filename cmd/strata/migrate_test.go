package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/stores/bolt"
)

// fillBolt writes n keys into a new bbolt file, a third of them with a
// TTL of an hour, and returns its URL.
func fillBolt(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]strata.Entry, 0, 5000)
	for i := range n {
		ttl := strata.NoExpiry
		if i%3 == 0 {
			ttl = time.Hour
		}
		batch = append(batch, strata.Entry{Key: fmt.Appendf(nil, "window/%07d", i), Value: fmt.Appendf(nil, "count=%d", i), TTL: ttl})
		if len(batch) == cap(batch) || i == n-1 {
			if err := strata.PutMany(t.Context(), s, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return "bolt://" + path
}

// A new user's migration: 100k keys with TTLs from bolt to Redis, verified.
func TestMigrateBoltToRedis(t *testing.T) {
	const n = 100_000
	from := fillBolt(t, n)
	r := testserver.StartRedis(t, nil)
	out := run(t, "migrate", "--from", from, "--to", r.URL(), "--verify")
	if !strings.Contains(out, fmt.Sprintf("migrated %d keys", n)) ||
		!strings.Contains(out, fmt.Sprintf("verify: %d checked, 0 missing, 0 different, 0 with TTLs apart", n)) {
		t.Fatalf("migrate output:\n%s", out)
	}
	// The data is plain Redis data, TTLs included.
	if got := r.CLI(t, "DBSIZE"); got != strconv.Itoa(n) {
		t.Fatalf("DBSIZE = %s", got)
	}
	if got := r.CLI(t, "GET", "window/0000042"); got != "count=42" {
		t.Fatalf("GET = %q", got)
	}
	pttl, _ := strconv.Atoi(r.CLI(t, "PTTL", "window/0000003"))
	if pttl < int(time.Hour/time.Millisecond)-60_000 || pttl > int(time.Hour/time.Millisecond) {
		t.Fatalf("PTTL = %d ms, want about an hour", pttl)
	}
	if got := r.CLI(t, "PTTL", "window/0000001"); got != "-1" {
		t.Fatalf("PTTL of a key without expiry = %s", got)
	}
}

// A migration interrupted with Ctrl-C and run again with --resume ends
// with every key, and writes only what was missing.
func TestMigrateInterruptAndResume(t *testing.T) {
	const n = 100_000
	from := fillBolt(t, n)
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)

	cmd := command(t, "migrate", "--from", from, "--to", r.URL(), "--batch", "500")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // the test failed before waiting for it
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	wait.For(t, 30*time.Second, "the migration to write 10000 keys", func() bool {
		size, err := c.DBSize(t.Context()).Result()
		return err == nil && size >= 10_000
	})
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the interrupted migration exited 0:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "context canceled") {
		t.Fatalf("interrupted migration output:\n%s", out.String())
	}
	partial, _ := c.DBSize(t.Context()).Result()
	if partial >= n {
		t.Fatalf("the migration finished before the interrupt (%d keys): the test proves nothing", partial)
	}

	res := run(t, "migrate", "--from", from, "--to", r.URL(), "--resume", "--verify")
	if !strings.Contains(res, fmt.Sprintf("migrated %d keys (%d skipped", n-int(partial), partial)) ||
		!strings.Contains(res, "0 missing, 0 different, 0 with TTLs apart") {
		t.Fatalf("resumed migration (after %d keys):\n%s", partial, res)
	}
}

// On a terminal, migrate and restore draw a progress bar (count, total,
// percentage, rate, time left); elsewhere they print only their result.
func TestProgress(t *testing.T) {
	const n = 20_000
	from := fillBolt(t, n)
	to := "pebble://" + filepath.Join(t.TempDir(), "state")
	bar := regexp.MustCompile(`100% \|[^|]*\| \(20000/20000, \d+ keys/s\)`)

	term, code := runTerminal(t, "", "migrate", "--from", from, "--to", to)
	if code != exitOK || !strings.Contains(term, "migrating, ") || !bar.MatchString(term) || !strings.Contains(term, "migrated 20000 keys") {
		t.Fatalf("migrate on a terminal: exit %d\n%q", code, term)
	}
	out, errOut, _ := runCode(t, "migrate", "--from", from, "--to", "pebble://"+filepath.Join(t.TempDir(), "state"))
	if strings.Contains(out+errOut, "%") || strings.Contains(out+errOut, "\r") || !strings.Contains(out, "migrated 20000 keys") {
		t.Fatalf("migrate off a terminal printed progress:\n%q\n%q", out, errOut)
	}

	dir := filepath.Join(t.TempDir(), "ckpt")
	run(t, "checkpoint", "create", "--store", from, "--dir", dir)
	term, code = runTerminal(t, "", "checkpoint", "restore", "--store", "pebble://"+filepath.Join(t.TempDir(), "state"), "--dir", dir)
	if code != exitOK || !strings.Contains(term, "restoring") || !bar.MatchString(term) {
		t.Fatalf("restore on a terminal: exit %d\n%q", code, term)
	}
}
