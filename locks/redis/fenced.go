package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/locks"
	"github.com/strata-kv/strata/storekit"
)

// fencedPutScript stores a value and its token in the hash KEYS[1] unless
// the hash holds a higher token. Tokens are compared as decimal strings
// (length first), so the comparison is exact for every uint64. It returns
// 1 when it wrote, else the stored token.
//
// ARGV[1] token, ARGV[2] value, ARGV[3] ttl in milliseconds (0: none).
var fencedPutScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 't')
if cur and (#ARGV[1] < #cur or (#ARGV[1] == #cur and ARGV[1] < cur)) then
  return cur
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'v', ARGV[2])
if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
`)

// FencedPut stores value under key unless key was last written with a
// higher fencing token; then it fails with an error matching
// locks.ErrStaleToken and changes nothing. A write with the same token as
// the stored one is accepted. It is one Lua script, atomic on standalone
// Redis and on Cluster (key is a single key).
//
// The key holds a hash with the fields "t" (the token, decimal) and "v"
// (the value); read it with FencedGet. Every writer of key must use
// FencedPut. ttl follows strata.Store.Put (0 and strata.NoExpiry: no
// expiry); an expired key forgets its highest token, so fenced keys should
// not expire while a stale holder might still write.
func FencedPut(ctx context.Context, c goredis.UniversalClient, key string, token uint64, value []byte, ttl time.Duration) error {
	if err := storekit.CheckKey([]byte(key)); err != nil {
		return storekit.NewOpError("fenced_put", backend, []byte(key), err)
	}
	ttl, err := storekit.ResolveTTL(ttl, 0)
	if err != nil {
		return storekit.NewOpError("fenced_put", backend, []byte(key), err)
	}
	ms := int64(0)
	if ttl > 0 {
		ms = ttl.Milliseconds()
	}
	res, err := fencedPutScript.Run(ctx, c, []string{key}, strconv.FormatUint(token, 10), value, ms).Result()
	if err != nil {
		return opError("fenced_put", key, err)
	}
	if seen, ok := res.(string); ok {
		return storekit.NewOpError("fenced_put", backend, []byte(key),
			fmt.Errorf("%w: token %d, the resource has accepted %s", locks.ErrStaleToken, token, seen))
	}
	return nil
}

// FencedGet returns the value FencedPut stored under key and its token, or
// strata.ErrNotFound.
func FencedGet(ctx context.Context, c goredis.UniversalClient, key string) ([]byte, uint64, error) {
	if err := storekit.CheckKey([]byte(key)); err != nil {
		return nil, 0, storekit.NewOpError("fenced_get", backend, []byte(key), err)
	}
	vals, err := c.HMGet(ctx, key, "t", "v").Result()
	if err != nil {
		return nil, 0, opError("fenced_get", key, err)
	}
	ts, ok1 := vals[0].(string)
	v, ok2 := vals[1].(string)
	if !ok1 && !ok2 {
		return nil, 0, strata.ErrNotFound
	}
	tok, err := strconv.ParseUint(ts, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return nil, 0, storekit.NewOpError("fenced_get", backend, []byte(key),
			fmt.Errorf("%w: not a fenced value", strata.ErrCorrupt))
	}
	return []byte(v), tok, nil
}
