package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// newPool returns a pool for dsn, closed when t ends, whose sessions carry
// application_name app (when not empty). It has room for 40 connections:
// each lease holds one.
func newPool(t testing.TB, dsn, app string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 40
	if app != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = app
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func newLocker(t testing.TB, pool *pgxpool.Pool, o *Options) *Locker {
	t.Helper()
	lk, err := New(pool, o)
	if err != nil {
		t.Fatal(err)
	}
	return lk
}

// terminate ends, from another session, every session of application app.
func terminate(t testing.TB, dsn, app string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgres shares one server among the tests that need one (initdb
// takes a while); each gets its own database. Conformance runs last: its
// BackendLost subtest kills and restarts the server.
func TestPostgres(t *testing.T) {
	p := testserver.StartPostgres(t)
	t.Run("Session", func(t *testing.T) { testSession(t, p) })
	t.Run("RoundTrips", func(t *testing.T) { testRoundTrips(t, p) })
	t.Run("ConcurrentFirstUse", func(t *testing.T) { testConcurrentFirstUse(t, p) })
	t.Run("TerminateBackend", func(t *testing.T) { testTerminateBackend(t, p) })
	t.Run("NoSessionTimeout", func(t *testing.T) { testNoSessionTimeout(t, p) })
	t.Run("StoppedHolder", func(t *testing.T) { testStoppedHolder(t, p) })
	t.Run("Conformance", func(t *testing.T) { testConformance(t, p) })
}

func testConformance(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	apps := 0
	conformance.RunLocker(t, conformance.LockerHarness{
		NewLocker: func(t *testing.T, o locks.Options) locks.Locker {
			return newLocker(t, newPool(t, dsn, ""), &Options{Options: o})
		},
		NewCrashable: func(t *testing.T, o locks.Options) (locks.Locker, func()) {
			apps++
			app := fmt.Sprintf("crashable-%d", apps)
			lk := newLocker(t, newPool(t, dsn, app), &Options{Options: o})
			return lk, func() {
				if terminate(t, dsn, app) == 0 {
					t.Error("crash: no session to terminate")
				}
			}
		},
		KillBackend: func(t *testing.T, name string) func() {
			p.Kill()
			return func() { p.Restart(t) }
		},
	})
}

// TestAdvisoryKey pins the key derivation: changing it would let two
// versions of this package hold the same lock at once.
func TestAdvisoryKey(t *testing.T) {
	k1, k2 := AdvisoryKey("job")
	if k1 != 1586272514 || k2 != 544930539 {
		t.Errorf("AdvisoryKey(job) = %d, %d; want 1586272514, 544930539", k1, k2)
	}
	if a1, a2 := AdvisoryKey("a"); a1 == k1 && a2 == k2 {
		t.Error("two names share a key")
	}
}

func TestNew(t *testing.T) {
	if _, err := New(nil, nil); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Errorf("New(nil) = %v, want ErrInvalidConfig", err)
	}
	if _, err := New(nil, &Options{Options: locks.Options{MinBackoff: -time.Second}}); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Errorf("New with a negative MinBackoff = %v, want ErrInvalidConfig", err)
	}
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/x?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, table := range []string{"a..b", ".a", "a.b.c"} {
		if _, err := New(pool, &Options{Table: table}); !errors.Is(err, strata.ErrInvalidConfig) {
			t.Errorf("Table %q: %v, want ErrInvalidConfig", table, err)
		}
	}
	lk := newLocker(t, pool, nil)
	_, err = lk.TryAcquire(t.Context(), "x", time.Second)
	var oe *strata.OpError
	if !errors.Is(err, strata.ErrUnavailable) || !errors.As(err, &oe) || oe.Backend != "postgres" {
		t.Fatalf("TryAcquire with no server = %v, want an OpError matching ErrUnavailable", err)
	}
}

// testSession checks how a lease uses its connection: one per lease, the
// lock released on it, the connection back in the pool with its
// idle_session_timeout restored.
func testSession(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	cfg.ConnConfig.RuntimeParams["idle_session_timeout"] = "10min"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	lk := newLocker(t, pool, &Options{Table: "public.my_fence"})

	l, err := lk.TryAcquire(ctx, "s", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The pool's only connection is the lease's.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = lk.TryAcquire(short, "other", time.Minute)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TryAcquire with the pool's only connection taken = %v, want a deadline error", err)
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	k1, k2 := AdvisoryKey("s")
	var holders int
	q := `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2`
	if err := admin.QueryRow(ctx, q, int64(uint32(k1)), int64(uint32(k2))).Scan(&holders); err != nil || holders != 1 {
		t.Fatalf("advisory lock holders = %d, %v; want 1", holders, err)
	}
	// A different session cannot unlock it.
	var unlocked bool
	if err := admin.QueryRow(ctx, "SELECT pg_advisory_unlock($1, $2)", k1, k2).Scan(&unlocked); err != nil || unlocked {
		t.Fatalf("unlock from another session = %v, %v", unlocked, err)
	}
	var token int64
	if err := admin.QueryRow(ctx, "SELECT token FROM public.my_fence WHERE name = $1", []byte("s")).Scan(&token); err != nil ||
		uint64(token) != l.Token() {
		t.Fatalf("fence row = %d, %v; lease token %d", token, err, l.Token())
	}
	// Many renewals interrupt and resume the watcher without disturbing
	// the connection.
	for i := range 200 {
		if err := l.Extend(ctx, time.Minute+time.Duration(i%2)*time.Second); err != nil {
			t.Fatalf("Extend #%d: %v", i, err)
		}
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, q, int64(uint32(k1)), int64(uint32(k2))).Scan(&holders); err != nil || holders != 0 {
		t.Fatalf("advisory lock holders after Release = %d, %v; want 0", holders, err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var setting string
	err = conn.QueryRow(ctx, "SHOW idle_session_timeout").Scan(&setting)
	conn.Release()
	if err != nil || setting != "10min" {
		t.Fatalf("idle_session_timeout of the returned connection = %q, %v; want 10min", setting, err)
	}
	if st := pool.Stat(); st.TotalConns() != 1 {
		t.Fatalf("pool has %d connections; the lease's should have been returned", st.TotalConns())
	}
}

// testConcurrentFirstUse: Lockers that all create the table at once.
func testConcurrentFirstUse(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		lk := newLocker(t, newPool(t, dsn, ""), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := lk.Acquire(ctx, fmt.Sprint("first-use-", i%2), time.Minute)
			if err != nil {
				errs <- err
				return
			}
			errs <- l.Release(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// testTerminateBackend: pg_terminate_backend on the holder's connection
// ends the lease at once, and another holder gets the lock.
func testTerminateBackend(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	ctx := t.Context()
	holder := newLocker(t, newPool(t, dsn, ""), nil)
	other := newLocker(t, newPool(t, dsn, ""), nil)
	// A long TTL: only the watcher can notice within the test.
	l, err := holder.TryAcquire(ctx, "victim", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	k1, k2 := AdvisoryKey("victim")
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid`,
		int64(uint32(k1)), int64(uint32(k2))).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d backends, %v", n, err)
	}
	select {
	case <-l.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("lease still open after its backend was terminated")
	}
	if !errors.Is(l.Err(), locks.ErrLost) {
		t.Fatalf("Err() = %v, want ErrLost", l.Err())
	}
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	next, err := other.Acquire(actx, "victim", time.Hour)
	if err != nil {
		t.Fatalf("Acquire after the holder's backend was terminated: %v", err)
	}
	if next.Token() <= l.Token() {
		t.Errorf("token %d not above %d", next.Token(), l.Token())
	}
	if err := l.Release(ctx); !errors.Is(err, locks.ErrLost) {
		t.Errorf("Release of the terminated lease = %v, want ErrLost", err)
	}
	if err := next.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// testNoSessionTimeout: without the server-side timeout, a lease that is
// neither renewed nor extended still ends locally after its TTL, and its
// connection is closed, which frees the lock.
func testNoSessionTimeout(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	ctx := t.Context()
	lk := newLocker(t, newPool(t, dsn, ""), &Options{
		NoSessionTimeout: true, Options: locks.Options{DisableRenewal: true},
	})
	l, err := lk.TryAcquire(ctx, "n", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("lease did not end after its TTL")
	}
	other := newLocker(t, newPool(t, dsn, ""), nil)
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	next, err := other.Acquire(actx, "n", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// countingConn counts the writes on a connection: pgx sends each request
// in one write, and waits for the answer, so writes are round trips.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// testRoundTrips counts the round trips of an uncontended acquire and
// release once the connection has prepared its statements: one each.
func testRoundTrips(t *testing.T, p *testserver.Postgres) {
	dsn := p.NewDatabase(t)
	ctx := t.Context()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	var writes atomic.Int64
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	lk := newLocker(t, pool, nil)
	cycle := func() {
		l, err := lk.TryAcquire(ctx, "rt", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // creates the table, prepares the statements
	writes.Store(0)
	for range 10 {
		cycle()
	}
	if n := writes.Load(); n != 20 {
		t.Fatalf("10 acquire+release cycles took %d round trips, want 20", n)
	}
}

// Example takes a lock for a periodic job and stops the work as soon as
// the lease is lost.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@localhost/app")
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	lk, err := New(pool, nil)
	if err != nil {
		panic(err)
	}
	lease, err := lk.Acquire(ctx, "nightly-compaction", 30*time.Second)
	if err != nil {
		panic(err)
	}
	defer lease.Release(ctx)
	work, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		<-lease.Done() // lost (or released): stop writing
		stop()
	}()
	// ... do the work with ctx = work, sending lease.Token() with every
	// write so that the resource can reject a stale holder.
	_ = work
}
