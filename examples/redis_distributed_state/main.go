// Command redis_distributed_state runs two workers that share state in
// Redis. Each takes a lease on the aggregation lock before a
// read-modify-write of several keys, and writes the shared total with its
// fencing token, so that a worker paused past its lease cannot overwrite
// newer state.
//
//	go run ./examples/redis_distributed_state -redis redis://localhost:6379/0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
	lockredis "github.com/strata-kv/strata/locks/redis"
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

const (
	workers   = 2
	batches   = 20 // per worker
	perBatch  = 5  // events per batch, each worth 1
	totalKey  = "dist:total"
	batchesOf = "dist:batches:"
)

// worker is one process's view: its own Redis connections, store and
// locker, as if it ran on another machine.
type worker struct {
	name   string
	client goredis.UniversalClient
	store  strata.Store
	locker locks.Locker
}

func newWorker(ctx context.Context, name, url string) (*worker, error) {
	cfg, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	s, err := redis.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l, err := lockredis.New(s.Client(), nil)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &worker{name: name, client: s.Client(), store: s, locker: l}, nil
}

// process applies one batch under the lease.
func (w *worker) process(ctx context.Context) error {
	lease, err := w.locker.Acquire(ctx, "aggregate", 5*time.Second)
	if err != nil {
		return err
	}
	defer lease.Release(ctx)
	total, _, err := lockredis.FencedGet(ctx, w.client, totalKey)
	if err != nil && !isNotFound(err) {
		return err
	}
	n, _ := strconv.Atoi(string(total))
	// The token rejects this write if another worker took the lock since.
	if err := lockredis.FencedPut(ctx, w.client, totalKey, lease.Token(), strconv.AppendInt(nil, int64(n+perBatch), 10), 0); err != nil {
		return err
	}
	key := []byte(batchesOf + w.name)
	_, err = strata.NewTyped(w.store, strata.JSON[int]{}).Update(ctx, key, strata.NoExpiry, func(cur int, _ bool) (int, error) {
		return cur + 1, nil
	})
	return err
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, strata.ErrNotFound) }

func run(ctx context.Context, out io.Writer, url string) error {
	var ws []*worker
	for i := range workers {
		w, err := newWorker(ctx, fmt.Sprintf("w%d", i+1), url)
		if err != nil {
			return err
		}
		defer w.store.Close()
		ws = append(ws, w)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				if err := w.process(ctx); err != nil {
					errs[i] = fmt.Errorf("%s: %w", w.name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	total, _, err := lockredis.FencedGet(ctx, ws[0].client, totalKey)
	if err != nil {
		return err
	}
	for _, w := range ws {
		n, err := ws[0].store.Get(ctx, []byte(batchesOf+w.name))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s processed %s batches\n", w.name, n)
	}
	fmt.Fprintf(out, "total=%s (want %d)\n", total, workers*batches*perBatch)
	return nil
}
