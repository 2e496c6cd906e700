package storetest

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

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
)

// Process runs the test binary again as a child process that writes to or
// holds a store, for the tests of crash safety and of locking between
// processes. The store's TestMain is [Process.Main]:
//
//	func TestMain(m *testing.M) { proc.Main(m) }
type Process struct {
	// Env prefixes the names of the environment variables that tell the
	// child its mode (Env+"_CHILD"), the store's path (Env+"_PATH") and its
	// first key (Env+"_START").
	Env string

	// Open opens the store at path, in the child and in the parent after
	// a crash, with the default options (writes synced).
	Open Open
}

// childLimit bounds how many keys a child writes, even if its parent is
// gone.
const childLimit = 100000

// CrashKey is the key of the i-th write of a crash test's child.
func CrashKey(i int) []byte { return fmt.Appendf(nil, "k%08d", i) }

// CrashValue is the value of the i-th write of a crash test's child.
func CrashValue(i int) []byte {
	return fmt.Appendf(nil, "value-%d-%s", i, strings.Repeat("x", i%200))
}

// Child runs the child's side if this process is a child, and returns its
// exit code and true; in the parent it returns false at once.
//
// Mode "write" puts synced keys (CrashKey, CrashValue) from the start index
// on and prints each index once its Put returned; "commit" commits the
// batches of [Process.CommitCrashSafety] and prints each generation once
// its Commit returned; "hold" opens the store, prints "ready" and keeps it
// open until its stdin closes.
func (p Process) Child() (code int, ok bool) {
	mode := os.Getenv(p.Env + "_CHILD")
	if mode == "" {
		return 0, false
	}
	return p.runChild(mode), true
}

func (p Process) runChild(mode string) int {
	s, err := p.Open(os.Getenv(p.Env+"_PATH"), Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	defer s.Close()
	ctx := context.Background()
	switch mode {
	case "write":
		start, _ := strconv.Atoi(os.Getenv(p.Env + "_START"))
		for i := start; i < start+childLimit; i++ {
			if err := s.Put(ctx, CrashKey(i), CrashValue(i), strata.NoExpiry); err != nil {
				fmt.Fprintln(os.Stderr, "child put:", err)
				return 2
			}
			// An acknowledgement the parent cannot read (it is gone)
			// ends the child.
			if _, err := fmt.Fprintln(os.Stdout, i); err != nil {
				return 3
			}
		}
	case "commit":
		return commitChild(ctx, s)
	case "hold":
		fmt.Fprintln(os.Stdout, "ready")
		io.Copy(io.Discard, os.Stdin)
	default:
		return 4
	}
	return 0
}

// start starts the test binary as a child in mode on path. The child is
// killed and waited for when t ends.
func (p Process) start(t *testing.T, mode, path string, start int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), p.Env+"_CHILD="+mode, p.Env+"_PATH="+path, p.Env+"_START="+strconv.Itoa(start))
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

// Hold starts a child that opens the store at path and keeps it open, and
// returns once the child has it open. Calling release (or the end of t)
// lets the child close it and exit.
func (p Process) Hold(t *testing.T, path string) (release func()) {
	t.Helper()
	_, out, stdin := p.start(t, "hold", path, 0)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("child did not get ready: %q, %v", out.Text(), out.Err())
	}
	return func() { stdin.Close() }
}

// CrashSafety runs the crash tests of a store: "Put", [Process.PutCrashSafety],
// and "Commit", [Process.CommitCrashSafety], each on a new path. verify
// checks the database at a path after a crash, the child gone.
func (p Process) CrashSafety(t *testing.T, verify func(t *testing.T, path string)) {
	t.Run("Put", func(t *testing.T) { p.PutCrashSafety(t, filepath.Join(t.TempDir(), "db"), verify) })
	t.Run("Commit", func(t *testing.T) { p.CommitCrashSafety(t, filepath.Join(t.TempDir(), "db"), verify) })
}

// PutCrashSafety kills a writing child with SIGKILL at a random point, six
// times over the same store at path; after each kill, verify checks the
// database at path (the child gone), and the store, reopened, must hold
// every write the child acknowledged (see [CheckAcked]).
func (p Process) PutCrashSafety(t *testing.T, path string, verify func(t *testing.T, path string)) {
	acked := map[int]bool{}
	next := 0
	p.killRounds(t, "write", path, 6, 300, func() int { return next }, func(i int) {
		acked[i] = true
		next = max(next, i+1)
	}, func() {
		verify(t, path)
		s := p.reopen(t, path)
		defer s.Close()
		CheckAcked(t, s, acked)
	})
}

// reopen opens the store at path in the parent, after a crash.
func (p Process) reopen(t *testing.T, path string) strata.Store {
	t.Helper()
	s, err := p.Open(path, Config{})
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	return s
}

// killRounds runs rounds children in mode on path, one after the other,
// each from start(). It kills each with SIGKILL once it has read a random
// number (1 to maxAcks) of its acknowledgements, calls ack with every
// acknowledgement the child wrote (those read after the kill too), and
// calls check after each round, the child gone.
func (p Process) killRounds(t *testing.T, mode, path string, rounds, maxAcks int, start func() int, ack func(i int), check func()) {
	t.Helper()
	for round := range rounds {
		cmd, out, _ := p.start(t, mode, path, start())
		killAt := 1 + rand.IntN(maxAcks)
		n := 0
		for out.Scan() {
			i, err := strconv.Atoi(out.Text())
			if err != nil {
				t.Fatalf("round %d: child wrote %q", round, out.Text())
			}
			ack(i)
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
		check()
		t.Logf("round %d: killed after %d acknowledgements (%d read in all)", round, killAt, n)
	}
}

// CheckAcked checks that s holds every write a crash test's child
// acknowledged.
func CheckAcked(t *testing.T, s strata.Store, acked map[int]bool) {
	t.Helper()
	ctx := t.Context()
	lost := 0
	for i := range acked {
		v, err := s.Get(ctx, CrashKey(i))
		if err != nil || string(v) != string(CrashValue(i)) {
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

// Main is the TestMain of a store package that runs p's children: in a
// child it runs the child's side and exits; in the parent it runs the tests
// and checks that no goroutine outlives them.
func (p Process) Main(m *testing.M) {
	if code, ok := p.Child(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
