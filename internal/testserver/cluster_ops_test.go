package testserver

import (
	"fmt"
	"testing"
)

func TestRedisClusterReshardAndFailover(t *testing.T) {
	c := StartRedisCluster(t, &ClusterOptions{Masters: 3, Replicas: 1})
	cl := c.Client(t)
	ctx := t.Context()
	for i := range 200 {
		if err := cl.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	masters := c.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("Masters = %d nodes, want 3", len(masters))
	}
	before := count(c.slotMap(t), masters[1].Addr)
	c.Reshard(t, masters[0], masters[1], 500)
	if after := count(c.slotMap(t), masters[1].Addr); after != before+500 {
		t.Fatalf("%s serves %d slots after resharding 500 to it, had %d", masters[1].Addr, after, before)
	}
	for i := range 200 {
		if v, err := cl.Get(ctx, fmt.Sprint("k", i)).Result(); err != nil || v != "v" {
			t.Fatalf("GET k%d after the resharding = %q, %v", i, v, err)
		}
	}
	victim := masters[2]
	id := victim.NodeID(t)
	victim.Kill()
	if victim.Running() {
		t.Fatal("Running after Kill")
	}
	c.WaitFailover(t, victim)
	for _, m := range c.Masters(t) {
		if m == victim {
			t.Fatal("the killed node is still a master after WaitFailover")
		}
	}
	victim.Restart(t)
	c.WaitAgreed(t)
	if got := victim.NodeID(t); got != id {
		t.Fatalf("node ID after restart = %s, want %s (same nodes.conf)", got, id)
	}
}

func count(slots []string, addr string) int {
	n := 0
	for _, a := range slots {
		if a == addr {
			n++
		}
	}
	return n
}
