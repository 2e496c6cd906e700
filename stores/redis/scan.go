package redis

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
)

// scanCount is the COUNT hint of each SCAN call.
const scanCount = 1000

// globEscape escapes the characters Redis's glob matching treats
// specially, so that the result matches b literally.
func globEscape(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + 1)
	for _, c := range b {
		switch c {
		case '*', '?', '[', ']', '\\':
			sb.WriteByte('\\')
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// nodes returns the clients to SCAN: every master of a cluster, every
// shard of a ring, or the client itself (hooked: true).
func (s *Store) nodes(ctx context.Context) (clients []*goredis.Client, hooked bool, err error) {
	var mu sync.Mutex
	collect := func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		return nil
	}
	switch {
	case s.cluster != nil:
		err = s.cluster.ForEachMaster(ctx, collect)
	case s.ring != nil:
		err = s.ring.ForEachShard(ctx, collect)
	default:
		return nil, true, nil
	}
	slices.SortFunc(clients, func(a, b *goredis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
	return clients, false, err
}

// slotMap returns a fingerprint of which master serves which slots, or ""
// outside Cluster mode.
func (s *Store) slotMap(ctx context.Context, st *opState) (string, error) {
	if s.cluster == nil {
		return "", nil
	}
	var slots []goredis.ClusterSlot
	var err error
	for attempt := 0; ; attempt++ {
		slots, err = s.cluster.ClusterSlots(ctx).Result()
		if err == nil || !s.retry(ctx, st, err, false, attempt) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	var b strings.Builder
	slices.SortFunc(slots, func(a, b goredis.ClusterSlot) int { return a.Start - b.Start })
	for _, sl := range slots {
		master := ""
		if len(sl.Nodes) > 0 {
			master = sl.Nodes[0].ID
		}
		fmt.Fprintf(&b, "%d-%d:%s;", sl.Start, sl.End, master)
	}
	return b.String(), nil
}

// scan yields pages of the Redis keys (KeyPrefix included) that start
// with KeyPrefix+prefix. In Cluster mode it walks every master, and walks
// again (at most twice more) when the slot map changed during a walk.
func (s *Store) scan(ctx context.Context, op string, prefix []byte) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		if s.closed.Load() {
			yield(nil, strata.ErrClosed)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		pattern := globEscape(s.key(prefix)) + "*"
		ctx, st := s.begin(ctx)
		fail := func(err error) {
			yield(nil, s.fail(ctx, op, prefix, st, err, false))
		}
		for round := 0; ; round++ {
			before, err := s.slotMap(ctx, st)
			if err != nil {
				fail(err)
				return
			}
			nodes, hooked, err := s.nodes(ctx)
			if err != nil {
				fail(err)
				return
			}
			if hooked {
				nodes = []*goredis.Client{nil}
			}
			for _, node := range nodes {
				var cursor uint64
				for {
					if s.closed.Load() {
						yield(nil, strata.ErrClosed)
						return
					}
					if err := ctx.Err(); err != nil {
						yield(nil, err)
						return
					}
					var keys []string
					var err error
					if node == nil {
						keys, cursor, err = s.c.Scan(ctx, cursor, pattern, scanCount).Result()
					} else {
						cmd := goredis.NewScanCmd(ctx, node.Process, "scan", cursor, "match", pattern, "count", scanCount)
						err = s.nodeDo(ctx, st, cmd, node)
						keys, cursor = cmd.Val()
					}
					if err != nil {
						fail(err)
						return
					}
					if len(keys) > 0 && !yield(keys, nil) {
						return
					}
					if cursor == 0 {
						break
					}
				}
			}
			after, err := s.slotMap(ctx, st)
			if err != nil {
				fail(err)
				return
			}
			if before == after || round == 2 {
				return
			}
		}
	}
}

// Snapshot returns a live view of the store (see the package
// documentation: not point-in-time; each entry's value and TTL are read
// together). It loads the read script on every server first.
func (s *Store) Snapshot(ctx context.Context) (strata.Snapshot, error) {
	if s.closed.Load() {
		return nil, strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, st := s.begin(ctx)
	load := func(ctx context.Context, c *goredis.Client) error {
		return s.nodeDo(ctx, st, goredis.NewStringCmd(ctx, "script", "load", getManyTTLScript.src), c)
	}
	var err error
	switch {
	case s.cluster != nil:
		err = s.cluster.ForEachMaster(ctx, load)
	case s.ring != nil:
		err = s.ring.ForEachShard(ctx, load)
	default:
		err = s.c.Process(ctx, goredis.NewStringCmd(ctx, "script", "load", getManyTTLScript.src))
	}
	if err != nil {
		return nil, s.fail(ctx, "snapshot", nil, st, err, false)
	}
	return &snapshot{s: s}, nil
}

type snapshot struct {
	s      *Store
	closed atomic.Bool
}

// Close releases the snapshot; it holds nothing on the server.
func (sn *snapshot) Close() error {
	sn.closed.Store(true)
	return nil
}

// Entries walks the keys under prefix and reads each entry, value and TTL
// together, PipelineBatchSize keys per round trip.
func (sn *snapshot) Entries(ctx context.Context, prefix []byte) iter.Seq2[strata.Entry, error] {
	s := sn.s
	prefix = clone(prefix) // the caller may reuse its buffer
	return func(yield func(strata.Entry, error) bool) {
		if sn.closed.Load() {
			yield(strata.Entry{}, strata.ErrClosed)
			return
		}
		var batch []string
		flush := func() bool {
			read := time.Now()
			entries, err := s.readEntries(ctx, batch)
			batch = batch[:0]
			if err != nil {
				yield(strata.Entry{}, err)
				return false
			}
			for _, e := range entries {
				// The TTL left when the entry is yielded, as the contract
				// says: the loop body may take long between two entries.
				if e.TTL != strata.NoExpiry {
					if e.TTL -= time.Since(read); e.TTL <= 0 {
						continue
					}
				}
				if !yield(e, nil) {
					return false
				}
			}
			return true
		}
		for pg, err := range s.scan(ctx, "snapshot", prefix) {
			if err != nil {
				yield(strata.Entry{}, err)
				return
			}
			if sn.closed.Load() {
				yield(strata.Entry{}, strata.ErrClosed)
				return
			}
			for _, k := range pg {
				batch = append(batch, k)
				if len(batch) >= s.opts.PipelineBatchSize && !flush() {
					return
				}
			}
		}
		if len(batch) > 0 {
			flush()
		}
	}
}

// readEntries reads the value and TTL of each Redis key (KeyPrefix
// included) with readWithTTL; keys gone since the scan are skipped.
func (s *Store) readEntries(ctx context.Context, keys []string) ([]strata.Entry, error) {
	if s.closed.Load() {
		return nil, strata.ErrClosed
	}
	ctx, st := s.begin(ctx)
	ks := make([][]byte, len(keys))
	for i, k := range keys {
		ks[i] = bytesOf(k[len(s.prefix):])
	}
	es, err := s.readWithTTL(ctx, ks)
	if err != nil {
		return nil, s.fail(ctx, "snapshot", nil, st, err, false)
	}
	out := es[:0]
	for _, e := range es {
		if e.Value != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// MemoryUsage returns the memory the server uses, in bytes (INFO memory's
// used_memory, summed over the masters in Cluster mode): the whole
// server's, not only this store's keys.
func (s *Store) MemoryUsage(ctx context.Context) (int64, error) {
	var total atomic.Int64
	err := s.eachServer(ctx, "memory_usage", func(ctx context.Context, st *opState, c *goredis.Client) error {
		cmd := goredis.NewStringCmd(ctx, "info", "memory")
		var err error
		if c == nil {
			err = s.c.Process(ctx, cmd)
		} else {
			err = s.nodeDo(ctx, st, cmd, c)
		}
		if err != nil {
			return err
		}
		n, err := infoField(cmd.Val(), "used_memory")
		total.Add(n)
		return err
	})
	return total.Load(), err
}

// infoField returns the integer field name of an INFO reply.
func infoField(info, name string) (int64, error) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%w: INFO has no %s field", strata.ErrCorrupt, name)
}

// KeyCount returns the number of live keys of the store. Without a
// KeyPrefix it is DBSIZE (summed over the masters in Cluster mode): every
// key of the database. With one, it counts the keys under the prefix with
// SCAN, which takes time in proportion to the whole database.
func (s *Store) KeyCount(ctx context.Context) (int64, error) {
	if len(s.prefix) > 0 {
		seen := map[string]struct{}{}
		for pg, err := range s.scan(ctx, "key_count", nil) {
			if err != nil {
				return 0, err
			}
			for _, k := range pg {
				seen[k] = struct{}{}
			}
		}
		return int64(len(seen)), nil
	}
	var total atomic.Int64
	err := s.eachServer(ctx, "key_count", func(ctx context.Context, st *opState, c *goredis.Client) error {
		cmd := goredis.NewIntCmd(ctx, "dbsize")
		var err error
		if c == nil {
			err = s.c.Process(ctx, cmd)
		} else {
			err = s.nodeDo(ctx, st, cmd, c)
		}
		total.Add(cmd.Val())
		return err
	})
	return total.Load(), err
}

// eachServer runs f once per master (c == nil: through the store's own
// client, which is one server).
func (s *Store) eachServer(ctx context.Context, op string, f func(ctx context.Context, st *opState, c *goredis.Client) error) error {
	if s.closed.Load() {
		return strata.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, st := s.begin(ctx)
	g := func(ctx context.Context, c *goredis.Client) error { return f(ctx, st, c) }
	var err error
	switch {
	case s.cluster != nil:
		err = s.cluster.ForEachMaster(ctx, g)
	case s.ring != nil:
		err = s.ring.ForEachShard(ctx, g)
	default:
		err = f(ctx, st, nil)
	}
	if err != nil {
		return s.fail(ctx, op, nil, st, err, false)
	}
	return nil
}
