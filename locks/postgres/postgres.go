// Package postgres implements locks.Locker on PostgreSQL with pgx v5.
//
// # How a lock is held
//
// A lock is a session-level advisory lock, taken with pg_try_advisory_lock
// on a connection acquired from the pool for the life of the lease. That
// connection is used for nothing else: renewals run on it, and Release
// unlocks on that same connection before returning it to the pool. A
// connection whose state is doubtful (an error, a lost lease) is closed
// instead of returned, which ends its session and so frees anything it
// held. Each lease therefore occupies one pool connection: size the pool
// (MaxConns) for the leases held at once plus the other work.
//
// The advisory key is the two-int form (classid, objid) taken from the
// first 8 bytes of SHA-256(name) (see AdvisoryKey). Two names whose hashes
// agree on those 64 bits would share one lock; with n names in use the
// chance of any such pair is about n²/2⁶⁵ (1e-10 for a million names). A
// collision costs only needless waiting, never safety: each name keeps its
// own fencing counter. The two-int key space is shared with whatever else
// in the database uses two-int advisory locks, but not with the
// single-bigint form.
//
// # Fencing tokens
//
// The token comes from an upsert in the same statement that takes the
// lock (one round trip):
//
//	INSERT INTO strata_lock_fence AS f (name, token) VALUES ($name, 1)
//	ON CONFLICT (name) DO UPDATE SET token = f.token + 1 RETURNING f.token
//
// committed with synchronous_commit on whatever the server's setting, so a
// token survives a server crash and tokens never repeat. The table
// (Options.Table, created on first use with CREATE TABLE IF NOT EXISTS
// under a transaction advisory lock, so concurrent first uses are safe) is:
//
//	CREATE TABLE strata_lock_fence (name bytea PRIMARY KEY, token bigint NOT NULL)
//
// Create it yourself if the role has no CREATE privilege. Names are bytea,
// so any byte string is a valid name.
//
// # What the TTL means here
//
// An advisory lock has no expiry: it lives as long as the session. The TTL
// is used in two ways:
//
//   - Watchdog and renewal: the lease "renews" every third of its TTL by a
//     cheap query on its connection, and between renewals a goroutine
//     blocks reading that connection, so a broken connection
//     (pg_terminate_backend, a server crash or restart) ends the lease at
//     once: Done closes as soon as the connection reports it. A renewal
//     that cannot get through within the TTL ends the lease too.
//   - Server-side timeout (PostgreSQL 14 and later, unless
//     Options.NoSessionTimeout): the lock's session gets
//     idle_session_timeout = TTL, so if the holder stops talking (a paused
//     or hung process, a partition that leaves the TCP connection open)
//     the server ends the session, and frees the lock, one TTL after the
//     last renewal, as a Redis key would expire. The previous value is
//     restored before the connection goes back to the pool. Without it (or
//     before 14), a holder that hangs keeps its lock until its TCP
//     connection dies (tune tcp_keepalives_idle, or
//     tcp_user_timeout). Keep a server-wide idle_session_timeout above
//     TTL/3 (leases send a query every TTL/3).
//
// # Poolers
//
// Session advisory locks need a session: connect directly, or through a
// pooler in session mode. Behind PgBouncer (or any pooler) in transaction
// or statement mode, each statement may run on a different server
// connection: the lock is taken on one server connection and then stays
// there when the pooler hands that connection to another client (who then
// holds it without knowing), the watchdog and renewals prove nothing, the
// unlock runs elsewhere and returns false (Release reports locks.ErrLost)
// while the real lock leaks until that server connection closes, and
// idle_session_timeout is applied to a shared connection. Do not use this
// package that way; point the locker's pool at PostgreSQL itself (or a
// session-mode pool), even if the rest of the application goes through a
// transaction pooler.
//
// # Errors
//
// TryAcquire returns locks.ErrHeld when the lock is taken. Backend failures
// come wrapped once in a *strata.OpError whose cause matches
// strata.ErrUnavailable when the lock was certainly not taken (the server
// could not be reached, or the connection broke and was closed, which
// frees any lock it held), or strata.ErrIndeterminate, or is the server's
// *pgconn.PgError.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
)

// backend names the backend in errors.
const backend = "postgres"

// DefaultTable is the default Options.Table.
const DefaultTable = "strata_lock_fence"

// Options configure a Locker. A nil *Options means the defaults.
type Options struct {
	// Options are the settings every locker shares: backoff and renewal.
	locks.Options

	// Table holds the fencing counters; it may be schema-qualified
	// ("locks.fence"). It is created on first use. Default DefaultTable.
	Table string

	// NoSessionTimeout keeps the lease's session from getting
	// idle_session_timeout = TTL (see the package documentation). Default
	// false; the timeout is also skipped on servers before PostgreSQL 14.
	NoSessionTimeout bool
}

// Locker hands out leases on PostgreSQL advisory locks. It is safe for
// concurrent use. It does not own the pool: release every lease before
// closing the pool (pgxpool.Pool.Close waits for the connections leases
// hold).
type Locker struct {
	pool  *pgxpool.Pool
	opts  locks.Options
	table string // quoted identifier
	noTO  bool

	mu      sync.Mutex // guards ready, timeout
	ready   bool       // table exists, server version known
	timeout bool       // set idle_session_timeout

	acquireSQL string
	releaseSQL string
}

var _ locks.Locker = (*Locker)(nil)

// New returns a Locker over pool. The fencing table is created on first
// use, not here. Bad options, and a nil pool, fail with an error matching
// strata.ErrInvalidConfig.
func New(pool *pgxpool.Pool, o *Options) (*Locker, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: locks/postgres: New with a nil pool", strata.ErrInvalidConfig)
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	parts := strings.Split(opts.Table, ".")
	for _, p := range parts {
		if p == "" || len(parts) > 2 {
			return nil, fmt.Errorf("%w: locks/postgres: Table %q is not a name or schema.name", strata.ErrInvalidConfig, opts.Table)
		}
	}
	return &Locker{pool: pool, opts: opts.Options, table: pgx.Identifier(parts).Sanitize(), noTO: opts.NoSessionTimeout}, nil
}

// AdvisoryKey returns the two-int advisory lock key of name, as
// pg_try_advisory_lock(k1, k2) takes it; pg_locks shows it as
// classid = k1 and objid = k2 (both as unsigned 32-bit), objsubid = 2.
func AdvisoryKey(name string) (k1, k2 int32) {
	h := sha256.Sum256([]byte(name))
	return int32(binary.BigEndian.Uint32(h[0:4])), int32(binary.BigEndian.Uint32(h[4:8]))
}

// ensure creates the fencing table once, and learns whether the server
// has idle_session_timeout.
func (lk *Locker) ensure(ctx context.Context) error {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.ready {
		return nil
	}
	conn, err := lk.pool.Acquire(ctx)
	if err != nil {
		return opError("create_table", "", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return opError("create_table", "", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	k1, k2 := AdvisoryKey("\x00strata:create-table:" + lk.table)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", k1, k2); err != nil {
		return opError("create_table", "", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+lk.table+
		" (name bytea PRIMARY KEY, token bigint NOT NULL)"); err != nil {
		return opError("create_table", "", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return opError("create_table", "", err)
	}
	major, _ := strconv.Atoi(strings.SplitN(conn.Conn().PgConn().ParameterStatus("server_version"), ".", 2)[0])
	lk.timeout = !lk.noTO && major >= 14
	if lk.timeout {
		lk.acquireSQL = `WITH l AS (
  SELECT pg_try_advisory_lock($1::int4, $2::int4) AS ok, current_setting('idle_session_timeout') AS prev
), s AS (
  SELECT prev, set_config('idle_session_timeout', $4::text, false),
         set_config('synchronous_commit', 'on', true)
  FROM l WHERE ok
)
INSERT INTO ` + lk.table + ` AS f (name, token) SELECT $3::bytea, 1 FROM s
ON CONFLICT (name) DO UPDATE SET token = f.token + 1
RETURNING f.token, (SELECT prev FROM s)`
		lk.releaseSQL = `SELECT pg_advisory_unlock($1::int4, $2::int4), set_config('idle_session_timeout', $3::text, false)`
	} else {
		lk.acquireSQL = `WITH l AS (
  SELECT pg_try_advisory_lock($1::int4, $2::int4) AS ok
), s AS (
  SELECT set_config('synchronous_commit', 'on', true) FROM l WHERE ok
)
INSERT INTO ` + lk.table + ` AS f (name, token) SELECT $3::bytea, 1 FROM s
ON CONFLICT (name) DO UPDATE SET token = f.token + 1
RETURNING f.token, ''::text`
		lk.releaseSQL = `SELECT pg_advisory_unlock($1::int4, $2::int4), $3::text`
	}
	lk.ready = true
	return nil
}

// TryAcquire takes the lock name for ttl if it is free (one round trip once
// the table is known to exist), and otherwise returns locks.ErrHeld at
// once.
func (lk *Locker) TryAcquire(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	ttl, err := locks.CheckRequest(backend, name, ttl)
	if err != nil {
		return nil, err
	}
	return locks.TraceAcquire(ctx, &lk.opts, backend, name, ttl.Seconds(), false, func(ctx context.Context) (locks.Lease, error) {
		return lk.try(ctx, name, ttl)
	})
}

// Acquire takes the lock name for ttl, waiting with backoff while it is
// held (see locks.Locker).
func (lk *Locker) Acquire(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	ttl, err := locks.CheckRequest(backend, name, ttl)
	if err != nil {
		return nil, err
	}
	return locks.TraceAcquire(ctx, &lk.opts, backend, name, ttl.Seconds(), true, func(ctx context.Context) (locks.Lease, error) {
		return locks.Retry(ctx, name, &lk.opts, func(ctx context.Context) (locks.Lease, error) {
			return lk.try(ctx, name, ttl)
		})
	})
}

// timeoutSetting renders ttl as an idle_session_timeout value in
// milliseconds, capped at the setting's maximum.
func timeoutSetting(ttl time.Duration) string {
	return strconv.FormatInt(min(ttl.Milliseconds(), 1<<31-1), 10)
}

func (lk *Locker) try(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := lk.ensure(ctx); err != nil {
		return nil, err
	}
	conn, err := lk.pool.Acquire(ctx)
	if err != nil {
		return nil, opError("acquire", name, err)
	}
	k1, k2 := AdvisoryKey(name)
	sent := time.Now()
	var token int64
	var prev string
	args := []any{k1, k2, []byte(name)}
	if lk.timeout {
		args = append(args, timeoutSetting(ttl))
	}
	err = conn.QueryRow(ctx, lk.acquireSQL, args...).Scan(&token, &prev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		conn.Release()
		return nil, locks.ErrHeld
	case err != nil:
		// The lock may have been taken (session locks ignore rollback):
		// end the session, which frees it.
		destroy(conn)
		var pe *pgconn.PgError
		if isContextErr(err) || errors.As(err, &pe) {
			return nil, opError("acquire", name, err)
		}
		// A broken connection, now closed: nothing is held.
		return nil, &strata.OpError{Op: "acquire", Backend: backend, Key: []byte(name),
			Err: fmt.Errorf("%w: %w", strata.ErrUnavailable, err)}
	}
	b := &lease{
		lk: lk, conn: conn, pg: conn.Conn().PgConn(), name: name, k1: k1, k2: k2,
		ttl: ttl, prev: prev, watcherDone: make(chan struct{}),
	}
	b.cond = sync.NewCond(&b.mu)
	b.ml = locks.NewLease(locks.LeaseConfig{
		Name: name, Token: uint64(token), TTL: ttl, Sent: sent,
		Backend: backend, Lock: b, Options: &lk.opts, Acquired: trace.SpanContextFromContext(ctx),
	})
	go b.watch()
	return b.ml, nil
}

// destroy closes a pooled connection instead of returning it: its session
// ends, and with it every lock it held.
func destroy(conn *pgxpool.Conn) {
	c := conn.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
