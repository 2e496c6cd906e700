package checkpoint_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	_ "github.com/strata-kv/strata/stores/bolt"
	_ "github.com/strata-kv/strata/stores/memory"
	_ "github.com/strata-kv/strata/stores/pebble"
	_ "github.com/strata-kv/strata/stores/redis"
)

// storeKind opens a fresh, empty store of one built-in kind through
// strata.Open, closed when tb ends. n makes the instance unique within the
// test (the Redis kinds share one server and differ by key prefix).
type storeKind struct {
	name string
	url  func(tb testing.TB, n int) string
	wrap func(strata.Store) strata.Store // optional view over the opened store
}

// lazyServer starts a server once for the matrix, on first use, and
// returns its URL.
type lazyServer struct {
	once  sync.Once
	url   string
	start func() string
}

func (r *lazyServer) get(tb testing.TB) string {
	r.once.Do(func() { r.url = r.start() })
	if r.url == "" {
		tb.Fatal("server did not start")
	}
	return r.url
}

func matrixKinds(t *testing.T) []storeKind {
	redis := &lazyServer{start: func() string { return testserver.StartRedis(t, nil).URL() }}
	cluster := &lazyServer{start: func() string {
		c := testserver.StartRedisCluster(t, nil)
		return "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/"
	}}
	return []storeKind{
		{name: "memory", url: func(testing.TB, int) string { return "mem://" }},
		{name: "prefixed-memory", url: func(testing.TB, int) string { return "mem://" },
			wrap: func(s strata.Store) strata.Store { return strata.WithPrefix(s, []byte("ns\xff:")) }},
		{name: "bolt", url: func(tb testing.TB, n int) string {
			return (&url.URL{Scheme: "bolt", Path: filepath.Join(tb.TempDir(), "state.db")}).String()
		}},
		{name: "pebble", url: func(tb testing.TB, n int) string {
			return (&url.URL{Scheme: "pebble", Path: filepath.Join(tb.TempDir(), "state")}).String()
		}},
		{name: "redis", url: func(tb testing.TB, n int) string {
			return redis.get(tb) + fmt.Sprintf("?prefix=m%d:", n)
		}},
		{name: "redis-cluster", url: func(tb testing.TB, n int) string {
			return cluster.get(tb) + fmt.Sprintf("?prefix=m%d:", n)
		}},
	}
}

func openKind(tb testing.TB, k storeKind, n int) strata.Store {
	tb.Helper()
	s, err := strata.Open(context.Background(), k.url(tb, n))
	if err != nil {
		tb.Fatalf("open %s: %v", k.name, err)
	}
	tb.Cleanup(func() { s.Close() })
	if k.wrap != nil {
		return k.wrap(s)
	}
	return s
}

// TestRestoreAcrossStores checkpoints each built-in store kind and restores
// the checkpoint into each kind (the migration path: a bolt or Pebble
// checkpoint restored into Redis). Values, binary keys, empty values and
// remaining TTLs survive; Replace clears the target first.
func TestRestoreAcrossStores(t *testing.T) {
	ctx := context.Background()
	kinds := matrixKinds(t)
	entries := sampleEntries(700)
	n := 0
	for _, from := range kinds {
		for _, to := range kinds {
			t.Run(from.name+"->"+to.name, func(t *testing.T) {
				n += 2
				src := openKind(t, from, n)
				put(t, src, entries...)
				want := dump(t, src)
				if len(want) != len(entries) {
					t.Fatalf("source holds %d entries, wrote %d", len(want), len(entries))
				}
				c := newCoordinator(t, src, checkpoint.Options{})
				m, err := c.Checkpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}

				dst := openKind(t, to, n+1)
				setValue(t, dst, "stale", "x")
				rc := newCoordinator(t, dst, checkpoint.Options{Dir: c.Dir()})
				rep, err := rc.RestoreLatest(ctx)
				// A Redis snapshot may record a key twice (SCAN during a
				// rehash): the count may exceed the keys, the content may not.
				if err != nil || rep.ID != m.ID || rep.Restored != m.Entries || m.Entries < int64(len(entries)) || rep.Cleared != 1 {
					t.Fatalf("RestoreLatest: %+v, %v", rep, err)
				}
				got := dump(t, dst)
				for k, g := range got {
					// The real clock moves: remaining TTLs may only shrink,
					// by less than the test takes (rounded up to the ms).
					if w, ok := want[k]; ok && w.TTL > 0 && g.TTL > w.TTL-time.Minute && g.TTL <= w.TTL+time.Millisecond {
						g.TTL = w.TTL
						got[k] = g
					}
				}
				if d := diff(got, want); d != "" {
					t.Fatalf("%s restored into %s differs:\n%s", from.name, to.name, d)
				}
			})
		}
	}
}
