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

	s, err := pebble.Open(filepath.Join(dir, "state"), &pebble.Options{CacheSize: 8 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// PutMany is one batch, fsynced once: all of it or none.
	err = s.PutMany(ctx, []strata.Entry{
		{Key: []byte("window/clicks/12:00"), Value: []byte("17"), TTL: time.Hour},
		{Key: []byte("window/clicks/12:05"), Value: []byte("4"), TTL: time.Hour},
		{Key: []byte("offset/clicks/0"), Value: []byte("881"), TTL: strata.NoExpiry},
	})
	if err != nil {
		log.Fatal(err)
	}

	// A snapshot is a point-in-time view: the write after it does not show.
	snap, err := s.Snapshot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer snap.Close()
	s.Put(ctx, []byte("window/clicks/12:10"), []byte("1"), time.Hour)
	for e, err := range snap.Entries(ctx, []byte("window/")) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s = %s, expires in %v\n", e.Key, e.Value, e.TTL.Round(time.Minute))
	}
	// Output:
	// window/clicks/12:00 = 17, expires in 1h0m0s
	// window/clicks/12:05 = 4, expires in 1h0m0s
}

func Example_url() {
	dir, err := os.MkdirTemp("", "strata-pebble-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := strata.Open(ctx, "pebble://"+filepath.Join(dir, "state")+"?cache_size=8388608&default_ttl=10m")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	// A counter moved forward by compare-and-swap: a racing writer that
	// read the same old value loses.
	strata.PutIfAbsent(ctx, s, []byte("seq/orders"), []byte("41"), 0)
	swapped, _ := strata.CompareAndSwap(ctx, s, []byte("seq/orders"), []byte("41"), []byte("42"), 0)
	stale, _ := strata.CompareAndSwap(ctx, s, []byte("seq/orders"), []byte("41"), []byte("42"), 0)
	v, _ := s.Get(ctx, []byte("seq/orders"))
	fmt.Println(swapped, stale, string(v))
	// Output: true false 42
}
