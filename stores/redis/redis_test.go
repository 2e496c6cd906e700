package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests make many on purpose.
	goredis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// seq numbers the stores the tests open, so that each gets its own key
// prefix (an empty namespace on a shared server).
var seq atomic.Int64

// harness returns a conformance harness that opens stores from base, each
// under a new prefix made by prefix.
func harness(base redis.Options, prefix func(n int64) string) conformance.Harness {
	return conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			cfg := base
			cfg.KeyPrefix = prefix(seq.Add(1))
			cfg.DefaultTTL = o.DefaultTTL
			cfg.MaxValueSize = o.MaxValueSize
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := redis.Open(ctx, &cfg)
			if err != nil {
				tb.Fatalf("Open: %v", err)
			}
			return s
		},
		Capabilities:  conformance.AllCapabilities,
		UnorderedKeys: true,
		LiveSnapshots: true,
		RealTTL:       150 * time.Millisecond,
	}
}

func TestConformanceStandalone(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	// The prefix holds every glob metacharacter: SCAN MATCH must escape it.
	conformance.RunStore(t, harness(redis.Options{URL: r.URL()}, func(n int64) string {
		return fmt.Sprintf(`s*?[a-z]\%d:`, n)
	}))
}

// TestConformanceNoAutoPipeline runs the suite with auto-pipelining off:
// each operation on its connection, retried by the store's hook.
func TestConformanceNoAutoPipeline(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	conformance.RunStore(t, harness(redis.Options{URL: r.URL(), DisableAutoPipeline: true}, func(n int64) string {
		return fmt.Sprintf("n%d:", n)
	}))
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	h := harness(redis.Options{URL: clusterURL(c), ClusterMode: true}, func(n int64) string {
		return fmt.Sprintf("c%d:", n)
	})
	h.SingleSlotCommits = true
	conformance.RunStore(t, h)
}

func TestConformanceTLS(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{TLS: true, Password: "tls-secret"})
	conformance.RunStore(t, harness(redis.Options{URL: r.URL(), TLSCAFile: r.Certs.CA}, func(n int64) string {
		return fmt.Sprintf("t%d:", n)
	}))
}

// aclUser may only touch keys under app:.
const aclUser = "app on >app-secret ~app:* &* +@all"

func TestConformanceACL(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{Users: []string{aclUser}})
	url := fmt.Sprintf("redis://app:app-secret@%s/0", r.Addr)
	h := harness(redis.Options{URL: url}, func(int64) string { return "" })
	open := h.Open
	const width = len("app:000000:")
	h.Open = func(tb testing.TB, o conformance.Options) strata.Store {
		inner := open(tb, o)
		tb.Cleanup(func() { inner.Close() }) // the view does not close what it wraps
		return strata.WithPrefix(inner, fmt.Appendf(nil, "app:%06d:", seq.Add(1)))
	}
	h.MaxKeyLen = strata.MaxKeyLen - width
	conformance.RunStore(t, h)
}

func clusterURL(c *testserver.RedisCluster) string {
	u := "redis+cluster://"
	if c.Password != "" {
		u += ":" + c.Password + "@"
	}
	for i, a := range c.Addrs() {
		if i > 0 {
			u += ","
		}
		u += a
	}
	return u + "/"
}
