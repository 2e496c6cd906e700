// Package redistrack tells a tier (package tier) about the changes other
// clients make to its Redis L2, through Redis client-side-caching
// invalidation: one dedicated connection per master runs
//
//	HELLO 3 [AUTH user pass] SETNAME strata-tier-tracking
//	CLIENT TRACKING ON BCAST [PREFIX <key prefix>]
//
// over RESP3, and Redis pushes the name of every key under the prefix that
// any client modifies, every key it evicts under maxmemory or expires, and
// FLUSHALL/FLUSHDB as a whole. It implements [tier.Invalidator].
//
// Importing the package registers it for the "redis" backend, so that a
// tier over a stores/redis store (or a strata.WithPrefix view of one)
// tracks it under tier.InvalidationAuto:
//
//	import _ "github.com/strata-kv/strata/tier/redistrack"
//
// stores/all imports it. A tier over a Redis store without it refuses to
// start under InvalidationAuto. To track explicitly (another prefix, other
// intervals, a store that does not implement [RedisBacked]) pass New's
// result as tier.Options.Invalidator.
//
// For a failover client (Redis Sentinel, as stores/redis makes for a
// redis+sentinel URL) the invalidator asks the sentinels for the master
// every TopologyInterval, through the client's own dialer (which opens a
// connection to the master named, closed at once, and moves the client to
// it), and moves its tracking connection when the answer changes; a
// tracking connection starts only on a node that says it is a master
// (HELLO's role). After a failover, L1 is dropped within TopologyInterval
// of the sentinels naming the new master, or at once if the old master's
// connection breaks; until then the old master, if it still runs, does
// not see the new master's writes.
//
// For a Cluster the invalidator lists the masters every TopologyInterval,
// and at once when the cluster client meets a new node, and keeps one
// connection per master. Each connection is pinged every
// HeartbeatInterval. While any connection is down (lost, silent for two
// heartbeats, or not yet established on a new master) the tier is told so
// (tier.Sink.Down): it drops L1 and bypasses it until every connection
// tracks again. The ACL user needs HELLO, CLIENT (TRACKING, SETNAME), PING
// and, for a Cluster, CLUSTER SLOTS.
package redistrack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/tier"
)

func init() { tier.RegisterInvalidator("redis", detect) }

// Defaults of [Options].
const (
	DefaultHeartbeatInterval = time.Second
	DefaultTopologyInterval  = time.Second
)

// Options configure an [Invalidator].
type Options struct {
	// Client reaches the same Redis (standalone, Cluster, Ring or failover)
	// as the L2. The invalidator reads its options to open one dedicated
	// tracking connection per master and, for a Cluster, to follow the
	// topology (it registers an OnNewNode callback on a ClusterClient,
	// which stays registered, inert, after Close). It is not used for L2
	// traffic and not closed. Required.
	Client goredis.UniversalClient

	// KeyPrefix is what the L2 puts before a tier key to form the Redis key:
	// the tier key k lives at KeyPrefix+k. For strata.WithPrefix(s, p) over
	// a Redis store s with prefix sp, it is sp+p. Default "": keys are
	// stored as is.
	KeyPrefix string

	// HeartbeatInterval is how often a tracking connection is pinged. A
	// connection silent for 2×HeartbeatInterval is declared lost (the L1
	// is flushed and bypassed until tracking is back), including one to a
	// server busy that long with a slow command. Default
	// DefaultHeartbeatInterval (1s).
	HeartbeatInterval time.Duration

	// TopologyInterval is how often a Cluster's masters are listed to
	// follow failovers and resharding, and how often the sentinels are
	// asked for the master of a failover client. Default
	// DefaultTopologyInterval (1s).
	TopologyInterval time.Duration
}

// RedisBacked is implemented by L2 stores kept in Redis, such as
// stores/redis. The invalidator registered for the "redis" backend uses it
// to track the keys the store writes: a tier key k is the Redis key
// KeyPrefix()+k.
type RedisBacked interface {
	// Client returns the client the store uses.
	Client() goredis.UniversalClient
	// KeyPrefix returns the prefix the store puts before every key.
	KeyPrefix() string
}

// detect is the tier.InvalidatorFunc of the "redis" backend.
func detect(base strata.Store, viewPrefix []byte) (tier.Invalidator, error) {
	rb, ok := base.(RedisBacked)
	if !ok {
		return nil, fmt.Errorf("redistrack: the L2 reports the redis backend but does not reveal its client and key prefix "+
			"(redistrack.RedisBacked, %T): set tier.Options.Invalidator to redistrack.New(...), or Options.Invalidation "+
			"to InvalidationNone with a MaxLocalTTL", base)
	}
	return New(&Options{Client: rb.Client(), KeyPrefix: rb.KeyPrefix() + string(viewPrefix)})
}

// Invalidator is a [tier.Invalidator] over Redis CLIENT TRACKING. Make one
// with New. It keeps one tracking connection per master; the tier serves
// from L1 only while every connection is tracking.
type Invalidator struct {
	cfg    Options
	prefix []byte

	mu      sync.Mutex
	sink    *tier.Sink
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{}         // asks the topology loop to look now
	conns   map[string]*trackConn // by address
	healthy bool                  // every connection is tracking
}

// New returns an invalidator for the Redis o.Client reaches. It opens no
// connection until a tier starts it.
func New(o *Options) (*Invalidator, error) {
	if o == nil || o.Client == nil {
		return nil, errors.New("redistrack: Options.Client is nil")
	}
	cfg := *o
	if cfg.HeartbeatInterval < 0 || cfg.TopologyInterval < 0 {
		return nil, errors.New("redistrack: negative interval")
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.TopologyInterval == 0 {
		cfg.TopologyInterval = DefaultTopologyInterval
	}
	switch cfg.Client.(type) {
	case *goredis.Client, *goredis.ClusterClient, *goredis.Ring:
	default:
		return nil, fmt.Errorf("redistrack: a %T client is not supported", cfg.Client)
	}
	return &Invalidator{cfg: cfg, prefix: []byte(cfg.KeyPrefix), kick: make(chan struct{}, 1), conns: map[string]*trackConn{}}, nil
}

var _ tier.Invalidator = (*Invalidator)(nil)

// Start starts the topology loop and the tracking connections, reporting
// to sink. It fails if the invalidator was started before.
func (inv *Invalidator) Start(sink *tier.Sink) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.sink != nil {
		return errors.New("redistrack: Invalidator started twice (one serves one tier)")
	}
	inv.sink = sink
	inv.ctx, inv.cancel = context.WithCancel(context.Background())
	ctx := inv.ctx
	if cc, ok := inv.cfg.Client.(*goredis.ClusterClient); ok {
		// A node the client has not met before may serve keys (after a
		// resharding) that no tracking connection covers yet: stop
		// trusting L1 before the client sends it anything, and look at
		// the topology now.
		cc.OnNewNode(func(*goredis.Client) {
			if ctx.Err() == nil {
				inv.unhealthy(errors.New("redistrack: the cluster client met a new node"))
				inv.poke()
			}
		})
	}
	inv.wg.Add(1)
	go inv.topologyLoop()
	return nil
}

// Close closes the tracking connections and waits for their goroutines.
func (inv *Invalidator) Close() error {
	inv.mu.Lock()
	cancel := inv.cancel
	inv.mu.Unlock()
	if cancel != nil {
		cancel()
		inv.wg.Wait()
	}
	return nil
}

// Masters returns the addresses of the masters tracked, sorted.
func (inv *Invalidator) Masters() []string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]string, 0, len(inv.conns))
	for a := range inv.conns {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
