package pebble_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/pebble"
)

// The child side of the process tests: the test binary run again with
// childEnv set to a mode, the store directory in childPathEnv.
const (
	childEnv      = "STRATA_PEBBLE_TEST_CHILD"
	childPathEnv  = "STRATA_PEBBLE_TEST_PATH"
	childStartEnv = "STRATA_PEBBLE_TEST_START"
	childLimit    = 100000 // a child never writes more, even if its parent is gone
)

func crashKey(i int) []byte   { return fmt.Appendf(nil, "k%08d", i) }
func crashValue(i int) []byte { return fmt.Appendf(nil, "value-%d-%s", i, strings.Repeat("x", i%200)) }

// runChild is the child's main: "write" puts synced keys from the start
// index on (every tenth as a PutMany of three) and prints each index once
// its write returned; "hold" opens the store, prints "ready" and keeps it
// open until its stdin closes.
func runChild(mode string) int {
	s, err := pebble.Open(os.Getenv(childPathEnv), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	defer s.Close()
	ctx := context.Background()
	switch mode {
	case "write":
		start, _ := strconv.Atoi(os.Getenv(childStartEnv))
		for i := start; i < start+childLimit; i++ {
			if err := s.Put(ctx, crashKey(i), crashValue(i), strata.NoExpiry); err != nil {
				fmt.Fprintln(os.Stderr, "child put:", err)
				return 2
			}
			// An acknowledgement the parent cannot read (it is gone)
			// ends the child.
			if _, err := fmt.Fprintln(os.Stdout, i); err != nil {
				return 3
			}
		}
	case "hold":
		fmt.Fprintln(os.Stdout, "ready")
		io.Copy(io.Discard, os.Stdin)
	default:
		return 4
	}
	return 0
}

// child starts the test binary as a child in mode on dir.
func child(t *testing.T, mode, dir string, start int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childPathEnv+"="+dir, childStartEnv+"="+strconv.Itoa(start))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout), stdin
}

// TestCrashSafety kills a writing child with SIGKILL at a random point,
// several times over the same directory, and checks after each kill that
// every write the child acknowledged is there and that Pebble's level
// checker finds nothing wrong.
func TestCrashSafety(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crash")
	acked := map[int]bool{}
	next := 0
	const rounds = 6
	for round := range rounds {
		cmd, out, _ := child(t, "write", dir, next)
		killAt := 1 + rand.IntN(300)
		n := 0
		for out.Scan() {
			i, err := strconv.Atoi(out.Text())
			if err != nil {
				t.Fatalf("round %d: child wrote %q", round, out.Text())
			}
			acked[i] = true
			next = max(next, i+1)
			if n++; n == killAt {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != -1 {
			t.Fatalf("round %d: child ended with %v after %d acknowledgements, want death by SIGKILL", round, err, n)
		}
		checkDir(t, dir, acked)
		t.Logf("round %d: killed after %d acknowledgements (%d in all)", round, n, len(acked))
	}
}

// checkDir runs Pebble's level checker on dir, then reopens it as a store
// and checks every acknowledged key.
func checkDir(t *testing.T, dir string, acked map[int]bool) {
	t.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quiet{}})
	if err != nil {
		t.Fatalf("raw pebble open after the crash: %v", err)
	}
	err = db.CheckLevels(nil)
	db.Close()
	if err != nil {
		t.Fatalf("CheckLevels after the crash: %v", err)
	}
	s, err := pebble.Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	lost := 0
	for i := range acked {
		v, err := s.Get(ctx, crashKey(i))
		if err != nil || string(v) != string(crashValue(i)) {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged key %d: %q, %v", i, v, err)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Errorf(f string, args ...any) { pebbledb.DefaultLogger.Errorf(f, args...) }
func (quiet) Fatalf(f string, args ...any) { pebbledb.DefaultLogger.Fatalf(f, args...) }

// TestLockedByAnotherProcess opens a directory a child process holds: Open
// must fail at once with ErrUnavailable, naming the lock.
func TestLockedByAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locked")
	_, out, stdin := child(t, "hold", dir, 0)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("child did not get ready: %q, %v", out.Text(), out.Err())
	}
	s, err := pebble.Open(dir, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory another process holds succeeded")
	}
	if !errors.Is(err, strata.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Open of a locked directory: %v, want ErrUnavailable saying it is locked", err)
	}
	t.Logf("Open: %v", err)
	// The same in one process: a second Store on an open directory.
	stdin.Close()
	first, err := waitOpen(t, dir)
	if err != nil {
		t.Fatalf("Open after the child released the directory: %v", err)
	}
	defer first.Close()
	second, err := pebble.Open(dir, nil)
	if err == nil {
		second.Close()
		t.Fatal("a second Open in the same process succeeded")
	}
	if !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("second Open in the same process: %v, want ErrUnavailable", err)
	}
}

// waitOpen opens dir, retrying while the child that held it exits.
func waitOpen(t *testing.T, dir string) (*pebble.Store, error) {
	t.Helper()
	var s *pebble.Store
	var err error
	waitFor(t, "the child to release the directory", func() bool {
		s, err = pebble.Open(dir, nil)
		return !errors.Is(err, strata.ErrUnavailable)
	})
	return s, err
}
