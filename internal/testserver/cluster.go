package testserver

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ClusterOptions configure a Redis Cluster.
type ClusterOptions struct {
	// Masters is the number of master nodes. Default 3 (the least Redis
	// Cluster accepts).
	Masters int
	// Replicas is the number of replicas per master. Default 0.
	Replicas int
	// Password, Users, TLS and Config apply to every node (see
	// RedisOptions).
	Password string
	Users    []string
	TLS      bool
	Config   []string
}

// RedisCluster is a running Redis Cluster whose slots are all served.
type RedisCluster struct {
	Nodes    []*Redis // masters first, then replicas, as created
	Password string
	Certs    *Certs
}

// StartRedisCluster starts the nodes, joins them with
// redis-cli --cluster create and waits until every node reports
// cluster_state:ok. The nodes stop when tb ends.
func StartRedisCluster(tb testing.TB, opts *ClusterOptions) *RedisCluster {
	tb.Helper()
	var o ClusterOptions
	if opts != nil {
		o = *opts
	}
	if o.Masters == 0 {
		o.Masters = 3
	}
	c := &RedisCluster{Password: o.Password}
	if o.TLS {
		c.Certs = NewCerts(tb)
	}
	n := o.Masters * (1 + o.Replicas)
	addrs := make([]string, n)
	for i := range n {
		node := StartRedis(tb, &RedisOptions{
			Password: o.Password, Users: o.Users, TLS: o.TLS, Certs: c.Certs, Config: o.Config, cluster: true,
		})
		c.Nodes = append(c.Nodes, node)
		addrs[i] = node.Addr
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	args = append(args, c.cliAuth()...)
	bin := need(tb, "redis-cli", installRedis, "/usr/bin", "/usr/local/bin")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("testserver: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(tb, o.Masters)
	if o.Replicas > 0 {
		c.waitReplicasLinked(tb)
	}
	return c
}

// waitReplicasLinked waits until every replica has synchronized with its
// master (master_link_status:up), so that a failover can promote it.
func (c *RedisCluster) waitReplicasLinked(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		cl := goredis.NewClient(n.Options())
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			info, err := cl.Info(ctx, "replication").Result()
			cancel()
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				tb.Fatalf("testserver: replica %s not synchronized within %v: %v", n.Addr, startTimeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cl.Close()
	}
}

func (c *RedisCluster) cliAuth() []string {
	var args []string
	if c.Certs != nil {
		args = append(args, "--tls", "--cacert", c.Certs.CA, "--sni", "localhost")
	}
	if c.Password != "" {
		args = append(args, "--no-auth-warning", "-a", c.Password)
	}
	return args
}

// Addrs returns the address of every node.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Options returns go-redis cluster options that reach every node.
func (c *RedisCluster) Options() *goredis.ClusterOptions {
	o := &goredis.ClusterOptions{Addrs: c.Addrs(), Password: c.Password, DialTimeout: time.Second}
	if c.Certs != nil {
		o.TLSConfig = c.Certs.ClientConfig()
	}
	return o
}

// Client returns a go-redis cluster client, closed when tb ends.
func (c *RedisCluster) Client(tb testing.TB) *goredis.ClusterClient {
	cl := goredis.NewClusterClient(c.Options())
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// WaitHealthy waits until every running node reports cluster_state:ok and
// masters nodes serve all 16384 slots.
func (c *RedisCluster) WaitHealthy(tb testing.TB, masters int) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := c.healthy(masters)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testserver: cluster not healthy within %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *RedisCluster) healthy(masters int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if n.proc.exited() {
			continue
		}
		cl := goredis.NewClient(n.Options())
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			cl.Close()
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			cl.Close()
			return fmt.Errorf("%s: cluster_state not ok", n.Addr)
		}
		if !strings.Contains(info, fmt.Sprintf("cluster_size:%d\r", masters)) {
			cl.Close()
			return fmt.Errorf("%s: cluster_size is not %d", n.Addr, masters)
		}
		slots, err := cl.ClusterSlots(ctx).Result()
		cl.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		covered := 0
		for _, s := range slots {
			covered += s.End - s.Start + 1
		}
		if covered != 16384 {
			return fmt.Errorf("%s: %d of 16384 slots served", n.Addr, covered)
		}
	}
	return nil
}

// MasterOf returns the node that serves key's slot as master.
func (c *RedisCluster) MasterOf(tb testing.TB, key string) *Redis {
	tb.Helper()
	ctx := context.Background()
	cl := goredis.NewClient(c.Nodes[0].Options())
	defer cl.Close()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			for _, n := range c.Nodes {
				if n.Addr == s.Nodes[0].Addr {
					return n
				}
			}
		}
	}
	tb.Fatalf("testserver: no master serves slot %d", slot)
	return nil
}

// CLI runs redis-cli in cluster mode (-c) against the first running node.
func (c *RedisCluster) CLI(tb testing.TB, args ...string) string {
	tb.Helper()
	for _, n := range c.Nodes {
		if !n.proc.exited() {
			return n.CLI(tb, append([]string{"-c"}, args...)...)
		}
	}
	tb.Fatal("testserver: no running cluster node")
	return ""
}
