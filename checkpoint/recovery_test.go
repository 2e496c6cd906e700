package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/stores/memory"
)

// The stream job: jobKeys keys, jobEvents events per key. Event e of the
// source is for key e%jobKeys; the job's offset is the next event to read.
const (
	jobKeys   = 50
	jobEvents = 2000
	jobBatch  = 50
	jobEvery  = 10 // batches per checkpoint
	offsetKey = "offset"
)

func countKey(k int) []byte { return fmt.Appendf(nil, "count/%03d", k) }

// jobChild runs the stream job: restore the latest checkpoint, read the
// offset from the restored state, count events from there in batches
// (each batch's counts and the new offset written in one PutMany), and
// checkpoint every jobEvery batches. Its state lives only in memory: after
// a kill, everything it knows comes from the checkpoint.
func jobChild() int {
	ctx := context.Background()
	s := memory.New(nil)
	c, err := checkpoint.New(s, &checkpoint.Options{
		Dir: os.Getenv(dirEnv), MaxCheckpoints: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "New:", err)
		return 3
	}
	if _, err := c.RestoreLatest(ctx); err != nil && !errors.Is(err, checkpoint.ErrNoCheckpoint) {
		fmt.Fprintln(os.Stderr, "RestoreLatest:", err)
		return 3
	}
	offset := 0
	if v, err := s.Get(ctx, []byte(offsetKey)); err == nil {
		offset, _ = strconv.Atoi(string(v))
	}
	fmt.Printf("resume %d\n", offset)
	total := jobKeys * jobEvents
	keys := make([][]byte, jobKeys)
	for k := range keys {
		keys[k] = countKey(k)
	}
	for batch := 1; offset < total; batch++ {
		counts, err := s.GetMany(ctx, keys)
		if err != nil {
			fmt.Fprintln(os.Stderr, "GetMany:", err)
			return 4
		}
		n := make([]int, jobKeys)
		for k, v := range counts {
			if v != nil {
				n[k], _ = strconv.Atoi(string(v))
			}
		}
		end := min(offset+jobBatch, total)
		for e := offset; e < end; e++ {
			n[e%jobKeys]++
		}
		offset = end
		es := []strata.Entry{{Key: []byte(offsetKey), Value: []byte(strconv.Itoa(offset)), TTL: strata.NoExpiry}}
		for k := range n {
			es = append(es, strata.Entry{Key: keys[k], Value: []byte(strconv.Itoa(n[k])), TTL: strata.NoExpiry})
		}
		if err := s.PutMany(ctx, es); err != nil {
			fmt.Fprintln(os.Stderr, "PutMany:", err)
			return 4
		}
		fmt.Printf("batch %d\n", offset)
		if batch%jobEvery == 0 {
			if _, err := c.Checkpoint(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "Checkpoint:", err)
				return 4
			}
			fmt.Printf("checkpoint %d\n", offset)
		}
	}
	if err := c.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Shutdown:", err)
		return 4
	}
	fmt.Println("done")
	return 0
}

// TestStreamJobRecovery kills the stream job (SIGKILL) at a random point
// after at least two checkpoints of each run, three times, then lets it
// finish. Each restart must resume from a checkpointed offset, and the
// final counts must be exactly jobEvents per key: nothing lost, nothing
// counted twice.
func TestStreamJobRecovery(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	dir := t.TempDir()
	lastCheckpoint := 0
	for run := 0; ; run++ {
		cmd, lines := child(t, "job", dir)
		l, _ := next(t, lines)
		resume, err := strconv.Atoi(strings.TrimPrefix(l, "resume "))
		if err != nil {
			t.Fatalf("run %d: first line %q", run, l)
		}
		// The restored offset is that of a checkpoint taken at or after
		// the last one reported before the kill.
		if resume < lastCheckpoint || (run > 0 && resume == 0) {
			t.Fatalf("run %d resumed at %d, last checkpoint reported at %d", run, resume, lastCheckpoint)
		}
		if run == 3 {
			for {
				l, ok := next(t, lines)
				if !ok {
					t.Fatal("final run ended without finishing")
				}
				if l == "done" {
					break
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("final run: %v", err)
			}
			break
		}
		// Wait for two checkpoints in this run, then kill after a random
		// number of further batches.
		seen, extra := 0, rng.IntN(3*jobEvery)
		for seen < 2 || extra > 0 {
			l, ok := next(t, lines)
			if !ok {
				t.Fatalf("run %d ended early", run)
			}
			if o, ok := strings.CutPrefix(l, "checkpoint "); ok {
				seen++
				lastCheckpoint, _ = strconv.Atoi(o)
			} else if seen >= 2 {
				extra--
			}
		}
		for _, l := range kill(t, cmd, lines) {
			if o, ok := strings.CutPrefix(l, "checkpoint "); ok {
				lastCheckpoint, _ = strconv.Atoi(o)
			}
		}
	}

	ctx := context.Background()
	s := newMem(t, nil)
	c, err := checkpoint.New(s, &checkpoint.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RestoreLatest(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := s.Get(ctx, []byte(offsetKey))
	if err != nil || string(v) != strconv.Itoa(jobKeys*jobEvents) {
		t.Fatalf("final offset %q, %v", v, err)
	}
	for k := range jobKeys {
		v, err := s.Get(ctx, countKey(k))
		if err != nil || string(v) != strconv.Itoa(jobEvents) {
			t.Fatalf("key %d counted %q (%v), want exactly %d", k, v, err, jobEvents)
		}
	}
}
