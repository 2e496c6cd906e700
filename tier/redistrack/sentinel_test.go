package redistrack_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/tier"
)

// sentinelTarget makes go-redis failover clients of a Sentinel
// deployment.
func sentinelTarget(d *testserver.RedisSentinel) redisTarget {
	return func(tb testing.TB) goredis.UniversalClient {
		c := goredis.NewFailoverClient(d.FailoverOptions())
		tb.Cleanup(func() { c.Close() })
		return c
	}
}

// sentinelTopology is the TopologyInterval of the Sentinel tests: how
// often the invalidator asks the sentinels for the master.
const sentinelTopology = 100 * time.Millisecond

// failoverBound is how long after a failover (the sentinels agreeing on
// the new master) a foreign write on the new master may go unseen: the
// invalidator asks the sentinels within sentinelTopology, and L1 is
// dropped at once when the answer changes (or, after a kill, when the
// tracking connection breaks). The tests allow another sentinelTopology
// for the question itself and the delivery bound on top.
var failoverBound = 2*sentinelTopology + invalidationBound

// After a Sentinel failover the tier tracks the new master: a write there
// by a plain client reaches L1 within failoverBound, and from then on
// within the usual delivery bound. Kill: the master dies (the tracking
// connection breaks at once). Demotion: SENTINEL FAILOVER promotes the
// replica while the old master keeps running, a master still, for some
// 8 seconds, without the new master's writes: only asking the sentinels
// tells the invalidator to move.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	for _, kill := range []bool{true, false} {
		name := map[bool]string{true: "Kill", false: "Demotion"}[kill]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := testserver.StartRedisSentinel(t, &testserver.SentinelOptions{Password: "node-pw", SentinelPassword: "sentinel-pw"})
			f := newRedisFixtureTopology(t, sentinelTarget(d), tier.Options{}, sentinelTopology)
			old := d.Master(t)
			if got := trackedMasters(f.tier); !slices.Equal(got, []string{old.Addr}) {
				t.Fatalf("the tier tracks %v, want the master %s", got, old.Addr)
			}
			f.set("k", "v1")
			f.eventually("k", "v1")
			f.cache("k", "v1")

			var promoted *testserver.Redis
			if kill {
				old.Kill()
				promoted = d.WaitFailover(t, old)
			} else {
				promoted = d.Failover(t)
			}
			// A plain client of the new master writes at once.
			direct := promoted.Client(t)
			if err := direct.Set(f.ctx, f.prefix+"k", "v2", 0).Err(); err != nil {
				t.Fatal(err)
			}
			wrote := time.Now()
			var lastStale time.Time
			wait.For(t, 30*time.Second, "Get(k) to return the new master's value", func() bool {
				start := time.Now()
				v, err := f.tier.Get(f.ctx, []byte("k"))
				switch {
				case errors.Is(err, strata.ErrUnavailable):
					return false // the store is still finding the new master
				case err != nil:
					t.Fatalf("Get: %v", err)
				case string(v) == "v1":
					lastStale = start
					return false
				case string(v) != "v2":
					t.Fatalf("Get = %q, want v1 or v2", v)
				}
				return true
			})
			if late := lastStale.Sub(wrote); late > failoverBound {
				t.Errorf("a read started %v after the write on the new master returned the old value (bound %v)", late, failoverBound)
			}
			t.Logf("last stale read %v after the write on the new master", max(0, lastStale.Sub(wrote)))

			wait.For(t, 30*time.Second, "tracking on the new master "+promoted.Addr, func() bool {
				ok, _ := f.tier.Tracking()
				return ok && slices.Equal(trackedMasters(f.tier), []string{promoted.Addr})
			})
			f.other = direct
			measureCoherence(t, f, inProcessWriter(f), 30, false).report(t, name+": a plain client of the new master")
			if !kill {
				// Once the old master is a replica of the new one, its
				// sentinel-ordered CLIENT KILL or its role must not
				// take the tier back to it.
				d.WaitRole(t, old, "slave")
				if got := trackedMasters(f.tier); !slices.Equal(got, []string{promoted.Addr}) {
					t.Fatalf("the tier tracks %v, want the new master %s", got, promoted.Addr)
				}
			}
		})
	}
}
