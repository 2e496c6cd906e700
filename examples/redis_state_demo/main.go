// Command redis_state_demo keeps a stream processor's state in Redis:
// window aggregates updated atomically, a consumer offset, and a dedup set
// with a TTL.
//
//	go run ./examples/redis_state_demo -redis redis://localhost:6379/0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/window"
	"github.com/strata-kv/strata/stores/redis"
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

// event is one input record of the demo stream.
type event struct {
	id     string
	at     time.Time
	amount float64
}

func run(ctx context.Context, out io.Writer, url string) error {
	cfg, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	cfg.KeyPrefix = "demo:"
	s, err := redis.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()

	windows := strata.NewTyped(s, strata.Binary[window.State, *window.State]{})
	tumbling := window.Tumbling{Size: time.Minute}
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	events := []event{
		{"e1", base.Add(5 * time.Second), 10}, {"e2", base.Add(20 * time.Second), 5},
		{"e2", base.Add(20 * time.Second), 5}, // a redelivery: deduplicated below
		{"e3", base.Add(70 * time.Second), 7.5},
	}
	for offset, e := range events {
		// At-least-once input: claim each event id once for a day.
		fresh, err := strata.PutIfAbsent(ctx, s, []byte("seen:"+e.id), nil, 24*time.Hour)
		if err != nil {
			return err
		}
		if !fresh {
			fmt.Fprintf(out, "skip duplicate %s\n", e.id)
			continue
		}
		id, _, _ := tumbling.Bounds(e.at)
		st, err := windows.Update(ctx, []byte("window:"+id), time.Hour, func(cur window.State, _ bool) (window.State, error) {
			return tumbling.Add(cur, e.at, e.amount), nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s -> window %s: count=%d sum=%.1f\n", e.id, st.WindowID, st.Count, st.Sum)
		if err := s.Put(ctx, []byte("offset"), fmt.Append(nil, offset+1), strata.NoExpiry); err != nil {
			return err
		}
	}
	off, err := s.Get(ctx, []byte("offset"))
	if err != nil {
		return err
	}
	ttl, err := s.TTL(ctx, []byte("seen:e1"))
	if err != nil {
		return err
	}
	n := 0
	for _, err := range s.Keys(ctx, []byte("window:")) {
		if err != nil {
			return err
		}
		n++
	}
	fmt.Fprintf(out, "offset=%s windows=%d dedup ttl=%v\n", off, n, ttl.Round(time.Hour))
	if _, err := s.Get(ctx, []byte("never-written")); !errors.Is(err, strata.ErrNotFound) {
		return fmt.Errorf("expected ErrNotFound, got %v", err)
	}
	return nil
}
