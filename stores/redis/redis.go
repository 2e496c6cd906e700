// Package redis is the strata store on Redis: one server, Redis Cluster,
// a master found through Redis Sentinel, TLS and ACL users, through any
// go-redis v9 client.
//
// Create a store with [Open] (from [Options], built by hand or from a URL
// with [ParseURL]), with strata.Open and one of the registered URL
// schemes, from a config file's [state.redis] table with package config,
// or with [New] around a go-redis client you already have:
//
//	redis://[user:password@]host:6379/0?prefix=app:&read_timeout=500ms
//	rediss://…                                      (TLS)
//	redis+cluster://[user:password@]host1:6379,host2:6379/?prefix=app:
//	rediss+cluster://…                              (Cluster over TLS)
//	redis+sentinel://[user:password@]s1:26379,s2:26379/mymaster/0?sentinel_password=…
//	rediss+sentinel://…                             (Sentinel, TLS everywhere)
//
// # Sentinel
//
// A redis+sentinel URL names the sentinels (host:port, 26379 by default;
// give every port when there are several hosts), then the name they
// monitor the master under, then the database. Its user information
// authenticates to the master and its replicas; the sentinels' own
// credentials are the sentinel_username and sentinel_password parameters.
// In a config file: url (as above), or urls (the sentinels, one redis://
// URL each) with sentinel_master, plus sentinel_username and
// sentinel_password; see [Options.MasterName]. The store runs on a go-redis
// failover client (NewFailoverClient), which asks the sentinels for the
// master, follows their +switch-master announcements, and sends every
// command, reads included, to the master: a replica may be behind an
// acknowledged write.
//
// During a failover, operations that find no master fail with
// strata.ErrUnavailable after their retries; non-idempotent writes in
// flight when the master goes (PutIfAbsent, GetAndDelete, CompareAndSwap,
// Commit) report strata.ErrIndeterminate and are never resent. Redis
// replicates asynchronously: writes a master acknowledged just before it
// died may be missing on the replica the sentinels promote, and a master
// demoted by SENTINEL FAILOVER accepts writes until the client learns of
// the switch; those writes are lost when it becomes a replica. A tier
// (package tier, with tier/redistrack) over a Sentinel store follows the
// new master within its TopologyInterval.
//
// # Data layout
//
// Every key is stored as a plain Redis string under KeyPrefix+key, so
// redis-cli GET reads it and redis-cli PTTL shows its TTL. Put is SET (with
// PX for a TTL), Delete is UNLINK, PutIfAbsent is SET NX, GetAndDelete is
// GETDEL, TTL is PTTL, GetWithTTL is MULTI GET PTTL EXEC (one round trip).
// CompareAndSwap is a Lua script sent by digest (EVALSHA, falling back to
// EVAL when the server does not know the script), with the key passed in
// KEYS; snapshots read value and TTL with another, and GetManyWithTTL with
// one per group of keys. Commit is one script that checks the batch's
// conditions and makes its writes (see [Store.Commit]). Batches send at most
// PipelineBatchSize keys per round trip, pipelined: GetMany is MGET and
// DeleteMany UNLINK, one per hash slot in Cluster mode; PutMany is MSET for
// the entries without expiry (per slot) and SET PX for the others.
//
// An ACL user needs its key pattern to cover KeyPrefix (~prefix*) and the
// commands GET SET MSET MGET UNLINK GETDEL PTTL EVALSHA EVAL SCRIPT SCAN
// PING INFO DBSIZE, plus CLUSTER SLOTS in Cluster mode. A refusal is
// reported with the NOPERM reply and the prefix it concerns.
//
// # Keys and snapshots
//
// Keys uses SCAN with MATCH (the prefix's glob characters *?[]\ escaped),
// on every master in Cluster mode, and yields keys without KeyPrefix. As
// SCAN guarantees, every key live for the whole iteration is yielded, in no
// particular order, and a key may be yielded more than once (while the
// server resizes its table). In Cluster mode a walk is repeated when the
// slot map changed during it; a key moved by a migration still under way
// when the walk ends may be missed.
//
// Redis has no point-in-time read, so a [strata.Snapshot] is live: it
// walks Keys and reads each key's value and remaining TTL together (one
// script, atomic per key), PipelineBatchSize keys per round trip. Entries
// written or deleted during the walk may or may not appear, keys that
// vanish are skipped, and a key may appear twice as with Keys.
//
// # Auto-pipelining
//
// Concurrent operations share round trips. Each server has a queue with
// two lanes (each master in Cluster mode one), a lane being a round trip
// in flight on a pooled connection. An operation that finds its server's
// queue idle (nothing in flight, nobody waiting) sends its commands at
// once, from its own goroutine and under its own context, as without
// auto-pipelining: a lone caller waits for nothing. Otherwise its commands
// wait, and a free lane, or the next to come free, sends everything
// waiting (up to PipelineBatchSize commands, from any number of
// operations) as one go-redis pipeline, from a worker goroutine that lives
// while the queue has work. Single-key operations, batches (each chunk's
// commands go to their servers' queues) and scripts all take part;
// GetWithTTL (a MULTI transaction), Keys, snapshots' scans and the
// cluster-wide readings do not. In Cluster mode a queue's pipeline still
// goes through go-redis's routing, so MOVED and ASK redirections are
// followed as for any other command. Options.DisableAutoPipeline turns it
// off: each operation then sends its commands on a connection of its own.
//
// A shared round trip runs under a context of its own: hooks on the
// client see that context, not the callers'. An operation whose context
// ends while it waits returns at once with the context's error: its
// commands leave the queue if they are still in it (nothing was sent),
// and otherwise the round trip goes on for the others and the operation's
// reply is dropped. A write abandoned in flight so may still be applied
// after the call returned (it reports strata.ErrIndeterminate). The store
// copies the keys and values of a waiting command whose caller may stop
// waiting, so that the caller may reuse its buffers at once. Close waits
// for the shared round trips in flight.
//
// # Retries and errors
//
// The store retries its commands (never the other commands of a client
// passed to New) after transient failures, up to MaxRetries times with
// randomized exponential backoff, and counts each retry
// (RedisStats().Retries). Retries are each operation's own, also when its
// commands shared a round trip: a shared round trip is one attempt, after
// which each operation decides from its own commands' errors, with its own
// context and backoff, whether to send the failed ones again (without
// auto-pipelining a hook installed on the client does the same).
// Idempotent commands (reads, SET, UNLINK, batches) are retried after any
// connection failure. PutIfAbsent, GetAndDelete and CompareAndSwap are not
// idempotent: they are retried only when the failure proves the command
// never reached the server (no connection could be made, or the server
// refused it unexecuted, such as LOADING or TRYAGAIN); after a timeout or
// a connection lost once the command was written (with the whole pipeline
// it shared, if it did) they fail with an error matching
// strata.ErrIndeterminate: it may have been applied. go-redis itself is
// told not to resend them either, even on a client passed to New whose own
// MaxRetries is set (nor anything that shares a pipeline with them). In
// Cluster mode go-redis also follows MOVED and ASK redirections, and
// retries on its own up to its MaxRedirects (3) times; those attempts
// count as retries as well, for the nodes a client connects to after New.
//
// Clients made by Open set go-redis's own MaxRetries to -1 (the store
// does it, counted), dial once per attempt, and honor context deadlines
// inside a command (ContextTimeoutEnabled). A context cancelled without a
// deadline ends the wait of a queued operation at once, and otherwise
// takes effect at the next command or ReadTimeout. After PoolSize failed
// dials in a row go-redis stops dialing and probes the server once a
// second, so a restarted server is used again within about a second.
//
// # Errors
//
//   - strata.ErrUnavailable: the server could not be reached, or refused
//     the command unexecuted, on every attempt; nothing was applied.
//   - strata.ErrIndeterminate: a write failed after it may have reached
//     the server (for batches: some entries may have been written),
//     including a write still awaiting its reply when the store was closed
//     (strata.ErrClosed is then in the chain too). Through a client that
//     retries on its own (see [New]), any write that fails to reach the
//     server is reported so: the client hides its earlier attempts.
//   - strata.ErrClosed, strata.ErrNotFound, strata.ErrInvalidKey,
//     strata.ErrInvalidTTL, strata.ErrValueTooLarge: as the contract says.
//   - A context that ends returns its error (ctx.Err() in the chain; with
//     ErrIndeterminate as well when a write may have been sent).
//   - Any other Redis reply error (for example NOPERM from an ACL that
//     does not cover KeyPrefix) is wrapped as is, in one *strata.OpError.
//
// Errors and printed Options never show a password.
package redis

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/latency"
	"github.com/strata-kv/strata/storekit"
)

const backend = "redis"

// Store is a strata.Store on Redis. Create one with New or Open. It is safe
// for concurrent use.
type Store struct {
	c       goredis.UniversalClient
	cluster *goredis.ClusterClient // c, when it is one
	ring    *goredis.Ring          // c, when it is one
	prefix  []byte
	opts    Options

	// hiddenRetries: the client may resend a store command on its own,
	// where the hook cannot see how each attempt failed (see
	// hiddenRetries).
	hiddenRetries bool

	closed     atomic.Bool
	lastReload atomic.Int64

	// pipe is the auto-pipelining, nil when it is off.
	pipe *autoPipe

	stats         storekit.Counters
	retries       atomic.Uint64
	pipelines     atomic.Uint64
	autoPipelined atomic.Uint64
	latency       *latency.Recorder
}

var (
	_ strata.Store         = (*Store)(nil)
	_ strata.Batcher       = (*Store)(nil)
	_ strata.Atomic        = (*Store)(nil)
	_ strata.Expirer       = (*Store)(nil)
	_ strata.Snapshotter   = (*Store)(nil)
	_ strata.Pinger        = (*Store)(nil)
	_ strata.StatsReporter = (*Store)(nil)
	_ strata.Committer     = (*Store)(nil)
	_ strata.BatchExpirer  = (*Store)(nil)
)

// New returns a store that sends its commands through client: a
// *goredis.Client, *goredis.ClusterClient, *goredis.Ring or failover
// client. It installs a hook on client (see the package documentation);
// the hook only acts on the store's own commands. New does no I/O.
//
// The caller keeps ownership of client unless opts.CloseClient is set.
// Clients with ContextTimeoutEnabled honor context deadlines within a
// command; others stop at their ReadTimeout.
//
// A client that retries on its own (go-redis's MaxRetries, the default for
// a Client or Ring, and a ClusterClient's redirect loop on nodes made
// before New) hides from the store whether an earlier attempt may have
// reached the server: a write through it that fails with a connection
// error matches strata.ErrIndeterminate, not strata.ErrUnavailable. Give
// the client MaxRetries: -1 and set opts.MaxRetries instead for the
// precise verdict (Open does).
func New(client goredis.UniversalClient, opts *Options) (*Store, error) {
	return newStore(client, opts, false)
}

// newStore is New; fresh says that client has sent nothing yet, so that
// the hooks see every node a cluster client will use.
func newStore(client goredis.UniversalClient, opts *Options, fresh bool) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: redis: New with a nil client", strata.ErrInvalidConfig)
	}
	s := &Store{c: client, latency: latency.New(latency.OperationBounds)}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	var errs []error
	o.checkStore(func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	})
	if err := configErr(errs); err != nil {
		return nil, err
	}
	o.storeDefaults(clientRetries(client))
	s.prefix = []byte(o.KeyPrefix)
	s.hiddenRetries = hiddenRetries(client, fresh)
	switch c := client.(type) {
	case *goredis.ClusterClient:
		s.cluster = c
		// Count go-redis's own redirections and retries too, on the
		// nodes the client connects to from now on.
		c.OnNewNode(func(node *goredis.Client) { node.AddHook(nodeHook{s}) })
	case *goredis.Ring:
		s.ring = c
	}
	client.AddHook(hook{s})
	if !o.DisableAutoPipeline {
		s.pipe = newAutoPipe(s, pipeLanes(client))
	}
	return s, nil
}

// pipeLanes returns the round trips one server's auto-pipeline queue may
// have in flight: defaultPipeLanes (clusterPipeLanes for a cluster's
// masters), within the client's pool.
func pipeLanes(client goredis.UniversalClient) int {
	n := defaultPipeLanes
	var pool int
	switch c := client.(type) {
	case *goredis.Client:
		pool = c.Options().PoolSize
	case *goredis.ClusterClient:
		n = clusterPipeLanes
		pool = c.Options().PoolSize
	case *goredis.Ring:
		pool = c.Options().PoolSize
	}
	if pool > 0 {
		n = min(n, pool)
	}
	return n
}

// Open connects to the server or cluster opts describes, checks it answers
// (PING, on every master in Cluster mode) and returns a store that owns
// the client. Errors match strata.ErrInvalidConfig for bad opts (nil
// lacks the URL) and strata.ErrUnavailable when the server cannot be
// reached.
func Open(ctx context.Context, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	r, err := o.resolve()
	if err != nil {
		return nil, err
	}
	return open(ctx, r)
}

// open opens the store r describes.
func open(ctx context.Context, r *resolved) (*Store, error) {
	client, err := r.client()
	if err != nil {
		return nil, err
	}
	if err := instrument(client, &r.opts); err != nil {
		client.Close()
		return nil, err
	}
	r.opts.CloseClient = true
	s, err := newStore(client, &r.opts, true)
	if err != nil {
		client.Close()
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("redis: connecting to %s: %w", storekit.RedactURL(r.url), err)
	}
	return s, nil
}

// hiddenRetries reports whether client may resend a command after a failed
// attempt without the store's hooks seeing that attempt's error: go-redis's
// own MaxRetries loop runs inside the hooks of the client that has it. The
// redirect loop of a cluster client is seen by the hook on its nodes, which
// New can install only on the nodes made after it (all of them, if fresh).
func hiddenRetries(client goredis.UniversalClient, fresh bool) bool {
	switch c := client.(type) {
	case *goredis.Client:
		return c.Options().MaxRetries > 0
	case *goredis.ClusterClient:
		return c.Options().MaxRetries > 0 || !fresh
	case *goredis.Ring:
		return c.Options().MaxRetries > 0
	}
	return true
}

func init() {
	for _, scheme := range []string{SchemeRedis, SchemeRedisTLS, SchemeCluster, SchemeClusterTLS, SchemeSentinel, SchemeSentinelTLS} {
		strata.Register(scheme, openURL)
	}
}

// openURL opens the store of a URL strata.Open parsed, without printing
// and parsing it again.
func openURL(ctx context.Context, u *url.URL) (strata.Store, error) {
	var o Options
	withOpenOptions(ctx, &o)
	r, err := o.resolveURL(u)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, r)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Client returns the go-redis client the store sends its commands through.
func (s *Store) Client() goredis.UniversalClient { return s.c }

// KeyPrefix returns the prefix the store puts before every key: the key k
// is the Redis key KeyPrefix()+k.
func (s *Store) KeyPrefix() string { return string(s.prefix) }

// key returns the Redis key of key.
func (s *Store) key(key []byte) []byte {
	if len(s.prefix) == 0 {
		return key
	}
	k := make([]byte, len(s.prefix)+len(key))
	copy(k, s.prefix)
	copy(k[len(s.prefix):], key)
	return k
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// bytesOf returns a new slice holding str; an empty str gives a non-nil,
// empty slice.
func bytesOf(str string) []byte {
	return append(make([]byte, 0, len(str)), str...)
}

// err wraps an error of bad input or state.
func (s *Store) err(op string, key []byte, err error) error {
	return storekit.NewOpError(op, backend, key, err)
}

// enter checks the store, the context and the key of an operation.
func (s *Store) enter(ctx context.Context, key []byte) error {
	if s.closed.Load() {
		return strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return storekit.CheckKey(key)
}

// check is enter for a write: it validates the value and TTL too and
// returns the TTL to store.
func (s *Store) check(ctx context.Context, key, value []byte, ttl time.Duration) (time.Duration, error) {
	if s.closed.Load() {
		return 0, strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return storekit.CheckEntry(key, value, ttl, s.opts.DefaultTTL, s.opts.MaxValueSize)
}

// setArgs returns the arguments of SET key value [PX ms] for a resolved
// ttl, followed by extra.
func setArgs(key, value []byte, ttl time.Duration, extra ...any) []any {
	args := make([]any, 0, 5+len(extra))
	args = append(args, "set", key, value)
	if ttl > 0 {
		args = append(args, "px", ttl.Milliseconds())
	}
	return append(args, extra...)
}

// Get returns the value stored under key, or strata.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.enter(ctx, key); err != nil {
		return nil, s.err("get", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd := goredis.NewStringCmd(ctx, "get", s.key(key))
	err := s.process(ctx, cmd)
	s.latency.Since(start)
	if err == goredis.Nil {
		s.stats.Miss()
		return nil, strata.ErrNotFound
	}
	if err != nil {
		return nil, s.fail(ctx, "get", key, st, err, false)
	}
	v := bytesOf(cmd.Val())
	s.stats.Hit(len(v))
	return v, nil
}

// Put stores value under key with SET (PX ttl).
func (s *Store) Put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return s.err("put", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd := goredis.NewStatusCmd(ctx, setArgs(s.key(key), value, ttl)...)
	err = s.process(ctx, cmd)
	s.latency.Since(start)
	if err != nil {
		return s.fail(ctx, "put", key, st, err, true)
	}
	s.stats.Put(1, len(key)+len(value))
	return nil
}

// Delete removes key with UNLINK.
func (s *Store) Delete(ctx context.Context, key []byte) error {
	if err := s.enter(ctx, key); err != nil {
		return s.err("delete", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd := goredis.NewIntCmd(ctx, "unlink", s.key(key))
	err := s.process(ctx, cmd)
	s.latency.Since(start)
	if err != nil {
		return s.fail(ctx, "delete", key, st, err, true)
	}
	s.stats.Delete(int(cmd.Val()))
	return nil
}

// Close marks the store closed, so that every method fails with
// strata.ErrClosed, and closes the client if the store owns it (Open, or
// Options.CloseClient). Closing twice returns nil.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if s.pipe != nil {
		s.pipe.close()
	}
	var err error
	if s.opts.CloseClient {
		err = s.c.Close()
	}
	if s.pipe != nil {
		// Shared round trips in flight end with their replies, their
		// timeouts, or at once on a closed client.
		s.pipe.wait()
	}
	if err != nil {
		return s.err("close", nil, err)
	}
	return nil
}

// Ping checks the server answers PING (every master, in Cluster mode).
func (s *Store) Ping(ctx context.Context) error {
	return s.eachServer(ctx, "ping", func(ctx context.Context, st *opState, c *goredis.Client) error {
		cmd := goredis.NewStatusCmd(ctx, "ping")
		if c == nil {
			return s.c.Process(ctx, cmd)
		}
		return s.nodeDo(ctx, st, cmd, c)
	})
}

// nodeDo runs cmd on one node client of a cluster or ring (which does not
// carry the store's hook) with the store's retries.
func (s *Store) nodeDo(ctx context.Context, st *opState, cmd goredis.Cmder, node *goredis.Client) error {
	for attempt := 0; ; attempt++ {
		err := node.Process(ctx, cmd)
		if err == nil || err == goredis.Nil || !s.retry(ctx, st, err, cmd.NoRetry(), attempt) {
			return err
		}
		cmd.SetErr(nil)
	}
}

// Keys yields the live keys that start with prefix, without KeyPrefix, in
// no particular order; a key may be yielded more than once (see the
// package documentation). The loop body may use the store.
func (s *Store) Keys(ctx context.Context, prefix []byte) iter.Seq2[[]byte, error] {
	prefix = clone(prefix) // the caller may reuse its buffer
	return func(yield func([]byte, error) bool) {
		for pg, err := range s.scan(ctx, "keys", prefix) {
			if err != nil {
				yield(nil, err)
				return
			}
			for _, k := range pg {
				if !yield(bytesOf(k[len(s.prefix):]), nil) {
					return
				}
			}
		}
	}
}
