package redis

import (
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

// BenchmarkLock compares an uncontended TryAcquire+Release with a plain
// GET, and with three GETs in a row, on the same server and client in the
// same run. The target is at most 3 round trips; the design is 2 (one
// script to acquire, one to release; TestRoundTrips counts them), plus the
// scripts' run time on the server.
func BenchmarkLock(b *testing.B) {
	r := testserver.StartRedis(b, nil)
	c := r.Client(b)
	ctx := b.Context()
	if err := c.Set(ctx, "bench:get", "v", 0).Err(); err != nil {
		b.Fatal(err)
	}
	lk := newLocker(b, c, uniquePrefix(), locks.Options{})
	b.Run("GET", func(b *testing.B) {
		for b.Loop() {
			if err := c.Get(ctx, "bench:get").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("3xGET", func(b *testing.B) {
		for b.Loop() {
			for range 3 {
				if err := c.Get(ctx, "bench:get").Err(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("TryAcquire+Release", func(b *testing.B) {
		for b.Loop() {
			l, err := lk.TryAcquire(ctx, "bench", time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
