package testserver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the sentinels of StartRedisSentinel monitor
// their master under.
const SentinelMaster = "mymaster"

// SentinelOptions configure a Sentinel deployment. The zero value is a
// master, one replica and three sentinels, without passwords or TLS.
type SentinelOptions struct {
	// Replicas is the number of replicas of the master. Default 1.
	Replicas int

	// Sentinels is the number of sentinels. Default 3; the quorum is a
	// majority of them (2 of 3).
	Sentinels int

	// Password is required of the default user of the master and its
	// replicas; the sentinels authenticate with it (sentinel auth-pass).
	Password string

	// SentinelPassword is required of clients of the sentinels
	// (requirepass in sentinel mode), and the sentinels use it with one
	// another (sentinel sentinel-pass).
	SentinelPassword string

	// TLS serves TLS only, on every node and sentinel, with one set of
	// certificates (see RedisOptions.TLS).
	TLS bool
}

// The sentinels' timing: a master silent for sentinelDownAfter is
// subjectively down; failoverTimeout bounds each step of a failover
// (Redis's defaults are 30s and 3min). A killed master is replaced after
// sentinelDownAfter plus a leader election and a promotion: a few
// seconds.
const (
	sentinelDownAfter       = 1000 * time.Millisecond
	sentinelFailoverTimeout = 5000 * time.Millisecond
)

// Sentinel is one running redis-server in sentinel mode.
type Sentinel struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string

	s    *RedisSentinel
	proc *process
}

// RedisSentinel is a running Sentinel deployment: data nodes (a master
// and its replicas, at first) and the sentinels that monitor them under
// SentinelMaster.
type RedisSentinel struct {
	Nodes            []*Redis // the first master, then its replicas, as created
	Sentinels        []*Sentinel
	Password         string
	SentinelPassword string
	Certs            *Certs // set with TLS
}

// StartRedisSentinel starts the master, its replicas (replicaof the
// master) and the sentinels, on free loopback ports, and waits until the
// replicas are in sync and every sentinel knows every replica and every
// other sentinel, so that a failover can happen from then on. Everything
// stops when tb ends.
func StartRedisSentinel(tb testing.TB, opts *SentinelOptions) *RedisSentinel {
	tb.Helper()
	var o SentinelOptions
	if opts != nil {
		o = *opts
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Sentinels == 0 {
		o.Sentinels = 3
	}
	bin := need(tb, "redis-server", installRedis, "/usr/bin", "/usr/local/bin")
	d := &RedisSentinel{Password: o.Password, SentinelPassword: o.SentinelPassword}
	if o.TLS {
		d.Certs = NewCerts(tb)
	}
	// Replicas sync at once instead of after Redis's 5s default.
	nodeConfig := []string{"repl-diskless-sync-delay 0"}
	master := StartRedis(tb, &RedisOptions{Password: o.Password, TLS: o.TLS, Certs: d.Certs, Config: nodeConfig})
	d.Nodes = append(d.Nodes, master)
	for range o.Replicas {
		cfg := append(nodeConfig, fmt.Sprintf("replicaof 127.0.0.1 %d", master.Port))
		d.Nodes = append(d.Nodes, StartRedis(tb, &RedisOptions{Password: o.Password, TLS: o.TLS, Certs: d.Certs, Config: cfg}))
	}
	for range o.Sentinels {
		d.Sentinels = append(d.Sentinels, d.startSentinel(tb, bin, master, o.Sentinels/2+1))
	}
	d.waitReady(tb, master, o.Replicas, o.Sentinels)
	return d
}

func (d *RedisSentinel) startSentinel(tb testing.TB, bin string, master *Redis, quorum int) *Sentinel {
	tb.Helper()
	s := &Sentinel{Port: freePort(tb, 0), Dir: tb.TempDir(), s: d}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	lines := []string{
		"bind 127.0.0.1",
		"protected-mode no",
		"dir " + s.Dir,
		"daemonize no",
		"loglevel notice",
	}
	if d.Certs != nil {
		lines = append(lines, "port 0", fmt.Sprintf("tls-port %d", s.Port),
			"tls-cert-file "+d.Certs.ServerCert, "tls-key-file "+d.Certs.ServerKey, "tls-ca-cert-file "+d.Certs.CA,
			"tls-auth-clients optional", "tls-replication yes")
	} else {
		lines = append(lines, fmt.Sprintf("port %d", s.Port))
	}
	if d.SentinelPassword != "" {
		lines = append(lines, "requirepass "+d.SentinelPassword)
	}
	lines = append(lines,
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", SentinelMaster, master.Port, quorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", SentinelMaster, sentinelDownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", SentinelMaster, sentinelFailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMaster),
	)
	if d.Password != "" {
		lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", SentinelMaster, d.Password))
	}
	if d.SentinelPassword != "" {
		lines = append(lines, "sentinel sentinel-pass "+d.SentinelPassword)
	}
	// The sentinel rewrites its configuration file as it learns the
	// deployment: it lives in the sentinel's own directory.
	conf := filepath.Join(s.Dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.proc = start(tb, "redis-sentinel "+s.Addr, exec.Command(bin, conf, "--sentinel"))
	c := s.Client(tb)
	waitUntil(tb, s.proc, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redis-sentinel %s log:\n%s", s.Addr, tail(s.proc.log.String()))
		}
		s.proc.stop(syscall.SIGTERM, 5*time.Second)
	})
	return s
}

// waitReady waits until every replica is in sync with master and every
// sentinel monitors master with all its replicas and the other sentinels.
func (d *RedisSentinel) waitReady(tb testing.TB, master *Redis, replicas, sentinels int) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := d.ready(master, replicas, sentinels)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testserver: Sentinel deployment not ready within %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *RedisSentinel) ready(master *Redis, replicas, sentinels int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range d.Nodes[1:] {
		c := goredis.NewClient(n.Options())
		info, err := c.Info(ctx, "replication").Result()
		c.Close()
		if err != nil {
			return fmt.Errorf("replica %s: %w", n.Addr, err)
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s: not in sync with its master", n.Addr)
		}
	}
	for _, s := range d.Sentinels {
		c := goredis.NewSentinelClient(s.options())
		m, err := c.Master(ctx, SentinelMaster).Result()
		c.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", s.Addr, err)
		}
		if got := net.JoinHostPort(m["ip"], m["port"]); got != master.Addr {
			return fmt.Errorf("sentinel %s: master %s, want %s", s.Addr, got, master.Addr)
		}
		if m["num-slaves"] != strconv.Itoa(replicas) || m["num-other-sentinels"] != strconv.Itoa(sentinels-1) {
			return fmt.Errorf("sentinel %s knows %s replicas and %s other sentinels, want %d and %d",
				s.Addr, m["num-slaves"], m["num-other-sentinels"], replicas, sentinels-1)
		}
		if strings.Contains(m["flags"], "down") {
			return fmt.Errorf("sentinel %s: master flags %s", s.Addr, m["flags"])
		}
	}
	return nil
}

// options returns go-redis options that reach the sentinel.
func (s *Sentinel) options() *goredis.Options {
	o := &goredis.Options{Addr: s.Addr, Password: s.s.SentinelPassword, MaxRetries: -1, DialTimeout: time.Second}
	if s.s.Certs != nil {
		o.TLSConfig = s.s.Certs.ClientConfig()
	}
	return o
}

// Client returns a go-redis Sentinel client for s, closed when tb ends.
func (s *Sentinel) Client(tb testing.TB) *goredis.SentinelClient {
	c := goredis.NewSentinelClient(s.options())
	tb.Cleanup(func() { c.Close() })
	return c
}

// Kill stops the sentinel with SIGKILL.
func (s *Sentinel) Kill() { s.proc.stop(syscall.SIGKILL, time.Second) }

// Running reports whether the sentinel process is alive.
func (s *Sentinel) Running() bool { return !s.proc.exited() }

// Addrs returns the addresses of the sentinels.
func (d *RedisSentinel) Addrs() []string {
	out := make([]string, len(d.Sentinels))
	for i, s := range d.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// URL returns a redis+sentinel:// URL (rediss+sentinel:// with TLS) of
// database 0 that names every sentinel, with the nodes' password in its
// user information and the sentinels' as a parameter.
func (d *RedisSentinel) URL() string {
	u := url.URL{Scheme: "redis+sentinel", Host: strings.Join(d.Addrs(), ","), Path: "/" + SentinelMaster + "/0"}
	if d.Certs != nil {
		u.Scheme = "rediss+sentinel"
	}
	if d.Password != "" {
		u.User = url.UserPassword("default", d.Password)
	}
	if d.SentinelPassword != "" {
		u.RawQuery = url.Values{"sentinel_password": {d.SentinelPassword}}.Encode()
	}
	return u.String()
}

// FailoverOptions returns go-redis options for a failover client of the
// deployment.
func (d *RedisSentinel) FailoverOptions() *goredis.FailoverOptions {
	o := &goredis.FailoverOptions{MasterName: SentinelMaster, SentinelAddrs: d.Addrs(), Password: d.Password,
		SentinelPassword: d.SentinelPassword, MaxRetries: -1, DialTimeout: time.Second}
	if d.Certs != nil {
		o.TLSConfig = d.Certs.ClientConfig()
	}
	return o
}

// Client returns a go-redis failover client of the deployment, closed when
// tb ends.
func (d *RedisSentinel) Client(tb testing.TB) *goredis.Client {
	c := goredis.NewFailoverClient(d.FailoverOptions())
	tb.Cleanup(func() { c.Close() })
	return c
}

// Master returns the node the running sentinels agree is the master,
// failing tb if they disagree or name a node that is not in the
// deployment.
func (d *RedisSentinel) Master(tb testing.TB) *Redis {
	tb.Helper()
	addr, err := d.agreedMaster()
	if err != nil {
		tb.Fatalf("testserver: %v", err)
	}
	return d.node(tb, addr)
}

func (d *RedisSentinel) node(tb testing.TB, addr string) *Redis {
	tb.Helper()
	for _, n := range d.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	tb.Fatalf("testserver: the sentinels name %s, not a node of the deployment", addr)
	return nil
}

// agreedMaster returns the master address every running sentinel
// reports.
func (d *RedisSentinel) agreedMaster() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	agreed := ""
	for _, s := range d.Sentinels {
		if !s.Running() {
			continue
		}
		c := goredis.NewSentinelClient(s.options())
		a, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		c.Close()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", s.Addr, err)
		}
		addr := net.JoinHostPort(a[0], a[1])
		if agreed != "" && addr != agreed {
			return "", fmt.Errorf("the sentinels disagree: %s and %s", agreed, addr)
		}
		agreed = addr
	}
	if agreed == "" {
		return "", fmt.Errorf("no sentinel running")
	}
	return agreed, nil
}

// role returns the first line of ROLE's answer on n: master, slave.
func role(ctx context.Context, n *Redis) (string, error) {
	c := goredis.NewClient(n.Options())
	defer c.Close()
	v, err := c.Do(ctx, "role").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", fmt.Errorf("empty ROLE reply")
	}
	r, _ := v[0].(string)
	return r, nil
}

// WaitFailover waits, after old stopped being the master (killed, or
// demoted by Failover), until every running sentinel names the same new
// master, which says it is one, and returns it. The deadline allows for
// sentinels on a loaded machine.
func (d *RedisSentinel) WaitFailover(tb testing.TB, old *Redis) *Redis {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var addr string
		addr, err = d.agreedMaster()
		if err == nil && addr == old.Addr {
			err = fmt.Errorf("the sentinels still name %s", old.Addr)
		}
		if err == nil {
			n := d.node(tb, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var r string
			r, err = role(ctx, n)
			cancel()
			if err == nil && r == "master" {
				return n
			}
			if err == nil {
				err = fmt.Errorf("%s says it is a %s", addr, r)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("testserver: no failover from %s within 60s: %v", old.Addr, err)
	return nil
}

// Failover asks a sentinel to fail over now (SENTINEL FAILOVER), without
// the master being down, and returns the promoted replica once every
// running sentinel names it and it says it is a master. The old master
// keeps running, still a master, until a sentinel converts it to a
// replica of the new one, some 8 seconds later (Sentinel waits that long
// before it reconfigures an instance that reports the wrong role): wait
// for that with WaitRole.
func (d *RedisSentinel) Failover(tb testing.TB) *Redis {
	tb.Helper()
	old := d.Master(tb)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := d.askFailover()
		if err == nil {
			break
		}
		// INPROG: a failover (or its aftermath) is still under way.
		if time.Now().After(deadline) {
			tb.Fatalf("testserver: SENTINEL FAILOVER: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d.WaitFailover(tb, old)
}

// askFailover sends SENTINEL FAILOVER to the first running sentinel.
func (d *RedisSentinel) askFailover() error {
	for _, s := range d.Sentinels {
		if !s.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c := goredis.NewSentinelClient(s.options())
		defer c.Close()
		return c.Failover(ctx, SentinelMaster).Err()
	}
	return fmt.Errorf("no sentinel running")
}

// WaitRole waits until n says (ROLE) it is a master or a slave, as want
// says.
func (d *RedisSentinel) WaitRole(tb testing.TB, n *Redis, want string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := role(ctx, n)
		cancel()
		if err == nil && r == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testserver: %s did not become a %s within 60s: %q, %v", n.Addr, want, r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
