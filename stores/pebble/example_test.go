package pebble_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/pebble"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "strata-pebble-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := pebble.Open(filepath.Join(dir, "state"), &pebble.Options{DefaultTTL: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Every write is durable when Put returns (NoSync is off).
	s.Put(ctx, []byte("offset/orders/0"), []byte("1042"), strata.NoExpiry)
	s.Put(ctx, []byte("offset/orders/1"), []byte("977"), strata.NoExpiry)
	s.Put(ctx, []byte("dedup/evt-7"), nil, 0) // the default TTL: one hour

	for k, err := range s.Keys(ctx, []byte("offset/")) {
		if err != nil {
			log.Fatal(err)
		}
		v, _ := s.Get(ctx, k)
		fmt.Printf("%s = %s\n", k, v)
	}
	ttl, _ := s.TTL(ctx, []byte("dedup/evt-7"))
	fmt.Println("dedup entry expires in", ttl.Round(time.Minute))
	// Output:
	// offset/orders/0 = 1042
	// offset/orders/1 = 977
	// dedup entry expires in 1h0m0s
}

func Example_url() {
	dir, err := os.MkdirTemp("", "strata-pebble-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := strata.Open(ctx, "pebble://"+filepath.Join(dir, "state")+"?cache_size=8388608")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ok, _ := strata.PutIfAbsent(ctx, s, []byte("lease/partition-3"), []byte("worker-a"), time.Minute)
	again, _ := strata.PutIfAbsent(ctx, s, []byte("lease/partition-3"), []byte("worker-b"), time.Minute)
	fmt.Println(ok, again)
	// Output: true false
}
