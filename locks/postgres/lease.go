package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-kv/strata/locks"
	"github.com/strata-kv/strata/storekit"
)

// lease is the PostgreSQL side of a held lock: the connection whose
// session holds the advisory lock, and the watcher goroutine that reads it
// between queries so that a broken connection ends the lease at once.
//
// Renew, Release and Abandon never overlap (package locks serializes
// them); each takes the connection from the watcher with pause and hands
// it back with resume.
type lease struct {
	lk     *Locker
	conn   *pgxpool.Conn
	pg     *pgconn.PgConn
	ml     *locks.ManagedLease
	name   string
	k1, k2 int32
	ttl    time.Duration // the session's idle_session_timeout, when set
	prev   string        // its value before the lease

	mu          sync.Mutex
	cond        *sync.Cond
	waiting     bool // the watcher is (about to be) blocked reading
	busy        bool // an operation has, or wants, the connection
	stop        bool // the watcher must exit
	watcherDone chan struct{}
}

var _ locks.LeaseBackend = (*lease)(nil)

// watch blocks reading the idle connection. The server sends nothing on
// an idle session except when it ends it (pg_terminate_backend, shutdown,
// idle_session_timeout), and a crashed server or a reset connection makes
// the read fail: either way the lease is lost at once. Operations
// interrupt the read with a read deadline.
func (l *lease) watch() {
	defer close(l.watcherDone)
	for {
		l.mu.Lock()
		for l.busy && !l.stop {
			l.cond.Wait()
		}
		if l.stop {
			l.mu.Unlock()
			return
		}
		l.waiting = true
		l.mu.Unlock()

		err := l.pg.WaitForNotification(context.Background())
		closed := l.pg.IsClosed() // the connection is still the watcher's

		l.mu.Lock()
		l.waiting = false
		interrupted := l.busy || l.stop
		l.cond.Broadcast()
		l.mu.Unlock()
		if err == nil || (interrupted && !closed) {
			continue // a notification, or an operation's turn
		}
		l.ml.Lose(storekit.NewOpError("watch", backend, []byte(l.name),
			fmt.Errorf("%w: the connection holding the lock ended: %w", locks.ErrLost, err)))
		return
	}
}

// pause takes the connection from the watcher.
func (l *lease) pause() {
	l.mu.Lock()
	l.busy = true
	if l.waiting {
		_ = l.pg.Conn().SetReadDeadline(time.Now())
		for l.waiting {
			l.cond.Wait()
		}
		_ = l.pg.Conn().SetReadDeadline(time.Time{})
	}
	l.mu.Unlock()
}

// resume gives the connection back to the watcher.
func (l *lease) resume() {
	l.mu.Lock()
	l.busy = false
	l.cond.Broadcast()
	l.mu.Unlock()
}

// stopWatcher ends the watcher and waits for it.
func (l *lease) stopWatcher() {
	l.mu.Lock()
	l.stop = true
	if l.waiting {
		_ = l.pg.Conn().SetReadDeadline(time.Now())
	}
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.watcherDone
	_ = l.pg.Conn().SetReadDeadline(time.Time{})
}

// lostIfClosed turns an error on the lock's connection into a lost lease
// when the connection did not survive it: its session, and the lock, are
// gone (or will be as soon as the server notices).
func (l *lease) lostIfClosed(op string, err error) error {
	if l.pg.IsClosed() {
		return storekit.NewOpError(op, backend, []byte(l.name),
			fmt.Errorf("%w: the connection holding the lock ended: %w", locks.ErrLost, err))
	}
	return opError(op, l.name, err)
}

// Renew proves the session alive with a cheap query, and sets its
// idle_session_timeout when ttl changed.
func (l *lease) Renew(ctx context.Context, ttl time.Duration) error {
	l.pause()
	defer l.resume()
	var err error
	if l.lk.timeout && ttl != l.ttl {
		_, err = l.pg.ExecParams(ctx, "SELECT set_config('idle_session_timeout', $1, false)",
			[][]byte{[]byte(timeoutSetting(ttl))}, nil, nil, nil).Close()
		if err == nil {
			l.ttl = ttl
		}
	} else {
		err = l.pg.Ping(ctx)
	}
	if err != nil {
		return l.lostIfClosed("extend", err)
	}
	return nil
}

// Release unlocks on the lease's own connection, restores the session's
// idle_session_timeout and returns the connection to the pool, or closes
// it if anything went wrong.
func (l *lease) Release(ctx context.Context) error {
	l.pause()
	l.stopWatcher()
	var unlocked bool
	var restored string
	err := l.conn.QueryRow(ctx, l.lk.releaseSQL, l.k1, l.k2, l.prev).Scan(&unlocked, &restored)
	switch {
	case err != nil:
		err = l.lostIfClosed("release", err)
	case !unlocked:
		err = storekit.NewOpError("release", backend, []byte(l.name),
			fmt.Errorf("%w: the session no longer held the advisory lock", locks.ErrLost))
	default:
		l.conn.Release()
		return nil
	}
	destroy(l.conn)
	return err
}

// Abandon closes the connection of a lost lease, ending its session.
func (l *lease) Abandon() {
	l.stopWatcher()
	destroy(l.conn)
}
