package bolt_test

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
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/bolt"
)

// The child side of the process tests: the test binary run again with
// childEnv set to a mode, the store path in childPathEnv.
const (
	childEnv      = "STRATA_BOLT_TEST_CHILD"
	childPathEnv  = "STRATA_BOLT_TEST_PATH"
	childStartEnv = "STRATA_BOLT_TEST_START"
	childLimit    = 100000 // a child never writes more, even if its parent is gone
)

func crashKey(i int) []byte   { return fmt.Appendf(nil, "k%08d", i) }
func crashValue(i int) []byte { return fmt.Appendf(nil, "value-%d-%s", i, strings.Repeat("x", i%200)) }

// runChild is the child's main: "write" puts synced keys from the start
// index on and prints each index once its Put returned; "hold" opens the
// store, prints "ready" and keeps it open until its stdin closes.
func runChild(mode string) int {
	path := os.Getenv(childPathEnv)
	s, err := bolt.Open(path, &bolt.Options{OpenTimeout: 10 * time.Second})
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

// child starts the test binary as a child in mode on path.
func child(t *testing.T, mode, path string, start int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childPathEnv+"="+path, childStartEnv+"="+strconv.Itoa(start))
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
// several times over the same file, and checks after each kill that every
// write the child acknowledged is there and that bbolt's consistency check
// finds nothing.
func TestCrashSafety(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[int]bool{}
	next := 0
	const rounds = 6
	for round := range rounds {
		cmd, out, _ := child(t, "write", path, next)
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
		checkFile(t, path, acked)
		t.Logf("round %d: killed after %d acknowledgements (%d in all)", round, n, len(acked))
	}
}

// checkFile runs bbolt's consistency check on path, then reopens it as a
// store and checks every acknowledged key.
func checkFile(t *testing.T, path string, acked map[int]bool) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("raw bbolt open after the crash: %v", err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatalf("tx.Check after the crash: %v", err)
	}
	s, err := bolt.Open(path, nil)
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

// TestLockedByAnotherProcess opens a file a child process holds: Open must
// fail with ErrUnavailable within its timeout, naming the lock.
func TestLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	_, out, stdin := child(t, "hold", path, 0)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("child did not get ready: %q, %v", out.Text(), out.Err())
	}
	const timeout = 300 * time.Millisecond
	start := time.Now()
	s, err := bolt.Open(path, &bolt.Options{OpenTimeout: timeout})
	took := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("Open of a file another process holds succeeded")
	}
	if !errors.Is(err, strata.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Open of a locked file: %v, want ErrUnavailable saying it is locked", err)
	}
	// bbolt retries the lock every 50ms and gives up a retry early.
	if took < timeout/2 || took > timeout+5*time.Second {
		t.Fatalf("Open of a locked file returned after %v, want about the %v timeout", took, timeout)
	}
	// Once the child lets go, the file opens.
	stdin.Close()
	s, err = bolt.Open(path, &bolt.Options{OpenTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Open after the child released the file: %v", err)
	}
	s.Close()
}
