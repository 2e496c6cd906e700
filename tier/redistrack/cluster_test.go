package redistrack_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/tier"
)

// inProcessWriter writes with the fixture's plain client.
func inProcessWriter(f *redisFixture) writer {
	return func(key, value string) time.Time {
		f.set(key, value)
		return time.Now()
	}
}

// manualFailover promotes replica with CLUSTER FAILOVER, which answers
// before the failover happens and gives up if it does not complete in
// time (on a busy machine): it asks again until replica is a master.
func manualFailover(t *testing.T, c *testserver.RedisCluster, replica *testserver.Redis) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !slices.Contains(c.Masters(t), replica) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become a master", replica.Addr)
		}
		if out := replica.CLI(t, "CLUSTER", "FAILOVER"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("CLUSTER FAILOVER: %q", out)
		}
		asked := time.Now()
		for time.Since(asked) < 10*time.Second && !slices.Contains(c.Masters(t), replica) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.WaitAgreed(t)
}

// waitTracked waits until the tier tracks exactly the cluster's masters.
func waitTracked(t *testing.T, f *redisFixture, c *testserver.RedisCluster) {
	t.Helper()
	var want []string
	for _, m := range c.Masters(t) {
		want = append(want, m.Addr)
	}
	slices.Sort(want)
	wait.For(t, 30*time.Second, "tracking on the masters "+strings.Join(want, " "), func() bool {
		ok, _ := f.tier.Tracking()
		return ok && slices.Equal(trackedMasters(f.tier), want)
	})
}

// The tier follows the cluster's topology: after a failover or a
// resharding it tracks the masters serving the slots now, and other
// clients' writes still evict its L1 entries.
func TestClusterTopologyChanges(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3, Replicas: 1})
	f := newRedisFixture(t, cluster(c), tier.Options{})
	waitTracked(t, f, c)
	measureCoherence(t, f, inProcessWriter(f), 50, false).report(t, "before")

	t.Run("Reshard", func(t *testing.T) {
		f := f.on(t)
		m := c.Masters(t)
		c.Reshard(t, m[0], m[1], 3000)
		waitTracked(t, f, c)
		measureCoherence(t, f, inProcessWriter(f), 50, false).report(t, "after resharding")
	})
	t.Run("ManualFailover", func(t *testing.T) {
		f := f.on(t)
		var replica *testserver.Redis
		for _, n := range c.Nodes {
			if n.Running() && !slices.Contains(c.Masters(t), n) {
				replica = n
				break
			}
		}
		losses := f.tier.TierStats().TrackingLosses
		manualFailover(t, c, replica)
		waitTracked(t, f, c)
		t.Logf("tracking losses during the manual failover: %d", f.tier.TierStats().TrackingLosses-losses)
		measureCoherence(t, f, inProcessWriter(f), 50, false).report(t, "after a manual failover")
	})
	t.Run("MasterKilled", func(t *testing.T) {
		f := f.on(t)
		victim := c.Masters(t)[0]
		victim.Kill()
		wait.For(t, 5*time.Second, "the tier to bypass L1 once a master died", func() bool { return f.tier.TierStats().Bypassing })
		c.WaitFailover(t, victim)
		waitTracked(t, f, c)
		// go-redis learns the new slot map after its first errors.
		var last error
		defer func() {
			if t.Failed() {
				t.Logf("last error: %v", last)
			}
		}()
		wait.For(t, 30*time.Second, "the L2 client to reach every key", func() bool {
			for i := range 16 {
				key := []byte(fmt.Sprintf("k%02d", i))
				if _, last = f.tier.Get(f.ctx, key); last != nil {
					return false
				}
				if last = f.other.Get(f.ctx, f.prefix+string(key)).Err(); last != nil {
					// A plain go-redis cluster client keeps dialing the dead
					// master until told to reload its slot map.
					f.other.(*goredis.ClusterClient).ReloadState(f.ctx)
					return false
				}
			}
			return true
		})
		measureCoherence(t, f, inProcessWriter(f), 50, false).report(t, "after a master was killed")
	})
}

// During a manual failover the tier still tracks the old master (now a
// replica) until it next lists the masters: the replica applies the new
// master's writes and pushes their invalidations, so L1 stays coherent in
// between.
func TestClusterManualFailoverWindow(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3, Replicas: 1})
	f := newRedisFixtureTopology(t, cluster(c), tier.Options{}, time.Hour)
	waitTracked(t, f, c)
	before, _ := f.tier.Tracking()
	tracked := trackedMasters(f.tier)
	old := c.Masters(t)
	for _, n := range c.Nodes {
		if n.Running() && !slices.Contains(old, n) {
			manualFailover(t, c, n)
			break
		}
	}
	var now []string
	for _, m := range c.Masters(t) {
		now = append(now, m.Addr)
	}
	slices.Sort(now)
	ok, _ := f.tier.Tracking()
	if got := trackedMasters(f.tier); !before || !ok || !slices.Equal(got, tracked) || slices.Equal(got, now) {
		t.Fatalf("the tier tracks %v (masters now %v): want the old masters still", got, now)
	}
	measureCoherence(t, f, inProcessWriter(f), 50, false).report(t, "tracking the old masters, now replicas")
}
