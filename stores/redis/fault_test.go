package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/stores/redis"
)

// outcome is one operation of a traffic generator.
type outcome struct {
	write        bool
	start, end   time.Time
	err          error
	key, version string
}

// traffic runs workers until stopped, recording every outcome (of type
// O).
type traffic[O any] struct {
	mu       sync.Mutex
	outcomes []O
	stop     atomic.Bool
	wg       sync.WaitGroup
}

// runTraffic runs workers doing Put then Get on their own keys.
func runTraffic(s strata.Store, workers, keysEach int) *traffic[outcome] {
	tr := &traffic[outcome]{}
	ctx := context.Background()
	for w := range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; !tr.stop.Load(); i++ {
				key := fmt.Sprintf("w%d-k%d", w, i%keysEach)
				version := strconv.Itoa(i)
				start := time.Now()
				err := s.Put(ctx, []byte(key), []byte(version), 0)
				tr.record(outcome{write: true, start: start, end: time.Now(), err: err, key: key, version: version})
				start = time.Now()
				_, err = s.Get(ctx, []byte(key))
				if errors.Is(err, strata.ErrNotFound) {
					err = nil // a server restarted empty, or a write lost in a failover
				}
				tr.record(outcome{start: start, end: time.Now(), err: err, key: key})
			}
		}()
	}
	return tr
}

func (tr *traffic[O]) record(o O) {
	tr.mu.Lock()
	tr.outcomes = append(tr.outcomes, o)
	tr.mu.Unlock()
}

// count returns how many outcomes satisfy f.
func (tr *traffic[O]) count(f func(O) bool) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, o := range tr.outcomes {
		if f(o) {
			n++
		}
	}
	return n
}

func (tr *traffic[O]) halt() []O {
	tr.stop.Store(true)
	tr.wg.Wait()
	return tr.outcomes
}

// TestKillAndRestart kills redis-server under traffic: operations fail
// within their time budget with ErrUnavailable (or, for writes in flight at
// the kill, ErrIndeterminate), then succeed again after a restart.
func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	cfg := redis.Options{URL: r.URL(), DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 2, MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond}
	s := open(t, cfg)
	// One attempt takes at most a dial and a read; three attempts and
	// their backoffs, with slack for a loaded machine.
	const budget = 3*time.Second + 2*time.Second
	tr := runTraffic(s, 4, 20)
	wait.For(t, 10*time.Second, "traffic to flow", func() bool {
		return tr.count(func(o outcome) bool { return o.err == nil }) > 200
	})
	r.Kill()
	killed := time.Now()
	wait.For(t, 20*time.Second, "operations to fail after the kill", func() bool {
		return tr.count(func(o outcome) bool { return o.err != nil && o.start.After(killed) }) >= 20
	})
	// Fresh operations report the server unavailable, quickly.
	for _, err := range []error{
		s.Put(t.Context(), []byte("x"), []byte("v"), 0),
		func() error { _, err := s.PutIfAbsent(t.Context(), []byte("x"), []byte("v"), 0); return err }(),
		func() error { _, err := s.GetMany(t.Context(), [][]byte{[]byte("x")}); return err }(),
		s.Ping(t.Context()),
	} {
		if !errors.Is(err, strata.ErrUnavailable) || errors.Is(err, strata.ErrIndeterminate) {
			t.Fatalf("operation on a dead server = %v, want ErrUnavailable only", err)
		}
	}
	r.Restart(t)
	restarted := time.Now()
	wait.For(t, 20*time.Second, "operations to succeed after the restart", func() bool {
		return tr.count(func(o outcome) bool { return o.err == nil && o.start.After(restarted) }) >= 20
	})
	outcomes := tr.halt()
	failed := 0
	for _, o := range outcomes {
		if took := o.end.Sub(o.start); took > budget {
			t.Errorf("an operation took %v, over its budget %v (err %v)", took, budget, o.err)
		}
		if o.err == nil {
			continue
		}
		failed++
		switch {
		case errors.Is(o.err, strata.ErrUnavailable):
		case o.write && errors.Is(o.err, strata.ErrIndeterminate) && o.start.Before(killed):
			// In flight when the server died: it may have applied.
		default:
			t.Errorf("operation (write %v, started %v after the kill) failed with %v, want ErrUnavailable",
				o.write, o.start.Sub(killed), o.err)
		}
	}
	if failed == 0 {
		t.Fatal("no operation failed while the server was down")
	}
	t.Logf("%d operations, %d failed; %d retries", len(outcomes), failed, s.RedisStats().Retries)
	noErr(t, "Put after the restart", s.Put(t.Context(), []byte("after"), []byte("v"), 0))
}

// commandCalls returns how many times the server ran cmd since the last
// CONFIG RESETSTAT.
func commandCalls(tb testing.TB, c *goredis.Client, cmd string) int {
	tb.Helper()
	info, err := c.Info(tb.Context(), "commandstats").Result()
	noErr(tb, "INFO commandstats", err)
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestLostReplies puts a proxy that loses the server's reply after the
// server acted between the store and Redis. Non-idempotent operations
// report ErrIndeterminate and are not sent again; idempotent ones are
// retried and succeed.
func TestLostReplies(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	p := startProxy(t, r.Addr)
	s := open(t, redis.Options{URL: "redis://" + p.Addr() + "/0", PoolSize: 1, ReadTimeout: 300 * time.Millisecond,
		MaxRetries: 3, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond})
	direct := r.Client(t)
	ctx := t.Context()
	lose := func(mode int32) {
		t.Helper()
		noErr(t, "Ping", s.Ping(ctx)) // a live connection, so that the lost reply is the command's
		noErr(t, "CONFIG RESETSTAT", direct.ConfigResetStat(ctx).Err())
		p.failNextReply(mode)
	}
	indeterminate := func(what string, err error) {
		t.Helper()
		select {
		case <-p.dropped:
		default:
			t.Fatalf("%s: the proxy lost no reply", what)
		}
		if !errors.Is(err, strata.ErrIndeterminate) || errors.Is(err, strata.ErrUnavailable) || opErrors(err) != 1 {
			t.Fatalf("%s with its reply lost = %v, want ErrIndeterminate in one OpError", what, err)
		}
	}
	for name, mode := range map[string]int32{"reset": dropReset, "hang": dropHang} {
		key := "k-" + name

		lose(mode)
		_, err := s.PutIfAbsent(ctx, []byte(key), []byte("v1"), time.Hour)
		indeterminate("PutIfAbsent", err)
		if v, _ := direct.Get(ctx, key).Result(); v != "v1" || commandCalls(t, direct, "set") != 1 {
			t.Fatalf("%s: after PutIfAbsent: value %q, SET ran %d times; want v1, once", name, v, commandCalls(t, direct, "set"))
		}

		lose(mode)
		_, err = s.GetAndDelete(ctx, []byte(key))
		indeterminate("GetAndDelete", err)
		if n := direct.Exists(ctx, key).Val(); n != 0 || commandCalls(t, direct, "getdel") != 1 {
			t.Fatalf("%s: after GetAndDelete: EXISTS %d, GETDEL ran %d times; want 0, once", name, n, commandCalls(t, direct, "getdel"))
		}

		noErr(t, "SET", direct.Set(ctx, key, "1", 0).Err())
		// Once, so that the server knows the script: a lost NOSCRIPT
		// reply would also be indeterminate, but run nothing.
		_, err = s.CompareAndSwap(ctx, []byte("other"), nil, []byte("x"), 0)
		noErr(t, "CompareAndSwap", err)
		lose(mode)
		_, err = s.CompareAndSwap(ctx, []byte(key), []byte("1"), []byte("2"), 0)
		indeterminate("CompareAndSwap", err)
		scripts := commandCalls(t, direct, "evalsha") + commandCalls(t, direct, "eval")
		if v := direct.Get(ctx, key).Val(); v != "2" || scripts != 1 || commandCalls(t, direct, "set") != 1 {
			t.Fatalf("%s: after CompareAndSwap: value %q, script ran %d times; want 2, once", name, v, scripts)
		}

		// Idempotent operations are retried, and the retry is counted.
		retries := s.RedisStats().Retries
		lose(mode)
		noErr(t, "Put with a lost reply", s.Put(ctx, []byte(key), []byte("3"), 0))
		if got := s.RedisStats().Retries - retries; got != 1 || commandCalls(t, direct, "set") != 2 {
			t.Fatalf("%s: Put with a lost reply: %d retries, SET ran %d times; want 1 and 2", name, got, commandCalls(t, direct, "set"))
		}
		lose(mode)
		v, err := s.Get(ctx, []byte(key))
		if err != nil || string(v) != "3" {
			t.Fatalf("%s: Get with a lost reply = %q, %v; want the retry to read 3", name, v, err)
		}
		lose(mode)
		got, err := s.GetMany(ctx, [][]byte{[]byte(key), []byte("absent")})
		if err != nil || string(got[0]) != "3" || got[1] != nil {
			t.Fatalf("%s: GetMany with a lost reply = %q, %v", name, got, err)
		}
		<-p.dropped
		<-p.dropped
		<-p.dropped
	}
	// Without retries, a lost reply of an idempotent write is reported as
	// indeterminate too, never as a plain failure.
	s0 := open(t, redis.Options{URL: "redis://" + p.Addr() + "/0", PoolSize: 1, MaxRetries: -1})
	noErr(t, "Ping", s0.Ping(ctx))
	p.failNextReply(dropReset)
	err := s0.Put(ctx, []byte("k"), []byte("v"), 0)
	<-p.dropped
	if !errors.Is(err, strata.ErrIndeterminate) {
		t.Fatalf("Put without retries, reply lost = %v, want ErrIndeterminate", err)
	}
}

// clusterConfig is a Cluster store with short timeouts, for fault tests.
func clusterConfig(c *testserver.RedisCluster) redis.Options {
	return redis.Options{URL: clusterURL(c), DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 4, MinRetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 300 * time.Millisecond}
}

// waitReplicated waits until every replica of master has all its writes.
func waitReplicated(tb testing.TB, master *testserver.Redis) {
	tb.Helper()
	c := master.Client(tb)
	wait.For(tb, 10*time.Second, "replication to catch up", func() bool {
		info := c.Info(tb.Context(), "replication").Val()
		var offset string
		var replicas []string
		for line := range strings.Lines(info) {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				offset = v
			}
			if strings.HasPrefix(line, "slave") && strings.Contains(line, "offset=") {
				replicas = append(replicas, line)
			}
		}
		for _, r := range replicas {
			if !strings.Contains(r, "offset="+offset+",") {
				return false
			}
		}
		return len(replicas) > 0 && offset != ""
	})
}

// TestClusterFailover kills a master that has a replica under traffic: the
// store recovers once the replica has taken over.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3, Replicas: 1})
	s := open(t, clusterConfig(c))
	ctx := t.Context()
	var entries []strata.Entry
	for i := range 200 {
		entries = append(entries, strata.Entry{Key: fmt.Appendf(nil, "seed%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	noErr(t, "PutMany", s.PutMany(ctx, entries))
	victim := c.MasterOf(t, "seed0")
	waitReplicated(t, victim)

	tr := runTraffic(s, 4, 50)
	wait.For(t, 10*time.Second, "traffic to flow", func() bool {
		return tr.count(func(o outcome) bool { return o.err == nil }) > 200
	})
	victim.Kill()
	killed := time.Now()
	c.WaitFailover(t, victim)
	t.Logf("failover took %v", time.Since(killed))
	// The store recovers: writes to the victim's slots work again.
	wait.For(t, 30*time.Second, "writes to the failed master's slots", func() bool {
		return s.Put(ctx, []byte("seed0"), []byte("after"), 0) == nil
	})
	recovered := time.Now()
	wait.For(t, 10*time.Second, "traffic to succeed after the failover", func() bool {
		return tr.count(func(o outcome) bool { return o.err == nil && o.start.After(recovered) }) >= 50
	})
	outcomes := tr.halt()
	failed := 0
	for _, o := range outcomes {
		if o.err == nil {
			continue
		}
		failed++
		if !errors.Is(o.err, strata.ErrUnavailable) && !(o.write && errors.Is(o.err, strata.ErrIndeterminate)) {
			t.Errorf("operation failed with %v, want ErrUnavailable (or ErrIndeterminate for a write)", o.err)
		}
		if o.start.Before(killed) && o.end.Before(killed) {
			t.Errorf("operation failed before the kill: %v", o.err)
		}
	}
	got, err := s.GetMany(ctx, [][]byte{[]byte("seed0"), []byte("seed1"), []byte("seed199")})
	if err != nil || string(got[0]) != "after" || string(got[1]) != "v1" || string(got[2]) != "v199" {
		t.Fatalf("GetMany after the failover = %q, %v (the seeds were replicated before the kill)", got, err)
	}
	t.Logf("%d operations, %d failed during the failover; %d retries", len(outcomes), failed, s.RedisStats().Retries)
	// The old master comes back as a replica: nothing is left dialing a
	// dead address when the test ends.
	victim.Restart(t)
	c.WaitAgreed(t)
}

// TestClusterResharding moves slots between masters under traffic: no
// acknowledged write is lost, and reads and batches keep working through
// the ASK and MOVED redirections.
func TestClusterResharding(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, nil)
	s := open(t, clusterConfig(c))
	ctx := t.Context()
	const workers, keysEach = 6, 100
	tr := runTraffic(s, workers, keysEach)
	// A reader of batches, through MGET per slot.
	var readerErrs atomic.Int64
	var readerErr atomic.Value
	stopReader := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		keys := make([][]byte, 200)
		for {
			select {
			case <-stopReader:
				return
			default:
			}
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "w%d-k%d", rand.IntN(workers), rand.IntN(keysEach))
			}
			if _, err := s.GetMany(ctx, keys); err != nil {
				readerErrs.Add(1)
				readerErr.Store(err)
			}
		}
	}()
	wait.For(t, 10*time.Second, "traffic to flow", func() bool {
		return tr.count(func(o outcome) bool { return o.err == nil }) > 500
	})
	masters := c.Masters(t)
	start := time.Now()
	c.Reshard(t, masters[0], masters[1], 3000)
	c.Reshard(t, masters[2], masters[0], 2000)
	done := time.Now()
	t.Logf("resharding took %v", done.Sub(start))
	wait.For(t, 10*time.Second, "traffic after the resharding", func() bool {
		return tr.count(func(o outcome) bool { return o.err == nil && o.start.After(done) }) > 200
	})
	close(stopReader)
	wg.Wait()
	outcomes := tr.halt()

	during := 0
	acked := map[string]int{}   // last acknowledged version per key
	attempt := map[string]int{} // last version tried per key
	for _, o := range outcomes {
		if o.start.After(start) && o.end.Before(done) && o.err == nil {
			during++
		}
		if !o.write {
			if o.err != nil {
				t.Errorf("Get during the resharding: %v", o.err)
			}
			continue
		}
		v, _ := strconv.Atoi(o.version)
		attempt[o.key] = max(attempt[o.key], v)
		if o.err != nil {
			t.Errorf("Put during the resharding: %v", o.err)
			continue
		}
		acked[o.key] = max(acked[o.key], v)
	}
	if during < 100 {
		t.Fatalf("only %d operations succeeded during the resharding: it did not happen under traffic", during)
	}
	if n := readerErrs.Load(); n > 0 {
		t.Errorf("%d GetMany calls failed during the resharding, last: %v", n, readerErr.Load())
	}
	for key, v := range acked {
		got, err := s.Get(ctx, []byte(key))
		if err != nil {
			t.Fatalf("Get(%s) after the resharding: %v; its write of version %d was acknowledged", key, err, v)
		}
		n, _ := strconv.Atoi(string(got))
		if n < v || n > attempt[key] {
			t.Fatalf("Get(%s) = %d after the resharding; version %d was acknowledged, %d the last tried", key, n, v, attempt[key])
		}
	}
	if n, err := s.KeyCount(ctx); err != nil || n != workers*keysEach {
		t.Fatalf("KeyCount after the resharding = %d, %v; want %d", n, err, workers*keysEach)
	}
	retries := s.RedisStats().Retries
	if retries == 0 {
		t.Error("no MOVED or ASK redirection counted as a retry during the resharding")
	}
	t.Logf("%d operations, %d during the resharding; %d retries", len(outcomes), during, retries)
}
