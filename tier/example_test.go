package tier_test

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/tier"
)

func ExampleNew() {
	ctx := context.Background()
	t, err := tier.New(memory.New(nil), &tier.Options{MaxBytes: 64 << 20, MaxLocalTTL: time.Minute})
	if err != nil {
		panic(err)
	}
	defer t.Close() // closes the memory store too

	// Written to the L2 first, then cached.
	if err := t.Put(ctx, []byte("window:42"), []byte("17"), time.Hour); err != nil {
		panic(err)
	}
	v, err := t.Get(ctx, []byte("window:42"))
	fmt.Println(string(v), err)

	_, err = t.Get(ctx, []byte("absent"))
	fmt.Println(err == strata.ErrNotFound)
	// Output:
	// 17 <nil>
	// true
}

func ExampleTier_TierStats() {
	ctx := context.Background()
	l2 := memory.New(nil)
	l2.Put(ctx, []byte("k"), []byte("v"), strata.NoExpiry)
	t, _ := tier.New(l2, nil)
	defer t.Close()
	t.Get(ctx, []byte("k")) // a miss: read from the L2, cached
	s := t.TierStats()
	fmt.Println(s.L1Misses, s.L2Reads, s.L2.Backend)
	// Output:
	// 1 1 memory
}
