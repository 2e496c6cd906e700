package strata_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/window"
	"github.com/strata-kv/strata/stores/memory"
)

// Open a store by URL; swapping backends changes only the URL.
func ExampleOpen() {
	ctx := context.Background()
	s, err := strata.Open(ctx, "mem://?default_ttl=1h")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	if err := s.Put(ctx, []byte("offset/orders"), []byte("1042"), 0); err != nil {
		panic(err)
	}
	v, _ := s.Get(ctx, []byte("offset/orders"))
	ttl, _ := strata.TTL(ctx, s, []byte("offset/orders"))
	fmt.Println(string(v), ttl > 59*time.Minute)

	_, err = s.Get(ctx, []byte("offset/payments"))
	fmt.Println(errors.Is(err, strata.ErrNotFound))
	// Output:
	// 1042 true
	// true
}

// Namespaces share one store; each view sees only its own keys.
func ExampleWithPrefix() {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	orders := strata.WithPrefix(s, []byte("orders:"))
	payments := strata.WithPrefix(s, []byte("payments:"))

	_ = orders.Put(ctx, []byte("w1"), []byte("3"), 0)
	_ = payments.Put(ctx, []byte("w1"), []byte("7"), 0)

	for k, err := range orders.Keys(ctx, nil) {
		if err != nil {
			panic(err)
		}
		fmt.Println("orders view:", string(k))
	}
	for k := range s.Keys(ctx, nil) {
		fmt.Println("store:", string(k))
	}
	// Output:
	// orders view: w1
	// store: orders:w1
	// store: payments:w1
}

// GetMany uses one round trip on stores that batch, and loops on others.
func ExampleGetMany() {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	_ = strata.PutMany(ctx, s, []strata.Entry{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("c"), Value: []byte("3"), TTL: time.Minute},
	})
	vals, _ := strata.GetMany(ctx, s, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	for _, v := range vals {
		fmt.Printf("%q ", v)
	}
	fmt.Println()
	// Output:
	// "1" "" "3"
}

// PutIfAbsent claims a key once: a dedup set for at-least-once input.
func ExamplePutIfAbsent() {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	for _, id := range []string{"evt-1", "evt-2", "evt-1"} {
		fresh, err := strata.PutIfAbsent(ctx, s, []byte("seen/"+id), nil, 24*time.Hour)
		if err != nil {
			panic(err)
		}
		fmt.Println(id, "new:", fresh)
	}
	// Output:
	// evt-1 new: true
	// evt-2 new: true
	// evt-1 new: false
}

// A typed view with the fast binary codec updates a window aggregate
// atomically.
func ExampleTyped_Update() {
	ctx := context.Background()
	s := memory.New(nil)
	defer s.Close()
	windows := strata.NewTyped(s, strata.Binary[window.State, *window.State]{})
	w := window.Tumbling{Size: time.Minute}
	at := time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)

	for _, v := range []float64{1.5, 2.5, 4} {
		id, _, _ := w.Bounds(at)
		_, err := windows.Update(ctx, []byte("w/"+id), time.Hour, func(cur window.State, _ bool) (window.State, error) {
			return w.Add(cur, at, v), nil
		})
		if err != nil {
			panic(err)
		}
	}
	id, _, _ := w.Bounds(at)
	st, _ := windows.Get(ctx, []byte("w/"+id))
	fmt.Printf("window %s: count=%d sum=%.1f\n", st.WindowID, st.Count, st.Sum)
	// Output:
	// window 1767268800000: count=3 sum=8.0
}
