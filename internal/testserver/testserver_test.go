package testserver

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/strata-kv/strata/internal/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRedis(t *testing.T) {
	r := StartRedis(t, nil)
	c := r.Client(t)
	if got, err := c.Ping(t.Context()).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.CLI(t, "GET", "k"); got != "v" {
		t.Fatalf("redis-cli GET = %q, want v", got)
	}
}

// TestS3 checks what the checkpoint tests rely on: the bucket exists, and a
// conditional write (If-None-Match: *) of an existing key fails with 412.
func TestS3(t *testing.T) {
	s := StartS3(t)
	c := s.Client(t)
	put := func() error {
		_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: aws.String(s.Bucket), Key: aws.String("k"), Body: strings.NewReader("v"), IfNoneMatch: aws.String("*"),
		})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	var re *awshttp.ResponseError
	if err := put(); !errors.As(err, &re) || re.HTTPStatusCode() != 412 {
		t.Fatalf("second conditional put: %v, want HTTP 412", err)
	}
	if !strings.HasPrefix(s.URL("p"), "s3://strata/p?") {
		t.Fatalf("URL = %q", s.URL("p"))
	}
}

func TestRedisRestart(t *testing.T) {
	r := StartRedis(t, nil)
	c := r.Client(t)
	r.Kill()
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Fatal("PING succeeded against a killed server")
	}
	r.Restart(t)
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
}

func TestRedisPassword(t *testing.T) {
	r := StartRedis(t, &RedisOptions{Password: "s3cret"})
	o := r.Options()
	o.Password = ""
	c := goredis.NewClient(o)
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without the password = %v, want NOAUTH", err)
	}
	if err := r.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING with the password: %v", err)
	}
}

func TestRedisTLS(t *testing.T) {
	r := StartRedis(t, &RedisOptions{TLS: true})
	if err := r.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	if got := r.CLI(t, "PING"); got != "PONG" {
		t.Fatalf("redis-cli --tls PING = %q", got)
	}
	// The server name is verified: a client expecting another name fails.
	o := r.Options()
	o.TLSConfig = &tls.Config{RootCAs: r.ClientTLS().RootCAs, ServerName: "not-localhost"}
	c := goredis.NewClient(o)
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("PING with the wrong server name = %v, want a certificate error", err)
	}
	// Plain TCP to the TLS port fails.
	o = r.Options()
	o.TLSConfig = nil
	plain := goredis.NewClient(o)
	defer plain.Close()
	if err := plain.Ping(t.Context()).Err(); err == nil {
		t.Fatal("plain PING to the TLS port succeeded")
	}
}

func TestRedisACL(t *testing.T) {
	r := StartRedis(t, &RedisOptions{Users: []string{"app on >apppw ~app:* &* +@all"}})
	o := r.Options()
	o.Username, o.Password = "app", "apppw"
	c := goredis.NewClient(o)
	defer c.Close()
	if err := c.Set(t.Context(), "app:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET inside the pattern: %v", err)
	}
	if err := c.Set(t.Context(), "other:k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SET outside the pattern = %v, want NOPERM", err)
	}
}

func TestRedisCluster(t *testing.T) {
	c := StartRedisCluster(t, &ClusterOptions{Masters: 3, Replicas: 1})
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(c.Nodes))
	}
	cl := c.Client(t)
	ctx := t.Context()
	for i := range 50 {
		k := "k" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		if err := cl.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	var masters atomic.Int32
	err := cl.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		masters.Add(1)
		n, err := m.DBSize(ctx).Result()
		if err == nil && n == 0 {
			t.Errorf("master %s holds no keys: writes did not spread over slots", m.Options().Addr)
		}
		return err
	})
	if err != nil || masters.Load() != 3 {
		t.Fatalf("ForEachMaster: %d masters, %v", masters.Load(), err)
	}
	if got := c.CLI(t, "GET", "ka"); got != "v" {
		t.Fatalf("redis-cli -c GET = %q", got)
	}
	if m := c.MasterOf(t, "ka"); m == nil {
		t.Fatal("MasterOf found no master")
	}
}

func TestRedisClusterTLS(t *testing.T) {
	c := StartRedisCluster(t, &ClusterOptions{TLS: true, Password: "pw"})
	cl := c.Client(t)
	if err := cl.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS on the cluster: %v", err)
	}
}

func TestPostgres(t *testing.T) {
	p := StartPostgres(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	dsn := p.NewDatabase(t)
	conn2, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to a new database: %v", err)
	}
	conn2.Close(ctx)

	p.Kill()
	p.Restart(t)
	conn3, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatalf("connecting after restart: %v", err)
	}
	conn3.Close(ctx)
}

func TestRedisSentinel(t *testing.T) {
	d := StartRedisSentinel(t, &SentinelOptions{Password: "pw", SentinelPassword: "spw"})
	if len(d.Nodes) != 2 || len(d.Sentinels) != 3 {
		t.Fatalf("%d nodes and %d sentinels, want 2 and 3", len(d.Nodes), len(d.Sentinels))
	}
	c := d.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatalf("SET through the failover client: %v", err)
	}
	old := d.Master(t)
	if old != d.Nodes[0] {
		t.Fatalf("the sentinels name %s, want the first node %s", old.Addr, d.Nodes[0].Addr)
	}
	// A demotion: the old master keeps running, as a replica.
	promoted := d.Failover(t)
	if promoted == old {
		t.Fatal("Failover returned the old master")
	}
	d.WaitRole(t, old, "slave")
	wait.For(t, 30*time.Second, "a write through the failover client after SENTINEL FAILOVER", func() bool {
		return c.Set(ctx, "k", "v2", 0).Err() == nil
	})
	// A crash: the promoted master dies, the old one takes over again.
	promoted.Kill()
	killed := time.Now()
	again := d.WaitFailover(t, promoted)
	t.Logf("failover after a kill took %v", time.Since(killed))
	if again != old {
		t.Fatalf("after the kill the sentinels name %s, want %s", again.Addr, old.Addr)
	}
	wait.For(t, 30*time.Second, "a write through the failover client after the kill", func() bool {
		return c.Set(ctx, "k", "v3", 0).Err() == nil
	})
	if !strings.HasPrefix(d.URL(), "redis+sentinel://default:pw@127.0.0.1:") || !strings.HasSuffix(d.URL(), "/mymaster/0?sentinel_password=spw") {
		t.Fatalf("URL = %q", d.URL())
	}
}
