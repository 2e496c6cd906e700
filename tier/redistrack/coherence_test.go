package redistrack_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"
)

// The cross-process coherence test runs the writer in another OS process:
// this test binary, re-executed with these variables set (TestMain hands
// over to writerMain).
const (
	envWriter  = "STRATA_TIER_WRITER" // "tier" or "client"
	envAddrs   = "STRATA_TIER_ADDRS"  // comma-separated; several for a cluster
	envCluster = "STRATA_TIER_CLUSTER"
	envPrefix  = "STRATA_TIER_PREFIX"
)

// invalidationBound is the documented delivery bound: no read that starts
// this long after another process's write returned may return the old
// value, when the tier has not written the key itself lately. Under the
// race detector, on a busy machine, the tracking goroutine can wait longer
// for a CPU: the tests then allow 10 times as much.
var invalidationBound = func() time.Duration {
	if raceEnabled {
		return 500 * time.Millisecond
	}
	return 50 * time.Millisecond
}()

// staleBound is the documented bound for a write by another process of a
// key this tier wrote within EchoWindow: its report is a possible echo,
// verified against Redis within VerifyTimeout of its delivery.
var staleBound = invalidationBound + tier.DefaultVerifyTimeout

// writerMain reads "key value" lines on stdin, writes each (through its own
// tier, or with a plain SET) and answers "done <unix nanoseconds>" once the
// write returned.
func writerMain() int {
	ctx := context.Background()
	addrs := strings.Split(os.Getenv(envAddrs), ",")
	prefix := os.Getenv(envPrefix)
	var client goredis.UniversalClient
	if os.Getenv(envCluster) != "" {
		client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	} else {
		client = goredis.NewClient(&goredis.Options{Addr: addrs[0]})
	}
	defer client.Close()
	write := func(key, value string) error { return client.Set(ctx, prefix+key, value, 0).Err() }
	if os.Getenv(envWriter) == "tier" {
		s, err := redis.New(client, &redis.Options{KeyPrefix: prefix})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The store is a redistrack.RedisBacked: the tier finds the
		// invalidator this package registers.
		tr, err := tier.New(s, &tier.Options{Invalidation: tier.InvalidationRequired})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer tr.Close()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = tr.WaitTracking(wctx)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		write = func(key, value string) error { return tr.Put(ctx, []byte(key), []byte(value), strata.NoExpiry) }
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		key, value, _ := strings.Cut(in.Text(), " ")
		if err := write(key, value); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("done %d\n", time.Now().UnixNano())
	}
	return 0
}

// writer is a write made by another process: it returns the time the
// write returned in that process.
type writer func(key, value string) time.Time

// startWriter starts the writer process and returns its write function.
func startWriter(t *testing.T, mode string, addrs []string, isCluster bool, prefix string) writer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWriter+"="+mode, envAddrs+"="+strings.Join(addrs, ","), envPrefix+"="+prefix)
	if isCluster {
		cmd.Env = append(cmd.Env, envCluster+"=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process: %v", err)
		}
	})
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("writer process did not start: %q", out.Text())
	}
	return func(key, value string) time.Time {
		if _, err := fmt.Fprintf(stdin, "%s %s\n", key, value); err != nil {
			t.Fatal(err)
		}
		if !out.Scan() {
			t.Fatal("writer process ended")
		}
		ns, err := strconv.ParseInt(strings.TrimPrefix(out.Text(), "done "), 10, 64)
		if err != nil {
			t.Fatalf("writer process said %q", out.Text())
		}
		return time.Unix(0, ns)
	}
}

// cliWriter writes with redis-cli, one process per write.
func cliWriter(t *testing.T, run func(args ...string) string, prefix string) writer {
	return func(key, value string) time.Time {
		if out := run("SET", prefix+key, value); strings.TrimSpace(out) != "OK" {
			t.Fatalf("redis-cli SET: %q", out)
		}
		return time.Now()
	}
}

// coherence measures how long after another process's write this
// process's tier still returns the old value, over writes rounds.
type coherence struct {
	bound           time.Duration   // the documented bound that applies
	lags            []time.Duration // first new read's start minus the write's return (>= 0)
	staleAfterWrite int             // old values read by reads started after the write returned
	staleAfterBound int             // ... started more than bound after it
}

// measureCoherence has write (another process) change keys that this
// process's tier holds in L1. With ownFirst the tier writes each key
// itself just before (its L1 entry comes from its own write, and the
// other process's report looks like the echo of that write: it is
// verified, and the bound is staleBound); otherwise the entry comes from
// another client's write and a read (the bound is invalidationBound).
func measureCoherence(t *testing.T, f *redisFixture, write writer, rounds int, ownFirst bool) coherence {
	t.Helper()
	c := coherence{bound: invalidationBound}
	if ownFirst {
		c.bound = staleBound
	}
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
		f.set(keys[i], "0")
	}
	for _, k := range keys {
		f.eventually(k, "0") // within the invalidation bound
	}
	for i := 1; i <= rounds; i++ {
		key, old, value := keys[i%len(keys)], "0", strconv.Itoa(i)
		if i > len(keys) {
			old = strconv.Itoa(i - len(keys))
		}
		if ownFirst {
			old = "own" + value
			if err := f.tier.Put(f.ctx, []byte(key), []byte(old), strata.NoExpiry); err != nil {
				t.Fatal(err)
			}
		}
		f.cache(key, old) // the old value is in L1 when the write happens
		done := make(chan time.Time, 1)
		go func() { done <- write(key, value) }()
		var wrote time.Time
		var stale []time.Time
		began := time.Now()
		for {
			start := time.Now()
			if start.Sub(began) > 10*time.Second {
				t.Fatalf("Get(%q) still returns %q 10s after another process wrote %q", key, old, value)
			}
			v, err := f.tier.Get(f.ctx, []byte(key))
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(v) == value {
				if wrote.IsZero() {
					wrote = <-done
				}
				c.lags = append(c.lags, max(0, start.Sub(wrote)))
				break
			}
			if string(v) != old {
				t.Fatalf("Get(%q) = %q; want %q or %q", key, v, old, value)
			}
			stale = append(stale, start)
			// Let the tracking goroutine run: this loop of L1 hits never
			// blocks, and parallel tests keep the other CPU busy.
			runtime.Gosched()
			if wrote.IsZero() {
				select {
				case wrote = <-done:
				default:
				}
			}
		}
		for _, s := range stale {
			if s.After(wrote) {
				c.staleAfterWrite++
			}
			if s.After(wrote.Add(c.bound)) {
				c.staleAfterBound++
			}
		}
	}
	return c
}

func (c coherence) report(t *testing.T, what string) {
	t.Helper()
	slices.Sort(c.lags)
	q := func(p float64) time.Duration { return c.lags[min(len(c.lags)-1, int(p*float64(len(c.lags))))] }
	t.Logf("%s: %d writes, invalidation lag p50 %v p99 %v max %v; stale reads after the write returned %d, after %v: %d",
		what, len(c.lags), q(0.5), q(0.99), c.lags[len(c.lags)-1], c.staleAfterWrite, c.bound, c.staleAfterBound)
	if c.staleAfterBound != 0 {
		t.Errorf("%s: %d reads returned the old value more than %v after the write returned", what, c.staleAfterBound, c.bound)
	}
}

// TestCrossProcessCoherence writes from another OS process (a tier, a
// plain client, redis-cli) while this process reads the key it has in L1:
// an entry it filled from another client's write, or (AfterOwnWrite) one
// it wrote itself just before.
func TestCrossProcessCoherence(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	for _, tc := range []struct {
		name      string
		target    redisTarget
		addrs     []string
		isCluster bool
		cli       func(args ...string) string
	}{
		{"Standalone", standalone(r), []string{r.Addr}, false, func(args ...string) string { return r.CLI(t, args...) }},
		{"Cluster", cluster(c), c.Addrs(), true, func(args ...string) string { return c.CLI(t, args...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"tier", "client", "redis-cli", "tier/AfterOwnWrite", "client/AfterOwnWrite", "redis-cli/AfterOwnWrite"} {
				t.Run(mode, func(t *testing.T) {
					who, own := strings.CutSuffix(mode, "/AfterOwnWrite")
					f := newRedisFixture(t, tc.target, tier.Options{})
					var w writer
					rounds := 300
					if who == "redis-cli" {
						w, rounds = cliWriter(t, tc.cli, f.prefix), 60
					} else {
						w = startWriter(t, who, tc.addrs, tc.isCluster, f.prefix)
					}
					measureCoherence(t, f, w, rounds, own).report(t, tc.name+"/"+mode)
				})
			}
		})
	}
}
