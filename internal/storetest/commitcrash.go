package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// The commit crash test: a child commits generations 1, 2, ... of a batch
// that keeps invariants a reader can check after a crash. Generation g
// writes
//
//   - the group keys c/group/0..7, all holding g;
//   - its own keys c/gen/g/0..2, holding g, which no later batch writes;
//   - the deletion of c/gen/(g-5)/0;
//   - the offset c/offset = g;
//
// under the conditions that the offset holds g-1 (or is absent, for the
// first) and that the fence c/fence holds at most commitToken, with the
// batch ID "gen-g", so that the fence records the last generation.
const (
	commitGroup = 8
	commitOwn   = 3
	commitLag   = 5
	commitToken = 7
)

var (
	commitOffset = []byte("c/offset")
	commitFence  = []byte("c/fence")
)

func groupKey(i int) []byte         { return fmt.Appendf(nil, "c/group/%d", i) }
func genKey(g, i int) []byte        { return fmt.Appendf(nil, "c/gen/%08d/%d", g, i) }
func genValue(g int) []byte         { return []byte(strconv.Itoa(g)) }
func batchID(g int) []byte          { return fmt.Appendf(nil, "gen-%d", g) }
func readGen(v []byte) (int, error) { return strconv.Atoi(string(v)) }

// commitBatch is the batch of generation g.
func commitBatch(g int) *strata.WriteBatch {
	b := &strata.WriteBatch{ID: batchID(g)}
	if g == 1 {
		b.IfAbsent(commitOffset)
	} else {
		b.IfEqual(commitOffset, genValue(g-1))
	}
	b.IfFence(commitFence, commitToken)
	v := genValue(g)
	for i := range commitGroup {
		b.Put(groupKey(i), v, strata.NoExpiry)
	}
	for i := range commitOwn {
		b.Put(genKey(g, i), v, strata.NoExpiry)
	}
	if g > commitLag {
		b.Delete(genKey(g-commitLag, 0))
	}
	return b.Put(commitOffset, v, strata.NoExpiry)
}

// committedGen returns the generation the offset of s names (0: none).
func committedGen(ctx context.Context, s strata.Store) (int, error) {
	v, err := s.Get(ctx, commitOffset)
	if errors.Is(err, strata.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return readGen(v)
}

// commitChild commits generations from the one after the store's offset
// on, printing each once its Commit returned.
func commitChild(ctx context.Context, s strata.Store) int {
	last, err := committedGen(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child reads the offset:", err)
		return 2
	}
	for g := last + 1; g <= last+childLimit; g++ {
		if err := strata.Commit(ctx, s, commitBatch(g)); err != nil {
			fmt.Fprintln(os.Stderr, "child commit:", err)
			return 2
		}
		if _, err := fmt.Fprintln(os.Stdout, g); err != nil {
			return 3
		}
	}
	return 0
}

// CommitCrashSafety kills a committing child with SIGKILL at a random
// point, 20 times over the same store at path; after each kill, verify
// checks the database at path (the child gone), and the store, reopened, must
// hold every commit wholly or not at all, every acknowledged one among
// them: its offset names a generation g at least the last acknowledged
// (and at most one more, a commit whose acknowledgement the kill beat),
// every generation up to g is wholly there (group, own keys, deletion,
// fence) and no later one is there at all.
func (p Process) CommitCrashSafety(t *testing.T, path string, verify func(t *testing.T, path string)) {
	acked := 0
	p.killRounds(t, "commit", path, 20, 40, func() int { return 0 }, func(g int) {
		if g <= acked {
			t.Fatalf("child acknowledged generation %d after %d", g, acked)
		}
		acked = g
	}, func() {
		verify(t, path)
		s := p.reopen(t, path)
		defer s.Close()
		checkCommits(t, s, acked)
	})
}

// checkCommits checks the invariants of the commit crash test on s after
// acked generations were acknowledged.
func checkCommits(t *testing.T, s strata.Store, acked int) {
	t.Helper()
	ctx := t.Context()
	g, err := committedGen(ctx, s)
	if err != nil {
		t.Fatalf("offset: %v", err)
	}
	if g < acked || g > acked+1 {
		t.Fatalf("offset names generation %d; %d were acknowledged", g, acked)
	}
	want := func(key []byte, v []byte) {
		t.Helper()
		got, err := s.Get(ctx, key)
		if v == nil && !errors.Is(err, strata.ErrNotFound) || v != nil && (err != nil || string(got) != string(v)) {
			t.Fatalf("generation %d committed: %s = %q, %v; want %q", g, key, got, err, v)
		}
	}
	var gv []byte
	if g > 0 {
		gv = genValue(g)
	}
	for i := range commitGroup {
		want(groupKey(i), gv)
	}
	for h := 1; h <= g+3; h++ {
		var hv, first []byte
		if h <= g {
			hv = genValue(h)
			if h+commitLag > g {
				first = hv
			}
		}
		want(genKey(h, 0), first)
		for i := 1; i < commitOwn; i++ {
			want(genKey(h, i), hv)
		}
	}
	token, err := strata.ReadFence(ctx, s, commitFence)
	if g > 0 && (err != nil || token != commitToken) {
		t.Fatalf("fence token %d, %v; want %d", token, err, commitToken)
	}
	if g > 0 {
		v, _ := s.Get(ctx, commitFence)
		if _, id, _ := storekit.ParseFence(v); string(id) != string(batchID(g)) {
			t.Fatalf("fence records batch %q, want %q", id, batchID(g))
		}
	}
}
