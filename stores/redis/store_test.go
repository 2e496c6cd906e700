package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

func open(tb testing.TB, cfg redis.Options) *redis.Store {
	tb.Helper()
	s, err := redis.Open(tb.Context(), &cfg)
	if err != nil {
		tb.Fatalf("Open(%v): %v", cfg, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func noErr(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// opErrors counts the *strata.OpError values in err's chain.
func opErrors(err error) int {
	n := 0
	for err != nil {
		if _, ok := err.(*strata.OpError); ok {
			n++
		}
		err = errors.Unwrap(err)
	}
	return n
}

// TestPlainRedisData proves the store's data is plain Redis strings under
// the prefix, that redis-cli reads and writes, with TTLs PTTL shows.
func TestPlainRedisData(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	s := open(t, redis.Options{URL: r.URL(), KeyPrefix: "app:"})
	ctx := t.Context()
	noErr(t, "Put", s.Put(ctx, []byte("greeting"), []byte("hello world"), time.Hour))
	noErr(t, "Put", s.Put(ctx, []byte("bin"), []byte("v\x01\xffz"), strata.NoExpiry))
	if got := r.CLI(t, "GET", "app:greeting"); got != "hello world" {
		t.Fatalf("redis-cli GET app:greeting = %q", got)
	}
	if got := r.CLI(t, "--no-raw", "GET", "app:bin"); got != `"v\x01\xffz"` {
		t.Fatalf("redis-cli GET app:bin = %s, want the bytes written", got)
	}
	pttl, err := strconv.ParseInt(r.CLI(t, "PTTL", "app:greeting"), 10, 64)
	if err != nil || pttl <= int64(59*time.Minute/time.Millisecond) || pttl > int64(time.Hour/time.Millisecond) {
		t.Fatalf("redis-cli PTTL = %d (%v), want just under 3600000", pttl, err)
	}
	if got := r.CLI(t, "PTTL", "app:bin"); got != "-1" {
		t.Fatalf("redis-cli PTTL of a NoExpiry key = %s, want -1", got)
	}
	// And the other way round.
	r.CLI(t, "SET", "app:from-cli", "written by redis-cli", "PX", "5000")
	v, ttl, err := s.GetWithTTL(ctx, []byte("from-cli"))
	if err != nil || string(v) != "written by redis-cli" || ttl <= 4*time.Second || ttl > 5*time.Second {
		t.Fatalf("GetWithTTL of a redis-cli key = %q, %v, %v", v, ttl, err)
	}
	if got := r.CLI(t, "EXISTS", "greeting"); got != "0" {
		t.Fatalf("key written without the prefix: EXISTS greeting = %s", got)
	}
	noErr(t, "Delete", s.Delete(ctx, []byte("greeting")))
	if got := r.CLI(t, "EXISTS", "app:greeting"); got != "0" {
		t.Fatalf("EXISTS after Delete = %s", got)
	}
}

func TestACLPermissionError(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{Users: []string{aclUser}})
	s := open(t, redis.Options{URL: fmt.Sprintf("redis://app:app-secret@%s/0", r.Addr)})
	ctx := t.Context()
	noErr(t, "Put inside the user's pattern", s.Put(ctx, []byte("app:k"), []byte("v"), 0))
	err := s.Put(ctx, []byte("other:k"), []byte("v"), 0)
	if err == nil {
		t.Fatal("Put outside the user's pattern succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "NOPERM") || !strings.Contains(msg, "permission denied") || !strings.Contains(msg, `"other:k"`) {
		t.Fatalf("error = %q, want a permission error naming the key", msg)
	}
	for _, sentinel := range []error{strata.ErrUnavailable, strata.ErrIndeterminate, strata.ErrNotFound, strata.ErrClosed} {
		if errors.Is(err, sentinel) {
			t.Fatalf("permission error %q matches %v", msg, sentinel)
		}
	}
	if n := opErrors(err); n != 1 {
		t.Fatalf("error wraps %d OpErrors, want 1", n)
	}
	if _, err := s.Get(ctx, []byte("other:k")); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("Get outside the pattern = %v, want NOPERM", err)
	}
	if strings.Contains(msg, "app-secret") {
		t.Fatalf("error shows the password: %q", msg)
	}
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{TLS: true})
	ctx := t.Context()
	// By IP (the certificate carries 127.0.0.1) and by name.
	s := open(t, redis.Options{URL: r.URL(), TLSCAFile: r.Certs.CA})
	noErr(t, "Ping", s.Ping(ctx))
	s = open(t, redis.Options{URL: r.URL(), TLSCAFile: r.Certs.CA, TLSServerName: "localhost"})
	noErr(t, "Ping", s.Ping(ctx))

	quick := redis.Options{URL: r.URL(), DialTimeout: time.Second, MaxRetries: -1}
	for name, cfg := range map[string]redis.Options{
		"unknown CA":       quick,
		"wrong name":       {URL: quick.URL, DialTimeout: time.Second, MaxRetries: -1, TLSCAFile: r.Certs.CA, TLSServerName: "not-localhost"},
		"plain to the TLS": {URL: "redis://" + r.Addr, DialTimeout: time.Second, MaxRetries: -1, ReadTimeout: time.Second},
	} {
		_, err := redis.Open(ctx, &cfg)
		if !errors.Is(err, strata.ErrUnavailable) {
			t.Fatalf("%s: Open = %v, want ErrUnavailable", name, err)
		}
		if name != "plain to the TLS" && !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s: Open = %v, want a certificate error", name, err)
		}
	}
	// Turning verification off takes the Config field, never the URL alone.
	_, err := redis.Open(ctx, &redis.Options{URL: r.URL() + "?tls_insecure_skip_verify=true"})
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Open with tls_insecure_skip_verify in the URL = %v, want a refusal", err)
	}
	if _, err := strata.Open(ctx, r.URL()+"?insecure_skip_verify=1"); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("strata.Open with insecure_skip_verify = %v, want ErrInvalidConfig", err)
	}
	s = open(t, redis.Options{URL: r.URL(), TLSInsecureSkipVerify: true})
	noErr(t, "Ping with verification off", s.Ping(ctx))
}

func TestStrataOpen(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"redis", "rediss", "redis+cluster", "rediss+cluster"} {
		if !slices.Contains(strata.Schemes(), scheme) {
			t.Fatalf("scheme %s not registered: %v", scheme, strata.Schemes())
		}
	}
	r := testserver.StartRedis(t, &testserver.RedisOptions{Password: "pw-secret"})
	ctx := t.Context()
	s, err := strata.Open(ctx, r.URL()+"?prefix=via-url:&default_ttl=1h&read_timeout=2s")
	noErr(t, "strata.Open", err)
	defer s.Close()
	noErr(t, "Put", s.Put(ctx, []byte("k"), []byte("v"), 0))
	if got := r.CLI(t, "GET", "via-url:k"); got != "v" {
		t.Fatalf("GET via-url:k = %q: the prefix parameter was not applied", got)
	}
	if ttl, err := strata.TTL(ctx, s, []byte("k")); err != nil || ttl <= 59*time.Minute {
		t.Fatalf("TTL = %v, %v: default_ttl was not applied", ttl, err)
	}
	// Errors never show the password.
	_, err = strata.Open(ctx, r.URL()+"?nope=1")
	if !errors.Is(err, strata.ErrInvalidConfig) || strings.Contains(err.Error(), "pw-secret") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown parameter: %v", err)
	}
	_, err = strata.Open(ctx, strings.Replace(r.URL(), "pw-secret", "wrong-secret", 1))
	if err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong password: %v", err)
	}

	c := testserver.StartRedisCluster(t, nil)
	cs, err := strata.Open(ctx, clusterURL(c)+"?prefix=cl:")
	noErr(t, "strata.Open of a cluster URL", err)
	defer cs.Close()
	for i := range 20 {
		noErr(t, "Put", cs.Put(ctx, fmt.Appendf(nil, "k%d", i), []byte("v"), 0))
	}
	if got := c.CLI(t, "GET", "cl:k7"); got != "v" {
		t.Fatalf("cluster GET cl:k7 = %q", got)
	}
}

func TestNewWithClient(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	client := r.Client(t)
	ctx := t.Context()
	s, err := redis.New(client, &redis.Options{KeyPrefix: "n:"})
	noErr(t, "New", err)
	noErr(t, "Put", s.Put(ctx, []byte("k"), []byte("v"), 0))
	// The client is the caller's: the store's Close leaves it open, and
	// the hook leaves the caller's own commands alone.
	noErr(t, "Close", s.Close())
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if v, err := client.Get(ctx, "n:k").Result(); err != nil || v != "v" {
		t.Fatalf("client GET after the store closed = %q, %v", v, err)
	}
	if _, err := client.Get(ctx, "absent").Result(); err != goredis.Nil {
		t.Fatalf("client GET of an absent key = %v, want redis.Nil untouched by the hook", err)
	}
	own := goredis.NewClient(r.Options())
	s2, err := redis.New(own, &redis.Options{CloseClient: true})
	noErr(t, "New", err)
	noErr(t, "Close", s2.Close())
	if err := own.Ping(ctx).Err(); !errors.Is(err, goredis.ErrClosed) {
		t.Fatalf("client after Close with CloseClient = %v, want closed", err)
	}
	if _, err := redis.New(nil, nil); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("New(nil) = %v", err)
	}
	if _, err := redis.New(client, &redis.Options{MaxRetries: -2}); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("New with MaxRetries -2 = %v", err)
	}
}

func TestStatsAndServerReadings(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	ctx := t.Context()
	s := open(t, redis.Options{URL: r.URL(), KeyPrefix: "st:"})
	bare := open(t, redis.Options{URL: r.URL()})
	for i := range 50 {
		noErr(t, "Put", s.Put(ctx, fmt.Appendf(nil, "k%d", i), []byte("value"), 0))
	}
	r.CLI(t, "SET", "outside", "x")
	for i := range 60 {
		_, _ = s.Get(ctx, fmt.Appendf(nil, "k%d", i))
	}
	_, err := s.GetMany(ctx, [][]byte{[]byte("k1"), []byte("k2")})
	noErr(t, "GetMany", err)
	st := s.RedisStats()
	if st.Puts != 50 || st.Gets != 62 || st.Hits != 52 || st.Misses != 10 || st.BytesRead != 52*5 {
		t.Fatalf("RedisStats = %+v", st)
	}
	if hr := st.HitRate(); hr < 0.83 || hr > 0.84 {
		t.Fatalf("HitRate = %v, want 52/62", hr)
	}
	if st.Operations != 50+60+1 || st.AvgLatency <= 0 || st.P50 <= 0 || st.P99 < st.P50 || st.P999 < st.P99 || st.P999 > time.Second {
		t.Fatalf("latency: %+v", st)
	}
	gs := s.Stats()
	for _, g := range []string{"pipelines_total", "retries_total", "auto_pipelined_total", "active_connections"} {
		if _, ok := gs.Gauges[g]; !ok {
			t.Fatalf("Stats().Gauges lacks %s: %v", g, gs.Gauges)
		}
	}
	if gs.Latency == nil || gs.Latency.Count < 50+60+1 || gs.Latency.Sum <= 0 || gs.Backend != "redis" {
		t.Fatalf("Stats() = %+v", gs)
	}
	if last := gs.Latency.Counts[len(gs.Latency.Counts)-1]; last < 50+60+1 {
		t.Fatalf("%d operations within the last fixed bound %v, want all 111", last, gs.Latency.Bounds[len(gs.Latency.Bounds)-1])
	}
	n, err := s.KeyCount(ctx)
	if err != nil || n != 50 {
		t.Fatalf("KeyCount with a prefix = %d, %v; want 50", n, err)
	}
	n, err = bare.KeyCount(ctx)
	if err != nil || n != 51 {
		t.Fatalf("KeyCount without a prefix = %d, %v; want 51 (DBSIZE)", n, err)
	}
	mem, err := s.MemoryUsage(ctx)
	if err != nil || mem < 100_000 {
		t.Fatalf("MemoryUsage = %d, %v", mem, err)
	}
	noErr(t, "Close", s.Close())
	if _, err := s.MemoryUsage(ctx); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("MemoryUsage after Close = %v", err)
	}
}

func TestClusterSlotsAndReadings(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, nil)
	ctx := t.Context()
	s := open(t, redis.Options{URL: clusterURL(c)})
	client := c.Client(t)
	var keys [][]byte
	for i := range 300 {
		k := fmt.Appendf(nil, "key-%d-\x00\xff{%d}", i, i%7)
		if i%3 == 0 {
			k = fmt.Appendf(nil, "{}%d", i) // an empty tag hashes the whole key
		}
		keys = append(keys, k)
	}
	entries := make([]strata.Entry, len(keys))
	for i, k := range keys {
		entries[i] = strata.Entry{Key: k, Value: k}
	}
	noErr(t, "PutMany", s.PutMany(ctx, entries))
	direct := map[string]*goredis.Client{}
	for _, k := range keys {
		want, err := client.ClusterKeySlot(ctx, string(k)).Result()
		noErr(t, "CLUSTER KEYSLOT", err)
		// The key is on the master that serves its slot: GET through a
		// plain client of that node, no redirection.
		m := c.MasterOf(t, string(k))
		if direct[m.Addr] == nil {
			direct[m.Addr] = m.Client(t)
		}
		v, err := direct[m.Addr].Get(ctx, string(k)).Result()
		if err != nil || v != string(k) {
			t.Fatalf("key %q (slot %d) not on its slot's master %s: %q, %v", k, want, m.Addr, v, err)
		}
	}
	got, err := s.GetMany(ctx, keys)
	noErr(t, "GetMany", err)
	for i := range keys {
		if !bytes.Equal(got[i], keys[i]) {
			t.Fatalf("GetMany[%d] = %q", i, got[i])
		}
	}
	if n, err := s.KeyCount(ctx); err != nil || n != int64(len(keys)) {
		t.Fatalf("KeyCount = %d, %v", n, err)
	}
	if mem, err := s.MemoryUsage(ctx); err != nil || mem < 3*100_000 {
		t.Fatalf("MemoryUsage = %d, %v (three masters)", mem, err)
	}
	n, err := s.DeleteMany(ctx, append(keys, []byte("absent")))
	if err != nil || n != len(keys) {
		t.Fatalf("DeleteMany = %d, %v", n, err)
	}
	if st := s.RedisStats(); st.Pipelines == 0 {
		t.Fatalf("no pipelined round trip counted: %+v", st)
	}
}

func TestContextDeadlineWithinCommand(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	s := open(t, redis.Options{URL: r.URL(), ReadTimeout: 10 * time.Second})
	ctx := t.Context()
	noErr(t, "Put", s.Put(ctx, []byte("k"), []byte("v"), 0))
	// Open two connections, so that the second command below finds one
	// ready and is surely sent (not stuck in a handshake).
	for s.Client().PoolStats().IdleConns < 2 {
		errs := make(chan error, 4)
		for range 4 {
			go func() { _, err := s.Get(ctx, []byte("k")); errs <- err }()
		}
		for range 4 {
			noErr(t, "Get", <-errs)
		}
	}
	noErr(t, "Pause", r.Pause())
	defer r.Resume()
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Get(dctx, []byte("k"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("Get on a stopped server with a 200ms deadline = %v after %v", err, time.Since(start))
	}
	dctx2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	_, err = s.PutIfAbsent(dctx2, []byte("new"), []byte("v"), 0)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, strata.ErrIndeterminate) {
		t.Fatalf("PutIfAbsent past its deadline after sending = %v, want DeadlineExceeded and ErrIndeterminate", err)
	}
	noErr(t, "Resume", r.Resume())
	if _, err := s.Get(ctx, []byte("k")); err != nil {
		t.Fatalf("Get after the server resumed: %v", err)
	}
}

// TestPutManyOrder: PutMany groups entries without expiry into MSET; the
// last of duplicate keys must still win, with its own TTL.
func TestPutManyOrder(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	s := open(t, redis.Options{URL: r.URL(), PipelineBatchSize: 3})
	ctx := t.Context()
	noErr(t, "PutMany", s.PutMany(ctx, []strata.Entry{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("a"), Value: []byte("2"), TTL: time.Hour},
		{Key: []byte("b"), Value: []byte("1"), TTL: time.Hour},
		{Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("c"), Value: []byte("1")},
		{Key: []byte("c"), Value: []byte("2")},
		{Key: []byte("d"), Value: []byte("1"), TTL: time.Hour},
	}))
	for key, want := range map[string]struct {
		v   string
		ttl bool
	}{"a": {"2", true}, "b": {"2", false}, "c": {"2", false}, "d": {"1", true}} {
		v, ttl, err := s.GetWithTTL(ctx, []byte(key))
		if err != nil || string(v) != want.v || (ttl > 0) != want.ttl {
			t.Errorf("%s = %q, TTL %v, %v; want %q with TTL %v", key, v, ttl, err, want.v, want.ttl)
		}
	}
	// Chunks: MSET a, SET a PX, SET b PX | MSET b c c | SET d PX.
	if st := s.RedisStats(); st.Pipelines != 1 {
		t.Errorf("%d pipelined round trips, want 1 (the other chunks are one command)", st.Pipelines)
	}
}

func TestClusterTLS(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{TLS: true, Password: "cluster-secret"})
	url := strings.Replace(clusterURL(c), "redis+cluster://", "rediss+cluster://", 1)
	s := open(t, redis.Options{URL: url, TLSCAFile: c.Certs.CA, KeyPrefix: "tls:"})
	ctx := t.Context()
	var entries []strata.Entry
	for i := range 100 {
		entries = append(entries, strata.Entry{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	noErr(t, "PutMany", s.PutMany(ctx, entries))
	n := 0
	for _, err := range s.Keys(ctx, nil) {
		noErr(t, "Keys", err)
		n++
	}
	if n < 100 {
		t.Fatalf("Keys yielded %d keys, want 100", n)
	}
	ok, err := s.CompareAndSwap(ctx, []byte("k1"), []byte("v"), []byte("w"), time.Minute)
	if err != nil || !ok {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	if _, err := redis.Open(ctx, &redis.Options{URL: url, DialTimeout: time.Second, MaxRetries: -1}); !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("Open without the CA = %v, want ErrUnavailable (certificate)", err)
	}
}
