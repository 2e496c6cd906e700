package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

// isCtxErr reports whether err is the end of the caller's context.
func isCtxErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// TestAutoPipelineReplies checks every reply against its own request while
// many goroutines share round trips, a quarter of them with contexts that
// end at random moments (before sending, while queued, in flight). Each
// goroutine has its own keys, and every value names its key, so that a
// reply delivered to another caller shows. Half the keys are written only
// with contexts that do not end: their reads must return exactly the last
// write. The others may have writes that were abandoned in flight (and
// may land later): their reads must return one of the values written.
func TestAutoPipelineReplies(t *testing.T) {
	t.Parallel()
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		r := testserver.StartRedis(t, nil)
		s := open(t, redis.Options{URL: r.URL(), KeyPrefix: "rep:"})
		checkReplies(t, s, r.Client(t))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := testserver.StartRedisCluster(t, nil)
		s := open(t, redis.Options{URL: clusterURL(c), KeyPrefix: "rep:"})
		checkReplies(t, s, c.Client(t))
	})
}

func checkReplies(t *testing.T, s *redis.Store, direct goredis.UniversalClient) {
	const (
		workers  = 32
		keysEach = 8 // keys 0-3 strict, 4-7 loose
		run      = 2 * time.Second
	)
	base := t.Context()
	deadline := time.Now().Add(run)
	var ops, abandoned, failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	strictValues := make([]map[string]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			key := func(k int) string { return fmt.Sprintf("w%d:k%d", w, k) }
			strict := map[string]string{}           // key -> value ("" absent)
			written := map[string]map[string]bool{} // loose key -> values it may hold ("" absent)
			for k := keysEach / 2; k < keysEach; k++ {
				written[key(k)] = map[string]bool{"": true}
			}
			// check verifies the reply v (nil: absent) of a read of k.
			check := func(op, k string, v []byte) {
				got := string(v)
				if v != nil && !strings.HasPrefix(got, k+"=") {
					fail("%s(%s) = %q: another key's value", op, k, got)
					return
				}
				if set, loose := written[k]; loose {
					if !set[got] {
						fail("%s(%s) = %q, never written there", op, k, got)
					}
					return
				}
				if got != strict[k] {
					fail("%s(%s) = %q, want %q", op, k, got, strict[k])
				}
			}
			for seq := 0; time.Now().Before(deadline); seq++ {
				ops.Add(1)
				ctx, cancel := base, context.CancelFunc(func() {})
				cancellable := rng.IntN(4) == 0
				if cancellable {
					ctx, cancel = context.WithTimeout(base, time.Duration(rng.IntN(400))*time.Microsecond)
				}
				k := key(rng.IntN(keysEach))
				_, loose := written[k]
				writable := loose || !cancellable
				value := fmt.Sprintf("%s=%d", k, seq)
				var err error
				switch op := rng.IntN(10); {
				case op < 3 && writable:
					// The caller owns its buffers again once Put returns,
					// whatever the outcome: scribble on them.
					kb, vb := []byte(k), []byte(value)
					err = s.Put(ctx, kb, vb, 0)
					scribble(kb, vb)
					switch {
					case loose:
						written[k][value] = true
					case err == nil:
						strict[k] = value
					}
				case op < 4 && writable:
					err = s.Delete(ctx, []byte(k))
					switch {
					case loose:
						written[k][""] = true
					case err == nil:
						strict[k] = ""
					}
				case op < 5 && !loose && !cancellable:
					var old []byte
					if v := strict[k]; v != "" {
						old = []byte(v)
					}
					var ok bool
					ok, err = s.CompareAndSwap(ctx, []byte(k), old, []byte(value), 0)
					if err == nil {
						if !ok {
							fail("CompareAndSwap(%s, %q) = false; the key held it", k, old)
						}
						strict[k] = value
					}
				case op < 6:
					fresh := fmt.Sprintf("w%d:fresh%d", w, seq)
					var ok bool
					ok, err = s.PutIfAbsent(ctx, []byte(fresh), []byte(fresh+"=1"), time.Minute)
					if err == nil && !ok {
						fail("PutIfAbsent(%s) = false on a fresh key", fresh)
					}
				case op < 8:
					keys := make([][]byte, keysEach)
					for i := range keys {
						keys[i] = []byte(key(i))
					}
					var vals [][]byte
					vals, err = s.GetMany(ctx, keys)
					if err == nil {
						for i, v := range vals {
							check("GetMany", key(i), v)
						}
					}
				default:
					var v []byte
					v, err = s.Get(ctx, []byte(k))
					if errors.Is(err, strata.ErrNotFound) {
						v, err = nil, nil
					}
					if err == nil {
						check("Get", k, v)
					}
				}
				cancel()
				switch {
				case err == nil:
				case cancellable && isCtxErr(err):
					abandoned.Add(1)
				default:
					fail("operation %d on %s: %v", seq, k, err)
				}
			}
			strictValues[w] = strict
		}()
	}
	wg.Wait()
	// What the store acknowledged is what the server holds.
	for w, strict := range strictValues {
		for k, want := range strict {
			got, err := direct.Get(base, "rep:"+k).Result()
			if errors.Is(err, goredis.Nil) {
				got, err = "", nil
			}
			if err != nil || got != want {
				t.Errorf("worker %d: server holds %s = %q (%v), want %q", w, k, got, err, want)
			}
		}
	}
	st := s.RedisStats()
	t.Logf("%d operations, %d abandoned by their context; %d shared a round trip, %d pipelines",
		ops.Load(), abandoned.Load(), st.AutoPipelined, st.Pipelines)
	if abandoned.Load() == 0 || st.AutoPipelined == 0 {
		t.Fatalf("the test did not exercise what it checks: %d abandoned, %d auto-pipelined", abandoned.Load(), st.AutoPipelined)
	}
}

// scribble overwrites bufs, as a caller reusing them would.
func scribble(bufs ...[]byte) {
	for _, b := range bufs {
		for i := range b {
			b[i] = '#'
		}
	}
}

// TestAutoPipelineLostReplies runs onceTraffic through a proxy that loses
// replies at random, after the server acted (the connection reset, or left
// hanging).
func TestAutoPipelineLostReplies(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	p := startProxy(t, r.Addr)
	s := open(t, redis.Options{URL: "redis://" + p.Addr() + "/0", ReadTimeout: 200 * time.Millisecond,
		MaxRetries: 3, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond})
	var lost atomic.Int64
	res := onceTraffic(t, s, r.Client(t), func(stop <-chan struct{}) {
		rng := rand.New(rand.NewPCG(7, 7))
		for {
			select {
			case <-stop:
				p.failNextReply(pass)
				return
			case <-p.dropped:
				lost.Add(1)
			case <-time.After(time.Duration(2+rng.IntN(8)) * time.Millisecond):
				p.failNextReply([]int32{dropReset, dropHang}[rng.IntN(2)])
			}
		}
	})
	t.Logf("%v; %d replies lost", res, lost.Load())
	if lost.Load() == 0 || res.indeterminate == 0 {
		t.Fatalf("the test did not exercise what it checks: %d lost, %d indeterminate", lost.Load(), res.indeterminate)
	}
}

// TestAutoPipelineClientKill runs onceTraffic while CLIENT KILL closes
// every connection of the store (those of its ACL user), every few
// milliseconds, on the server's side.
func TestAutoPipelineClientKill(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, &testserver.RedisOptions{Users: []string{"store on >store-pw ~* &* +@all"}})
	s := open(t, redis.Options{URL: "redis://store:store-pw@" + r.Addr + "/0", MaxRetries: 3,
		MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond})
	admin := r.Client(t)
	var killed atomic.Int64
	res := onceTraffic(t, s, r.Client(t), func(stop <-chan struct{}) {
		rng := rand.New(rand.NewPCG(8, 8))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(2+rng.IntN(8)) * time.Millisecond):
			}
			n, err := admin.Do(t.Context(), "client", "kill", "user", "store").Int64()
			if err == nil {
				killed.Add(n)
			}
		}
	})
	t.Logf("%v; %d connections killed", res, killed.Load())
	if killed.Load() == 0 {
		t.Fatal("CLIENT KILL closed no connection")
	}
}

// onceResult is what onceTraffic saw.
type onceResult struct {
	calls                                       [4]int64 // PutIfAbsent, GetAndDelete, CompareAndSwap, Commit
	indeterminate, unavailable, shared, retries int64
}

func (r onceResult) String() string {
	return fmt.Sprintf("calls %v, %d indeterminate, %d unavailable; %d retries, %d operations shared a round trip",
		r.calls, r.indeterminate, r.unavailable, r.retries, r.shared)
}

// onceTraffic runs 16 goroutines for 3 seconds against s while faults
// runs (until its channel closes). Non-idempotent operations work on
// fresh keys whose state before is known, so that a command sent twice
// shows in its reply (PutIfAbsent false, GetAndDelete not found,
// CompareAndSwap false, a commit's conflict), and INFO commandstats on
// direct (which bypasses the faults) shows that none ran more often than
// it was called. Every other reply is checked against its request. Every
// error must be ErrIndeterminate (for a write) or ErrUnavailable (then
// the key is as it was).
func onceTraffic(t *testing.T, s *redis.Store, direct *goredis.Client, faults func(stop <-chan struct{})) onceResult {
	ctx := t.Context()
	noErr(t, "CompareAndSwap", func() error { _, err := s.CompareAndSwap(ctx, []byte("warm"), nil, []byte("x"), 0); return err }())
	noErr(t, "Commit", s.Commit(ctx, new(strata.WriteBatch).Put([]byte("warm2"), []byte("x"), 0)))
	noErr(t, "CONFIG RESETSTAT", direct.ConfigResetStat(ctx).Err())

	stop := make(chan struct{})
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		faults(stop)
	}()

	const workers = 16
	var calls [4]atomic.Int64
	var indeterminate, unavailable atomic.Int64
	var failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			own := []byte(fmt.Sprintf("w%d:own", w))
			for seq := 0; time.Now().Before(deadline); seq++ {
				k := fmt.Sprintf("w%d:%d", w, seq)
				var err error
				kind := -1
				switch op := rng.IntN(6); op {
				case 0:
					kind = 0
					calls[kind].Add(1)
					var ok bool
					ok, err = s.PutIfAbsent(ctx, []byte(k), []byte(k), 0)
					if err == nil && !ok {
						fail("PutIfAbsent(%s) = false on a fresh key: sent twice", k)
					}
				case 1:
					kind = 1
					if err := direct.Set(ctx, k, k, 0).Err(); err != nil {
						fail("SET %s: %v", k, err)
						continue
					}
					calls[kind].Add(1)
					var v []byte
					v, err = s.GetAndDelete(ctx, []byte(k))
					if errors.Is(err, strata.ErrNotFound) {
						fail("GetAndDelete(%s) found nothing: sent twice", k)
						err = nil
					} else if err == nil && string(v) != k {
						fail("GetAndDelete(%s) = %q", k, v)
					}
				case 2:
					kind = 2
					if err := direct.Set(ctx, k, "a", 0).Err(); err != nil {
						fail("SET %s: %v", k, err)
						continue
					}
					calls[kind].Add(1)
					var ok bool
					ok, err = s.CompareAndSwap(ctx, []byte(k), []byte("a"), []byte("b"), 0)
					if err == nil && !ok {
						fail("CompareAndSwap(%s) = false: sent twice", k)
					}
				case 3:
					kind = 3
					calls[kind].Add(1)
					err = s.Commit(ctx, new(strata.WriteBatch).IfAbsent([]byte(k)).Put([]byte(k), []byte(k), 0))
					if errors.Is(err, strata.ErrConflict) {
						fail("Commit(%s) conflicts on a fresh key: sent twice", k)
						err = nil
					}
				case 4:
					err = s.Put(ctx, own, []byte(k), 0)
					if err == nil {
						var v []byte
						v, err = s.Get(ctx, own)
						if err == nil && string(v) != k {
							fail("Get(%s) = %q after Put %q", own, v, k)
						}
					}
				default:
					var vals [][]byte
					other := []byte(fmt.Sprintf("w%d:none", w))
					vals, err = s.GetMany(ctx, [][]byte{own, other})
					if err == nil && (vals[1] != nil || (vals[0] != nil && !strings.HasPrefix(string(vals[0]), fmt.Sprintf("w%d:", w)))) {
						fail("GetMany(%s, %s) = %q", own, other, vals)
					}
				}
				switch {
				case err == nil:
				case errors.Is(err, strata.ErrIndeterminate) && !errors.Is(err, strata.ErrUnavailable):
					// A write that may have been applied (for Put, its
					// retries exhausted).
					indeterminate.Add(1)
				case errors.Is(err, strata.ErrUnavailable) && !errors.Is(err, strata.ErrIndeterminate):
					unavailable.Add(1)
					if kind >= 0 {
						// Nothing was applied: the key is as it was.
						n, _ := direct.Exists(ctx, k).Result()
						if want := map[int]int64{0: 0, 1: 1, 2: 1, 3: 0}[kind]; n != want {
							fail("operation %d on %s unavailable, but EXISTS = %d", kind, k, n)
						}
					}
				default:
					fail("operation %d on %s: %v", kind, k, err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-faultsDone

	// No command that must not be sent twice ran more often than called.
	var res onceResult
	for i := range calls {
		res.calls[i] = calls[i].Load()
	}
	scripts := commandCalls(t, direct, "evalsha") + commandCalls(t, direct, "eval")
	if n := commandCalls(t, direct, "getdel"); int64(n) > res.calls[1] {
		t.Errorf("GETDEL ran %d times for %d GetAndDelete calls", n, res.calls[1])
	}
	if int64(scripts) > res.calls[2]+res.calls[3] {
		t.Errorf("scripts ran %d times for %d CompareAndSwap and Commit calls", scripts, res.calls[2]+res.calls[3])
	}
	st := s.RedisStats()
	res.indeterminate, res.unavailable = indeterminate.Load(), unavailable.Load()
	res.shared, res.retries = int64(st.AutoPipelined), int64(st.Retries)
	if res.shared == 0 {
		t.Errorf("no operation shared a round trip: %v", res)
	}
	return res
}

// TestAutoPipelineOff: with DisableAutoPipeline no operation shares a
// round trip, and concurrent traffic still works.
func TestAutoPipelineOff(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	for _, off := range []bool{true, false} {
		s := open(t, redis.Options{URL: r.URL() + "?disable_auto_pipeline=" + fmt.Sprint(off), KeyPrefix: fmt.Sprint(off)})
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := []byte(fmt.Sprintf("k%d", w))
				for i := range 200 {
					v := []byte(fmt.Sprint(i))
					if err := s.Put(t.Context(), k, v, 0); err != nil {
						t.Errorf("Put: %v", err)
						return
					}
					got, err := s.Get(t.Context(), k)
					if err != nil || string(got) != string(v) {
						t.Errorf("Get = %q, %v; want %q", got, err, v)
						return
					}
				}
			}()
		}
		wg.Wait()
		if n := s.RedisStats().AutoPipelined; (n == 0) != off {
			t.Errorf("DisableAutoPipeline %v: %d operations shared a round trip", off, n)
		}
	}
}
