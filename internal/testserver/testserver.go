// Package testserver starts real servers for tests: redis-server
// (standalone, TLS, ACL users, Cluster), PostgreSQL, and an S3-compatible
// object store (SeaweedFS's `weed mini`), each on free loopback ports in a
// temporary directory, stopped when the test ends.
//
// A server whose binary is missing fails the test under CI=true, with the
// command that installs it; elsewhere the test is skipped with that message.
// scripts/install-deps.sh installs them all: redis-server and PostgreSQL
// from Debian's packages, weed built from the Go module proxy into
// $(go env GOPATH)/bin, where StartS3 looks for it after PATH.
package testserver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer.
const startTimeout = 30 * time.Second

// need returns the path of binary, looked up in PATH and then in dirs. When
// it is missing, it fails the test under CI=true and skips it otherwise.
func need(tb testing.TB, binary, install string, dirs ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(binary); err == nil {
		return p
	}
	for _, d := range dirs {
		p := d + "/" + binary
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("testserver: %s not found; install it with: %s (or run scripts/install-deps.sh)", binary, install)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// portMu serializes port picking within the process, so that two servers
// started at once do not pick the same port.
var portMu sync.Mutex

var picked = map[int]bool{}

// freePort returns a loopback TCP port that is free now, and whose
// companion port+offset (the Redis Cluster bus) is free too when offset > 0.
func freePort(tb testing.TB, offset int) int {
	tb.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("testserver: no free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if picked[port] || (offset > 0 && (port+offset > 65535 || !portFree(port+offset) || picked[port+offset])) {
			continue
		}
		picked[port] = true
		if offset > 0 {
			picked[port+offset] = true
		}
		return port
	}
	tb.Fatal("testserver: no free port pair found")
	return 0
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// process is a running server.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *lockedBuffer // combined output, for failure reports
	done chan struct{}
	err  error
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutines of exec.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs cmd, which dies with the test process (SIGKILL on parent
// death: see spawn), and returns it.
func start(tb testing.TB, name string, cmd *exec.Cmd) *process {
	tb.Helper()
	logw := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logw, logw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	ended, err := spawn(cmd)
	if err != nil {
		tb.Fatalf("testserver: starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logw, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		ended()
	}()
	return p
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to grace for the process to end, then kills
// its whole process group. SIGKILL goes to the group at once, so that no
// child (a postgres backend) outlives its server.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	pid := p.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		pid = -pid
	}
	_ = syscall.Kill(pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// signal sends sig without waiting (SIGSTOP, SIGCONT).
func (p *process) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// waitUntil polls ready until it returns nil, the process exits or the
// start timeout passes; it fails the test with the server's log otherwise.
func waitUntil(tb testing.TB, p *process, ready func() error) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := ready()
		if err == nil {
			return
		}
		if p.exited() {
			tb.Fatalf("testserver: %s exited before answering (%v):\n%s", p.name, p.err, tail(p.log.String()))
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testserver: %s did not answer within %v: %v\n%s", p.name, startTimeout, err, tail(p.log.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tail returns the last lines of a log.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
