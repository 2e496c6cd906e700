// Command cached_state_demo puts a tier (an in-process cache) in
// front of a Redis store: reads of hot keys stop at L1, writes go through
// to Redis first, TTLs carry over, and a write by another client evicts
// the cached copy.
//
//	go run ./examples/cached_state_demo -redis redis://localhost:6379/0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"

	// Tracking for tiers over Redis: other clients' writes evict L1 entries.
	_ "github.com/strata-kv/strata/tier/redistrack"
)

func main() {
	url := flag.String("redis", envOr("REDIS_URL", "redis://localhost:6379/0"), "Redis URL")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *url); err != nil {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, out io.Writer, url string) error {
	cfg, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	cfg.KeyPrefix = "cached:"
	l2, err := redis.Open(ctx, cfg)
	if err != nil {
		return err
	}
	t, err := tier.New(l2, &tier.Options{MaxBytes: 16 << 20})
	if err != nil {
		l2.Close()
		return err
	}
	defer t.Close() // closes the Redis store too
	// Until Redis tracking is up the tier reads through; wait so that the
	// demo's reads are cached.
	if err := t.WaitTracking(ctx); err != nil {
		return err
	}

	if err := t.Put(ctx, []byte("window/orders/1"), []byte("count=42"), 10*time.Minute); err != nil {
		return err
	}
	for range 1000 {
		if _, err := t.Get(ctx, []byte("window/orders/1")); err != nil {
			return err
		}
	}
	st := t.TierStats()
	fmt.Fprintf(out, "1000 reads: %d from L1, %d from Redis\n", st.L1Hits, st.L2Reads)

	ttl, err := strata.TTL(ctx, t, []byte("window/orders/1"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "TTL carried to Redis: %v\n", ttl.Round(time.Minute))

	// Another process writes the key directly in Redis.
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return err
	}
	other := goredis.NewClient(opt)
	defer other.Close()
	if err := other.Set(ctx, "cached:window/orders/1", "count=43", 0).Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := t.Get(ctx, []byte("window/orders/1"))
		if err != nil {
			return err
		}
		if string(v) == "count=43" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the other client's write did not reach L1 within 5s")
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Fprintf(out, "after another client's write the tier reads count=43 (invalidations received: %d)\n",
		t.TierStats().Invalidations)
	return nil
}
