package bench

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"
	_ "github.com/strata-kv/strata/tier/redistrack" // tracking for tiers over Redis
)

// BenchmarkMiss compares a Get that misses L1 (and so reads Redis, then
// tries to fill L1) with a Get of the Redis store itself, one goroutine,
// keys present. The tier's L1 is too small to keep them.
func BenchmarkMiss(b *testing.B) {
	r := server(b)
	ctx := context.Background()
	run := func(b *testing.B, s strata.Store) {
		keys := make([][]byte, nKeys)
		for i := range keys {
			keys[i] = []byte(keyOf(i))
		}
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, keys[i%nKeys]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("RedisStore", func(b *testing.B) {
		client := goredis.NewClient(r.Options())
		defer client.Close()
		s, err := redis.New(client, &redis.Options{KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
	b.Run("StrataTier", func(b *testing.B) {
		client := goredis.NewClient(r.Options())
		defer client.Close()
		s, err := redis.New(client, &redis.Options{KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		t, err := tier.New(s, &tier.Options{MaxBytes: tier.DefaultEngine.Budget(4, 16, 16), Invalidation: tier.InvalidationRequired})
		if err != nil {
			b.Fatal(err)
		}
		defer t.Close()
		if err := t.WaitTracking(ctx); err != nil {
			b.Fatal(err)
		}
		run(b, t)
		b.StopTimer()
		if st := t.TierStats(); st.L1Hits > uint64(b.N)/100+1 {
			b.Fatalf("%d L1 hits in %d gets: not a miss benchmark", st.L1Hits, b.N)
		}
	})
}

// BenchmarkMissInterleaved times the two of BenchmarkMiss in alternation
// (see interleave) and reports their ratio.
func BenchmarkMissInterleaved(b *testing.B) {
	r := server(b)
	ctx := context.Background()
	client := goredis.NewClient(r.Options())
	defer client.Close()
	s, err := redis.New(client, &redis.Options{KeyPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	tclient := goredis.NewClient(r.Options())
	defer tclient.Close()
	ts, err := redis.New(tclient, &redis.Options{KeyPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	t, err := tier.New(ts, &tier.Options{MaxBytes: tier.DefaultEngine.Budget(4, 16, 16), Invalidation: tier.InvalidationRequired})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	if err := t.WaitTracking(ctx); err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, nKeys)
	for i := range keys {
		keys[i] = []byte(keyOf(i))
	}
	get := func(st strata.Store) func(g, i int) {
		return func(g, i int) {
			if _, err := st.Get(ctx, keys[i%nKeys]); err != nil {
				b.Error(err)
			}
		}
	}
	interleave(b, 1, 200, []string{"store", "tier"}, get(s), get(t))
}
