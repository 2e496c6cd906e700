package postgres

import (
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/testserver"
)

// BenchmarkLock compares an uncontended TryAcquire+Release with SELECT 1,
// and with three of them in a row, through the same pool in the same run.
// The target is at most 3 round trips; the design is 2 (one statement to
// lock and draw the token, one to unlock and restore the session;
// testRoundTrips counts them).
func BenchmarkLock(b *testing.B) {
	p := testserver.StartPostgres(b)
	dsn := p.NewDatabase(b)
	pool := newPool(b, dsn, "")
	lk := newLocker(b, pool, nil)
	ctx := b.Context()
	b.Run("SELECT1", func(b *testing.B) {
		var one int
		for b.Loop() {
			if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("3xSELECT1", func(b *testing.B) {
		var one int
		for b.Loop() {
			for range 3 {
				if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
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
