package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

// The child holder: the test binary re-executed with childEnv set takes a
// lock and then writes to a fenced resource in a loop, the way a naive
// holder that never looks at Done would, reporting each outcome on stdout.
const (
	childEnv    = "STRATA_LOCKS_REDIS_CHILD"
	childAddr   = "STRATA_LOCKS_REDIS_ADDR"
	childPrefix = "STRATA_LOCKS_REDIS_PREFIX"
	childName   = "STRATA_LOCKS_REDIS_NAME"
	childTTL    = "STRATA_LOCKS_REDIS_TTL"
	childKey    = "STRATA_LOCKS_REDIS_KEY"
)

func runChild() int {
	ctx := context.Background()
	ttl, _ := time.ParseDuration(os.Getenv(childTTL))
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv(childAddr), MaxRetries: -1})
	defer c.Close()
	lk, err := New(c, &Options{Prefix: os.Getenv(childPrefix)})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	l, err := lk.Acquire(actx, os.Getenv(childName), ttl)
	cancel()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("acquired", l.Token())
	pace := time.NewTicker(5 * time.Millisecond) // a holder doing work between writes
	defer pace.Stop()
	rejected := 0
	for i := 0; rejected < 3; i++ {
		err := FencedPut(ctx, c, os.Getenv(childKey), l.Token(), []byte("child-"+strconv.Itoa(i)), 0)
		switch {
		case err == nil:
			fmt.Println("accepted", i)
		case errors.Is(err, locks.ErrStaleToken):
			fmt.Println("rejected", i)
			rejected++
		default:
			fmt.Println("error", err)
			return 1
		}
		<-pace.C
	}
	select {
	case <-l.Done():
		fmt.Println("lost", l.Err())
	case <-time.After(30 * time.Second):
		fmt.Println("error: lease still open after its writes were rejected")
		return 1
	}
	fmt.Println("release", l.Release(ctx))
	return 0
}

// child is a running child holder.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1"}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch.lines <- sc.Text()
		}
		close(ch.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return ch
}

// next returns the child's next line that starts with one of prefixes,
// failing on "error" lines, EOF or the deadline; skipped lines go to seen.
func (c *child) next(t *testing.T, timeout time.Duration, seen func(string), prefixes ...string) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited while waiting for %v", prefixes)
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
			for _, p := range prefixes {
				if strings.HasPrefix(line, p) {
					return line
				}
			}
			if seen != nil {
				seen(line)
			}
		case <-deadline:
			t.Fatalf("child did not print %v within %v", prefixes, timeout)
		}
	}
}

// TestStoppedHolder is Kleppmann's scenario with real processes: a holder
// stopped (SIGSTOP) for longer than its lease loses it to another process;
// when it resumes, its writes carry a stale token and the fenced resource
// rejects every one of them.
func TestStoppedHolder(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)
	ctx := t.Context()
	prefix, name, key := uniquePrefix(), "job", uniquePrefix()+"resource"
	const ttl = 500 * time.Millisecond
	ch := startChild(t, childAddr+"="+r.Addr, childPrefix+"="+prefix, childName+"="+name,
		childTTL+"="+ttl.String(), childKey+"="+key)

	line := ch.next(t, 30*time.Second, nil, "acquired")
	childToken, _ := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
	ch.next(t, 30*time.Second, nil, "accepted") // it is writing

	if err := ch.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	lk := newLocker(t, c, prefix, locks.Options{})
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := lk.Acquire(actx, name, time.Minute)
	if err != nil {
		t.Fatalf("Acquire while the holder is stopped: %v", err)
	}
	defer l.Release(ctx)
	if l.Token() <= childToken {
		t.Fatalf("new token %d is not above the stopped holder's %d", l.Token(), childToken)
	}
	if err := FencedPut(ctx, c, key, l.Token(), []byte("parent"), 0); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	if err := ch.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// Every write the resumed child makes now must be rejected.
	rejected := 0
	for rejected < 3 {
		ch.next(t, 30*time.Second, nil, "rejected")
		rejected++
	}
	line = ch.next(t, 30*time.Second, nil, "lost")
	if !strings.Contains(line, locks.ErrLost.Error()) {
		t.Errorf("child's lease ended with %q", line)
	}
	line = ch.next(t, 30*time.Second, nil, "release")
	if !strings.Contains(line, locks.ErrLost.Error()) {
		t.Errorf("child's Release: %q, want ErrLost", line)
	}
	v, tok, err := FencedGet(ctx, c, key)
	if err != nil || string(v) != "parent" || tok != l.Token() {
		t.Fatalf("resource = %q (token %d), %v; a stale write was accepted", v, tok, err)
	}
	wantHeldBy(t, lk, name)
	if err := ch.cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// wantHeldBy fails unless name is held (TryAcquire fails with ErrHeld).
func wantHeldBy(t *testing.T, lk *Locker, name string) {
	t.Helper()
	if l, err := lk.TryAcquire(t.Context(), name, time.Minute); !errors.Is(err, locks.ErrHeld) {
		if err == nil {
			_ = l.Release(t.Context())
		}
		t.Fatalf("TryAcquire(%q) = %v, want ErrHeld", name, err)
	}
}

// TestRedisRestart kills Redis under several leases: every lease ends, and
// after a restart the locks can be taken again, with higher tokens.
func TestRedisRestart(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)
	ctx := t.Context()
	lk := newLocker(t, c, uniquePrefix(), locks.Options{})
	const ttl = time.Second
	names := []string{"a", "b", "c", "{d}"}
	var held []locks.Lease
	for _, n := range names {
		l, err := lk.TryAcquire(ctx, n, ttl)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	r.Kill()
	for _, l := range held {
		select {
		case <-l.Done():
		case <-time.After(ttl + 15*time.Second):
			t.Fatalf("lease %q still open after Redis died", l.Name())
		}
		if !errors.Is(l.Err(), locks.ErrLost) {
			t.Errorf("lease %q: Err() = %v, want ErrLost", l.Name(), l.Err())
		}
	}
	r.Restart(t)
	for i, n := range names {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		l, err := lk.Acquire(actx, n, ttl)
		cancel()
		if err != nil {
			t.Fatalf("Acquire(%q) after restart: %v", n, err)
		}
		if l.Token() <= held[i].Token() {
			t.Errorf("%q: token %d after restart is not above %d", n, l.Token(), held[i].Token())
		}
		if err := held[i].Release(ctx); !errors.Is(err, locks.ErrLost) {
			t.Errorf("Release of the lost lease = %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Errorf("Release: %v", err)
		}
	}
}
