package tier

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// trackingName is the CLIENT SETNAME of the tracking connections, so that
// CLIENT LIST shows what they are.
const trackingName = "strata-tier-tracking"

// handshakeTimeout bounds dialing and the HELLO / CLIENT TRACKING exchange.
const handshakeTimeout = 5 * time.Second

// invalidator keeps one tracking connection per Redis master:
// CLIENT TRACKING ON BCAST PREFIX <KeyPrefix> over RESP3, so that the
// server pushes the name of every key under the prefix that any client
// modifies. The tier serves from L1 only while every connection is
// tracking; when one is lost (or a master appears), it flushes L1 and
// bypasses it until all are tracking again.
type invalidator struct {
	t      *Tier
	cfg    RedisInvalidation
	prefix []byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // asks the topology loop to look now

	mu      sync.Mutex
	conns   map[string]*trackConn // by address
	healthy bool
	changed chan struct{} // closed and replaced when healthy changes
	lastErr error
}

// trackConn is the tracking connection to one master.
type trackConn struct {
	addr   string
	opt    *goredis.Options
	cancel context.CancelFunc
	up     bool // guarded by invalidator.mu
}

func startInvalidator(t *Tier, cfg *RedisInvalidation) *invalidator {
	ctx, cancel := context.WithCancel(context.Background())
	inv := &invalidator{
		t: t, cfg: *cfg, prefix: []byte(cfg.KeyPrefix),
		ctx: ctx, cancel: cancel,
		kick:    make(chan struct{}, 1),
		conns:   map[string]*trackConn{},
		changed: make(chan struct{}),
	}
	if cc, ok := cfg.Client.(*goredis.ClusterClient); ok {
		// A node the client has not met before may serve keys (after a
		// resharding) that no tracking connection covers yet: stop
		// trusting L1 before the client sends it anything, and look at
		// the topology now.
		cc.OnNewNode(func(*goredis.Client) {
			if ctx.Err() == nil {
				inv.unhealthy(errors.New("tier: the cluster client met a new node"))
				inv.poke()
			}
		})
	}
	inv.wg.Add(1)
	go inv.topologyLoop()
	return inv
}

func (inv *invalidator) poke() {
	select {
	case inv.kick <- struct{}{}:
	default:
	}
}

func (inv *invalidator) close() {
	inv.cancel()
	inv.wg.Wait()
}

// topologyLoop lists the masters now and then (at once for a standalone
// server, every TopologyInterval for a Cluster or Ring) and keeps one
// tracking connection per master.
func (inv *invalidator) topologyLoop() {
	defer inv.wg.Done()
	_, static := inv.cfg.Client.(*goredis.Client)
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
			// A standalone or failover client has one target for good; its
			// connection loop redials it.
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

// masters returns the address and connection options of every master.
func (inv *invalidator) masters(ctx context.Context) (map[string]*goredis.Options, error) {
	out := map[string]*goredis.Options{}
	switch c := inv.cfg.Client.(type) {
	case *goredis.Client:
		o := c.Options()
		out[o.Addr] = o
	case *goredis.ClusterClient:
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("tier: listing cluster masters: %w", err)
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
			return nil, errors.New("tier: the cluster reports no master")
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
			return nil, fmt.Errorf("tier: listing ring shards: %w", err)
		}
	default:
		return nil, fmt.Errorf("tier: Redis invalidation does not support a %T client", inv.cfg.Client)
	}
	return out, nil
}

// reconcile opens a connection to each new master and closes those to
// masters gone.
func (inv *invalidator) reconcile(targets map[string]*goredis.Options) {
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
		tc := &trackConn{addr: addr, opt: o, cancel: cancel}
		inv.conns[addr] = tc
		added = true
		inv.wg.Add(1)
		go inv.connLoop(ctx, tc)
	}
	if added {
		inv.unhealthyLocked(fmt.Errorf("tier: tracking not yet established on every master"))
	}
	inv.checkLocked()
}

// checkLocked makes the tier healthy when every connection is tracking.
// The caller holds mu.
func (inv *invalidator) checkLocked() {
	if inv.healthy || len(inv.conns) == 0 {
		return
	}
	for _, tc := range inv.conns {
		if !tc.up {
			return
		}
	}
	inv.healthy = true
	inv.lastErr = nil
	inv.t.newEpoch(false, false)
	close(inv.changed)
	inv.changed = make(chan struct{})
}

func (inv *invalidator) unhealthy(cause error) {
	inv.mu.Lock()
	inv.unhealthyLocked(cause)
	inv.mu.Unlock()
}

// unhealthyLocked flushes L1 and bypasses it. The caller holds mu.
func (inv *invalidator) unhealthyLocked(cause error) {
	inv.lastErr = cause
	if !inv.healthy {
		return
	}
	inv.healthy = false
	inv.t.newEpoch(true, false)
	close(inv.changed)
	inv.changed = make(chan struct{})
}

func (inv *invalidator) setErr(err error) {
	inv.mu.Lock()
	inv.lastErr = err
	inv.mu.Unlock()
}

// setUp records that tc is tracking (or not any more).
func (inv *invalidator) setUp(tc *trackConn, up bool, cause error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if tc.up == up {
		if cause != nil {
			inv.lastErr = cause
		}
		return
	}
	tc.up = up
	if up {
		inv.t.c.connects.Add(1)
		inv.checkLocked()
		return
	}
	// A connection closed because its master left the topology (or the
	// tier closed) is no loss.
	if cur, ok := inv.conns[tc.addr]; ok && cur == tc && inv.ctx.Err() == nil {
		inv.t.c.disconnects.Add(1)
		inv.unhealthyLocked(cause)
	}
}

// connLoop keeps tc's connection tracking until ctx ends, redialing with
// backoff.
func (inv *invalidator) connLoop(ctx context.Context, tc *trackConn) {
	defer inv.wg.Done()
	const minBackoff, maxBackoff = 20 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		began := time.Now()
		err := inv.session(ctx, tc)
		inv.setUp(tc, false, fmt.Errorf("tier: tracking connection to %s: %w", tc.addr, err))
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
func (inv *invalidator) session(ctx context.Context, tc *trackConn) error {
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
func (inv *invalidator) push(v respValue) {
	if len(v.elems) < 2 || !v.elems[0].isString() || v.elems[0].text() != "invalidate" {
		return
	}
	keys := v.elems[1]
	if keys.null || keys.kind == '_' {
		inv.t.newEpoch(false, true)
		return
	}
	for _, k := range keys.elems {
		if !k.isString() || !bytes.HasPrefix(k.str, inv.prefix) {
			continue
		}
		inv.t.c.invalidations.Add(1)
		inv.t.invalidate(k.str[len(inv.prefix):])
	}
}

// status reports whether the tier is healthy, a channel closed at the next
// change, and the last error seen.
func (inv *invalidator) status() (bool, <-chan struct{}, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.healthy, inv.changed, inv.lastErr
}

// addrs returns the masters tracked, sorted.
func (inv *invalidator) addrs() []string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]string, 0, len(inv.conns))
	for a := range inv.conns {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// WaitTracking waits until Redis invalidation is established on every
// master, so that the tier serves from L1, or until ctx ends (returning
// ctx's error joined with the last tracking error). Without Redis
// invalidation it returns nil at once.
func (t *Tier) WaitTracking(ctx context.Context) error {
	if t.inv == nil {
		return nil
	}
	for {
		ok, changed, last := t.inv.status()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		}
	}
}

// Tracking reports whether the tier serves from L1 under Redis
// invalidation, the masters it tracks and the last tracking error. Without
// Redis invalidation it reports true, nil, nil.
func (t *Tier) Tracking() (ok bool, masters []string, lastErr error) {
	if t.inv == nil {
		return true, nil, nil
	}
	ok, _, lastErr = t.inv.status()
	return ok, t.inv.addrs(), lastErr
}
