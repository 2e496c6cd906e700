package redistrack_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"
	"github.com/strata-kv/strata/tier/redistrack"
)

// seq numbers the Redis stores the tests open, so that each gets its own
// key prefix on a shared server.
var seq atomic.Int64

// redisTarget makes go-redis clients for one server or cluster.
type redisTarget func(tb testing.TB) goredis.UniversalClient

func standalone(r *testserver.Redis) redisTarget {
	return func(tb testing.TB) goredis.UniversalClient {
		c := goredis.NewClient(r.Options())
		tb.Cleanup(func() { c.Close() })
		return c
	}
}

func cluster(c *testserver.RedisCluster) redisTarget {
	return func(tb testing.TB) goredis.UniversalClient {
		cl := goredis.NewClusterClient(c.Options())
		tb.Cleanup(func() { cl.Close() })
		return cl
	}
}

// topology is a Redis deployment the tests run against.
type topology struct {
	name   string
	target redisTarget
}

// topologies starts a standalone server and a 3-master Cluster.
func topologies(t *testing.T) []topology {
	r := testserver.StartRedis(t, nil)
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	return []topology{{"Standalone", standalone(r)}, {"Cluster", cluster(c)}}
}

// fastHeartbeat makes lost tracking connections show quickly in tests.
const fastHeartbeat = 100 * time.Millisecond

// openRedisTier returns a tier over a new stores/redis store under prefix,
// with tracking established; topology is the TopologyInterval (0: 200ms).
func openRedisTier(tb testing.TB, target redisTarget, prefix string, o conformance.Options, opts tier.Options, topology time.Duration) *tier.Tier {
	tb.Helper()
	client := target(tb)
	// MaxRetries also makes the store refresh a Cluster's slot map after
	// a failover (it does so on its retry path).
	s, err := redis.New(client, &redis.Options{KeyPrefix: prefix, DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize, MaxRetries: 3})
	if err != nil {
		tb.Fatal(err)
	}
	if topology == 0 {
		topology = 200 * time.Millisecond
	}
	inv, err := redistrack.New(&redistrack.Options{Client: client, KeyPrefix: prefix, HeartbeatInterval: fastHeartbeat, TopologyInterval: topology})
	if err != nil {
		tb.Fatal(err)
	}
	opts.Invalidator = inv
	opts.Invalidation = tier.InvalidationRequired
	tr, err := tier.New(s, &opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitTracking(ctx); err != nil {
		tr.Close()
		tb.Fatalf("WaitTracking: %v", err)
	}
	return tr
}

// trackedMasters returns the masters the tier's invalidator tracks.
func trackedMasters(tr *tier.Tier) []string {
	return tr.Invalidator().(*redistrack.Invalidator).Masters()
}

func redisHarness(target redisTarget, prefix func(n int64) string, opts tier.Options) conformance.Harness {
	return conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			return openRedisTier(tb, target, prefix(seq.Add(1)), o, opts, 0)
		},
		Capabilities:  conformance.AllCapabilities,
		UnorderedKeys: true,
		LiveSnapshots: true,
	}
}

func TestConformanceRedis(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	for _, e := range tier.Engines() {
		t.Run(string(e), func(t *testing.T) {
			// The prefix holds glob metacharacters: BCAST PREFIX takes it literally.
			conformance.RunStore(t, redisHarness(standalone(r), func(n int64) string { return fmt.Sprintf(`t*?[%d]:`, n) }, tier.Options{Engine: e}))
		})
	}
}

func TestConformanceRedisCluster(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	for _, e := range tier.Engines() {
		t.Run(string(e), func(t *testing.T) {
			h := redisHarness(cluster(c), func(n int64) string { return fmt.Sprintf("c%d:", n) }, tier.Options{Engine: e})
			h.SingleSlotCommits = true
			conformance.RunStore(t, h)
		})
	}
}

// Over a strata.WithPrefix view of a Redis store, the tier looks through
// the view (strata.View) and tracks the store's prefix plus the view's.
func TestConformanceRedisWithPrefix(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	const view = "view:"
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			client := standalone(r)(tb)
			storePrefix := fmt.Sprintf("w%d:", seq.Add(1))
			s, err := redis.New(client, &redis.Options{KeyPrefix: storePrefix, DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { s.Close() })
			tr, err := tier.New(strata.WithPrefix(s, []byte(view)), &tier.Options{Invalidation: tier.InvalidationRequired})
			if err != nil {
				tb.Fatal(err)
			}
			if err := tr.WaitTracking(tb.Context()); err != nil {
				tb.Fatal(err)
			}
			return tr
		},
		Capabilities:  conformance.AllCapabilities,
		UnorderedKeys: true,
		LiveSnapshots: true,
		MaxKeyLen:     strata.MaxKeyLen - len(view),
	})
}

// Another client's write to the Redis key behind a prefix view evicts the
// tier's entry: the tier found the whole prefix through the view.
func TestInvalidationThroughPrefixView(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	ctx := t.Context()
	s, err := redis.New(standalone(r)(t), &redis.Options{KeyPrefix: "app:"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tier.New(strata.WithPrefix(s, []byte("jobs:")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.WaitTracking(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tr.Tracking(); !ok {
		t.Fatal("no tracking over a prefix view of a Redis store")
	}
	if err := tr.Put(ctx, []byte("k"), []byte("old"), time.Hour); err != nil {
		t.Fatal(err)
	}
	other := standalone(r)(t)
	wait.For(t, 10*time.Second, "an L1 hit", func() bool {
		before := tr.TierStats().L1Hits
		tr.Get(ctx, []byte("k"))
		return tr.TierStats().L1Hits > before
	})
	if err := other.Set(ctx, "app:jobs:k", "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the other client's write to show", func() bool {
		v, err := tr.Get(ctx, []byte("k"))
		return err == nil && string(v) == "new"
	})
}

// redisFixture is a tier over Redis plus a plain client to the same
// server, playing "another process".
type redisFixture struct {
	t      *testing.T
	ctx    context.Context
	tier   *tier.Tier
	prefix string
	other  goredis.UniversalClient
}

func newRedisFixture(t *testing.T, target redisTarget, opts tier.Options) *redisFixture {
	return newRedisFixtureTopology(t, target, opts, 0)
}

// newRedisFixtureTopology is newRedisFixture with the given
// TopologyInterval.
func newRedisFixtureTopology(t *testing.T, target redisTarget, opts tier.Options, topology time.Duration) *redisFixture {
	prefix := fmt.Sprintf("fx%d:", seq.Add(1))
	f := &redisFixture{t: t, ctx: t.Context(), prefix: prefix, other: target(t)}
	f.tier = openRedisTier(t, target, prefix, conformance.Options{}, opts, topology)
	t.Cleanup(func() { f.tier.Close() })
	return f
}

// on returns a copy of f that reports to t (a subtest).
func (f *redisFixture) on(t *testing.T) *redisFixture {
	g := *f
	g.t, g.ctx = t, t.Context()
	return &g
}

// cache reads key through the tier until it is an L1 hit.
func (f *redisFixture) cache(key, want string) {
	f.t.Helper()
	wait.For(f.t, 10*time.Second, "key "+key+" to be in L1", func() bool {
		before := f.tier.TierStats().L1Hits
		v, err := f.tier.Get(f.ctx, []byte(key))
		if err != nil || string(v) != want {
			f.t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, want)
		}
		return f.tier.TierStats().L1Hits > before
	})
}

func (f *redisFixture) set(key, value string) {
	f.t.Helper()
	if err := f.other.Set(f.ctx, f.prefix+key, value, 0).Err(); err != nil {
		f.t.Fatal(err)
	}
}

// eventually waits until Get(key) through the tier returns want.
func (f *redisFixture) eventually(key, want string) {
	f.t.Helper()
	wait.For(f.t, 10*time.Second, fmt.Sprintf("Get(%q) to return %q", key, want), func() bool {
		v, err := f.tier.Get(f.ctx, []byte(key))
		if want == "" {
			return errors.Is(err, strata.ErrNotFound)
		}
		return err == nil && string(v) == want
	})
}

// Another client's SET evicts this process's L1 entry.
func TestRedisInvalidation(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	for _, c := range []struct {
		name   string
		target redisTarget
	}{{"Standalone", standalone(r)}} {
		t.Run(c.name, func(t *testing.T) {
			f := newRedisFixture(t, c.target, tier.Options{})
			f.set("k", "v1")
			f.cache("k", "v1")
			before := f.tier.TierStats().Invalidations
			f.set("k", "v2")
			f.eventually("k", "v2")
			if f.tier.TierStats().Invalidations == before {
				t.Fatal("no invalidation counted")
			}
			// A key outside the prefix is not this tier's.
			if err := f.other.Set(f.ctx, "elsewhere:k", "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
			f.cache("k", "v2")
			// FLUSHALL invalidates everything at once.
			flushes := f.tier.TierStats().Flushes
			if err := f.other.FlushAll(f.ctx).Err(); err != nil {
				t.Fatal(err)
			}
			f.eventually("k", "")
			if f.tier.TierStats().Flushes == flushes {
				t.Fatal("FLUSHALL did not flush L1")
			}
		})
	}
}

// trackingClientID returns the CLIENT ID of the tier's tracking
// connection on the server c reaches.
func trackingClientID(t *testing.T, c *goredis.Client) string {
	t.Helper()
	var id string
	wait.For(t, 10*time.Second, "the tracking connection in CLIENT LIST", func() bool {
		list, err := c.ClientList(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, "name=strata-tier-tracking") {
				for _, field := range strings.Fields(line) {
					if v, ok := strings.CutPrefix(field, "id="); ok {
						id = v
					}
				}
			}
		}
		return id != ""
	})
	return id
}

// When the tracking connection is lost, L1 is flushed and bypassed until
// tracking is back; writes made meanwhile are never hidden by L1.
func TestRedisTrackingLost(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	admin := r.Client(t)
	t.Run("Killed", func(t *testing.T) {
		f := newRedisFixture(t, standalone(r), tier.Options{})
		f.set("k", "v1")
		f.cache("k", "v1")
		id := trackingClientID(t, admin)
		if err := admin.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
			t.Fatal(err)
		}
		// The kill is seen at once (the socket closes): no L1 from now.
		wait.For(t, 5*time.Second, "the tier to bypass L1", func() bool { return f.tier.TierStats().Bypassing })
		reads := f.tier.TierStats().L2Reads
		f.want("k", "v1")
		if f.tier.TierStats().L2Reads == reads {
			t.Fatal("a read while bypassing was served from L1")
		}
		wait.For(t, 10*time.Second, "tracking to come back", func() bool { ok, _ := f.tier.Tracking(); return ok })
		s := f.tier.TierStats()
		if s.TrackingLosses == 0 || s.BypassTime <= 0 || s.TrackingConnects < 2 {
			t.Fatalf("after a lost connection: %+v", s)
		}
		f.cache("k", "v1")
		f.set("k", "v2")
		f.eventually("k", "v2")
	})
	t.Run("Paused", func(t *testing.T) {
		f := newRedisFixture(t, standalone(r), tier.Options{})
		f.set("k", "v1")
		f.cache("k", "v1")
		if err := r.Pause(); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		wait.For(t, 5*time.Second, "the heartbeat to notice the silent server", func() bool { return f.tier.TierStats().Bypassing })
		noticed := time.Since(paused)
		if err := r.Resume(); err != nil {
			t.Fatal(err)
		}
		t.Logf("a silent server was noticed after %v (heartbeat %v)", noticed, fastHeartbeat)
		if noticed > 2*fastHeartbeat+time.Second {
			t.Fatalf("a silent server was noticed after %v; want about 2x the heartbeat %v", noticed, fastHeartbeat)
		}
		wait.For(t, 10*time.Second, "tracking to come back", func() bool { ok, _ := f.tier.Tracking(); return ok })
		f.set("k", "v2")
		f.eventually("k", "v2")
	})
}

func (f *redisFixture) want(key, value string) {
	f.t.Helper()
	v, err := f.tier.Get(f.ctx, []byte(key))
	if err != nil || string(v) != value {
		f.t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, value)
	}
}

// Redis reports the keys it evicts under maxmemory like writes: L1 does
// not keep a value the L2 has dropped.
func TestRedisEvictionInvalidates(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{Config: []string{"maxmemory 4mb", "maxmemory-policy allkeys-random"}})
	f := newRedisFixture(t, standalone(r), tier.Options{})
	f.set("k", "v")
	f.cache("k", "v")
	big := strings.Repeat("x", 64<<10)
	evicted := func() bool { return f.other.Exists(f.ctx, f.prefix+"k").Val() == 0 }
	for i := 0; !evicted(); i++ {
		if i > 10000 {
			t.Fatal("Redis never evicted the key")
		}
		if err := f.other.Set(f.ctx, fmt.Sprintf("filler:%d", i), big, 0).Err(); err != nil && !strings.Contains(err.Error(), "OOM") {
			t.Fatal(err)
		}
	}
	f.eventually("k", "")
}

// The tracking connections dial like the client: TLS, and an ACL user
// limited to the tier's prefix.
func TestRedisInvalidationTLSACL(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{TLS: true, Password: "admin-secret",
		Users: []string{"app on >app-secret ~app:* &* +@all"}})
	target := func(tb testing.TB) goredis.UniversalClient {
		o := r.Options()
		o.Username, o.Password = "app", "app-secret"
		c := goredis.NewClient(o)
		tb.Cleanup(func() { c.Close() })
		return c
	}
	f := &redisFixture{t: t, ctx: t.Context(), prefix: "app:", other: target(t)}
	f.tier = openRedisTier(t, target, "app:", conformance.Options{}, tier.Options{}, 0)
	t.Cleanup(func() { f.tier.Close() })
	f.set("k", "v1")
	f.cache("k", "v1")
	f.set("k", "v2")
	f.eventually("k", "v2")
	if f.tier.TierStats().Invalidations == 0 {
		t.Fatal("no invalidation over TLS as an ACL user")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, o := range []*redistrack.Options{
		nil,
		{},
		{Client: client, HeartbeatInterval: -time.Second},
		{Client: client, TopologyInterval: -time.Second},
		{Client: wrappedClient{client}}, // a client type the invalidator cannot list masters of
	} {
		if _, err := redistrack.New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

type wrappedClient struct{ *goredis.Client }

// redisLike reports the redis backend but does not reveal its client.
type redisLike struct{ *memory.Store }

func (redisLike) Stats() strata.Stats { return strata.Stats{Backend: "redis"} }

// Under InvalidationAuto a tier over a store that says it is Redis but
// cannot be tracked refuses to start rather than serve stale reads.
func TestAutoRefusesUntrackableRedis(t *testing.T) {
	l2 := redisLike{memory.New(nil)}
	defer l2.Close()
	tr, err := tier.New(l2, nil)
	if err == nil || !strings.Contains(err.Error(), "RedisBacked") {
		if tr != nil {
			tr.Close()
		}
		t.Fatalf("New over an untrackable Redis store = %v; want an error naming redistrack.RedisBacked", err)
	}
	tr, err = tier.New(l2, &tier.Options{Invalidation: tier.InvalidationNone, MaxLocalTTL: time.Second, KeepL2Open: true})
	if err != nil {
		t.Fatalf("with InvalidationNone: %v", err)
	}
	tr.Close()
}

// One invalidator serves one tier.
func TestStartTwice(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	client := standalone(r)(t)
	inv, err := redistrack.New(&redistrack.Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	l2 := memory.New(nil)
	tr, err := tier.New(l2, &tier.Options{Invalidator: inv})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr2, err := tier.New(l2, &tier.Options{Invalidator: inv, KeepL2Open: true}); err == nil {
		tr2.Close()
		t.Fatal("a second tier started the same invalidator")
	}
}

// Another client's write of a key this tier has just written itself looks
// like the echo of the tier's write, whatever command made it: each still
// reaches the tier within the documented bound.
func TestForeignCommandsAfterOwnWrite(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	f := newRedisFixture(t, standalone(r), tier.Options{})
	for _, c := range []struct {
		name string
		run  func(key string) error
		want string // "": absent
	}{
		{"SET", func(k string) error { return f.other.Set(f.ctx, k, "foreign", 0).Err() }, "foreign"},
		{"DEL", func(k string) error { return f.other.Del(f.ctx, k).Err() }, ""},
		{"EVAL", func(k string) error {
			return f.other.Eval(f.ctx, "return redis.call('SET', KEYS[1], 'scripted')", []string{k}).Err()
		}, "scripted"},
		{"MULTI", func(k string) error {
			_, err := f.other.TxPipelined(f.ctx, func(p goredis.Pipeliner) error {
				p.Set(f.ctx, k, "transacted", 0)
				return nil
			})
			return err
		}, "transacted"},
		{"PEXPIRE", func(k string) error { return f.other.PExpire(f.ctx, k, time.Millisecond).Err() }, ""},
		{"FLUSHDB", func(string) error { return f.other.FlushDB(f.ctx).Err() }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := f.on(t)
			if err := f.tier.Put(f.ctx, []byte("k"), []byte("own"), strata.NoExpiry); err != nil {
				t.Fatal(err)
			}
			f.cache("k", "own")
			if err := c.run(f.prefix + "k"); err != nil {
				t.Fatal(err)
			}
			returned := time.Now()
			wait.For(t, staleBound, c.name+" to reach the tier", func() bool {
				v, err := f.tier.Get(f.ctx, []byte("k"))
				if c.want == "" {
					return errors.Is(err, strata.ErrNotFound)
				}
				return err == nil && string(v) == c.want
			})
			t.Logf("%s reached the tier %v after it returned", c.name, time.Since(returned))
		})
	}
}

// SWAPDB swaps two databases' contents without any invalidation report:
// the tier keeps serving the old database's values, for up to
// MaxLocalTTL. (docs/tier.md says so, and recommends MaxLocalTTL where
// SWAPDB is used.)
func TestSwapDBNotAnnounced(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	f := newRedisFixture(t, standalone(r), tier.Options{})
	f.set("k", "db0")
	f.cache("k", "db0")
	if err := f.other.Do(f.ctx, "SWAPDB", 0, 1).Err(); err != nil {
		t.Fatal(err)
	}
	// Reports arrive in order on the tracking connection: once the report
	// of a later write has arrived, one for SWAPDB would have too.
	reports := f.tier.TierStats().Invalidations
	f.set("marker", "x")
	wait.For(t, 10*time.Second, "the report of a later write", func() bool { return f.tier.TierStats().Invalidations > reports })
	if n, err := f.other.Exists(f.ctx, f.prefix+"k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after SWAPDB = %d, %v; want the key gone from database 0", n, err)
	}
	f.want("k", "db0") // still in L1: Redis did not report the swap
}
