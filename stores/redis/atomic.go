package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
)

// script is a Lua script, sent by digest.
type script struct{ src, sha string }

func newScript(src string) script {
	h := sha1.Sum([]byte(src))
	return script{src: src, sha: hex.EncodeToString(h[:])}
}

// casScript: KEYS[1] the key; ARGV[1] "1" if the key must be absent, else
// "0" and ARGV[2] the expected value; ARGV[3] the new value; ARGV[4] its
// TTL in milliseconds, "0" for none. Returns 1 if it wrote.
var casScript = newScript(`local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur then return 0 end
elseif (not cur) or cur ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1`)

// onceCmd is a command go-redis must not send twice: its NoRetry stops
// go-redis's own retry loops (standalone and Cluster) from resending it
// after a failure that may have followed the write.
type onceCmd struct{ *goredis.Cmd }

// NoRetry reports true.
func (onceCmd) NoRetry() bool { return true }

// do sends one command built from args, as a onceCmd when once is set, and
// returns it.
func (s *Store) do(ctx context.Context, once bool, args ...any) (*goredis.Cmd, error) {
	cmd := goredis.NewCmd(ctx, args...)
	var c goredis.Cmder = cmd
	if once {
		c = onceCmd{cmd}
	}
	return cmd, s.process(ctx, c)
}

// eval runs sc on key by digest, and by source if the server does not know
// it (NOSCRIPT: nothing ran).
func (s *Store) eval(ctx context.Context, sc script, once bool, key []byte, args ...any) (*goredis.Cmd, error) {
	cmd, err := s.do(ctx, once, evalArgs("evalsha", sc.sha, key, args)...)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd, err = s.do(ctx, once, evalArgs("eval", sc.src, key, args)...)
	}
	return cmd, err
}

func evalArgs(verb, body string, key []byte, args []any) []any {
	out := make([]any, 0, 4+len(args))
	out = append(out, verb, body, 1, key)
	return append(out, args...)
}

// PutIfAbsent stores value under key with SET NX (PX ttl) and reports
// whether it did. It is never resent after a failure that may have followed
// the write: such failures match strata.ErrIndeterminate.
func (s *Store) PutIfAbsent(ctx context.Context, key, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, value, ttl)
	if err != nil {
		return false, s.err("put_if_absent", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	_, err = s.do(ctx, true, setArgs(s.key(key), value, ttl, "nx")...)
	s.latency.Since(start)
	switch {
	case errors.Is(err, goredis.Nil):
		return false, nil
	case err != nil:
		return false, s.fail(ctx, "put_if_absent", key, st, err, true)
	}
	s.stats.Put(1, len(key)+len(value))
	return true, nil
}

// GetAndDelete removes key with GETDEL and returns its value, or
// strata.ErrNotFound. It is never resent after a failure that may have
// followed the write: such failures match strata.ErrIndeterminate.
func (s *Store) GetAndDelete(ctx context.Context, key []byte) ([]byte, error) {
	if err := s.enter(ctx, key); err != nil {
		return nil, s.err("get_and_delete", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd, err := s.do(ctx, true, "getdel", s.key(key))
	s.latency.Since(start)
	switch {
	case errors.Is(err, goredis.Nil):
		s.stats.Miss()
		return nil, strata.ErrNotFound
	case err != nil:
		return nil, s.fail(ctx, "get_and_delete", key, st, err, true)
	}
	str, err := cmd.Text()
	if err != nil {
		return nil, s.fail(ctx, "get_and_delete", key, st, err, true)
	}
	s.stats.Hit(len(str))
	s.stats.Delete(1)
	return bytesOf(str), nil
}

// CompareAndSwap stores new (with ttl) if key holds old (nil: if key is
// absent), atomically in a Lua script, and reports whether it did. It is
// never resent after a failure that may have followed the write: such
// failures match strata.ErrIndeterminate.
func (s *Store) CompareAndSwap(ctx context.Context, key, old, new []byte, ttl time.Duration) (bool, error) {
	ttl, err := s.check(ctx, key, new, ttl)
	if err != nil {
		return false, s.err("compare_and_swap", key, err)
	}
	absent, expect := "0", old
	if old == nil {
		absent, expect = "1", []byte{}
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd, err := s.eval(ctx, casScript, true, s.key(key), absent, expect, new, ttl.Milliseconds()*boolInt(ttl > 0))
	s.latency.Since(start)
	if err != nil {
		return false, s.fail(ctx, "compare_and_swap", key, st, err, true)
	}
	n, err := cmd.Int64()
	if err != nil {
		return false, s.fail(ctx, "compare_and_swap", key, st, err, true)
	}
	if n == 1 {
		s.stats.Put(1, len(key)+len(new))
	}
	return n == 1, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ttlOf converts a PTTL reply: -2 absent, -1 no expiry. Redis reports 0
// for a key in its last millisecond, which is still live.
func ttlOf(ms int64) (time.Duration, bool) {
	switch {
	case ms == -2 || ms < -2:
		return 0, false
	case ms == -1:
		return strata.NoExpiry, true
	case ms == 0:
		return time.Millisecond, true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// TTL returns the time key has left (PTTL), strata.NoExpiry, or
// strata.ErrNotFound.
func (s *Store) TTL(ctx context.Context, key []byte) (time.Duration, error) {
	if err := s.enter(ctx, key); err != nil {
		return 0, s.err("ttl", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd := goredis.NewIntCmd(ctx, "pttl", s.key(key))
	err := s.process(ctx, cmd)
	s.latency.Since(start)
	if err != nil {
		return 0, s.fail(ctx, "ttl", key, st, err, false)
	}
	ttl, ok := ttlOf(cmd.Val())
	if !ok {
		return 0, strata.ErrNotFound
	}
	return ttl, nil
}

// GetWithTTL returns the value and remaining TTL of key, read together in
// one round trip by MULTI GET PTTL EXEC (atomic, and cheaper for the
// server than a script).
func (s *Store) GetWithTTL(ctx context.Context, key []byte) ([]byte, time.Duration, error) {
	if err := s.enter(ctx, key); err != nil {
		return nil, 0, s.err("get_with_ttl", key, err)
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	k := s.key(key)
	var get *goredis.StringCmd
	var pttl *goredis.IntCmd
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, string(k))
		pttl = goredis.NewIntCmd(ctx, "pttl", k)
		return p.Process(ctx, pttl)
	})
	s.latency.Since(start)
	if errors.Is(err, goredis.Nil) {
		s.stats.Miss()
		return nil, 0, strata.ErrNotFound
	}
	if err != nil {
		return nil, 0, s.fail(ctx, "get_with_ttl", key, st, err, false)
	}
	ttl, ok := ttlOf(pttl.Val())
	if !ok {
		// The key expired between GET and PTTL: it is gone now.
		s.stats.Miss()
		return nil, 0, strata.ErrNotFound
	}
	v := bytesOf(get.Val())
	s.stats.Hit(len(v))
	return v, ttl, nil
}
