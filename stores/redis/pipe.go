package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Auto-pipelining: the commands that concurrent operations send to one
// server share its connections' writes and round trips.
//
// Each server (each master in Cluster mode) has a queue with a few lanes:
// a lane is one round trip in flight, on one pooled connection. An
// operation that finds its server's queue idle (no round trip in flight,
// nobody waiting) sends its commands at once from its own goroutine, with
// its own context, exactly as without auto-pipelining: a lone caller
// waits for nothing. Otherwise its commands wait in the queue; a worker
// goroutine on a free lane, or the next lane to come free, takes
// everything waiting (up to PipelineBatchSize commands) and sends it as
// one go-redis pipeline, and goes on while the queue has work. (A command
// sent alone beside a round trip in flight costs a whole write and read:
// at 50 goroutines those took as much CPU as the pipelines.) The pipeline
// goes through the client's hooks and, in Cluster mode, through
// go-redis's routing (MOVED and ASK redirections) like any other.
//
// A shared round trip runs under a context of its own, not any caller's:
// a caller whose context ends stops waiting (its commands leave the queue
// if they are still in it), and the round trip goes on for the others.
// Retries are each operation's own: a shared round trip makes one attempt,
// and each caller then decides, from its own commands' errors and with its
// own context, whether to send the failed ones again (see Store.send), by
// the rules of the package documentation. A command that is not
// idempotent is never sent twice.

// defaultPipeLanes is the number of round trips one server's queue may
// have in flight at once: more lanes overlap the client's work with the
// server's, fewer make deeper pipelines. On one server two lanes and one
// measured alike (docs/BENCHMARKS.md); a cluster's masters get one each,
// which made 64 goroutines on three masters about 1.3 times faster.
var defaultPipeLanes = 2

// clusterPipeLanes is defaultPipeLanes for each master of a cluster.
var clusterPipeLanes = 1

// call is one operation's commands for one server, waiting for a round
// trip.
type call struct {
	cmds []goredis.Cmder
	st   *opState      // the operation's
	done chan struct{} // receives once every command has its reply or error
}

// pipeQueue is one server's queue.
type pipeQueue struct {
	p *autoPipe

	mu      sync.Mutex
	pending []*call
	active  int  // lanes in use: round trips in flight or being formed
	closed  bool // no worker may start (the store is closing)
}

// autoPipe is a store's auto-pipelining: one queue per server.
type autoPipe struct {
	s     *Store
	lanes int
	// single is the queue of a one-server client, and the queue of last
	// resort in Cluster mode (a key whose master is unknown).
	single *pipeQueue
	nodes  sync.Map // *goredis.Client (a cluster master) -> *pipeQueue

	closeMu sync.Mutex
	closed  bool
	workers sync.WaitGroup
}

func newAutoPipe(s *Store, lanes int) *autoPipe {
	p := &autoPipe{s: s, lanes: max(lanes, 1)}
	p.single = &pipeQueue{p: p}
	return p
}

// queue returns the queue of the server that owns key (a Redis key).
func (p *autoPipe) queue(ctx context.Context, key string) *pipeQueue {
	if p.s.cluster == nil {
		return p.single
	}
	node, err := p.s.cluster.MasterForKey(ctx, key)
	if err != nil || node == nil {
		return p.single // go-redis routes the command, or reports the error
	}
	if q, ok := p.nodes.Load(node); ok {
		return q.(*pipeQueue)
	}
	// Under closeMu, so that close sees every queue or the new one starts
	// closed.
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	actual, _ := p.nodes.LoadOrStore(node, &pipeQueue{p: p, closed: p.closed})
	return actual.(*pipeQueue)
}

// firstKey returns the first key of a command the store sends, or "".
func firstKey(cmd goredis.Cmder) string {
	args := cmd.Args()
	i := 1
	switch cmd.Name() {
	case "evalsha", "eval":
		i = 3
	}
	if len(args) <= i {
		return ""
	}
	switch k := args[i].(type) {
	case []byte:
		return string(k)
	case string:
		return k
	}
	return ""
}

// queued is the commands of one operation bound for one queue.
type queued struct {
	q    *pipeQueue
	cmds []goredis.Cmder
}

// split groups cmds by the queue of their server, keeping their order.
func (p *autoPipe) split(ctx context.Context, cmds []goredis.Cmder) []queued {
	if p.s.cluster == nil {
		return []queued{{p.single, cmds}}
	}
	var gs []queued
	for _, c := range cmds {
		q := p.queue(ctx, firstKey(c))
		i := 0
		for i < len(gs) && gs[i].q != q {
			i++
		}
		if i == len(gs) {
			gs = append(gs, queued{q: q})
		}
		gs[i].cmds = append(gs[i].cmds, c)
	}
	return gs
}

// roundTrip sends cmds, the commands of one operation (ctx is its
// opState), once, and waits for their replies: each command then holds
// its reply or its error. It returns an error only when ctx ended first:
// the commands may then still be in flight, and must not be read; st.sent
// records whether they may have reached the server.
func (p *autoPipe) roundTrip(ctx context.Context, st *opState, cmds []goredis.Cmder) error {
	if p.s.cluster == nil {
		return p.one(ctx, st, p.single, cmds)
	}
	gs := p.split(ctx, cmds)
	if len(gs) == 1 {
		return p.one(ctx, st, gs[0].q, cmds)
	}
	if ctx.Done() != nil {
		own(cmds)
	}
	calls := make([]*call, len(gs))
	for i, g := range gs {
		calls[i] = newCall(g.cmds, st)
		g.q.enqueue(calls[i])
	}
	done := ctx.Done()
	for i, c := range calls {
		select {
		case <-c.done:
			continue
		case <-done:
		}
		// The caller gives up: withdraw what still waits in a queue. The
		// rest is in flight, or answered already.
		for j := i; j < len(calls); j++ {
			if !gs[j].q.withdraw(calls[j]) {
				st.sent.Store(true)
			}
		}
		return ctx.Err()
	}
	for _, c := range calls {
		freeCall(c)
	}
	return nil
}

// one is roundTrip for commands bound for one queue.
func (p *autoPipe) one(ctx context.Context, st *opState, q *pipeQueue, cmds []goredis.Cmder) error {
	if q.tryInline() {
		// Nothing in flight and nobody waiting: send at once, from this
		// goroutine and under the caller's context.
		p.s.direct(ctx, cmds)
		q.release()
		return nil
	}
	done := ctx.Done()
	if done != nil {
		// The caller may stop waiting, and then reuse its keys and
		// values, while a worker still writes them.
		own(cmds)
	}
	c := newCall(cmds, st)
	q.enqueue(c)
	select {
	case <-c.done:
		freeCall(c)
		return nil
	case <-done:
	}
	if !q.withdraw(c) {
		st.sent.Store(true) // in flight, or answered already
	}
	return ctx.Err()
}

// calls recycles calls whose callers got their replies.
var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newCall(cmds []goredis.Cmder, st *opState) *call {
	c := calls.Get().(*call)
	c.cmds, c.st = cmds, st
	return c
}

// freeCall recycles c, once its done was received: nothing else holds it.
func freeCall(c *call) {
	c.cmds, c.st = nil, nil
	calls.Put(c)
}

// own replaces the byte slices among the arguments of cmds by copies, in
// one allocation.
func own(cmds []goredis.Cmder) {
	n := 0
	for _, c := range cmds {
		for _, a := range c.Args() {
			if b, ok := a.([]byte); ok {
				n += len(b)
			}
		}
	}
	buf := make([]byte, 0, n)
	for _, c := range cmds {
		args := c.Args()
		for i, a := range args {
			if b, ok := a.([]byte); ok {
				buf = append(buf, b...)
				args[i] = buf[len(buf)-len(b) : len(buf) : len(buf)]
			}
		}
	}
}

// tryInline takes a lane if none is in use and nobody waits.
func (q *pipeQueue) tryInline() bool {
	q.mu.Lock()
	ok := !q.closed && q.active == 0 && len(q.pending) == 0
	if ok {
		q.active++
	}
	q.mu.Unlock()
	return ok
}

// release gives back a lane taken by tryInline: to a worker, if commands
// arrived meanwhile.
func (q *pipeQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		q.active--
		return
	}
	if q.closed {
		q.active--
		q.failPending()
		return
	}
	q.startWorker()
}

// enqueue queues c, and starts a worker if a lane is free.
func (q *pipeQueue) enqueue(c *call) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		for _, cmd := range c.cmds {
			cmd.SetErr(goredis.ErrClosed)
		}
		c.done <- struct{}{}
		return
	}
	q.pending = append(q.pending, c)
	if q.active < q.p.lanes {
		q.active++
		q.startWorker()
	}
}

// startWorker starts a worker on a lane already counted in active. q.mu
// is held and q is not closed.
func (q *pipeQueue) startWorker() {
	q.p.workers.Add(1)
	go q.work()
}

// failPending fails the waiting calls: the store is closed and they were
// never sent. q.mu is held.
func (q *pipeQueue) failPending() {
	for _, c := range q.pending {
		for _, cmd := range c.cmds {
			cmd.SetErr(goredis.ErrClosed)
		}
		c.done <- struct{}{}
	}
	clear(q.pending)
	q.pending = q.pending[:0]
}

// withdraw removes c from the queue and reports whether it was still
// there (so never sent).
func (q *pipeQueue) withdraw(c *call) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := slices.Index(q.pending, c); i >= 0 {
		q.pending = slices.Delete(q.pending, i, i+1)
		return true
	}
	return false
}

// take removes the calls to send in the next round trip, at least one and
// at most PipelineBatchSize commands (unless one call has more), or
// returns nil and frees the lane when none waits. q.mu is held.
func (q *pipeQueue) take() []*call {
	if len(q.pending) == 0 {
		q.active--
		return nil
	}
	limit := q.p.s.opts.PipelineBatchSize
	n, size := 0, 0
	for n < len(q.pending) && (n == 0 || size+len(q.pending[n].cmds) <= limit) {
		size += len(q.pending[n].cmds)
		n++
	}
	batch := make([]*call, n)
	copy(batch, q.pending)
	rest := copy(q.pending, q.pending[n:])
	clear(q.pending[rest:])
	q.pending = q.pending[:rest]
	return batch
}

// work sends round trips of waiting calls until none waits.
func (q *pipeQueue) work() {
	defer q.p.workers.Done()
	for {
		q.mu.Lock()
		batch := q.take()
		q.mu.Unlock()
		if batch == nil {
			return
		}
		q.p.s.shared(batch)
	}
}

// close stops new workers from starting; running ones finish what waits.
func (p *autoPipe) close() {
	p.closeMu.Lock()
	p.closed = true
	qs := []*pipeQueue{p.single}
	p.nodes.Range(func(_, q any) bool {
		qs = append(qs, q.(*pipeQueue))
		return true
	})
	p.closeMu.Unlock()
	for _, q := range qs {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
	}
}

// wait waits for the running workers.
func (p *autoPipe) wait() { p.workers.Wait() }

// batchKey marks the context of a shared round trip.
type batchKey struct{}

// batchState is the context of a shared round trip: what the node hooks
// record about it (in Cluster mode go-redis may send a node's part again,
// after a redirection or a connection failure).
type batchState struct {
	context.Context
	store *Store
	calls []*call
	// nodeCmds counts the commands sent to nodes, attempts included.
	nodeCmds atomic.Int64

	ownersOnce sync.Once
	owners     map[goredis.Cmder]*opState // built on the first failure
}

// Value returns the state itself for batchKey.
func (b *batchState) Value(key any) any {
	if key == (batchKey{}) {
		return b
	}
	return b.Context.Value(key)
}

// direct sends cmds under ctx (an operation's opState), alone or as one
// pipeline, once: the store's hook does not retry a driven operation.
func (s *Store) direct(ctx context.Context, cmds []goredis.Cmder) {
	if len(cmds) == 1 {
		if err := s.c.Process(ctx, cmds[0]); err != nil && cmds[0].Err() == nil {
			cmds[0].SetErr(err) // a hook that failed without sending
		}
		return
	}
	pipe := s.c.Pipeline()
	for _, c := range cmds {
		_ = pipe.Process(ctx, c)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) && firstFailure(cmds) == nil {
		for _, c := range cmds {
			c.SetErr(err) // a hook that failed without sending
		}
	}
}

// shared sends the commands of several calls in one round trip, under a
// context of its own, and wakes their callers. It recovers a panic of a
// hook, which would otherwise kill the process from a worker goroutine:
// the calls then fail with it.
func (s *Store) shared(batch []*call) {
	var cmds []goredis.Cmder
	for _, c := range batch {
		cmds = append(cmds, c.cmds...)
	}
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("redis: panic in a shared round trip: %v", r)
			for _, c := range cmds {
				if c.Err() == nil {
					c.SetErr(err)
				}
			}
		}
		for _, c := range batch {
			c.done <- struct{}{} // the last use of c here
		}
	}()
	bs := &batchState{Context: context.Background(), store: s, calls: batch}
	if len(batch) > 1 {
		s.autoPipelined.Add(uint64(len(batch)))
	}
	if len(cmds) == 1 && s.cluster == nil {
		if err := s.c.Process(bs, cmds[0]); err != nil && cmds[0].Err() == nil {
			cmds[0].SetErr(err)
		}
		return
	}
	pipe := s.c.Pipeline()
	for _, c := range cmds {
		_ = pipe.Process(bs, c)
	}
	if _, err := pipe.Exec(bs); err != nil && !errors.Is(err, goredis.Nil) && firstFailure(cmds) == nil {
		for _, c := range cmds {
			c.SetErr(err) // a hook that failed without sending
		}
	}
	if n := bs.nodeCmds.Load(); n > int64(len(cmds)) {
		// Cluster: go-redis sent some commands again, after a
		// redirection or a failed connection.
		s.retries.Add(uint64(n - int64(len(cmds))))
	}
}

// noteNodePipeline records, for a shared round trip, one node's part of
// it: the commands sent (attempts beyond one count as retries) and, if err
// shows that they may have reached the server, that their operations may
// have been applied (go-redis may send them again, and the caller then
// sees only the last attempt's error).
func (b *batchState) noteNodePipeline(cmds []goredis.Cmder, err error) {
	n := 0
	for _, c := range cmds {
		if c.Name() != "asking" {
			n++
		}
	}
	b.nodeCmds.Add(int64(n))
	if err == nil || classify(err) != kindMaybeSent {
		return
	}
	b.ownersOnce.Do(func() {
		b.owners = make(map[goredis.Cmder]*opState)
		for _, c := range b.calls {
			for _, cmd := range c.cmds {
				b.owners[cmd] = c.st
			}
		}
	})
	for _, c := range cmds {
		if st := b.owners[c]; st != nil {
			st.sent.Store(true)
		}
	}
}

// send sends cmds, the commands of one operation (ctx is its opState),
// and waits for their replies: through the auto-pipeline when it is on,
// else alone or as one pipeline. It sends the failed ones again as
// Store.retry decides, and returns the first failure other than
// goredis.Nil (nil if none), or the context's error if it ended first.
func (s *Store) send(ctx context.Context, cmds []goredis.Cmder) error {
	if s.pipe == nil {
		return s.exec(ctx, cmds)
	}
	st, _ := ctx.Value(opKey{}).(*opState)
	if st == nil {
		ctx, st = s.begin(ctx)
	}
	st.driven.Store(true)
	if len(cmds) > 1 {
		s.pipelines.Add(1)
	}
	pending := cmds
	for attempt := 0; ; attempt++ {
		if err := s.pipe.roundTrip(ctx, st, pending); err != nil {
			return err
		}
		err := firstFailure(pending)
		if err == nil {
			return nil
		}
		noRetry := false
		for _, c := range pending {
			noRetry = noRetry || c.NoRetry()
		}
		if !s.retry(ctx, st, err, noRetry, attempt) {
			return err
		}
		var failed []goredis.Cmder
		for _, c := range pending {
			if e := c.Err(); e != nil && !errors.Is(e, goredis.Nil) {
				c.SetErr(nil)
				failed = append(failed, c)
			}
		}
		pending = failed
	}
}

// process sends one command as send does, and returns its error as
// go-redis's Process does (goredis.Nil for a nil reply).
func (s *Store) process(ctx context.Context, cmd goredis.Cmder) error {
	if s.pipe == nil {
		return s.c.Process(ctx, cmd)
	}
	if err := s.send(ctx, []goredis.Cmder{cmd}); err != nil {
		return err
	}
	return cmd.Err()
}
