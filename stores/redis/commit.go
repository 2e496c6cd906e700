package redis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// commitScript applies a strata.WriteBatch reduced to the last write of
// each key (the order between different keys does not matter inside one
// atomic step). KEYS holds the condition keys, then the keys stored
// without expiry, then those stored with one, then those deleted. ARGV:
// the four counts, the batch ID ("" for none); then per condition its kind
// ("e" equal, "a" absent, "f" fence) and its argument (the expected value,
// the fence token as 20 digits, or ""); then the values stored without
// expiry, each after its key (MSET's arguments, passed straight through:
// building them from KEYS would cost the server a Lua table); then, per key
// stored with one, its value and TTL in milliseconds.
//
// It returns {1, deleted} once applied, {2} when the fence already records
// this ID under this token (applied before: nothing is written), {0, i,
// token} when condition i (0-based) failed (token: the fence found), and
// {3, i} when fence i holds something other than a fence value. All checks
// run before the first write, so a failed condition writes nothing; a
// script that has begun writing is not stopped by a full memory (Redis lets
// a script that has written finish), so a batch applies whole. Keys without
// expiry go in MSETs and deletions in UNLINKs of up to 1000 keys: one call
// per key costs the server several times more.
//
// Fence tokens are compared as two 10-digit halves: Lua numbers are doubles,
// exact to 2^53, and string comparison in Lua follows the server's locale.
var commitScript = newScript(`local nc, nm, nx, nd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local id = ARGV[5]
local function newer(found, mine)
  local a, b = tonumber(string.sub(found, 1, 10)), tonumber(string.sub(mine, 1, 10))
  if a ~= b then return a > b end
  return tonumber(string.sub(found, 11, 20)) > tonumber(string.sub(mine, 11, 20))
end
local cur = {}
for i = 1, nc do
  cur[i] = redis.call('GET', KEYS[i])
end
if id ~= '' then
  for i = 1, nc do
    local v = cur[i]
    if ARGV[4 + 2*i] == 'f' and v and string.sub(v, 1, 20) == ARGV[5 + 2*i] and string.sub(v, 21) == id then
      return {2}
    end
  end
end
for i = 1, nc do
  local kind, arg, v = ARGV[4 + 2*i], ARGV[5 + 2*i], cur[i]
  if kind == 'e' then
    if (not v) or v ~= arg then return {0, i - 1} end
  elseif kind == 'a' then
    if v then return {0, i - 1} end
  elseif v then
    if string.len(v) < 20 or string.find(string.sub(v, 1, 20), '^%d+$') == nil then return {3, i - 1} end
    if newer(v, arg) then return {0, i - 1, string.sub(v, 1, 20)} end
  end
end
local k, a = nc, 6 + 2*nc
for j = 1, nm, 1000 do
  redis.call('MSET', unpack(ARGV, a + 2*(j - 1), a + 2*math.min(j + 999, nm) - 1))
end
k, a = k + nm, a + 2*nm
for j = 1, nx do
  redis.call('SET', KEYS[k + j], ARGV[a + 2*j - 2], 'PX', ARGV[a + 2*j - 1])
end
k = k + nx
local deleted, args = 0, {}
for j = 1, nd do
  args[#args + 1] = KEYS[k + j]
  if #args == 1000 or j == nd then
    deleted = deleted + redis.call('UNLINK', unpack(args))
    args = {}
  end
end
for i = 1, nc do
  if ARGV[4 + 2*i] == 'f' then
    redis.call('SET', KEYS[i], ARGV[5 + 2*i] .. id)
  end
end
return {1, deleted}`)

// Commit applies b atomically with one Lua script (sent by digest): its
// conditions are read and its writes made by the server in one step that
// no other client interleaves with, and a failed condition writes nothing.
//
// In Cluster mode (and on a Ring) every key of b, with KeyPrefix, must
// hash to one slot: a batch that spans slots fails before any I/O with an
// error matching strata.ErrInvalidKey that names the keys outside the
// first key's slot. Give a job's keys a common hash tag, such as the
// prefix "{job-42}:", to keep them together.
//
// A commit whose reply was lost fails with strata.ErrIndeterminate and is
// not resent: it may have been applied. With b.ID set and a fence
// condition the script is idempotent (a batch applied already is
// recognised by its fence), so the store's retries resend it like any
// idempotent command, and so may the caller.
func (s *Store) Commit(ctx context.Context, b *strata.WriteBatch) error {
	if s.closed.Load() {
		return strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, bad, err := storekit.CheckBatch(b, s.opts.DefaultTTL, s.opts.MaxValueSize)
	if err != nil {
		return s.err("commit", bad, err)
	}
	if b.Empty() {
		return nil
	}
	if err := s.sameSlot(b); err != nil {
		return s.err("commit", nil, err)
	}
	keys, args := s.commitArgs(b)
	idempotent := len(b.ID) > 0 && hasFence(b)
	start := time.Now()
	ctx, st := s.begin(ctx)
	cmd, err := s.evalKeys(ctx, commitScript, !idempotent, keys, args)
	s.latency.Since(start)
	if err != nil {
		return s.fail(ctx, "commit", nil, st, err, true)
	}
	return s.commitResult(ctx, st, b, cmd)
}

func hasFence(b *strata.WriteBatch) bool {
	for _, c := range b.Conditions {
		if c.Kind == strata.CondFence {
			return true
		}
	}
	return false
}

// commitArgs returns the KEYS and ARGV of commitScript for b.
func (s *Store) commitArgs(b *strata.WriteBatch) (keys [][]byte, args []any) {
	// The last write of each key, in the order of first appearance.
	last := make(map[string]int, len(b.Writes))
	order := make([]int, 0, len(b.Writes))
	for i, w := range b.Writes {
		if j, ok := last[string(w.Key)]; ok {
			order[j] = i
			continue
		}
		last[string(w.Key)] = len(order)
		order = append(order, i)
	}
	var plain, timed, deleted []int
	ttls := make(map[int]int64)
	for _, i := range order {
		w := b.Writes[i]
		switch ttl, _ := storekit.ResolveTTL(w.TTL, s.opts.DefaultTTL); { // checked by CheckBatch
		case w.Delete:
			deleted = append(deleted, i)
		case ttl > 0:
			timed = append(timed, i)
			ttls[i] = ttl.Milliseconds()
		default:
			plain = append(plain, i)
		}
	}
	nc := len(b.Conditions)
	keys = make([][]byte, 0, nc+len(order))
	args = make([]any, 0, 5+2*nc+2*len(plain)+2*len(timed))
	args = append(args, nc, len(plain), len(timed), len(deleted), b.ID)
	for _, c := range b.Conditions {
		keys = append(keys, s.key(c.Key))
		switch c.Kind {
		case strata.CondEqual:
			args = append(args, "e", c.Value)
		case strata.CondAbsent:
			args = append(args, "a", "")
		case strata.CondFence:
			args = append(args, "f", storekit.FenceValue(c.Token, nil))
		}
	}
	for _, i := range plain {
		k := s.key(b.Writes[i].Key)
		keys = append(keys, k)
		args = append(args, k, b.Writes[i].Value)
	}
	for _, i := range timed {
		keys = append(keys, s.key(b.Writes[i].Key))
		args = append(args, b.Writes[i].Value, ttls[i])
	}
	for _, i := range deleted {
		keys = append(keys, s.key(b.Writes[i].Key))
	}
	return keys, args
}

// commitResult decodes the script's reply.
func (s *Store) commitResult(ctx context.Context, st *opState, b *strata.WriteBatch, cmd *goredis.Cmd) error {
	reply, _ := cmd.Val().([]any)
	code, ok := replyInt(reply, 0)
	if !ok {
		return s.fail(ctx, "commit", nil, st, fmt.Errorf("%w: unexpected commit reply %v", strata.ErrCorrupt, cmd.Val()), true)
	}
	i, _ := replyInt(reply, 1)
	switch {
	case code == 1 && len(reply) == 2:
		for _, w := range b.Writes {
			if !w.Delete {
				s.stats.Put(1, len(w.Key)+len(w.Value))
			}
		}
		s.stats.Delete(int(i))
		return nil
	case code == 2:
		return nil
	case code == 0 && i >= 0 && int(i) < len(b.Conditions):
		var token uint64
		if len(reply) == 3 {
			str, _ := reply[2].(string)
			token, _ = strconv.ParseUint(str, 10, 64)
		}
		return storekit.NewConflictError(b, int(i), token)
	case code == 3 && i >= 0 && int(i) < len(b.Conditions):
		return s.err("commit", b.Conditions[i].Key, fmt.Errorf("%w: the fence key does not hold a fence value", strata.ErrCorrupt))
	}
	return s.fail(ctx, "commit", nil, st, fmt.Errorf("%w: unexpected commit reply %v", strata.ErrCorrupt, reply), true)
}

// replyInt returns element i of a script's array reply as an integer.
func replyInt(reply []any, i int) (int64, bool) {
	if i >= len(reply) {
		return 0, false
	}
	n, ok := reply[i].(int64)
	return n, ok
}

// sameSlot checks, in Cluster mode and on a Ring, that every key of b
// lives in the shard of the first: a script runs on one server.
func (s *Store) sameSlot(b *strata.WriteBatch) error {
	if s.cluster == nil && s.ring == nil {
		return nil
	}
	var first []byte
	var off [][]byte
	b.Keys(func(k []byte) bool {
		if first == nil {
			first = k
			return true
		}
		if !s.colocated(first, k) && len(off) < 8 {
			off = append(off, k)
		}
		return true
	})
	if len(off) == 0 {
		return nil
	}
	var names bytes.Buffer
	for i, k := range off {
		if i > 0 {
			names.WriteString(", ")
		}
		names.WriteString(storekit.QuoteKey(k))
	}
	return fmt.Errorf("%w: a commit must keep every key in one hash slot; %s not in the slot of %s "+
		"(give the batch's keys a common hash tag, such as {job}, in their names or in the key prefix)",
		strata.ErrInvalidKey, names.String(), storekit.QuoteKey(first))
}

// colocated reports whether keys a and b (without KeyPrefix) land on the
// same shard: the same hash slot in Cluster mode, the same hash tag (or
// key) on a Ring, which hashes the tag itself.
func (s *Store) colocated(a, b []byte) bool {
	if s.cluster != nil {
		return slot(s.prefix, a) == slot(s.prefix, b)
	}
	return bytes.Equal(hashTag(s.key(a)), hashTag(s.key(b)))
}

// hashTag returns the part of key that Redis hashes: the first {...} with
// something inside, or the whole key.
func hashTag(key []byte) []byte {
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// evalKeys runs sc on keys by digest, and by source if the server does not
// know it (NOSCRIPT: nothing ran).
func (s *Store) evalKeys(ctx context.Context, sc script, once bool, keys [][]byte, args []any) (*goredis.Cmd, error) {
	call := func(verb, body string) (*goredis.Cmd, error) {
		a := make([]any, 0, 3+len(keys)+len(args))
		a = append(a, verb, body, strconv.Itoa(len(keys)))
		for _, k := range keys {
			a = append(a, k)
		}
		return s.do(ctx, once, append(a, args...)...)
	}
	cmd, err := call("evalsha", sc.sha)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd, err = call("eval", sc.src)
	}
	return cmd, err
}
