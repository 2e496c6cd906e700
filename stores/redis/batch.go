package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
)

// group is the positions, within a batch, of keys that one multi-key
// command (MGET, UNLINK) carries: all of a chunk on one server, or those of
// one hash slot in Cluster mode.
type group []int

// groups splits the keys of a chunk into the groups one command may carry.
func (s *Store) groups(keys [][]byte) []group {
	if s.cluster == nil && s.ring == nil {
		g := make(group, len(keys))
		for i := range g {
			g[i] = i
		}
		return []group{g}
	}
	bySlot := make(map[int]int, len(keys)) // slot -> index in out
	var out []group
	for i, k := range keys {
		var sl int
		if s.ring != nil {
			sl = i // a Ring shards by its own hash: one command per key
		} else {
			sl = slot(s.prefix, k)
		}
		j, ok := bySlot[sl]
		if !ok {
			j = len(out)
			bySlot[sl] = j
			out = append(out, nil)
		}
		out[j] = append(out[j], i)
	}
	return out
}

// chunks calls f with the ranges [lo, hi) of n items, PipelineBatchSize at
// a time, and stops at its first error.
func (s *Store) chunks(n int, f func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += s.opts.PipelineBatchSize {
		if err := f(lo, min(lo+s.opts.PipelineBatchSize, n)); err != nil {
			return err
		}
	}
	return nil
}

// exec sends cmds in one round trip: alone, or as a pipeline.
func (s *Store) exec(ctx context.Context, cmds []goredis.Cmder) error {
	if len(cmds) == 1 {
		err := s.c.Process(ctx, cmds[0])
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		return err
	}
	s.pipelines.Add(1)
	pipe := s.c.Pipeline()
	for _, c := range cmds {
		_ = pipe.Process(ctx, c)
	}
	_, err := pipe.Exec(ctx)
	if errors.Is(err, goredis.Nil) {
		err = firstFailure(cmds)
	}
	return err
}

// GetMany returns the values of keys, nil for each absent key, with MGET:
// one per PipelineBatchSize keys, and per hash slot in Cluster mode, the
// commands of a chunk pipelined in one round trip.
func (s *Store) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	for _, k := range keys {
		if err := s.enter(ctx, k); err != nil {
			return nil, s.err("get_many", k, err)
		}
	}
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	hits, n := 0, 0
	err := s.chunks(len(keys), func(lo, hi int) error {
		chunk := keys[lo:hi]
		gs := s.groups(chunk)
		cmds := make([]goredis.Cmder, len(gs))
		mgets := make([]*goredis.SliceCmd, len(gs))
		for i, g := range gs {
			args := make([]any, 1, 1+len(g))
			args[0] = "mget"
			for _, j := range g {
				args = append(args, s.key(chunk[j]))
			}
			mgets[i] = goredis.NewSliceCmd(ctx, args...)
			cmds[i] = mgets[i]
		}
		if err := s.send(ctx, cmds); err != nil {
			return err
		}
		for i, g := range gs {
			vals := mgets[i].Val()
			if len(vals) != len(g) {
				return fmt.Errorf("%w: MGET of %d keys returned %d values", strata.ErrCorrupt, len(g), len(vals))
			}
			for j, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue // nil: absent (or not a string)
				}
				out[lo+g[j]] = bytesOf(str)
				hits++
				n += len(str)
			}
		}
		return nil
	})
	s.latency.Since(start)
	if err != nil {
		return nil, s.fail(ctx, "get_many", nil, st, err, false)
	}
	s.stats.Reads(len(keys), hits, n)
	return out, nil
}

// PutMany stores every entry, PipelineBatchSize at a time in one round
// trip each: the entries without expiry in one MSET (per hash slot in
// Cluster mode), the others with one SET PX each, pipelined. Every entry
// is validated first. It is not
// atomic: entries of earlier chunks stay written if a later one fails, and
// the error then matches strata.ErrIndeterminate (some entries may have
// been written) unless no command left the client (strata.ErrUnavailable).
func (s *Store) PutMany(ctx context.Context, entries []strata.Entry) error {
	ttls := make([]time.Duration, len(entries))
	size := 0
	for i, e := range entries {
		ttl, err := s.check(ctx, e.Key, e.Value, e.TTL)
		if err != nil {
			return s.err("put_many", e.Key, err)
		}
		ttls[i] = ttl
		size += len(e.Key) + len(e.Value)
	}
	if len(entries) == 0 {
		return nil
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	written := false
	keys := make([][]byte, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	err := s.chunks(len(entries), func(lo, hi int) error {
		var cmds []goredis.Cmder
		// The SET PX commands share one argument array, and their TTL
		// argument while it repeats: fewer allocations per entry.
		args := make([]any, 0, 5*(hi-lo))
		var lastTTL time.Duration
		var lastMS any
		for _, g := range s.groups(keys[lo:hi]) {
			// Runs of keys without expiry go in one MSET (which, as SET,
			// also clears a previous TTL); the others each get SET PX.
			// The commands keep the entries' order: the last of
			// duplicate keys wins.
			var mset []any
			flush := func() {
				if mset != nil {
					cmds = append(cmds, goredis.NewStatusCmd(ctx, mset...))
					mset = nil
				}
			}
			for _, j := range g {
				e, ttl := entries[lo+j], ttls[lo+j]
				if ttl > 0 {
					flush()
					if ttl != lastTTL || lastMS == nil {
						lastTTL, lastMS = ttl, ttl.Milliseconds()
					}
					n := len(args)
					args = append(args, "set", s.key(e.Key), e.Value, "px", lastMS)
					cmds = append(cmds, goredis.NewStatusCmd(ctx, args[n:len(args):len(args)]...))
					continue
				}
				if mset == nil {
					mset = make([]any, 1, 1+2*len(g))
					mset[0] = "mset"
				}
				mset = append(mset, s.key(e.Key), e.Value)
			}
			flush()
		}
		if err := s.send(ctx, cmds); err != nil {
			return err
		}
		written = true
		return nil
	})
	s.latency.Since(start)
	if err != nil {
		if written {
			st.sent.Store(true)
		}
		return s.fail(ctx, "put_many", nil, st, err, true)
	}
	s.stats.Put(len(entries), size)
	return nil
}

// DeleteMany removes keys with UNLINK, one per PipelineBatchSize keys (and
// per hash slot in Cluster mode), and reports how many were live. A retry
// after a reply was lost may count a key it deleted as absent.
func (s *Store) DeleteMany(ctx context.Context, keys [][]byte) (int, error) {
	for _, k := range keys {
		if err := s.enter(ctx, k); err != nil {
			return 0, s.err("delete_many", k, err)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	deleted := 0
	written := false
	err := s.chunks(len(keys), func(lo, hi int) error {
		chunk := keys[lo:hi]
		gs := s.groups(chunk)
		cmds := make([]goredis.Cmder, len(gs))
		unlinks := make([]*goredis.IntCmd, len(gs))
		for i, g := range gs {
			args := make([]any, 1, 1+len(g))
			args[0] = "unlink"
			for _, j := range g {
				args = append(args, s.key(chunk[j]))
			}
			unlinks[i] = goredis.NewIntCmd(ctx, args...)
			cmds[i] = unlinks[i]
		}
		if err := s.send(ctx, cmds); err != nil {
			return err
		}
		for _, u := range unlinks {
			deleted += int(u.Val())
		}
		written = true
		return nil
	})
	s.latency.Since(start)
	s.stats.Delete(deleted)
	if err != nil {
		if written {
			st.sent.Store(true)
		}
		return deleted, s.fail(ctx, "delete_many", nil, st, err, true)
	}
	return deleted, nil
}

// slot returns the Redis Cluster hash slot of the Redis key prefix+key
// (the one the server sees), without building it: CRC16 (XMODEM) of the
// key, or of its hash tag (the bytes between the first '{' and the next
// '}', if any), modulo 16384. The tag may start in prefix and end in key.
func slot(prefix, key []byte) int {
	lo, hi := 0, len(prefix)+len(key)
	if i := indexByte(prefix, key, '{', 0); i >= 0 {
		if j := indexByte(prefix, key, '}', i+1); j > i+1 {
			lo, hi = i+1, j
		}
	}
	// The bytes [lo, hi) of prefix+key, in the two pieces they lie in.
	p := prefix[min(lo, len(prefix)):min(hi, len(prefix))]
	k := key[max(lo-len(prefix), 0):max(hi-len(prefix), 0)]
	return int(crc16(crc16(0, p), k) & 16383)
}

// indexByte returns the index of the first c at or after from in prefix+key,
// or -1.
func indexByte(prefix, key []byte, c byte, from int) int {
	if from < len(prefix) {
		if i := bytes.IndexByte(prefix[from:], c); i >= 0 {
			return from + i
		}
		from = len(prefix)
	}
	if i := bytes.IndexByte(key[from-len(prefix):], c); i >= 0 {
		return from + i
	}
	return -1
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// crc16 continues the CRC16 crc over b.
func crc16(crc uint16, b []byte) uint16 {
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}

// getManyTTLScript: KEYS the keys. Returns, per key, its value (nil when
// absent or not a string) and its PTTL.
var getManyTTLScript = newScript(`local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.pcall('GET', k)
  if type(v) == 'string' then
    out[2*i-1] = v
    out[2*i] = redis.call('PTTL', k)
  else
    out[2*i-1] = false
    out[2*i] = -2
  end
end
return out`)

// GetManyWithTTL returns the value and remaining TTL of each key, read with
// one script per PipelineBatchSize keys (per hash slot in Cluster mode),
// the scripts of a chunk pipelined in one round trip. Each key's value and
// TTL are read together; the batch is not a snapshot across slots.
func (s *Store) GetManyWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	for _, k := range keys {
		if err := s.enter(ctx, k); err != nil {
			return nil, s.err("get_many_with_ttl", k, err)
		}
	}
	start := time.Now()
	ctx, st := s.begin(ctx)
	out, err := s.readWithTTL(ctx, keys)
	s.latency.Since(start)
	if err != nil {
		return nil, s.fail(ctx, "get_many_with_ttl", nil, st, err, false)
	}
	hits, n := 0, 0
	for _, e := range out {
		if e.Value != nil {
			hits++
			n += len(e.Value)
		}
	}
	s.stats.Reads(len(keys), hits, n)
	return out, nil
}

// readWithTTL reads the value and TTL of each key (without KeyPrefix) with
// getManyTTLScript, as GetManyWithTTL describes. Entry i has Key keys[i];
// its Value is nil when the key is absent.
func (s *Store) readWithTTL(ctx context.Context, keys [][]byte) ([]strata.Entry, error) {
	out := make([]strata.Entry, len(keys))
	for i, k := range keys {
		out[i].Key = k
	}
	err := s.chunks(len(keys), func(lo, hi int) error {
		chunk := keys[lo:hi]
		gs := s.groups(chunk)
		cmds := make([]goredis.Cmder, len(gs))
		call := func(i int, verb, body string) {
			args := make([]any, 3, 3+len(gs[i]))
			args[0], args[1], args[2] = verb, body, len(gs[i])
			for _, j := range gs[i] {
				args = append(args, s.key(chunk[j]))
			}
			cmds[i] = goredis.NewSliceCmd(ctx, args...)
		}
		for i := range gs {
			call(i, "evalsha", getManyTTLScript.sha)
		}
		err := s.send(ctx, cmds)
		if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			// The server lost the script (restart, SCRIPT FLUSH): send
			// it by source.
			for i := range gs {
				call(i, "eval", getManyTTLScript.src)
			}
			err = s.send(ctx, cmds)
		}
		if err != nil {
			return err
		}
		for i, g := range gs {
			vals := cmds[i].(*goredis.SliceCmd).Val()
			if len(vals) != 2*len(g) {
				return fmt.Errorf("%w: a read of %d keys returned %d values", strata.ErrCorrupt, len(g), len(vals))
			}
			for j, idx := range g {
				str, ok := vals[2*j].(string)
				ms, _ := vals[2*j+1].(int64)
				ttl, live := ttlOf(ms)
				if ok && live {
					out[lo+idx].Value = bytesOf(str)
					out[lo+idx].TTL = ttl
				}
			}
		}
		return nil
	})
	return out, err
}
