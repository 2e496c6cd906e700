// Package redis implements locks.Locker on Redis, standalone or Cluster,
// over any go-redis UniversalClient.
//
// # How a lock is held
//
// The lock name is a key, Prefix+"{"+name+"}", set with SET NX PX to a
// random 128-bit owner id (and the lease's token) for the lease's TTL.
// Extend and Release are Lua scripts that act only if the key still holds
// this lease's owner id, so a lease that was lost can never release or
// extend the lock of whoever holds it now. Leases renew themselves every
// third of their TTL (package locks); a lease whose renewals have failed
// for a whole TTL, counted from when the last successful one was sent, is
// lost before Redis could give the lock to anyone else.
//
// Acquisition is one script (one round trip; release is another): it takes
// the lock and increments the fencing counter, the key
// Prefix+"{"+name+"}:fence", together. Both keys carry the same hash tag,
// so they live in one slot and the script works on Redis Cluster. Braces
// and percent signs in the name are escaped (%7B, %7D, %25) inside the tag,
// so any byte string is a safe name and no two names share keys. The fence
// counter never expires: one small key per lock name ever used.
//
// # Fencing tokens
//
// A token is max(previous token + 1, the Redis server's clock in
// microseconds). The counter alone would make tokens strictly increasing
// for as long as Redis keeps the fence key; taking the clock into account
// keeps them increasing even if Redis loses it (a restart without
// persistence, an old RDB snapshot, a failover to a replica that missed
// the last writes), as long as the server's clock has not stepped back by
// more than the time since the lost tokens were issued. Tokens are
// therefore large numbers (about 1.7e15 in 2024); only their order means
// anything. [FencedPut] is a fenced write for a resource that lives in
// Redis.
//
// # Limits
//
// This is a single-instance lock (the "correct" variant in Kleppmann's
// analysis only together with fencing), not Redlock: on Cluster each lock
// lives on the one master that serves its slot. If that master fails over
// to a replica that had not received the lock key, a second holder can
// acquire it while the first still believes it holds it; the fencing token
// (which stays increasing, see above) is what protects the resource then.
// Redis expires keys by its wall clock, so a clock jump on the server can
// also end a lock early; the same protection applies.
//
// # Errors
//
// TryAcquire returns locks.ErrHeld when the lock is taken. Backend failures
// come wrapped once in a *strata.OpError whose cause matches
// strata.ErrUnavailable (the request was not applied: connection refused,
// CLUSTERDOWN, LOADING), strata.ErrIndeterminate (a timeout or a broken
// connection after the request was sent) or strata.ErrClosed (the client
// was closed). An acquisition whose outcome is unknown is undone on a best
// effort basis before the error is returned.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
	"github.com/strata-kv/strata/storekit"
)

// backend names the backend in errors.
const backend = "redis"

// DefaultPrefix is the default Options.Prefix.
const DefaultPrefix = "strata:lock:"

// Options configure a Locker. A nil *Options means the defaults.
type Options struct {
	// Options are the settings every locker shares: backoff and renewal.
	locks.Options

	// Prefix starts every key the Locker writes. It must not contain '{'
	// or '}' (the name's hash tag follows it). Default DefaultPrefix.
	Prefix string
}

// Locker hands out leases on locks kept in Redis. It is safe for
// concurrent use. It does not own the client: close the client yourself,
// after releasing the leases.
type Locker struct {
	c      goredis.UniversalClient
	opts   locks.Options
	prefix string
}

var _ locks.Locker = (*Locker)(nil)

// New returns a Locker over c, which may be a *goredis.Client, a
// *goredis.ClusterClient, a failover client or a Ring (a Ring shards by
// the whole key and keeps the two keys of a lock together only through the
// hash tag if it is configured to, so prefer the others). Bad options, and
// a nil client, fail with an error matching strata.ErrInvalidConfig.
func New(c goredis.UniversalClient, o *Options) (*Locker, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: locks/redis: New with a nil client", strata.ErrInvalidConfig)
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("%w: locks/redis: Prefix %q must not contain '{' or '}'", strata.ErrInvalidConfig, opts.Prefix)
	}
	return &Locker{c: c, opts: opts.Options, prefix: opts.Prefix}, nil
}

// LockKey returns the Redis key that holds the lock name. Its fencing
// counter is LockKey(name)+":fence".
func (lk *Locker) LockKey(name string) string {
	var b strings.Builder
	b.Grow(len(lk.prefix) + len(name) + 2)
	b.WriteString(lk.prefix)
	b.WriteByte('{')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		case '%':
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// acquireScript takes the lock if it is free and draws the next fencing
// token; it returns the token, or 0 if the lock is held. A retry of a
// request that did take the lock (its reply lost) finds its own owner id
// and returns the same token.
//
// KEYS[1] lock, KEYS[2] fence counter; ARGV[1] owner id and ':', ARGV[2]
// ttl in milliseconds.
var acquireScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  if string.match(v, '^[^:]*:') == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(v, #ARGV[1] + 1))
  end
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tok = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if tok < now then tok = now end
local s = string.format('%d', tok)
redis.call('SET', KEYS[2], s)
redis.call('SET', KEYS[1], ARGV[1] .. s, 'PX', ARGV[2])
return tok
`)

// extendScript sets the lock's TTL if this owner holds it: 1, else 0.
// KEYS[1] lock; ARGV[1] owner id and ':', ARGV[2] ttl in milliseconds.
var extendScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^[^:]*:') == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes the lock if this owner holds it: 1, else 0.
// KEYS[1] lock; ARGV[1] owner id and ':'.
var releaseScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^[^:]*:') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// TryAcquire takes the lock name for ttl if it is free, in one round trip,
// and otherwise returns locks.ErrHeld at once.
func (lk *Locker) TryAcquire(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	ttl, err := locks.CheckRequest(backend, name, ttl)
	if err != nil {
		return nil, err
	}
	return locks.TraceAcquire(ctx, &lk.opts, backend, name, ttl.Seconds(), false, func(ctx context.Context) (locks.Lease, error) {
		return lk.try(ctx, name, ttl)
	})
}

// Acquire takes the lock name for ttl, waiting with backoff while it is
// held (see locks.Locker).
func (lk *Locker) Acquire(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	ttl, err := locks.CheckRequest(backend, name, ttl)
	if err != nil {
		return nil, err
	}
	return locks.TraceAcquire(ctx, &lk.opts, backend, name, ttl.Seconds(), true, func(ctx context.Context) (locks.Lease, error) {
		return locks.Retry(ctx, name, &lk.opts, func(ctx context.Context) (locks.Lease, error) {
			return lk.try(ctx, name, ttl)
		})
	})
}

func (lk *Locker) try(ctx context.Context, name string, ttl time.Duration) (locks.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := lk.LockKey(name)
	owner := newOwner()
	sent := time.Now()
	tok, err := acquireScript.Run(ctx, lk.c, []string{key, key + ":fence"}, owner, ttl.Milliseconds()).Int64()
	if err != nil {
		err = opError("acquire", name, err)
		if !errors.Is(err, strata.ErrUnavailable) && !errors.Is(err, strata.ErrClosed) {
			// The script may have run: undo it, best effort; the lock
			// expires after ttl otherwise.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = releaseScript.Run(cctx, lk.c, []string{key}, owner).Err()
			cancel()
		}
		return nil, err
	}
	if tok <= 0 {
		return nil, locks.ErrHeld
	}
	l := &lease{lk: lk, name: name, key: key, owner: owner}
	return locks.NewLease(locks.LeaseConfig{
		Name: name, Token: uint64(tok), TTL: ttl, Sent: sent,
		Backend: backend, Lock: l, Options: &lk.opts, Acquired: trace.SpanContextFromContext(ctx),
	}), nil
}

// newOwner returns a random owner id followed by ':'.
func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:]) + ":"
}

// lease is the Redis side of a held lock.
type lease struct {
	lk    *Locker
	name  string
	key   string
	owner string
}

var _ locks.LeaseBackend = (*lease)(nil)

var errNotOwner = fmt.Errorf("%w: the lock is no longer held by this lease", locks.ErrLost)

// Renew extends the lock if this lease still owns it.
func (l *lease) Renew(ctx context.Context, ttl time.Duration) error {
	n, err := extendScript.Run(ctx, l.lk.c, []string{l.key}, l.owner, ttl.Milliseconds()).Int64()
	if err != nil {
		return opError("extend", l.name, err)
	}
	if n == 0 {
		return storekit.NewOpError("extend", backend, []byte(l.name), errNotOwner)
	}
	return nil
}

// Release deletes the lock if this lease still owns it.
func (l *lease) Release(ctx context.Context) error {
	n, err := releaseScript.Run(ctx, l.lk.c, []string{l.key}, l.owner).Int64()
	if err != nil {
		return opError("release", l.name, err)
	}
	if n == 0 {
		return storekit.NewOpError("release", backend, []byte(l.name), errNotOwner)
	}
	return nil
}

// Abandon does nothing: a lost Redis lock holds no local resource.
func (l *lease) Abandon() {}
