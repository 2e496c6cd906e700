package main

import (
	"bytes"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/testserver"
)

// Each kind of failure has its exit code, and its message reads once,
// naming the key.
func TestExitCodes(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	run(t, "put", "--store", r.URL(), "k", "v")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get", "--store", r.URL(), "k"}, exitOK, ""},
		{[]string{"get", "--nosuch"}, exitUsage, "strata: unknown flag: --nosuch\nRun 'strata get --help' for usage.\n"},
		{[]string{"get", "--store", r.URL()}, exitUsage, "accepts 1 arg(s), received 0"},
		{[]string{"nosuch"}, exitUsage, `unknown command "nosuch"`},
		{[]string{"migrate", "--from", r.URL()}, exitUsage, `required flag(s) "to" not set`},
		{[]string{"get", "--store", "nosuch://h", "k"}, exitUsage, `strata: invalid configuration: store URL "nosuch://h": unknown scheme`},
		{[]string{"get", "--store", r.URL(), "--raw", "--json", "k"}, exitUsage, "none of the others can be"},
		{[]string{"bench", "--store", r.URL(), "-t", "put"}, exitUsage, `unknown test "put" (accepted: set, get, mset, mget)`},
		{[]string{"get", "--store", r.URL(), "missing"}, exitNotFound, "strata: get \"missing\": not found\n"},
		{[]string{"ttl", "--store", r.URL(), "missing"}, exitNotFound, "strata: ttl \"missing\": not found\n"},
		{[]string{"get", "--store", r.URL(), "--hex", "00ff"}, exitNotFound, "strata: get 00ff: not found\n"},
	} {
		_, errOut, code := runCode(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "strata: strata:") {
			t.Errorf("strata %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, errOut)
		}
	}

	// A write whose reply never comes may have been applied.
	p := startHangingProxy(t, r.Addr)
	_, errOut, code := runCode(t, "put", "--store", "redis://"+p.addr()+"/0", "--timeout", "500ms", "k", "w")
	if code != exitIndeterminate || !strings.Contains(errOut, "outcome unknown") {
		t.Errorf("put whose reply is lost: exit %d, want %d:\n%s", code, exitIndeterminate, errOut)
	}

	r.Kill()
	_, errOut, code = runCode(t, "get", "--store", r.URL(), "k")
	if code != exitUnavailable || !strings.Contains(errOut, "backend unavailable") {
		t.Errorf("get from a stopped server: exit %d, want %d:\n%s", code, exitUnavailable, errOut)
	}
}

// hangingProxy forwards a Redis connection until the client sends a SET,
// then swallows every reply: the server applies the write, the client
// never learns it.
type hangingProxy struct {
	ln   net.Listener
	hang atomic.Bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	open []net.Conn
}

func startHangingProxy(t *testing.T, target string) *hangingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangingProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { // client to server
				defer p.wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if bytes.Contains(bytes.ToUpper(buf[:n]), []byte("\r\nSET\r\n")) {
							p.hang.Store(true)
						}
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() { // server to client, until the hang
				defer p.wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 && !p.hang.Load() {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *hangingProxy) addr() string { return p.ln.Addr().String() }

// A server that stopped answering fails a data command within its
// --timeout, by default a few seconds (go-redis's own retries took 12s).
func TestTimeout(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer r.Resume()
	start := time.Now()
	_, errOut, code := runCode(t, "get", "--store", r.URL(), "--timeout", "500ms", "k")
	if took := time.Since(start); code != exitUnavailable || took > 3*time.Second || !strings.Contains(errOut, "no answer within --timeout 500ms") {
		t.Errorf("get with --timeout 500ms from a stopped server: exit %d after %v:\n%s", code, took, errOut)
	}
	start = time.Now()
	_, errOut, code = runCode(t, "get", "--store", r.URL(), "k")
	if took := time.Since(start); code != exitUnavailable || took > dataTimeout+3*time.Second || !strings.Contains(errOut, "no answer within --timeout 5s") {
		t.Errorf("get from a stopped server: exit %d after %v:\n%s", code, took, errOut)
	}
}

// go-redis's own log lines are debug lines: the error stands alone unless
// --verbose asks for them.
func TestGoRedisLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "redis://" + ln.Addr().String() + "/0"
	ln.Close() // nothing listens there now
	_, errOut, code := runChild(t, "get", "--store", url, "k")
	if code != exitUnavailable || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "strata: redis: connecting to "+url) {
		t.Errorf("get from a closed port: exit %d, stderr:\n%s", code, errOut)
	}
	_, errOut, code = runChild(t, "--verbose", "get", "--store", url, "k")
	if code != exitUnavailable || !strings.Contains(errOut, "level=DEBUG") || !strings.Contains(errOut, "from=go-redis") {
		t.Errorf("get --verbose from a closed port: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	if got := run(t, "version"); !strings.HasPrefix(got, "strata ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("version = %q", got)
	}
	var v versionInfo
	decode(t, run(t, "version", "--json"), &v)
	if v.Go != runtime.Version() || v.Version == "" || v.Module == "" {
		t.Errorf("version --json = %+v", v)
	}
	// A binary built from a checkout records the revision.
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/strata-kv/strata", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "9d4ac3525449"}, {Key: "vcs.time", Value: "2026-11-26T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := readVersion(bi, true)
	if want := (versionInfo{Module: "github.com/strata-kv/strata", Version: "v0.3.0", Revision: "9d4ac3525449", Time: "2026-11-26T10:00:00Z", Modified: true, Go: "go1.26.0"}); got != want {
		t.Errorf("readVersion = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "strata v0.3.0 (github.com/strata-kv/strata, revision 9d4ac3525449 with local changes of 2026-11-26T10:00:00Z, go1.26.0)" {
		t.Errorf("String = %q", s)
	}
}
