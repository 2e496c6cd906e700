package redistrack

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// The invalidator knows a failover client by the address go-redis gives
// its options: an upgrade that changes it must fail here, not leave the
// tier tracking a master the sentinels replaced.
func TestIsFailover(t *testing.T) {
	fc := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}})
	defer fc.Close()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if !isFailover(fc) || isFailover(c) || isFailover(nil) {
		t.Fatalf("isFailover: failover client %v, plain client %v, nil %v", isFailover(fc), isFailover(c), isFailover(nil))
	}
}

// HELLO's map answers the role the handshake checks.
func TestRespField(t *testing.T) {
	hello := respValue{kind: '%', elems: []respValue{
		{kind: '$', str: []byte("server")}, {kind: '$', str: []byte("redis")},
		{kind: '$', str: []byte("proto")}, {kind: ':', num: 3},
		{kind: '$', str: []byte("role")}, {kind: '$', str: []byte("replica")},
	}}
	if got := hello.field("role"); got != "replica" {
		t.Fatalf(`field("role") = %q`, got)
	}
	if got := hello.field("proto"); got != "" {
		t.Fatalf(`field("proto") = %q, want "" for a number`, got)
	}
	if got := (respValue{kind: '*', elems: hello.elems}).field("role"); got != "" {
		t.Fatalf(`field of an array = %q`, got)
	}
}
