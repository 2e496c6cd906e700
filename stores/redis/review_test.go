package redis_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

// TestClusterBatchSlotsWithPrefix: in Cluster mode a batch groups its keys
// by the hash slot of the Redis key, KeyPrefix included. "k8" and "k1306"
// share a slot, but "p:k8" and "p:k1306" do not: grouped by the caller's
// keys, one MGET, MSET or UNLINK would cross slots.
func TestClusterBatchSlotsWithPrefix(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t, nil)
	ctx := t.Context()
	client := c.Client(t)
	slotOf := func(k string) int64 {
		t.Helper()
		n, err := client.ClusterKeySlot(ctx, k).Result()
		noErr(t, "CLUSTER KEYSLOT", err)
		return n
	}
	const prefix = "p:"
	a, b := []byte("k8"), []byte("k1306")
	if slotOf(string(a)) != slotOf(string(b)) || slotOf(prefix+string(a)) == slotOf(prefix+string(b)) {
		t.Fatal("precondition: the keys must share a slot that their prefixed forms do not")
	}
	// The store's slot of prefix+key agrees with the server's, hash tags
	// included, wherever they start and end.
	for _, pk := range [][2]string{{"", "abc"}, {"p:", "k8"}, {"{t}:", "x"}, {"a{", "b}c"}, {"a{b", "}c"},
		{"{", "}x"}, {"x}", "{y}"}, {"{}", "a"}, {"", "{}a"}, {"p{", "x"}, {"\xff{\x00", "\x00}"}} {
		if got, want := redis.Slot([]byte(pk[0]), []byte(pk[1])), slotOf(pk[0]+pk[1]); int64(got) != want {
			t.Errorf("slot(%q, %q) = %d, server says %d", pk[0], pk[1], got, want)
		}
	}
	s := open(t, redis.Options{URL: clusterURL(c), KeyPrefix: prefix})
	keys := [][]byte{a, b}
	noErr(t, "PutMany", s.PutMany(ctx, []strata.Entry{{Key: a, Value: a}, {Key: b, Value: b}}))
	got, err := s.GetMany(ctx, keys)
	noErr(t, "GetMany", err)
	if !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("GetMany = %q", got)
	}
	n, err := s.DeleteMany(ctx, keys)
	if err != nil || n != 2 {
		t.Fatalf("DeleteMany = %d, %v; want 2", n, err)
	}
}

// A write whose reply was lost, and whose next attempt could not connect,
// may have been applied: it must match ErrIndeterminate, never
// ErrUnavailable ("nothing was applied"), even when the attempt that may
// have sent it was made by go-redis out of the store's sight.
func TestLostReplyThenRefusedIsIndeterminate(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	direct := r.Client(t)
	ctx := t.Context()
	check := func(t *testing.T, p *proxy, s *redis.Store, key string, calls func() int) {
		t.Helper()
		noErr(t, "Put", s.Put(ctx, []byte(key), []byte("v0"), 0)) // a live connection through the proxy
		before := calls()
		p.failNextReply(dropShut)
		err := s.Put(ctx, []byte(key), []byte("v1"), 0)
		<-p.dropped
		if got := calls() - before; got != 1 {
			t.Fatalf("SET ran %d times, want once", got)
		}
		if !errors.Is(err, strata.ErrIndeterminate) || errors.Is(err, strata.ErrUnavailable) || opErrors(err) != 1 {
			t.Fatalf("Put whose reply was lost, then refused = %v; want ErrIndeterminate (and not ErrUnavailable) in one OpError", err)
		}
	}

	// A client of the caller's own, with go-redis's default retries: the
	// hook sees only the last attempt's error (connection refused).
	t.Run("standalone client with its own retries", func(t *testing.T) {
		p := startProxy(t, r.Addr)
		// PoolSize above the failed dials to come: go-redis would
		// otherwise probe the address for a while after the test.
		client := goredis.NewClient(&goredis.Options{Addr: p.Addr(), PoolSize: 10, MaxRetries: 2,
			MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond, ReadTimeout: time.Second})
		t.Cleanup(func() { client.Close() })
		s, err := redis.New(client, nil)
		noErr(t, "New", err)
		check(t, p, s, "standalone", func() int { return commandCalls(t, direct, "set") })
	})

	// A cluster client as Open makes them (no retries of its own), whose
	// redirect loop resends a SET after a lost reply to the same master,
	// which then refuses connections.
	t.Run("cluster redirect loop", func(t *testing.T) {
		c := testserver.StartRedisCluster(t, nil)
		const key = "cluster-key"
		m := c.MasterOf(t, key)
		p := startProxy(t, m.Addr)
		mdirect := m.Client(t)
		opts := c.Options()
		opts.MaxRetries = -1
		opts.PoolSize = 10
		opts.ReadTimeout = time.Second
		opts.DialTimeout = time.Second
		opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == m.Addr {
				addr = p.Addr() // the key's master, through the proxy
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		client := goredis.NewClusterClient(opts)
		t.Cleanup(func() { client.Close() })
		s, err := redis.NewFresh(client, &redis.Options{MaxRetries: 1, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond})
		noErr(t, "New", err)
		check(t, p, s, key, func() int { return commandCalls(t, mdirect, "set") })
	})
}

// TestKeysOwnsPrefix: Keys and Entries copy the prefix when called; the
// caller may reuse its buffer before the loop runs.
func TestKeysOwnsPrefix(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	s := open(t, redis.Options{URL: r.URL(), KeyPrefix: "own:"})
	ctx := t.Context()
	noErr(t, "PutMany", s.PutMany(ctx, []strata.Entry{{Key: []byte("a1"), Value: []byte("1")}, {Key: []byte("b1"), Value: []byte("2")}}))
	prefix := []byte("a")
	keys := s.Keys(ctx, prefix)
	prefix[0] = 'b'
	var got []string
	for k, err := range keys {
		noErr(t, "Keys", err)
		got = append(got, string(k))
	}
	if len(got) != 1 || got[0] != "a1" {
		t.Fatalf("Keys(a) with the prefix changed before the loop = %q, want [a1]", got)
	}
	snap, err := s.Snapshot(ctx)
	noErr(t, "Snapshot", err)
	defer snap.Close()
	prefix = []byte("a")
	entries := snap.Entries(ctx, prefix)
	prefix[0] = 'b'
	got = nil
	for e, err := range entries {
		noErr(t, "Entries", err)
		got = append(got, string(e.Key))
	}
	if len(got) != 1 || got[0] != "a1" {
		t.Fatalf("Entries(a) with the prefix changed before the loop = %q, want [a1]", got)
	}
}

// TestGarbledTLSReplyIsIndeterminate: a TLS record the client cannot parse,
// read after the command was written, says nothing about whether the
// server ran it. PutIfAbsent must not be sent again (a second SET NX would
// find its own key and report false): it is ErrIndeterminate.
func TestGarbledTLSReplyIsIndeterminate(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	certs := testserver.NewCerts(t)
	cert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	noErr(t, "server certificate", err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, "Listen", err)
	var garble atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	// A TLS terminating proxy that, when told, answers the next request
	// with a record header too long for TLS instead of the reply.
	serve := func(raw net.Conn) {
		defer wg.Done()
		defer raw.Close()
		tc := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.HandshakeContext(t.Context()) != nil {
			return
		}
		backend, err := net.Dial("tcp", r.Addr)
		if err != nil {
			return
		}
		defer backend.Close()
		go func() { _, _ = io.Copy(backend, tc); backend.Close() }()
		buf := make([]byte, 64<<10)
		for {
			n, err := backend.Read(buf)
			if n > 0 {
				if garble.Swap(false) {
					_, _ = raw.Write([]byte{23, 3, 3, 0xff, 0xff}) // application data, 64 KiB: oversized
					return
				}
				if _, err := tc.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go serve(c)
		}
	}()
	s := open(t, redis.Options{URL: "rediss://" + ln.Addr().String() + "/0", TLSCAFile: certs.CA, PoolSize: 1,
		MaxRetries: 3, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond})
	direct := r.Client(t)
	ctx := t.Context()
	noErr(t, "Ping", s.Ping(ctx))
	noErr(t, "CONFIG RESETSTAT", direct.ConfigResetStat(ctx).Err())
	garble.Store(true)
	ok, err := s.PutIfAbsent(ctx, []byte("lock"), []byte("me"), time.Minute)
	if n := commandCalls(t, direct, "set"); n != 1 {
		t.Fatalf("SET NX ran %d times (PutIfAbsent = %v, %v), want once", n, ok, err)
	}
	if !errors.Is(err, strata.ErrIndeterminate) || opErrors(err) != 1 {
		t.Fatalf("PutIfAbsent with a garbled reply = %v, %v; want ErrIndeterminate in one OpError", ok, err)
	}
}

// TestCloseDuringWriteIsIndeterminate: a write whose command reached the
// server and whose reply was still awaited when the store was closed may
// have been applied: the error matches ErrIndeterminate (and ErrClosed).
func TestCloseDuringWriteIsIndeterminate(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	p := startProxy(t, r.Addr)
	s, err := redis.Open(t.Context(), &redis.Options{URL: "redis://" + p.Addr() + "/0", PoolSize: 1, ReadTimeout: time.Minute})
	noErr(t, "Open", err)
	p.failNextReply(dropHang)
	done := make(chan error, 1)
	go func() {
		_, err := s.PutIfAbsent(context.Background(), []byte("k"), []byte("v"), 0)
		done <- err
	}()
	<-p.dropped // the server ran SET NX; its reply is lost
	noErr(t, "Close", s.Close())
	err = <-done
	if !errors.Is(err, strata.ErrIndeterminate) || !errors.Is(err, strata.ErrClosed) || opErrors(err) != 1 {
		t.Fatalf("PutIfAbsent in flight at Close = %v; want ErrIndeterminate and ErrClosed in one OpError", err)
	}
	if v := r.Client(t).Get(t.Context(), "k").Val(); v != "v" {
		t.Fatalf("the server holds %q: the write was applied", v)
	}
}
