package redis_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

// TestCommitLostReplies commits counter increments through a proxy that
// loses replies at random (after the server acted, or with the connection
// hanging). Every commit reports success, ErrUnavailable (then verified
// not applied) or ErrIndeterminate; none is applied twice; a batch with an
// ID and a fence is resent after a lost reply and applied once.
func TestCommitLostReplies(t *testing.T) {
	t.Parallel()
	r := testserver.StartRedis(t, nil)
	p := startProxy(t, r.Addr)
	s := open(t, redis.Options{URL: "redis://" + p.Addr() + "/0", PoolSize: 2, ReadTimeout: 200 * time.Millisecond,
		MaxRetries: 3, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 10 * time.Millisecond})
	direct := r.Client(t)
	ctx := t.Context()
	counter, fence := []byte("{c}counter"), []byte("{c}fence")
	read := func() uint64 {
		t.Helper()
		v, err := direct.Get(ctx, string(counter)).Bytes()
		if err != nil {
			t.Fatalf("GET counter: %v", err)
		}
		return binary.BigEndian.Uint64(v)
	}
	noErr(t, "seed", direct.Set(ctx, string(counter), binary.BigEndian.AppendUint64(nil, 0), 0).Err())
	var applied, indeterminate, unavailable int
	for i := range 200 {
		cur := read()
		b := new(strata.WriteBatch).IfEqual(counter, binary.BigEndian.AppendUint64(nil, cur)).
			Put(counter, binary.BigEndian.AppendUint64(nil, cur+1), 0).
			Put([]byte("{c}last"), []byte("x"), time.Hour)
		if i%3 == 0 {
			noErr(t, "Ping", s.Ping(ctx)) // the lost reply is the commit's
			p.failNextReply([]int32{dropReset, dropHang}[i%2])
		}
		err := s.Commit(ctx, b)
		if i%3 == 0 {
			select {
			case <-p.dropped:
			case <-time.After(5 * time.Second):
				t.Fatal("the proxy lost no reply")
			}
		}
		after := read()
		switch {
		case err == nil:
			applied++
			if after != cur+1 {
				t.Fatalf("commit %d succeeded but the counter went from %d to %d", i, cur, after)
			}
		case errors.Is(err, strata.ErrIndeterminate) && !errors.Is(err, strata.ErrUnavailable):
			indeterminate++
			if after != cur && after != cur+1 {
				t.Fatalf("indeterminate commit %d moved the counter from %d to %d", i, cur, after)
			}
		case errors.Is(err, strata.ErrUnavailable):
			unavailable++
			if after != cur {
				t.Fatalf("commit %d reported unavailable but the counter went from %d to %d", i, cur, after)
			}
		default:
			t.Fatalf("commit %d: %v, want success, ErrIndeterminate or ErrUnavailable", i, err)
		}
	}
	if indeterminate == 0 {
		t.Fatal("no commit lost its reply")
	}
	t.Logf("200 commits: %d applied, %d indeterminate, %d unavailable", applied, indeterminate, unavailable)

	// An idempotent batch (ID and fence) is resent after its reply is lost
	// and recognised: applied once, reported as success.
	noErr(t, "CONFIG RESETSTAT", direct.ConfigResetStat(ctx).Err())
	cur := read()
	b := &strata.WriteBatch{ID: []byte("batch-1")}
	b.IfFence(fence, 7).IfEqual(counter, binary.BigEndian.AppendUint64(nil, cur)).
		Put(counter, binary.BigEndian.AppendUint64(nil, cur+1), 0)
	noErr(t, "Ping", s.Ping(ctx))
	p.failNextReply(dropReset)
	noErr(t, "idempotent Commit with a lost reply", s.Commit(ctx, b))
	<-p.dropped
	if after := read(); after != cur+1 {
		t.Fatalf("idempotent commit: counter %d → %d, want +1", cur, after)
	}
	if runs := commandCalls(t, direct, "evalsha") + commandCalls(t, direct, "eval"); runs != 2 {
		t.Fatalf("the idempotent commit ran %d times, want 2 (the lost one and the recognised retry)", runs)
	}
	if tok, err := strata.ReadFence(ctx, s, fence); err != nil || tok != 7 {
		t.Fatalf("fence = %d, %v; want 7", tok, err)
	}
}
