// Command migrate_bolt_to_redis moves a stream processor's state from an
// embedded bbolt file to Redis, two ways: a live copy with strata.Copy and
// strata.Verify, and a checkpoint of the bbolt store restored into Redis.
// TTLs travel with the keys.
//
//	go run ./examples/migrate_bolt_to_redis -bolt state.db -redis redis://localhost:6379/0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/stores/bolt"
	"github.com/strata-kv/strata/stores/redis"
)

func main() {
	path := flag.String("bolt", "state.db", "bbolt file (filled with sample state if new)")
	url := flag.String("redis", envOr("REDIS_URL", "redis://localhost:6379/0"), "Redis URL")
	dir := flag.String("checkpoints", "checkpoints", "checkpoint directory")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *path, *url, *dir); err != nil {
		log.Fatal(err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, out io.Writer, path, url, dir string) error {
	src, err := bolt.Open(path, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := seed(ctx, src); err != nil {
		return err
	}
	cfg, err := redis.ParseURL(url)
	if err != nil {
		return err
	}

	// 1. A live copy into one namespace, then a full comparison.
	cfg.KeyPrefix = "copy:"
	dst, err := redis.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer dst.Close()
	p, err := strata.Copy(ctx, dst, src, nil)
	if err != nil {
		return err
	}
	r, err := strata.Verify(ctx, dst, src, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copy: %d keys written; verify: %s\n", p.Written, r)

	// 2. Through a checkpoint file, restored into another namespace.
	co, err := checkpoint.New(src, &checkpoint.Options{Dir: dir})
	if err != nil {
		return err
	}
	m, err := co.Checkpoint(ctx)
	if err != nil {
		return err
	}
	cfg.KeyPrefix = "restored:"
	dst2, err := redis.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer dst2.Close()
	rep, err := checkpoint.RestoreFile(ctx, filepath.Join(co.Dir(), m.ID+checkpoint.Ext), dst2, nil)
	if err != nil {
		return err
	}
	if r, err = strata.Verify(ctx, dst2, src, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "checkpoint %s: %d entries restored; verify: %s\n", m.Source, rep.Restored, r)
	return nil
}

// seed writes sample window state into an empty store.
func seed(ctx context.Context, s strata.Store) error {
	for range s.Keys(ctx, nil) {
		return nil // already has state
	}
	var batch []strata.Entry
	for i := range 1000 {
		ttl := strata.NoExpiry
		if i%2 == 0 {
			ttl = 6 * time.Hour
		}
		batch = append(batch, strata.Entry{Key: fmt.Appendf(nil, "window/%04d", i), Value: fmt.Appendf(nil, "sum=%d", i*3), TTL: ttl})
	}
	return strata.PutMany(ctx, s, batch)
}
