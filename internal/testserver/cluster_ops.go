package testserver

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Running reports whether the server process is alive (not killed).
func (r *Redis) Running() bool { return !r.proc.exited() }

// NodeID returns the Redis Cluster node ID of r (CLUSTER MYID).
func (r *Redis) NodeID(tb testing.TB) string {
	tb.Helper()
	return r.CLI(tb, "CLUSTER", "MYID")
}

// Masters returns the running nodes that serve slots as masters, as the
// first running node sees it.
func (c *RedisCluster) Masters(tb testing.TB) []*Redis {
	tb.Helper()
	slots := c.slotMap(tb)
	var out []*Redis
	for _, n := range c.Nodes {
		if n.Running() && slices.Contains(slots, n.Addr) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// slotMap returns, for each of the 16384 slots, the address of its master
// as the first running node sees it ("" for an unserved slot).
func (c *RedisCluster) slotMap(tb testing.TB) []string {
	tb.Helper()
	m, err := c.slotMapOf(c.running(tb))
	if err != nil {
		tb.Fatalf("testserver: CLUSTER SLOTS: %v", err)
	}
	return m
}

func (c *RedisCluster) running(tb testing.TB) *Redis {
	tb.Helper()
	for _, n := range c.Nodes {
		if n.Running() {
			return n
		}
	}
	tb.Fatal("testserver: no running cluster node")
	return nil
}

func (c *RedisCluster) slotMapOf(n *Redis) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl := goredis.NewClient(n.Options())
	defer cl.Close()
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, 16384)
	for _, s := range slots {
		for i := s.Start; i <= s.End; i++ {
			out[i] = s.Nodes[0].Addr
		}
	}
	return out, nil
}

// WaitAgreed waits until every running node reports cluster_state:ok and
// the same master for every slot, none of them a stopped node.
func (c *RedisCluster) WaitAgreed(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := c.agreed()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testserver: cluster nodes did not agree within %v: %v", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *RedisCluster) agreed() error {
	var first []string
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		cl := goredis.NewClient(n.Options())
		info, err := cl.ClusterInfo(ctx).Result()
		cl.Close()
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", n.Addr)
		}
		m, err := c.slotMapOf(n)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		for i, addr := range m {
			if addr == "" {
				return fmt.Errorf("%s: slot %d not served", n.Addr, i)
			}
			for _, d := range c.Nodes {
				if d.Addr == addr && !d.Running() {
					return fmt.Errorf("%s: slot %d still served by the stopped node %s", n.Addr, i, addr)
				}
			}
		}
		if first == nil {
			first = m
		} else if !slices.Equal(first, m) {
			return fmt.Errorf("%s: slot map differs from the other nodes'", n.Addr)
		}
	}
	return nil
}

// WaitFailover waits, after dead was killed, until a replica has taken
// over every slot dead served and every running node agrees.
func (c *RedisCluster) WaitFailover(tb testing.TB, dead *Redis) {
	tb.Helper()
	if dead.Running() {
		tb.Fatalf("testserver: WaitFailover: %s is running", dead.Addr)
	}
	c.WaitAgreed(tb)
}

// Reshard moves slots slots, and their keys, from master from to master
// to with redis-cli --cluster reshard, then waits until every node agrees.
// Clients may keep working meanwhile: they see ASK and MOVED redirections.
func (c *RedisCluster) Reshard(tb testing.TB, from, to *Redis, slots int) {
	tb.Helper()
	bin := need(tb, "redis-cli", installRedis, "/usr/bin", "/usr/local/bin")
	args := []string{"--cluster", "reshard", from.Addr,
		"--cluster-from", from.NodeID(tb), "--cluster-to", to.NodeID(tb),
		"--cluster-slots", strconv.Itoa(slots), "--cluster-yes", "--cluster-pipeline", "100"}
	args = append(args, c.cliAuth()...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("testserver: redis-cli --cluster reshard: %v\n%s", err, tail(string(out)))
	}
	c.WaitAgreed(tb)
}
