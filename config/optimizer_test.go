package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

// The configuration file of the stream processors whose state layer strata
// replaces, as their operators have it in production: testdata holds it
// verbatim, with the hosts redis-1, redis-2 and redis-3.
const optimizerFile = "testdata/optimizer.toml"

var optimizerHosts = []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"}

func readOptimizer(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(optimizerFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withAddrs returns doc with only its three addresses replaced by addrs.
func withAddrs(t *testing.T, doc []byte, addrs ...string) []byte {
	t.Helper()
	for i, h := range optimizerHosts {
		if bytes.Count(doc, []byte(h)) != 1 {
			t.Fatalf("%s does not hold %s once", optimizerFile, h)
		}
		doc = bytes.Replace(doc, []byte(h), []byte(addrs[i]), 1)
	}
	return doc
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// parseOptimizer parses doc and checks the result does not depend on the
// hosts: every key of the file means what it meant there.
func parseOptimizer(t *testing.T, doc []byte, vars map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(doc, env(vars))
	if err != nil {
		t.Fatalf("Parse of the operators' file: %v", err)
	}
	return cfg
}

func TestOptimizerFileOnCluster(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "checkpoints")
	cfg := parseOptimizer(t, withAddrs(t, readOptimizer(t), c.Addrs()...), map[string]string{"CHECKPOINT_DIR": dir})

	s, err := config.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	rs, ok := s.(*redis.Store)
	if !ok {
		t.Fatalf("Open gave a %T, want a *redis.Store", s)
	}

	// The connection settings reached the go-redis client.
	cl, ok := rs.Client().(*goredis.ClusterClient)
	if !ok {
		t.Fatalf("cluster_mode = true gave a %T, want a *goredis.ClusterClient", rs.Client())
	}
	co := cl.Options()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"seed nodes (urls)", co.Addrs, c.Addrs()},
		{"MinIdleConns (min_connections)", co.MinIdleConns, 10},
		{"PoolSize (max_connections)", co.PoolSize, 50},
		{"MaxActiveConns (max_connections)", co.MaxActiveConns, 50},
		{"DialTimeout (connect_timeout_secs)", co.DialTimeout, 5 * time.Second},
		{"ReadTimeout (read_timeout_secs)", co.ReadTimeout, 3 * time.Second},
		{"WriteTimeout (write_timeout_secs)", co.WriteTimeout, 3 * time.Second},
		{"MinRetryBackoff (retry_base_delay_ms)", co.MinRetryBackoff, 100 * time.Millisecond},
		{"MaxRetryBackoff (retry_max_delay_secs)", co.MaxRetryBackoff, 5 * time.Second},
		{"TLSConfig (tls_enabled = false)", co.TLSConfig == nil, true},
		{"go-redis's own retries (the store's hook retries instead)", co.MaxRetries, -1},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("client %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// And the store's.
	o := rs.Options()
	if o.MaxRetries != 3 || o.MinRetryBackoff != 100*time.Millisecond || o.MaxRetryBackoff != 5*time.Second ||
		o.PipelineBatchSize != 100 || o.KeyPrefix != "llm_optimizer:" || o.DefaultTTL != time.Hour {
		t.Errorf("store options = %v", o)
	}

	// Writes and reads go through, under the prefix, with the default TTL.
	if err := s.Put(ctx, []byte("window/orders/1"), []byte("42"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, []byte("window/orders/1")); err != nil || string(v) != "42" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	key := "llm_optimizer:window/orders/1"
	m := c.MasterOf(t, key)
	if got := m.CLI(t, "GET", key); got != "42" {
		t.Fatalf("redis-cli GET %s = %q", key, got)
	}
	if pttl, err := strconv.Atoi(m.CLI(t, "PTTL", key)); err != nil || pttl <= 3590_000 || pttl > 3600_000 {
		t.Fatalf("redis-cli PTTL %s = %d, %v; want default_ttl_secs = 3600", key, pttl, err)
	}
	// pipeline_batch_size = 100: 250 keys take three round trips.
	keys := make([][]byte, 250)
	entries := make([]strata.Entry, len(keys))
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k%d", i)
		entries[i] = strata.Entry{Key: keys[i], Value: []byte("v"), TTL: strata.NoExpiry}
	}
	if err := rs.PutMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	before := rs.RedisStats().Pipelines
	vals, err := rs.GetMany(ctx, keys)
	if err != nil || len(vals) != 250 || string(vals[249]) != "v" {
		t.Fatalf("GetMany = %d values, %v", len(vals), err)
	}
	if n := rs.RedisStats().Pipelines - before; n != 3 {
		t.Errorf("GetMany of 250 keys took %d round trips, want 3 (pipeline_batch_size = 100)", n)
	}

	// The [checkpoint] table, with CHECKPOINT_DIR as the deployment sets it.
	want := checkpoint.Options{Dir: dir, Interval: 10 * time.Second, MinInterval: 10 * time.Second,
		MaxCheckpoints: 10, Compression: checkpoint.CompressionZstd}
	if got := checkpoint.OptionsFromConfig(cfg.Checkpoint); !reflect.DeepEqual(got, want) {
		t.Errorf("checkpoint options = %+v, want %+v", got, want)
	}
	coord, err := checkpoint.FromConfig(cfg, s, nil)
	if err != nil || coord == nil {
		t.Fatalf("FromConfig = %v, %v; want a coordinator (enabled = true)", coord, err)
	}
	man, err := coord.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if man.Compression != "zstd" || man.Entries != 251 || coord.Dir() != dir {
		t.Errorf("checkpoint %+v in %s", man, coord.Dir())
	}
	if _, err := coord.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrTooSoon) {
		t.Errorf("a second checkpoint at once = %v, want ErrTooSoon (min_interval_secs = 10)", err)
	}
	if err := coord.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if infos, err := coord.List(); err != nil || len(infos) != 2 {
		t.Errorf("checkpoints in %s: %d, %v", dir, len(infos), err)
	}

	// REDIS_URL, from the deployment's secret, replaces the urls: here one
	// seed node of the same cluster.
	cfg = parseOptimizer(t, readOptimizer(t), map[string]string{"REDIS_URL": "redis://" + c.Addrs()[1]})
	s2, err := config.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open with REDIS_URL: %v", err)
	}
	defer s2.Close()
	if v, err := s2.Get(ctx, []byte("window/orders/1")); err != nil || string(v) != "42" {
		t.Fatalf("Get through REDIS_URL = %q, %v", v, err)
	}
	if _, ok := s2.(*redis.Store).Client().(*goredis.ClusterClient); !ok {
		t.Fatal("REDIS_URL with cluster_mode = true did not open a cluster client")
	}
}

// cluster_mode = false with one URL opens one server, and REDIS_URL (with
// the password, as a secret holds it) replaces the url.
func TestOptimizerFileStandalone(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{Password: "hunter2"})
	ctx := t.Context()
	doc := readOptimizer(t)
	doc = bytes.Replace(doc, []byte(`urls = ["redis://redis-1:6379", "redis://redis-2:6379", "redis://redis-3:6379"]`),
		[]byte(`urls = ["redis://:hunter2@`+r.Addr+`"]`), 1)
	doc = bytes.Replace(doc, []byte("cluster_mode = true"), []byte("cluster_mode = false"), 1)
	for name, vars := range map[string]map[string]string{
		"urls":      nil,
		"REDIS_URL": {"REDIS_URL": r.URL()},
	} {
		d := doc
		if vars != nil {
			d = withAddrs(t, readOptimizer(t), "unreachable.invalid:1", "unreachable.invalid:2", "unreachable.invalid:3")
			d = bytes.Replace(d, []byte("cluster_mode = true"), []byte("cluster_mode = false"), 1)
		}
		cfg := parseOptimizer(t, d, vars)
		s, err := config.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		cl, ok := s.(*redis.Store).Client().(*goredis.Client)
		if !ok {
			t.Fatalf("%s: cluster_mode = false gave a %T, want a *goredis.Client", name, s.(*redis.Store).Client())
		}
		if cl.Options().PoolSize != 50 || cl.Options().MinIdleConns != 10 {
			t.Errorf("%s: pool %d..%d, want 10..50", name, cl.Options().MinIdleConns, cl.Options().PoolSize)
		}
		if err := s.Put(ctx, []byte(name), []byte("v"), 0); err != nil {
			t.Fatalf("%s: Put: %v", name, err)
		}
		s.Close()
		if got := r.CLI(t, "GET", "llm_optimizer:"+name); got != "v" {
			t.Fatalf("%s: redis-cli GET = %q", name, got)
		}
	}
	// Several urls without cluster mode name no single server.
	bad := bytes.Replace(readOptimizer(t), []byte("cluster_mode = true"), []byte("cluster_mode = false"), 1)
	if _, err := config.Parse(bad, nil); !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "urls: 3 hosts without cluster mode") {
		t.Fatalf("three urls, cluster_mode = false: %v", err)
	}
}

// With unreachable hosts the file still loads: Open fails as a server that
// does not answer does, not as a bad configuration.
func TestOptimizerFileUnreachable(t *testing.T) {
	t.Parallel()
	t.Run("verbatim", func(t *testing.T) {
		// redis-1..3 do not resolve here.
		cfg := parseOptimizer(t, readOptimizer(t), nil)
		s, err := config.Open(t.Context(), cfg)
		if err == nil {
			s.Close()
			t.Fatal("Open with the hosts redis-1..3 succeeded")
		}
		if !errors.Is(err, strata.ErrUnavailable) || errors.Is(err, strata.ErrInvalidConfig) {
			t.Fatalf("Open = %v, want ErrUnavailable and no configuration error", err)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		// Hosts that resolve but never complete a connection: Open waits
		// out the 5s connect timeout (connect_timeout_secs), then fails.
		cfg := parseOptimizer(t, withAddrs(t, readOptimizer(t), blackhole(t), blackhole(t), blackhole(t)), nil)
		start := time.Now()
		s, err := config.Open(t.Context(), cfg)
		d := time.Since(start)
		if err == nil {
			s.Close()
			t.Fatal("Open of hosts that never answer succeeded")
		}
		if !errors.Is(err, strata.ErrUnavailable) || errors.Is(err, strata.ErrInvalidConfig) {
			t.Fatalf("Open = %v, want ErrUnavailable and no configuration error", err)
		}
		if d < 5*time.Second || d > 60*time.Second {
			t.Fatalf("Open failed after %v, want after the 5s connect timeout", d)
		}
		t.Logf("Open failed after %v: %v", d.Round(time.Millisecond), err)
	})
}

// blackhole returns the address of a listener whose accept queue is full,
// so that connecting to it hangs until the dialer's timeout (the kernel
// drops the SYNs), as with a host that does not answer.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue (backlog 0 holds one connection); a connection
	// that does not complete within 200ms shows it is full.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Fatalf("the accept queue of %s does not fill", addr)
		}
	}
}

// enabled = false: the process takes no checkpoints.
func TestOptimizerFileCheckpointsDisabled(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	doc := bytes.Replace(readOptimizer(t), []byte("enabled = true"), []byte("enabled = false"), 1)
	cfg := parseOptimizer(t, doc, map[string]string{"CHECKPOINT_DIR": dir})
	if cfg.Checkpoint.Enabled {
		t.Fatal("enabled = false parsed as enabled")
	}
	coord, err := checkpoint.FromConfig(cfg, nil, nil)
	if coord != nil || err != nil {
		t.Fatalf("FromConfig with enabled = false = %v, %v; want nil, nil", coord, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the checkpoint directory was created: %v", err)
	}
	// Without CHECKPOINT_DIR the file's directory stands.
	cfg = parseOptimizer(t, readOptimizer(t), nil)
	if cfg.Checkpoint.Dir != "/var/lib/optimizer/checkpoints" || !cfg.Checkpoint.Enabled {
		t.Fatalf("checkpoint = %v", cfg.Checkpoint)
	}
}

// Each setting has two spellings, strata's and the operators'; giving both
// is an error naming both.
func TestOptimizerFileSpellings(t *testing.T) {
	same := func(a, b string) {
		t.Helper()
		ca := parseOptimizer(t, []byte(a), nil)
		cb := parseOptimizer(t, []byte(b), nil)
		oa, ob := redisOptions(t, ca), redisOptions(t, cb)
		if !reflect.DeepEqual(oa, ob) || !reflect.DeepEqual(ca.Checkpoint, cb.Checkpoint) || ca.State != cb.State {
			t.Errorf("%q and %q differ:\n%v %v\n%v %v", a, b, oa, ca.Checkpoint, ob, cb.Checkpoint)
		}
	}
	const head = "[state]\nbackend = \"redis\"\n[state.redis]\n"
	for _, pair := range [][2]string{
		{"default_ttl_secs = 3600", `default_ttl = "1h"`},
		{"min_connections = 10", "pool_min_conns = 10"},
		{"max_connections = 50", "pool_max_conns = 50"},
		{"connect_timeout_secs = 5", `connect_timeout = "5s"`},
		{"read_timeout_secs = 3", `read_timeout = "3s"`},
		{"write_timeout_secs = 3", `write_timeout = "3s"`},
		{"retry_base_delay_ms = 100", `retry_min_backoff = "100ms"`},
		{"retry_max_delay_secs = 5", `retry_max_backoff = "5s"`},
		{"tls_enabled = true", "tls = true"},
	} {
		same(head+"url = \"redis://h\"\n"+pair[0]+"\n", head+"url = \"redis://h\"\n"+pair[1]+"\n")
		doc := head + "url = \"redis://h\"\n" + pair[0] + "\n" + pair[1] + "\n"
		_, err := config.Parse([]byte(doc), nil)
		a, b := "state.redis."+strings.Fields(pair[0])[0], "state.redis."+strings.Fields(pair[1])[0]
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), b+" and "+a) && !strings.Contains(err.Error(), a+" and "+b) {
			t.Errorf("both %s and %s: %v", a, b, err)
		}
	}
	same("[state]\ndefault_ttl_secs = 60\n", "[state]\ndefault_ttl = \"1m\"\n")
	same("[checkpoint]\ninterval_secs = 10\nmin_interval_secs = 5\n", "[checkpoint]\ninterval = \"10s\"\nmin_interval = \"5s\"\n")
	for _, doc := range []string{
		"[checkpoint]\ninterval_secs = 10\ninterval = \"10s\"\n",
		"[checkpoint]\nmin_interval_secs = 10\nmin_interval = \"10s\"\n",
		head + "url = \"redis://h\"\nurls = [\"redis://h\"]\n",
	} {
		if _, err := config.Parse([]byte(doc), nil); !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "two spellings") {
			t.Errorf("Parse(%q) = %v, want both spellings named", doc, err)
		}
	}
	for _, c := range []struct{ doc, want string }{
		{head + "urls = [\"redis://h1:1\", \"redis://:pw@h2:2\"]\ncluster_mode = true\n", "urls[1]"},
		{head + "urls = [\"redis+cluster://h1:1,h2:2\"]\n", "one node per URL"},
		{head + "urls = \"redis://h\"\n", "state.redis.urls: want an array of strings"},
		{head + "url = \"redis://h\"\nconnect_timeout_secs = \"5s\"\n", "state.redis.connect_timeout_secs: want a whole number of seconds"},
		{head + "url = \"redis://h\"\nretry_base_delay_ms = 1.5\n", "state.redis.retry_base_delay_ms: want a whole number of milliseconds"},
		{head + "url = \"redis://h\"\nmin_conections = 1\n", "state.redis.min_conections: unknown key (accepted: "},
		{"[checkpoint]\nenabled = \"yes\"\n", "checkpoint.enabled: want true or false"},
	} {
		_, err := config.Parse([]byte(c.doc), nil)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalidConfig mentioning %q", c.doc, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("Parse(%q) error shows a password: %v", c.doc, err)
		}
	}
	// The unknown-key message lists both spellings of each setting.
	_, err := config.Parse([]byte(head+"url = \"redis://h\"\nmin_conections = 1\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "pool_min_conns (or min_connections)") || !strings.Contains(err.Error(), "urls") {
		t.Errorf("unknown key message = %v", err)
	}
}

// redisOptions returns the Options of a config's [state.redis] table.
func redisOptions(t *testing.T, cfg *config.Config) redis.Options {
	t.Helper()
	if !cfg.Section("redis").Defined() {
		return redis.Options{}
	}
	o, err := redis.OptionsFromConfig(cfg)
	if err != nil {
		t.Fatalf("OptionsFromConfig: %v", err)
	}
	return *o
}
