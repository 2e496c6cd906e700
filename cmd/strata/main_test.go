package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestMain runs the command itself when the test binary is re-executed
// with STRATA_MAIN=1, so that tests can drive it as a separate process
// (and signal it) without building another binary.
func TestMain(m *testing.M) {
	if os.Getenv("STRATA_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	goredis.SetLogger(redisLogger{}) // as main does, for the commands run in process
	goleak.VerifyTestMain(m)
}

// command returns an exec.Cmd running "strata args..." as a child process.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "STRATA_MAIN=1")
	return cmd
}

// runProcess runs strata as a child process and returns its combined
// output and error.
func runProcess(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := command(t, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// run runs strata in process and fails the test on error.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runErr(t, args...)
	if err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runErr runs strata in process and returns its output and error.
func runErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// runCode runs strata in process as main does, and returns what it printed
// on stdout and stderr and its exit code.
func runCode(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	code = execute(t.Context(), root)
	return out.String(), errOut.String(), code
}

// runChild runs strata as a child process and returns its stdout, stderr
// and exit code.
func runChild(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := command(t, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("strata %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// runTerminal runs strata as a child process in a pseudo-terminal (made by
// script(1)), typing input on it, and returns what the terminal showed and
// the exit code.
func runTerminal(t *testing.T, input string, args ...string) (string, int) {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1), from Debian's bsdutils, runs the command in a terminal: %v", err)
	}
	line := shellQuote(os.Args[0])
	for _, a := range args {
		line += " " + shellQuote(a)
	}
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	cmd.Env = append(os.Environ(), "STRATA_MAIN=1")
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("script %s: %v", line, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}
