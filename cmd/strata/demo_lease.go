package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
	pglocks "github.com/strata-kv/strata/locks/postgres"
	redislocks "github.com/strata-kv/strata/locks/redis"
	"github.com/strata-kv/strata/storekit"
)

// redisBacked is a store kept in Redis (stores/redis), seen through any
// prefix views.
type redisBacked interface {
	Client() goredis.UniversalClient
	KeyPrefix() string
}

// baseStore returns the store under s's prefix views.
func baseStore(s strata.Store) strata.Store {
	for {
		v, ok := s.(strata.View)
		if !ok {
			return s
		}
		s = v.Unwrap()
	}
}

// leaser holds the demo's lease, when the store is shared.
type leaser struct {
	locker locks.Locker
	close  func()
}

// openLocker returns the locker the demo's lease comes from: lockURL
// ("auto": Redis locks on the store's own server when the store is Redis,
// none for an embedded store; "none"; or a postgres:// URL).
func openLocker(ctx context.Context, lockURL string, store strata.Store) (*leaser, error) {
	switch {
	case lockURL == "none":
		return nil, nil
	case strings.HasPrefix(lockURL, "postgres://") || strings.HasPrefix(lockURL, "postgresql://"):
		pool, err := pgxpool.New(ctx, lockURL)
		if err != nil {
			return nil, fmt.Errorf("%w: --lock: %w", strata.ErrInvalidConfig, err)
		}
		lk, err := pglocks.New(pool, nil)
		if err != nil {
			pool.Close()
			return nil, err
		}
		return &leaser{locker: lk, close: pool.Close}, nil
	case lockURL != "auto":
		return nil, fmt.Errorf("%w: --lock %q: want auto, none or a postgres:// URL", strata.ErrInvalidConfig, storekit.RedactURL(lockURL))
	}
	rb, ok := baseStore(store).(redisBacked)
	if !ok {
		return nil, nil // an embedded store: one process owns it
	}
	// Lock keys under the store's prefix, so that an ACL user limited to
	// it can hold the lease too.
	var o *redislocks.Options
	if p := rb.KeyPrefix(); p != "" && !strings.ContainsAny(p, "{}") {
		o = &redislocks.Options{Prefix: p + "lock:"}
	}
	lk, err := redislocks.New(rb.Client(), o)
	if err != nil {
		return nil, err
	}
	return &leaser{locker: lk, close: func() {}}, nil
}

// acquire takes the job's lease, waiting (and saying so) while another
// process holds it.
func (l *leaser) acquire(ctx context.Context, out io.Writer, name string, ttl time.Duration) (locks.Lease, error) {
	lease, err := l.locker.TryAcquire(ctx, name, ttl)
	if errors.Is(err, locks.ErrHeld) {
		fmt.Fprintf(out, "waiting for the lease %q: another process holds it\n", name)
		lease, err = l.locker.Acquire(ctx, name, ttl)
	}
	if err != nil {
		return nil, fmt.Errorf("lease %q: %w", name, err)
	}
	fmt.Fprintf(out, "holding the lease %q (fencing token %d)\n", name, lease.Token())
	return lease, nil
}
