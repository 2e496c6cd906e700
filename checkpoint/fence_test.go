package checkpoint_test

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
)

func TestFencingDir(t *testing.T) { testFencing(t, "file://"+t.TempDir()) }

// testFencing runs two aligned Coordinators on one location, as an old
// leader (token 5) that has not noticed it lost its lease and the new one
// (token 6) would: each with its own store, checkpointing concurrently, in
// random rounds, with deltas. Once a token-6 checkpoint is published,
// RestoreLatest must restore the newest token-6 checkpoint, whatever the
// token-5 leader publishes; that leader's CheckpointAt fails with ErrStale
// once it sees token 6; and retention by either never breaks the other's
// chains.
func testFencing(t *testing.T, url string) {
	ctx := t.Context()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	type leader struct {
		token uint64
		tr    *checkpoint.Tracker
		c     *checkpoint.Coordinator
		n     int    // offset: checkpoints attempted
		acked string // offset of the last checkpoint published
		stale int
	}
	mk := func(token uint64) *leader {
		_, tr, c := tracked(t, url, nil, checkpoint.Options{Aligned: true, MaxDeltas: 2, MaxCheckpoints: 2})
		return &leader{token: token, tr: tr, c: c}
	}
	old, cur := mk(5), mk(6)
	step := func(l *leader) {
		l.n++
		off := strconv.Itoa(int(l.token)*1_000_000 + l.n)
		setValue(t, l.tr, "offset", off)
		setValue(t, l.tr, "k"+strconv.Itoa(l.n%7), off)
		_, err := l.c.CheckpointAt(ctx, checkpoint.Cut{Offset: off, Token: l.token})
		switch {
		case err == nil:
			l.acked = off
		case errors.Is(err, checkpoint.ErrStale) && errors.Is(err, strata.ErrFenced):
			l.stale++
		default:
			t.Errorf("token %d: CheckpointAt: %v", l.token, err)
		}
	}
	newStarts := 3 + rng.IntN(4)
	for round := range 20 {
		var wg sync.WaitGroup
		for _, l := range []*leader{old, cur} {
			if l == cur && round < newStarts {
				continue
			}
			k := 1 + rng.IntN(3)
			wg.Go(func() {
				for range k {
					step(l)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		dst := newMem(t, nil)
		rc := newCoordinator(t, dst, checkpoint.Options{Location: url})
		rep, err := rc.RestoreLatest(ctx)
		if err != nil {
			t.Fatalf("round %d: RestoreLatest: %v", round, err)
		}
		want, wantToken := old.acked, uint64(5)
		if cur.acked != "" {
			want, wantToken = cur.acked, 6
		}
		v, _ := dst.Get(ctx, []byte("offset"))
		if rep.Manifest.Cut == nil || rep.Manifest.Cut.Token != wantToken || string(v) != want || len(rep.Skipped) != 0 {
			t.Fatalf("round %d: restored %s (cut %+v, offset %s, skipped %v), want token %d offset %s",
				round, rep.ID, rep.Manifest.Cut, v, rep.Skipped, wantToken, want)
		}
		rc.Close()
	}
	if old.stale == 0 {
		t.Fatal("the token-5 leader was never refused")
	}
	if st := cur.c.Stats(); st.Deltas == 0 || st.Failures != 0 {
		t.Fatalf("token-6 leader stats %+v: want deltas and no failure", st)
	}
}
