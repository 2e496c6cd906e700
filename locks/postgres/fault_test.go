package postgres

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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

// The child holder: the test binary re-executed with childEnv set takes a
// lock and then writes to a fenced row in a loop, the way a naive holder
// that never looks at Done would, reporting each outcome on stdout.
const (
	childEnv  = "STRATA_LOCKS_PG_CHILD"
	childDSN  = "STRATA_LOCKS_PG_DSN"
	childName = "STRATA_LOCKS_PG_NAME"
	childTTL  = "STRATA_LOCKS_PG_TTL"
)

// fencedWrite is the SQL form of a fenced write: the row takes the value
// only if the writer's token is not below the one it holds. It reports
// whether the write was accepted.
func fencedWrite(ctx context.Context, pool *pgxpool.Pool, token uint64, value string) (bool, error) {
	tag, err := pool.Exec(ctx, `INSERT INTO resource (id, token, value) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET token = excluded.token, value = excluded.value
		WHERE resource.token <= excluded.token`, int64(token), value)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func runChild() int {
	ctx := context.Background()
	ttl, _ := time.ParseDuration(os.Getenv(childTTL))
	pool, err := pgxpool.New(ctx, os.Getenv(childDSN))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer pool.Close()
	lk, err := New(pool, nil)
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
		ok, err := fencedWrite(ctx, pool, l.Token(), "child-"+strconv.Itoa(i))
		switch {
		case err != nil:
			fmt.Println("error", err)
			return 1
		case ok:
			fmt.Println("accepted", i)
		default:
			fmt.Println("rejected", i)
			rejected++
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

// next returns the child's next line starting with prefix, failing on
// "error" lines, EOF or the deadline.
func (c *child) next(t *testing.T, timeout time.Duration, prefix string) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited while waiting for %q", prefix)
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline:
			t.Fatalf("child did not print %q within %v", prefix, timeout)
		}
	}
}

// testStoppedHolder is Kleppmann's scenario with real processes: a holder
// stopped (SIGSTOP) for longer than its TTL loses its session to
// idle_session_timeout, so another process gets the lock; when the first
// resumes, the fenced row rejects every write it makes.
func testStoppedHolder(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	ctx := t.Context()
	pool := newPool(t, dsn, "")
	if _, err := pool.Exec(ctx, "CREATE TABLE resource (id int PRIMARY KEY, token bigint NOT NULL, value text)"); err != nil {
		t.Fatal(err)
	}
	const ttl = 500 * time.Millisecond
	ch := startChild(t, childDSN+"="+dsn, childName+"=job", childTTL+"="+ttl.String())
	line := ch.next(t, 30*time.Second, "acquired")
	childToken, _ := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
	ch.next(t, 30*time.Second, "accepted")

	if err := ch.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	lk := newLocker(t, pool, nil)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := lk.Acquire(actx, "job", time.Minute)
	if err != nil {
		t.Fatalf("Acquire while the holder is stopped: %v", err)
	}
	defer l.Release(ctx)
	if l.Token() <= childToken {
		t.Fatalf("new token %d is not above the stopped holder's %d", l.Token(), childToken)
	}
	if ok, err := fencedWrite(ctx, pool, l.Token(), "parent"); err != nil || !ok {
		t.Fatalf("the new holder's write: %v, %v", ok, err)
	}
	if err := ch.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ch.next(t, 30*time.Second, "rejected")
	}
	line = ch.next(t, 30*time.Second, "lost")
	if !strings.Contains(line, locks.ErrLost.Error()) {
		t.Errorf("child's lease ended with %q", line)
	}
	line = ch.next(t, 30*time.Second, "release")
	if !strings.Contains(line, locks.ErrLost.Error()) {
		t.Errorf("child's Release: %q, want ErrLost", line)
	}
	var value string
	var token int64
	if err := pool.QueryRow(ctx, "SELECT value, token FROM resource WHERE id = 1").Scan(&value, &token); err != nil ||
		value != "parent" || uint64(token) != l.Token() {
		t.Fatalf("resource = %q (token %d), %v; a stale write was accepted", value, token, err)
	}
	if _, err := lk.TryAcquire(ctx, "job", time.Minute); !errors.Is(err, locks.ErrHeld) {
		t.Fatalf("TryAcquire while the parent holds the lock = %v, want ErrHeld", err)
	}
	if err := ch.cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
