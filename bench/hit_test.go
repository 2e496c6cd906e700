package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/go-redis/cache/v9"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"
	_ "github.com/strata-kv/strata/tier/redistrack" // tracking for tiers over Redis
)

const (
	nKeys  = 10000
	prefix = "bench:"
)

var value = []byte(strings.Repeat("v", 100))

func keyOf(i int) string { return fmt.Sprintf("k%08d", i) }

// server starts one Redis for the benchmark and loads the keys.
func server(b *testing.B) *testserver.Redis {
	r := testserver.StartRedis(b, nil)
	c := r.Client(b)
	pipe := c.Pipeline()
	for i := range nKeys {
		pipe.Set(context.Background(), prefix+keyOf(i), value, 0)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		b.Fatal(err)
	}
	return r
}

// commands returns how many commands the server has processed.
func commands(b *testing.B, c *goredis.Client) int64 {
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no total_commands_processed in INFO")
	return 0
}

// getter is one cache's read of key number i. Each cache gets its keys in
// the form it takes, made in advance, so that no conversion is timed.
type getter func(i int) ([]byte, error)

// candidate is a cache under test.
type candidate struct {
	name string
	get  getter
}

// warm reads every key until a whole pass is served locally (some caches
// admit entries asynchronously, or only once seen again).
func warm(b *testing.B, admin *goredis.Client, c candidate) {
	deadline := time.Now().Add(time.Minute)
	for {
		before := commands(b, admin)
		for i := range nKeys {
			if _, err := c.get(i); err != nil {
				b.Fatal(err)
			}
		}
		if commands(b, admin)-before-1 <= nKeys/100 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s does not keep the keys", c.name)
		}
	}
}

// candidates builds every cache over the server r, warmed up.
func candidates(b *testing.B, r *testserver.Redis, admin *goredis.Client) []candidate {
	ctx := context.Background()
	var out []candidate
	plain := make([]string, nKeys)     // ristretto's keys
	full := make([]string, nKeys)      // Redis keys, for the Redis clients
	bytesKeys := make([][]byte, nKeys) // the tier's keys
	for i := range nKeys {
		plain[i] = keyOf(i)
		full[i] = prefix + plain[i]
		bytesKeys[i] = []byte(plain[i])
	}

	rc, err := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: nKeys * 10, MaxCost: 64 << 20, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	for i := range nKeys {
		rc.Set(plain[i], value, int64(len(value)+12))
	}
	rc.Wait()
	out = append(out,
		candidate{"Ristretto", func(i int) ([]byte, error) {
			v, _ := rc.Get(plain[i])
			return v, nil
		}},
		// What a store must do at least: return a copy the caller owns.
		candidate{"RistrettoCopy", func(i int) ([]byte, error) {
			v, _ := rc.Get(plain[i])
			return append([]byte(nil), v...), nil
		}})

	for _, e := range tier.Engines() {
		tclient := goredis.NewClient(r.Options())
		b.Cleanup(func() { tclient.Close() })
		s, err := redis.New(tclient, &redis.Options{KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		t, err := tier.New(s, &tier.Options{Invalidation: tier.InvalidationRequired, Engine: e})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { t.Close() })
		if err := t.WaitTracking(ctx); err != nil {
			b.Fatal(err)
		}
		name := map[tier.Engine]string{tier.EngineOtter: "StrataTierOtter", tier.EngineRistretto: "StrataTierRistretto"}[e]
		out = append(out, candidate{name, func(i int) ([]byte, error) { return t.Get(ctx, bytesKeys[i]) }})
	}

	rue, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{r.Addr}, DisableRetry: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rue.Close)
	out = append(out, candidate{"Rueidis", func(i int) ([]byte, error) {
		return rue.DoCache(ctx, rue.B().Get().Key(full[i]).Cache(), time.Hour).AsBytes()
	}})

	gclient := goredis.NewClient(r.Options())
	b.Cleanup(func() { gclient.Close() })
	gc := cache.New(&cache.Options{Redis: gclient, LocalCache: cache.NewTinyLFU(2*nKeys, time.Hour)})
	out = append(out, candidate{"GoRedisCache", func(i int) ([]byte, error) {
		var v []byte
		err := gc.Once(&cache.Item{Ctx: ctx, Key: full[i], Value: &v, Do: func(*cache.Item) (any, error) {
			return gclient.Get(ctx, full[i]).Bytes()
		}})
		return v, err
	}})

	o := r.Options()
	o.Protocol = 3
	o.ClientSideCacheConfig = &goredis.ClientSideCacheConfig{MaxEntries: 2 * nKeys}
	csc := goredis.NewClient(o)
	b.Cleanup(func() { csc.Close() })
	out = append(out, candidate{"GoRedisCSC", func(i int) ([]byte, error) { return csc.Get(ctx, full[i]).Bytes() }})

	for _, c := range out {
		warm(b, admin, c)
	}
	return out
}

// BenchmarkHit measures a local-cache hit (parallel, 100-byte values, 10k
// keys) of each client-side cache in front of the same Redis, and of a bare
// ristretto cache as the floor. A run fails if its hits reached the server.
func BenchmarkHit(b *testing.B) {
	r := server(b)
	admin := r.Client(b)
	for _, c := range candidates(b, r, admin) {
		b.Run(c.name, func(b *testing.B) {
			before := commands(b, admin)
			var next atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(7919)
				for pb.Next() {
					v, err := c.get(int(i % nKeys))
					if err != nil || len(v) != len(value) {
						b.Errorf("get: %d bytes, %v", len(v), err)
						return
					}
					i++
				}
			})
			b.StopTimer()
			if sent := commands(b, admin) - before - 1; sent > int64(b.N)/100+10 {
				b.Fatalf("%d of %d gets reached the server: not a hit benchmark", sent, b.N)
			}
		})
	}
}

// BenchmarkHitInterleaved times the same caches in alternation, two
// goroutines each (see interleave), and reports each one's ns per hit and
// its ratio to the bare ristretto Get.
func BenchmarkHitInterleaved(b *testing.B) {
	r := server(b)
	admin := r.Client(b)
	cs := candidates(b, r, admin)
	var names []string
	var fns []func(g, i int)
	for _, c := range cs {
		names = append(names, c.name)
		fns = append(fns, func(g, i int) {
			if v, err := c.get(i % nKeys); err != nil || len(v) != len(value) {
				b.Errorf("%s: %d bytes, %v", c.name, len(v), err)
			}
		})
	}
	before := commands(b, admin)
	interleave(b, 2, 20000, names, fns...)
	if sent := commands(b, admin) - before - 1; sent > int64(b.N)*200+10 {
		b.Fatalf("%d gets reached the server: not a hit benchmark", sent)
	}
}
