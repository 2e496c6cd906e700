package redis

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// opKey marks a context as carrying the state of one store operation.
type opKey struct{}

// opState is what the retry hook records about one store operation. It is
// also the operation's context (one allocation instead of two): a child of
// the caller's that carries itself under opKey.
type opState struct {
	context.Context
	store *Store
	// sent is set once an attempt failed after its command may have
	// reached the server. (Cluster-wide operations run their masters in
	// parallel, hence atomic.)
	sent atomic.Bool
	// nodeAttempts counts, in Cluster mode, the times the cluster client
	// sent the current command to a node: more than one means go-redis
	// followed a redirection or retried on its own.
	nodeAttempts atomic.Int32
	// driven is set when Store.send retries the operation's commands
	// itself: the hook then makes one attempt of each.
	driven atomic.Bool
}

// begin returns ctx marked for the store's hook, and the operation's
// state.
func (s *Store) begin(ctx context.Context) (context.Context, *opState) {
	st := &opState{Context: ctx, store: s}
	return st, st
}

// Value returns the state itself for opKey, and otherwise asks the
// caller's context.
func (st *opState) Value(key any) any {
	if key == (opKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// hook retries the store's commands that Store.send does not retry
// itself (and only the store's: a client passed to New keeps its behavior
// for the caller's own commands), and counts the retries.
type hook struct{ s *Store }

var _ goredis.Hook = hook{}

// DialHook marks the failures to connect (see dialError).
func (h hook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err: err}
		}
		return conn, nil
	}
}

// dialError is a failure to make a connection: no command was sent on
// it, whatever the cause (a refused or timed-out dial, a failed TLS
// handshake, or, for a failover client, a master the sentinels could not
// name). A failover client dials by asking the sentinels for the master
// first; when they know no master by that name, their nil reply is in the
// chain, where the store (and go-redis) would read it as an absent key:
// the chain then stops at dialError.
type dialError struct{ err error }

func (e *dialError) Error() string {
	if errors.Is(e.err, goredis.Nil) {
		return e.err.Error() + " (a nil reply: the sentinels know no master by that name)"
	}
	return e.err.Error()
}

func (e *dialError) Unwrap() error {
	if errors.Is(e.err, goredis.Nil) {
		return nil
	}
	return e.err
}

// ProcessHook retries one command.
func (h hook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		st, _ := ctx.Value(opKey{}).(*opState)
		if st == nil || st.store != h.s {
			return next(ctx, cmd)
		}
		if st.driven.Load() {
			st.nodeAttempts.Store(0)
			err := next(ctx, cmd)
			if n := st.nodeAttempts.Load(); n > 1 {
				h.s.retries.Add(uint64(n - 1))
			}
			return err
		}
		noRetry := cmd.NoRetry()
		for attempt := 0; ; attempt++ {
			st.nodeAttempts.Store(0)
			err := next(ctx, cmd)
			if n := st.nodeAttempts.Load(); n > 1 {
				h.s.retries.Add(uint64(n - 1))
			}
			if err == nil || errors.Is(err, goredis.Nil) || !h.s.retry(ctx, st, err, noRetry, attempt) {
				return err
			}
			cmd.SetErr(nil)
		}
	}
}

// ProcessPipelineHook retries the commands of a pipeline that failed. The
// store sends only idempotent commands in pipelines.
func (h hook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		st, _ := ctx.Value(opKey{}).(*opState)
		if st == nil || st.store != h.s || st.driven.Load() {
			return next(ctx, cmds)
		}
		pending := cmds
		for attempt := 0; ; attempt++ {
			err := next(ctx, pending)
			if err == nil || errors.Is(err, goredis.Nil) {
				// A Nil is an absent key, not a failure, but a later
				// command may still have failed.
				err = firstFailure(pending)
				if err == nil {
					return nil
				}
			}
			noRetry := false
			for _, c := range pending {
				noRetry = noRetry || c.NoRetry()
			}
			if !h.s.retry(ctx, st, err, noRetry, attempt) {
				return err
			}
			var failed []goredis.Cmder
			for _, c := range pending {
				if e := c.Err(); e != nil && !errors.Is(e, goredis.Nil) {
					c.SetErr(nil)
					failed = append(failed, c)
				}
			}
			if len(failed) == 0 {
				return nil
			}
			pending = failed
		}
	}
}

func firstFailure(cmds []goredis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
	}
	return nil
}

// retry decides whether attempt (0 for the first) of an operation that
// failed with err is tried again, and if so waits the backoff and counts
// the retry. It records in st whether the command may have reached the
// server. noRetry commands (not idempotent) are retried only when err
// proves the command never ran.
func (s *Store) retry(ctx context.Context, st *opState, err error, noRetry bool, attempt int) bool {
	k := classify(err)
	// After retries made by the client itself, err is only the last
	// attempt's: an earlier one may have been sent.
	if k == kindMaybeSent || (s.hiddenRetries && !noRetry && k != kindReply) {
		st.sent.Store(true)
	}
	switch {
	case k == kindReply || k == kindClosed || k == kindContext:
		return false
	case k == kindMaybeSent && noRetry:
		return false
	case attempt >= s.opts.MaxRetries || s.closed.Load() || ctxErr(ctx) != nil:
		return false
	}
	if s.cluster != nil && (k == kindMaybeSent || k == kindNotSent || k == kindTransient) {
		s.reloadTopology()
	}
	if !sleep(ctx, backoff(attempt, s.opts.MinRetryBackoff, s.opts.MaxRetryBackoff)) {
		return false
	}
	s.retries.Add(1)
	return true
}

// backoff returns the wait before retry number attempt+1: exponential from
// min, randomized, capped at max (go-redis's formula).
func backoff(attempt int, min, max time.Duration) time.Duration {
	if min <= 0 {
		return 0
	}
	d := min << uint(attempt)
	if d < min || d > max {
		d = max
	}
	d = min + rand.N(d)
	if d > max {
		d = max
	}
	return d
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reloadTopology asks the cluster client to refresh its slot map, at most
// every 100ms: after a failover the old master is gone, and go-redis would
// otherwise keep dialing it until its periodic reload.
func (s *Store) reloadTopology() {
	now := time.Now().UnixNano()
	last := s.lastReload.Load()
	if now-last < int64(100*time.Millisecond) || !s.lastReload.CompareAndSwap(last, now) {
		return
	}
	s.cluster.ReloadState(context.Background())
}

// nodeHook, on the node clients of a cluster client, counts the attempts
// go-redis makes inside its own redirection and retry loop, so that they
// show in RedisStats().Retries.
type nodeHook struct{ s *Store }

// DialHook leaves dialing alone.
func (h nodeHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook counts one attempt of a store command, and records whether
// it may have reached the server: the cluster client's redirect loop may
// try again, and the store's hook sees only the last attempt's error.
func (h nodeHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		st, _ := ctx.Value(opKey{}).(*opState)
		if st == nil || st.store != h.s {
			return next(ctx, cmd)
		}
		st.nodeAttempts.Add(1)
		err := next(ctx, cmd)
		noteMaybeSent(st, err)
		return err
	}
}

// ProcessPipelineHook records whether one node's part of a store pipeline
// (or an ASKING redirection) may have reached the server.
func (h nodeHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if bs, _ := ctx.Value(batchKey{}).(*batchState); bs != nil && bs.store == h.s {
			err := next(ctx, cmds)
			bs.noteNodePipeline(cmds, err)
			return err
		}
		st, _ := ctx.Value(opKey{}).(*opState)
		if st == nil || st.store != h.s {
			return next(ctx, cmds)
		}
		err := next(ctx, cmds)
		noteMaybeSent(st, err)
		return err
	}
}

// noteMaybeSent marks st sent if err shows that a command may have reached
// the server.
func noteMaybeSent(st *opState, err error) {
	if err != nil && classify(err) == kindMaybeSent {
		st.sent.Store(true)
	}
}
