package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// uniquePrefix keeps the keys of one test apart from every other's.
func uniquePrefix() string { return fmt.Sprintf("t%d:lock:", time.Now().UnixNano()) }

// newLocker returns a Locker over a new client to r, closed when t ends.
func newLocker(t testing.TB, c goredis.UniversalClient, prefix string, o locks.Options) *Locker {
	t.Helper()
	lk, err := New(c, &Options{Options: o, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return lk
}

func standaloneHarness(r *testserver.Redis) conformance.LockerHarness {
	prefix := uniquePrefix()
	open := func(t *testing.T, o locks.Options) (*Locker, *goredis.Client) {
		c := goredis.NewClient(r.Options())
		t.Cleanup(func() { c.Close() })
		return newLocker(t, c, prefix, o), c
	}
	return conformance.LockerHarness{
		NewLocker: func(t *testing.T, o locks.Options) locks.Locker {
			lk, _ := open(t, o)
			return lk
		},
		NewCrashable: func(t *testing.T, o locks.Options) (locks.Locker, func()) {
			lk, c := open(t, o)
			return lk, func() { c.Close() }
		},
		KillBackend: func(t *testing.T, name string) func() {
			r.Kill()
			return func() { r.Restart(t) }
		},
	}
}

func TestConformance(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	conformance.RunLocker(t, standaloneHarness(r))
}

// TestCluster runs the cluster tests on one cluster (it takes a while to
// start). Conformance runs last: BackendLost kills and restarts a master.
func TestCluster(t *testing.T) {
	cl := testserver.StartRedisCluster(t, nil)
	t.Run("HashSlots", func(t *testing.T) { testHashSlots(t, cl) })
	t.Run("Conformance", func(t *testing.T) { testClusterConformance(t, cl) })
}

func testClusterConformance(t *testing.T, cl *testserver.RedisCluster) {
	prefix := uniquePrefix()
	open := func(t *testing.T, o locks.Options) (*Locker, *goredis.ClusterClient) {
		c := goredis.NewClusterClient(cl.Options())
		t.Cleanup(func() { c.Close() })
		return newLocker(t, c, prefix, o), c
	}
	conformance.RunLocker(t, conformance.LockerHarness{
		NewLocker: func(t *testing.T, o locks.Options) locks.Locker {
			lk, _ := open(t, o)
			return lk
		},
		NewCrashable: func(t *testing.T, o locks.Options) (locks.Locker, func()) {
			lk, c := open(t, o)
			return lk, func() { c.Close() }
		},
		KillBackend: func(t *testing.T, name string) func() {
			lk, _ := open(t, locks.Options{})
			node := cl.MasterOf(t, lk.LockKey(name))
			node.Kill()
			return func() {
				node.Restart(t)
				cl.WaitHealthy(t, 3)
			}
		},
	})
}

func TestNew(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := New(nil, nil); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Errorf("New(nil client) = %v, want ErrInvalidConfig", err)
	}
	if _, err := New(c, &Options{Prefix: "a{b"}); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Errorf("New with a brace in Prefix = %v, want ErrInvalidConfig", err)
	}
	if _, err := New(c, &Options{Options: locks.Options{MinBackoff: time.Second, MaxBackoff: time.Millisecond}}); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Errorf("New with MinBackoff > MaxBackoff = %v, want ErrInvalidConfig", err)
	}
	lk, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"a":      "strata:lock:{a}",
		"{x}":    "strata:lock:{%7Bx%7D}",
		"%7B":    "strata:lock:{%257B}",
		"\x00}{": "strata:lock:{\x00%7D%7B}",
	} {
		if got := lk.LockKey(name); got != want {
			t.Errorf("LockKey(%q) = %q, want %q", name, got, want)
		}
	}
}

// testHashSlots checks on a real cluster that a lock and its fence counter
// share a slot whatever the name holds.
func testHashSlots(t *testing.T, cl *testserver.RedisCluster) {
	c := cl.Client(t)
	lk := newLocker(t, c, "p:", locks.Options{})
	ctx := t.Context()
	for _, name := range []string{"a", "}", "{", "}{", "{}", "a}b{c", "\x00\xff", strings.Repeat("}", 50)} {
		key := lk.LockKey(name)
		s1, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := c.ClusterKeySlot(ctx, key+":fence").Result()
		if err != nil {
			t.Fatal(err)
		}
		if s1 != s2 {
			t.Errorf("name %q: lock slot %d, fence slot %d", name, s1, s2)
		}
		l, err := lk.TryAcquire(ctx, name, time.Minute)
		if err != nil {
			t.Fatalf("TryAcquire(%q): %v", name, err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release(%q): %v", name, err)
		}
	}
}

// TestOwnerScripts calls the scripts directly: another owner can neither
// release nor extend a lock, and a retried acquisition by the same owner
// returns the same token.
func TestOwnerScripts(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)
	ctx := t.Context()
	lk := newLocker(t, c, uniquePrefix(), locks.Options{})
	key := lk.LockKey("x")
	keys := []string{key, key + ":fence"}

	tok, err := acquireScript.Run(ctx, c, keys, "owner1:", 60000).Int64()
	if err != nil || tok <= 0 {
		t.Fatalf("acquire: %d, %v", tok, err)
	}
	again, err := acquireScript.Run(ctx, c, keys, "owner1:", 60000).Int64()
	if err != nil || again != tok {
		t.Fatalf("retried acquire by the same owner: %d, %v; want %d", again, err, tok)
	}
	if n, err := acquireScript.Run(ctx, c, keys, "owner2:", 60000).Int64(); err != nil || n != 0 {
		t.Fatalf("acquire by another owner: %d, %v; want 0", n, err)
	}
	if n, err := releaseScript.Run(ctx, c, []string{key}, "owner2:").Int64(); err != nil || n != 0 {
		t.Fatalf("release by another owner: %d, %v; want 0", n, err)
	}
	// An owner id that is a prefix of the holder's must not match either.
	if n, err := releaseScript.Run(ctx, c, []string{key}, "owner").Int64(); err != nil || n != 0 {
		t.Fatalf("release by a prefix of the owner: %d, %v; want 0", n, err)
	}
	if n, err := extendScript.Run(ctx, c, []string{key}, "owner2:", 1).Int64(); err != nil || n != 0 {
		t.Fatalf("extend by another owner: %d, %v; want 0", n, err)
	}
	if pttl := c.PTTL(ctx, key).Val(); pttl < 30*time.Second {
		t.Fatalf("PTTL after a foreign extend = %v; it must be untouched", pttl)
	}
	if v := c.Get(ctx, key).Val(); v != "owner1:"+strconv.FormatInt(tok, 10) {
		t.Fatalf("lock value = %q", v)
	}
	if n, err := releaseScript.Run(ctx, c, []string{key}, "owner1:").Int64(); err != nil || n != 1 {
		t.Fatalf("release by the owner: %d, %v; want 1", n, err)
	}
}

// TestTokensSurviveDataLoss: tokens keep increasing after Redis forgets
// the fence counter (FLUSHALL stands in for a restart without persistence)
// or goes back to an older one (an old snapshot).
func TestTokensSurviveDataLoss(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)
	ctx := t.Context()
	lk := newLocker(t, c, uniquePrefix(), locks.Options{})
	take := func() uint64 {
		t.Helper()
		l, err := lk.TryAcquire(ctx, "n", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		return l.Token()
	}
	t1 := take()
	fence := lk.LockKey("n") + ":fence"
	snapshot := c.Get(ctx, fence).Val()
	t2 := take()
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	t3 := take()
	if err := c.Set(ctx, fence, snapshot, 0).Err(); err != nil {
		t.Fatal(err)
	}
	t4 := take()
	if !(t1 < t2 && t2 < t3 && t3 < t4) {
		t.Fatalf("tokens %d %d %d %d are not increasing", t1, t2, t3, t4)
	}
	// Large counters are formatted exactly (no 1e+15 notation).
	if err := c.Set(ctx, fence, "9007199254740000", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if t5 := take(); t5 != 9007199254740001 {
		t.Fatalf("token after 9007199254740000 = %d", t5)
	}
	if v := c.Get(ctx, fence).Val(); v != "9007199254740001" {
		t.Fatalf("fence counter stored as %q", v)
	}
}

func TestFenced(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)
	ctx := t.Context()
	key := uniquePrefix() + "resource"

	if _, _, err := FencedGet(ctx, c, key); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("FencedGet of a missing key = %v", err)
	}
	if err := FencedPut(ctx, c, key, 10, []byte("ten"), 0); err != nil {
		t.Fatal(err)
	}
	if err := FencedPut(ctx, c, key, 10, []byte("ten again"), 0); err != nil {
		t.Fatalf("write with the same token: %v", err)
	}
	if err := FencedPut(ctx, c, key, 9, []byte("nine"), 0); !errors.Is(err, locks.ErrStaleToken) {
		t.Fatalf("write with a lower token = %v, want ErrStaleToken", err)
	}
	v, tok, err := FencedGet(ctx, c, key)
	if err != nil || string(v) != "ten again" || tok != 10 {
		t.Fatalf("FencedGet = %q, %d, %v", v, tok, err)
	}
	// Tokens compare exactly across lengths and beyond 2^53.
	for _, step := range []struct {
		tok uint64
		ok  bool
	}{{100, true}, {99, false}, {1 << 60, true}, {1<<60 - 1, false}, {math.MaxUint64, true}, {math.MaxUint64 - 1, false}, {5, false}} {
		err := FencedPut(ctx, c, key, step.tok, []byte(strconv.FormatUint(step.tok, 10)), 0)
		if step.ok != (err == nil) || (!step.ok && !errors.Is(err, locks.ErrStaleToken)) {
			t.Fatalf("FencedPut(token %d) = %v, want accepted=%v", step.tok, err, step.ok)
		}
	}
	if _, tok, _ := FencedGet(ctx, c, key); tok != math.MaxUint64 {
		t.Fatalf("token = %d, want MaxUint64", tok)
	}
	if err := FencedPut(ctx, c, "", 1, nil, 0); !errors.Is(err, strata.ErrInvalidKey) {
		t.Errorf("empty key = %v", err)
	}
	if err := FencedPut(ctx, c, key+"x", 1, nil, -5); !errors.Is(err, strata.ErrInvalidTTL) {
		t.Errorf("bad ttl = %v", err)
	}
	if err := FencedPut(ctx, c, key+"ttl", 1, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if pttl := c.PTTL(ctx, key+"ttl").Val(); pttl <= 0 || pttl > time.Minute {
		t.Errorf("PTTL = %v", pttl)
	}
	if err := c.Set(ctx, key+"plain", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := FencedPut(ctx, c, key+"plain", 1, nil, 0); err == nil {
		t.Error("FencedPut over a string key succeeded")
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	// Nothing listens on port 1: the request cannot have been applied.
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer down.Close()
	lk := newLocker(t, down, "", locks.Options{})
	_, err := lk.TryAcquire(ctx, "x", time.Second)
	var oe *strata.OpError
	if !errors.Is(err, strata.ErrUnavailable) || !errors.As(err, &oe) || oe.Backend != "redis" || oe.Op != "acquire" {
		t.Fatalf("TryAcquire on a dead server = %v, want an OpError matching ErrUnavailable", err)
	}
	actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := lk.Acquire(actx, "x", time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a dead server until the deadline = %v", err)
	}

	r := testserver.StartRedis(t, nil)
	c := goredis.NewClient(r.Options())
	lk = newLocker(t, c, uniquePrefix(), locks.Options{})
	c.Close()
	if _, err := lk.TryAcquire(ctx, "x", time.Second); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("TryAcquire on a closed client = %v, want ErrClosed", err)
	}
}

// ExampleFencedPut shows the write side of fencing: the resource keeps the
// highest token it has seen and turns a stale holder away.
func ExampleFencedPut() {
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer c.Close()
	lk, err := New(c, nil)
	if err != nil {
		panic(err)
	}
	lease, err := lk.Acquire(ctx, "compactor", 10*time.Second)
	if err != nil {
		panic(err)
	}
	defer lease.Release(ctx)
	err = FencedPut(ctx, c, "compactor:output", lease.Token(), []byte("result"), strata.NoExpiry)
	if errors.Is(err, locks.ErrStaleToken) {
		// A newer holder has written: this one lost the lease while paused.
		return
	}
}

// countHook counts the commands a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRoundTrips counts the commands of an uncontended acquire and
// release: one script each.
func TestRoundTrips(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := r.Client(t)
	h := &countHook{}
	c.AddHook(h)
	ctx := t.Context()
	lk := newLocker(t, c, uniquePrefix(), locks.Options{})
	cycle := func() {
		l, err := lk.TryAcquire(ctx, "rt", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // loads the scripts
	h.n.Store(0)
	for range 10 {
		cycle()
	}
	if n := h.n.Load(); n != 20 {
		t.Fatalf("10 acquire+release cycles sent %d commands, want 20", n)
	}
}

// TestACLPrefix holds locks as an ACL user allowed only keys under app:,
// with the locker's prefix under it: the job's locks and its state can
// share one restricted user.
func TestACLPrefix(t *testing.T) {
	r := testserver.StartRedis(t, &testserver.RedisOptions{Users: []string{"app on >app-secret ~app:* &* +@all"}})
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr, Username: "app", Password: "app-secret"})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()
	lk := newLocker(t, c, "app:lock:", locks.Options{})
	l, err := lk.TryAcquire(ctx, "job", time.Minute)
	if err != nil {
		t.Fatalf("TryAcquire under app:lock: as the restricted user: %v", err)
	}
	if err := l.Extend(ctx, time.Minute); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	outside := newLocker(t, c, "strata:lock:", locks.Options{})
	if _, err := outside.TryAcquire(ctx, "job", time.Minute); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("TryAcquire outside the user's keys = %v, want a NOPERM refusal", err)
	}
}
