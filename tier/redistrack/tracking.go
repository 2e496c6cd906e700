package redistrack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// trackingName is the CLIENT SETNAME of the tracking connections, so that
// CLIENT LIST shows what they are.
const trackingName = "strata-tier-tracking"

// handshakeTimeout bounds dialing and the HELLO / CLIENT TRACKING exchange.
const handshakeTimeout = 5 * time.Second

// trackConn is the tracking connection to one master.
type trackConn struct {
	addr   string
	opt    *goredis.Options
	master bool // the node must say it is a master (HELLO's role)
	cancel context.CancelFunc
	up     bool // guarded by Invalidator.mu
}

func (inv *Invalidator) poke() {
	select {
	case inv.kick <- struct{}{}:
	default:
	}
}

// topologyLoop lists the masters now and then (at once for a standalone
// server, every TopologyInterval for a Cluster, a Ring or a failover
// client) and keeps one tracking connection per master.
func (inv *Invalidator) topologyLoop() {
	defer inv.wg.Done()
	c, static := inv.cfg.Client.(*goredis.Client)
	static = static && !isFailover(c)
	interval := inv.cfg.TopologyInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-inv.ctx.Done():
			return
		case <-timer.C:
		case <-inv.kick:
		}
		ctx, cancel := context.WithTimeout(inv.ctx, handshakeTimeout)
		targets, err := inv.masters(ctx)
		cancel()
		if err != nil {
			inv.setErr(err)
		} else {
			inv.reconcile(targets)
		}
		if static && err == nil {
			// A standalone client has one target for good; its connection
			// loop redials it.
			<-inv.ctx.Done()
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(interval)
	}
}

// failoverAddr is the address go-redis puts in the Options of a client
// made by NewFailoverClient, whose dialer asks the sentinels for the
// master and connects to it.
const failoverAddr = "FailoverClient"

// isFailover reports whether c is a failover client (Redis Sentinel).
func isFailover(c *goredis.Client) bool { return c != nil && c.Options().Addr == failoverAddr }

// sentinelMaster returns the address of the master the sentinels name
// now, and the options of a connection to that node only. go-redis keeps
// the sentinels' addresses to itself: the client's own dialer asks them,
// and the address is that of the connection it opens (closed at once).
// Dialing through it also moves the client to that master, as its own
// next dial would.
func sentinelMaster(ctx context.Context, o *goredis.Options) (string, *goredis.Options, error) {
	conn, err := o.Dialer(ctx, "tcp", o.Addr)
	if err != nil {
		return "", nil, fmt.Errorf("redistrack: asking the sentinels for the master: %w", err)
	}
	addr := conn.RemoteAddr().String()
	conn.Close()
	return addr, &goredis.Options{
		Addr: addr, TLSConfig: o.TLSConfig, DialTimeout: o.DialTimeout,
		Username: o.Username, Password: o.Password,
		CredentialsProvider: o.CredentialsProvider, CredentialsProviderContext: o.CredentialsProviderContext,
	}, nil
}

// masters returns the address and connection options of every master.
func (inv *Invalidator) masters(ctx context.Context) (map[string]*goredis.Options, error) {
	out := map[string]*goredis.Options{}
	switch c := inv.cfg.Client.(type) {
	case *goredis.Client:
		o := c.Options()
		if !isFailover(c) {
			out[o.Addr] = o
			break
		}
		addr, mo, err := sentinelMaster(ctx, o)
		if err != nil {
			return nil, err
		}
		out[addr] = mo
	case *goredis.ClusterClient:
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("redistrack: listing cluster masters: %w", err)
		}
		co := c.Options()
		for _, s := range slots {
			if len(s.Nodes) == 0 {
				continue
			}
			addr := s.Nodes[0].Addr
			out[addr] = &goredis.Options{
				Addr: addr, Dialer: co.Dialer, TLSConfig: co.TLSConfig, DialTimeout: co.DialTimeout,
				Username: co.Username, Password: co.Password,
				CredentialsProvider: co.CredentialsProvider, CredentialsProviderContext: co.CredentialsProviderContext,
			}
		}
		if len(out) == 0 {
			return nil, errors.New("redistrack: the cluster reports no master")
		}
	case *goredis.Ring:
		var mu sync.Mutex
		err := c.ForEachShard(ctx, func(_ context.Context, s *goredis.Client) error {
			o := s.Options()
			mu.Lock()
			out[o.Addr] = o
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("redistrack: listing ring shards: %w", err)
		}
	default:
		return nil, fmt.Errorf("redistrack: Redis invalidation does not support a %T client", inv.cfg.Client)
	}
	return out, nil
}

// reconcile opens a connection to each new master and closes those to
// masters gone.
func (inv *Invalidator) reconcile(targets map[string]*goredis.Options) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.ctx.Err() != nil {
		return
	}
	added := false
	for addr, tc := range inv.conns {
		if _, ok := targets[addr]; !ok {
			tc.cancel()
			delete(inv.conns, addr)
		}
	}
	for addr, o := range targets {
		if _, ok := inv.conns[addr]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(inv.ctx)
		c, _ := inv.cfg.Client.(*goredis.Client)
		tc := &trackConn{addr: addr, opt: o, cancel: cancel, master: isFailover(c)}
		inv.conns[addr] = tc
		added = true
		inv.wg.Add(1)
		go inv.connLoop(ctx, tc)
	}
	if added {
		inv.unhealthyLocked(fmt.Errorf("redistrack: tracking not yet established on every master"))
	}
	inv.checkLocked()
}

// checkLocked makes the tier healthy when every connection is tracking.
// The caller holds mu.
func (inv *Invalidator) checkLocked() {
	if inv.healthy || len(inv.conns) == 0 {
		return
	}
	for _, tc := range inv.conns {
		if !tc.up {
			return
		}
	}
	inv.healthy = true
	inv.sink.Up()
}

func (inv *Invalidator) unhealthy(cause error) {
	inv.mu.Lock()
	inv.unhealthyLocked(cause)
	inv.mu.Unlock()
}

// unhealthyLocked tells the tier that tracking is down (it flushes L1 and
// bypasses it), or, if it is down already, why it still is. The caller
// holds mu.
func (inv *Invalidator) unhealthyLocked(cause error) {
	inv.healthy = false
	inv.sink.Down(cause)
}

// setErr records a failure that keeps tracking from coming up; once every
// connection tracks, such failures (a topology listing that failed, say)
// change nothing.
func (inv *Invalidator) setErr(err error) {
	inv.mu.Lock()
	if !inv.healthy {
		inv.sink.Down(err)
	}
	inv.mu.Unlock()
}

// setUp records that tc is tracking (or not any more).
func (inv *Invalidator) setUp(tc *trackConn, up bool, cause error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if tc.up == up {
		if cause != nil && !inv.healthy {
			inv.sink.Down(cause)
		}
		return
	}
	tc.up = up
	if up {
		inv.checkLocked()
		return
	}
	// A connection closed because its master left the topology (or the
	// tier closed) is no loss.
	if cur, ok := inv.conns[tc.addr]; ok && cur == tc && inv.ctx.Err() == nil {
		inv.unhealthyLocked(cause)
	}
}

// connLoop keeps tc's connection tracking until ctx ends, redialing with
// backoff.
func (inv *Invalidator) connLoop(ctx context.Context, tc *trackConn) {
	defer inv.wg.Done()
	const minBackoff, maxBackoff = 20 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		began := time.Now()
		err := inv.session(ctx, tc)
		inv.setUp(tc, false, fmt.Errorf("redistrack: tracking connection to %s: %w", tc.addr, err))
		if time.Since(began) > 10*time.Second {
			backoff = minBackoff
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// dial opens a connection as the go-redis client would.
func dial(ctx context.Context, o *goredis.Options) (net.Conn, error) {
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	if o.Dialer != nil {
		return o.Dialer(ctx, network, o.Addr)
	}
	d := &net.Dialer{Timeout: handshakeTimeout}
	if o.TLSConfig != nil {
		return (&tls.Dialer{NetDialer: d, Config: o.TLSConfig}).DialContext(ctx, network, o.Addr)
	}
	return d.DialContext(ctx, network, o.Addr)
}

// session runs one tracking connection until it fails or ctx ends.
func (inv *Invalidator) session(ctx context.Context, tc *trackConn) error {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, err := dial(hctx, tc.opt)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var pingers sync.WaitGroup
	defer func() {
		close(stop)
		conn.Close()
		pingers.Wait()
	}()
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-stop:
		}
	}()

	user, pass := tc.opt.Username, tc.opt.Password
	switch {
	case tc.opt.CredentialsProviderContext != nil:
		if user, pass, err = tc.opt.CredentialsProviderContext(hctx); err != nil {
			return err
		}
	case tc.opt.CredentialsProvider != nil:
		user, pass = tc.opt.CredentialsProvider()
	}
	hello := []string{"HELLO", "3"}
	if pass != "" {
		if user == "" {
			user = "default"
		}
		hello = append(hello, "AUTH", user, pass)
	}
	hello = append(hello, "SETNAME", trackingName)
	track := []string{"CLIENT", "TRACKING", "ON", "BCAST"}
	if len(inv.prefix) > 0 {
		track = append(track, "PREFIX", string(inv.prefix))
	}
	deadline, _ := hctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write(appendCommand(appendCommand(nil, hello...), track...)); err != nil {
		return err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	for i, what := range []string{"HELLO 3", "CLIENT TRACKING"} {
		v, err := readResp(br)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := v.err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if i == 0 && tc.master {
			// A sentinel's answer may lag a failover: tracking a replica
			// would miss the writes made on the new master.
			if r := v.field("role"); r != "master" {
				return fmt.Errorf("HELLO: the node the sentinels name is a %q, not a master", r)
			}
		}
		if i == 1 && v.text() != "OK" {
			return fmt.Errorf("CLIENT TRACKING answered %q", v.text())
		}
	}
	conn.SetDeadline(time.Time{})
	// From here every write of a key under the prefix, by any client, is
	// pushed to this connection.
	inv.setUp(tc, true, nil)

	interval := inv.cfg.HeartbeatInterval
	pingers.Add(1)
	go func() {
		defer pingers.Done()
		ping := appendCommand(nil, "PING")
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				conn.SetWriteDeadline(time.Now().Add(interval))
				if _, err := conn.Write(ping); err != nil {
					conn.Close()
					return
				}
			}
		}
	}()
	for {
		// A healthy connection answers a PING every interval.
		conn.SetReadDeadline(time.Now().Add(2 * interval))
		v, err := readResp(br)
		if err != nil {
			return err
		}
		if err := v.err(); err != nil {
			return err
		}
		if v.kind == '>' {
			inv.push(v)
		}
	}
}

// push applies a server push: "invalidate" with the keys written, or with
// null after FLUSHALL / FLUSHDB.
func (inv *Invalidator) push(v respValue) {
	if len(v.elems) < 2 || !v.elems[0].isString() || v.elems[0].text() != "invalidate" {
		return
	}
	keys := v.elems[1]
	if keys.null || keys.kind == '_' {
		inv.sink.Flush()
		return
	}
	for _, k := range keys.elems {
		if !k.isString() || !bytes.HasPrefix(k.str, inv.prefix) {
			continue
		}
		inv.sink.Invalidate(k.str[len(inv.prefix):])
	}
}
