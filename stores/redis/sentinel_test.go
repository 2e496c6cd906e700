package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/stores/redis"
)

func TestSentinelURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want redis.Options // URL aside
	}{
		{"redis+sentinel://s1,s2,s3/mymaster", redis.Options{MasterName: "mymaster"}},
		{"redis+sentinel://s1:26379,s2:26380,s3:26381/mymaster/0", redis.Options{MasterName: "mymaster"}},
		{"redis+sentinel://u:pw@s1:26379/mymaster/3?prefix=app:&sentinel_username=su&sentinel_password=spw",
			redis.Options{MasterName: "mymaster", KeyPrefix: "app:", SentinelUsername: "su", SentinelPassword: "spw"}},
		{"rediss+sentinel://s1/m/", redis.Options{MasterName: "m", TLS: true}},
	} {
		o, err := redis.ParseURL(c.url)
		noErr(t, "ParseURL("+c.url+")", err)
		c.want.URL = c.url
		if o.String() != c.want.String() {
			t.Errorf("ParseURL(%q) =\n%v\nwant\n%v", c.url, o, c.want)
		}
	}
	// Sentinel hosts default to port 26379; the path's database is the
	// master's.
	addrs, db, err := redis.Resolve(redis.Options{URL: "redis+sentinel://s1,s2:7,s3:1/mymaster/3"})
	noErr(t, "resolve", err)
	if strings.Join(addrs, " ") != "s1:26379 s2:7 s3:1" || db != 3 {
		t.Fatalf("sentinels %q, db %d; want s1:26379 s2:1 [::1]:26379 and 3", addrs, db)
	}
	// The toml form: the hosts of url or urls are the sentinels once
	// sentinel_master is set.
	addrs, db, err = redis.Resolve(redis.Options{URLs: []string{"redis://s1/2", "redis://s2:7/2"}, MasterName: "mymaster"})
	noErr(t, "resolve urls", err)
	if strings.Join(addrs, " ") != "s1:26379 s2:7" || db != 2 {
		t.Fatalf("urls with sentinel_master: sentinels %q, db %d", addrs, db)
	}
	for _, c := range []struct {
		cfg  redis.Options
		want string
	}{
		{redis.Options{URL: "redis+sentinel://s1"}, "no master name"},
		{redis.Options{URL: "redis+sentinel://s1/m/x"}, "database number"},
		{redis.Options{URL: "redis+sentinel://s1/m/0/1"}, "database number"},
		{redis.Options{URL: "redis+sentinel://s1/m", MasterName: "other"}, "differs from sentinel_master"},
		{redis.Options{URL: "redis+sentinel://s1/m", ClusterMode: true}, "sentinel_master: given with cluster_mode"},
		{redis.Options{URL: "redis://h", SentinelPassword: "spw"}, "without sentinel_master"},
		{redis.Options{URL: "redis://h", MasterName: "my master"}, "white space"},
		{redis.Options{URL: "redis+sentinel://s1/m?sentinel_password=a", SentinelPassword: "b"}, `parameter "sentinel_password": also set`},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%v) = %v, want ErrInvalidConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	// The sentinels' password never prints.
	for _, o := range []redis.Options{
		{URL: "redis+sentinel://s1/m?sentinel_password=hunter2"},
		{URL: "redis+sentinel://s1/m", SentinelPassword: "hunter2"},
		{URL: "redis+sentinel://s1/m?sentinel_password=hunter2", SentinelPassword: "other"},
	} {
		for _, out := range []string{fmt.Sprintf("%v", o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", &o), fmt.Sprint(o.Validate())} {
			if strings.Contains(out, "hunter2") {
				t.Errorf("the sentinel password shows: %s", out)
			}
		}
	}
}

func TestSentinelConfigFile(t *testing.T) {
	o, err := fileOptions(`
[state]
backend = "redis"

[state.redis]
urls = ["redis://:s3cret@s1:26379/0", "redis://:s3cret@s2:26379/0", "redis://:s3cret@s3:26379/0"]
sentinel_master = "mymaster"
sentinel_password = "sentinel-s3cret"
key_prefix = "app:"
`, nil)
	noErr(t, "fileOptions", err)
	if o.MasterName != "mymaster" || o.SentinelPassword != "sentinel-s3cret" || len(o.URLs) != 3 {
		t.Fatalf("fileOptions = %v", o)
	}
	if s := o.String(); strings.Contains(s, "s3cret") {
		t.Fatalf("Options show a password: %s", s)
	}
	// The url form of docs/config.md, passwords beside it.
	o, err = fileOptions(`
[state.redis]
url = "redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0"
password = "master-s3cret"
sentinel_password = "sentinel-s3cret"
`, nil)
	noErr(t, "fileOptions with a redis+sentinel url", err)
	addrs, _, err := redis.Resolve(o)
	noErr(t, "Resolve", err)
	if o.Password != "master-s3cret" || o.SentinelPassword != "sentinel-s3cret" || strings.Join(addrs, " ") != "s1:26379 s2:26379 s3:26379" {
		t.Fatalf("fileOptions = %v, sentinels %q", o, addrs)
	}
	// REDIS_URL may name the sentinels.
	o, err = fileOptions("[state.redis]\nurl = \"redis://h\"\n", map[string]string{"REDIS_URL": "redis+sentinel://s1:26379/m/2"})
	noErr(t, "fileOptions with REDIS_URL", err)
	if r, _ := redis.ParseURL(o.URL); r == nil || r.MasterName != "m" {
		t.Fatalf("REDIS_URL: %v", o)
	}
	// master_name is the other spelling of sentinel_master.
	o, err = fileOptions("[state.redis]\nurl = \"redis://s1:26379\"\nmaster_name = \"m\"\n", nil)
	noErr(t, "fileOptions with master_name", err)
	if o.MasterName != "m" {
		t.Fatalf("master_name: %v", o)
	}
}

// sentinelOptions are Options for a Sentinel deployment with short
// timeouts, for fault tests.
func sentinelOptions(d *testserver.RedisSentinel) redis.Options {
	return redis.Options{URL: d.URL(), DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 4, MinRetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 300 * time.Millisecond}
}

func TestConformanceSentinel(t *testing.T) {
	t.Parallel()
	d := testserver.StartRedisSentinel(t, &testserver.SentinelOptions{Password: "node-pw", SentinelPassword: "sentinel-pw"})
	conformance.RunStore(t, harness(redis.Options{URL: d.URL()}, func(n int64) string { return fmt.Sprintf("s%d:", n) }))
}

// Over TLS the store reaches the sentinels and the master with the same
// certificates; strata.Open knows the scheme.
func TestSentinelTLS(t *testing.T) {
	t.Parallel()
	d := testserver.StartRedisSentinel(t, &testserver.SentinelOptions{TLS: true})
	s := open(t, redis.Options{URL: d.URL(), TLSCAFile: d.Certs.CA})
	ctx := t.Context()
	noErr(t, "Put", s.Put(ctx, []byte("k"), []byte("v"), 0))
	if got := d.Master(t).CLI(t, "GET", "k"); got != "v" {
		t.Fatalf("GET on the master = %q", got)
	}
	// Without the CA, the handshake with the sentinels fails: nothing was
	// sent.
	_, err := redis.Open(ctx, &redis.Options{URL: d.URL(), DialTimeout: time.Second, MaxRetries: -1})
	if !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("Open without the CA = %v, want ErrUnavailable", err)
	}
}

// A master name the sentinels do not know is a failure to connect, never
// an absent key.
func TestSentinelUnknownMaster(t *testing.T) {
	t.Parallel()
	d := testserver.StartRedisSentinel(t, nil)
	o := sentinelOptions(d)
	o.URL = strings.Replace(o.URL, "/"+testserver.SentinelMaster+"/", "/nosuchmaster/", 1)
	_, err := redis.Open(t.Context(), &o)
	if !errors.Is(err, strata.ErrUnavailable) || !strings.Contains(err.Error(), "know no master by that name") {
		t.Fatalf("Open with an unknown master = %v, want ErrUnavailable naming the cause", err)
	}
	client := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "nosuchmaster", SentinelAddrs: d.Addrs(), MaxRetries: -1})
	defer client.Close()
	s, err := redis.New(client, &redis.Options{MaxRetries: -1})
	noErr(t, "New", err)
	ctx := t.Context()
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, strata.ErrUnavailable) {
		t.Errorf("Get = %v, want ErrUnavailable", err)
	}
	if got, err := s.GetMany(ctx, [][]byte{[]byte("a"), []byte("b")}); !errors.Is(err, strata.ErrUnavailable) {
		t.Errorf("GetMany = %q, %v; want ErrUnavailable", got, err)
	}
	if _, err := s.PutIfAbsent(ctx, []byte("k"), []byte("v"), 0); !errors.Is(err, strata.ErrUnavailable) || errors.Is(err, strata.ErrIndeterminate) {
		t.Errorf("PutIfAbsent = %v, want ErrUnavailable only", err)
	}
}

// sentinelWrite is one non-idempotent write of TestSentinelFailover, on
// a key of its own that it sets to its own name: a PutIfAbsent, or a
// commit that also sets key+":2". Applied twice, it reports a refusal
// (false, ErrConflict) on a key nobody else writes.
type sentinelWrite struct {
	key     string
	commit  bool
	applied bool // reported applied
	refused bool // reported not applied: the key was present
	err     error
	start   time.Time
}

// startSentinelWriters runs workers of sentinelWrites.
func startSentinelWriters(s *redis.Store, workers int) *traffic[sentinelWrite] {
	tr := &traffic[sentinelWrite]{}
	for w := range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; !tr.stop.Load(); i++ {
				tr.record(sentinelWriteOnce(s, fmt.Sprintf("w%d:%d", w, i), i%2 == 1))
			}
		}()
	}
	return tr
}

// sentinelWriteOnce makes one sentinelWrite.
func sentinelWriteOnce(s *redis.Store, key string, commit bool) sentinelWrite {
	ctx := context.Background()
	o := sentinelWrite{key: key, commit: commit, start: time.Now()}
	k := []byte(key)
	if commit {
		o.err = s.Commit(ctx, new(strata.WriteBatch).IfAbsent(k).Put(k, k, 0).Put([]byte(key+":2"), k, 0))
		o.applied = o.err == nil
		if errors.Is(o.err, strata.ErrConflict) {
			o.refused, o.err = true, nil
		}
	} else {
		o.applied, o.err = s.PutIfAbsent(ctx, k, k, 0)
		o.refused = o.err == nil && !o.applied
	}
	return o
}

// replOffset returns the replication offset n reports (INFO replication
// master_repl_offset: what a master has sent, what a replica has applied).
func replOffset(t *testing.T, n *testserver.Redis) string {
	c := goredis.NewClient(n.Options())
	defer c.Close()
	info, err := c.Info(t.Context(), "replication").Result()
	noErr(t, "INFO replication", err)
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
			return v
		}
	}
	t.Fatalf("INFO replication of %s without master_repl_offset:\n%s", n.Addr, info)
	return ""
}

// The master dies under non-idempotent writes (PutIfAbsent, commits) made
// through a redis+sentinel URL with passwords. The writes in flight when
// it dies report ErrIndeterminate; those that find no master report
// ErrUnavailable; writes resume on the promoted replica; and in the end
// every write reported applied is there, every one reported unavailable
// is not, and none was applied twice (which would show as a refusal on a
// key nobody else writes).
//
// Redis replicates asynchronously, so a master killed under load may take
// its last acknowledged writes with it. To test the store rather than
// that, the master first stops applying writes (CLIENT PAUSE WRITE, which
// leaves the writes sent to it in flight) and the replica catches up with
// it before the kill.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	d := testserver.StartRedisSentinel(t, &testserver.SentinelOptions{Password: "node-pw", SentinelPassword: "sentinel-pw"})
	s := open(t, sentinelOptions(d))
	old := d.Master(t)
	ws := startSentinelWriters(s, 8)
	wait.For(t, 20*time.Second, "writes to flow", func() bool {
		return ws.count(func(o sentinelWrite) bool { return o.applied }) >= 200
	})
	paused := time.Now()
	if got := old.CLI(t, "CLIENT", "PAUSE", "60000", "WRITE"); got != "OK" {
		t.Fatalf("CLIENT PAUSE = %q", got)
	}
	replica := d.Nodes[1]
	wait.For(t, 10*time.Second, "the replica to catch up with the paused master", func() bool {
		return replOffset(t, replica) == replOffset(t, old)
	})
	// The paused writes time out (ReadTimeout) without an answer.
	wait.For(t, 10*time.Second, "a write sent to the paused master to report ErrIndeterminate", func() bool {
		return ws.count(func(o sentinelWrite) bool { return errors.Is(o.err, strata.ErrIndeterminate) }) > 0
	})
	old.Kill()
	promoted := d.WaitFailover(t, old)
	if promoted != replica {
		t.Fatalf("the sentinels promoted %s, want the replica %s", promoted.Addr, replica.Addr)
	}
	recovered := time.Now()
	t.Logf("the sentinels promoted %s %v after the pause", promoted.Addr, recovered.Sub(paused))
	wait.For(t, 20*time.Second, "writes to resume on the promoted replica", func() bool {
		return ws.count(func(o sentinelWrite) bool { return o.applied && o.start.After(recovered) }) >= 100
	})
	t.Logf("writes resumed %v after the pause", time.Since(paused))
	writes := ws.halt()

	// Every write's key, read on the new master.
	direct := promoted.Client(t)
	keys := make([]string, 0, 2*len(writes))
	for _, o := range writes {
		keys = append(keys, o.key, o.key+":2")
	}
	vals, err := direct.MGet(t.Context(), keys...).Result()
	noErr(t, "MGET", err)
	var applied, indeterminate, indeterminateApplied, unavailable int
	for i, o := range writes {
		v, v2 := vals[2*i], vals[2*i+1]
		present := v == o.key && (!o.commit || v2 == o.key)
		absent := v == nil && v2 == nil
		if !present && !absent {
			t.Errorf("%s (commit %v): the keys hold %v and %v: neither the write nor nothing", o.key, o.commit, v, v2)
		}
		switch {
		case o.applied:
			applied++
			if !present {
				t.Errorf("%s (commit %v) was reported applied, but is not on the new master", o.key, o.commit)
			}
		case o.refused:
			t.Errorf("%s (commit %v) was refused on a key nobody else writes: applied twice", o.key, o.commit)
		case errors.Is(o.err, strata.ErrIndeterminate):
			indeterminate++
			if present {
				indeterminateApplied++
			}
		case errors.Is(o.err, strata.ErrUnavailable):
			unavailable++
			if present {
				t.Errorf("%s (commit %v) was reported unavailable (%v), but is applied", o.key, o.commit, o.err)
			}
		default:
			t.Errorf("%s (commit %v): %v, want ErrIndeterminate or ErrUnavailable", o.key, o.commit, o.err)
		}
	}
	t.Logf("%d non-idempotent writes: %d applied, %d ErrIndeterminate (%d of them applied), %d ErrUnavailable; %d store retries",
		len(writes), applied, indeterminate, indeterminateApplied, unavailable, s.RedisStats().Retries)
	if indeterminate == 0 {
		t.Error("no write reported ErrIndeterminate: none was in flight when the master stopped")
	}
	// No other key: nothing was written where no write meant to.
	present := 0
	for _, v := range vals {
		if v != nil {
			present++
		}
	}
	if n, err := direct.DBSize(t.Context()).Result(); err != nil || int(n) != present {
		t.Errorf("DBSIZE = %d, %v; want the %d keys of the writes", n, err, present)
	}
}
