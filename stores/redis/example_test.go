package redis_test

import (
	"context"
	"fmt"
	"log"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/redis"
)

func ExampleParseURL() {
	opts, err := redis.ParseURL("rediss://app:secret@cache.internal:6380/0?prefix=orders:&read_timeout=250ms&max_retries=5")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opts.KeyPrefix, opts.ReadTimeout, opts.MaxRetries, opts.TLS)
	fmt.Println(opts) // the password is redacted
	// Output:
	// orders: 250ms 5 true
	// redis.Options{URL: rediss://app:xxxxx@cache.internal:6380/0?prefix=orders:&read_timeout=250ms&max_retries=5, KeyPrefix: "orders:", ReadTimeout: 250ms, MaxRetries: 5, TLS: true}
}

func ExampleOpen() {
	ctx := context.Background()
	s, err := redis.Open(ctx, &redis.Options{URL: "redis://localhost:6379/0", KeyPrefix: "app:", ReadTimeout: time.Second})
	if err != nil {
		log.Fatal(err) // matches strata.ErrUnavailable when the server does not answer
	}
	defer s.Close()
	if err := s.Put(ctx, []byte("user:42"), []byte("Ada"), time.Hour); err != nil {
		log.Fatal(err)
	}
	// redis-cli GET app:user:42 prints Ada; PTTL app:user:42 about 3600000.
}

func ExampleNew() {
	client := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:      []string{"10.0.0.1:6379", "10.0.0.2:6379"},
		MaxRetries: -1, // let the store retry, and count, instead
	})
	defer client.Close() // the caller owns the client
	s, err := redis.New(client, &redis.Options{KeyPrefix: "app:", MaxRetries: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	var _ strata.Store = s
}
