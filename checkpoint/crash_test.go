package checkpoint_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/memory"
)

const (
	dirEnv       = "STRATA_CHECKPOINT_DIR"
	crashMaxKeys = 10_000
	iterKey      = "__iter"
)

// crashState is the content the crash child gives its store before
// checkpoint number i: a size and values that depend on i, so that the
// parent, computing it on its own, can tell any mix of two states apart.
func crashState(i int) []strata.Entry {
	n := 1000 + (i*7919)%(crashMaxKeys-1000)
	es := make([]strata.Entry, 0, n+1)
	for j := range n {
		sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d", i, j))
		v := strings.Repeat(hex.EncodeToString(sum[:]), 4)[:20+(i+j)%200]
		ttl := strata.NoExpiry
		if j%3 != 0 {
			ttl = time.Duration(1+j%5) * time.Hour
		}
		es = append(es, strata.Entry{Key: fmt.Appendf(nil, "k%05d", j), Value: []byte(v), TTL: ttl})
	}
	return append(es, strata.Entry{Key: []byte(iterKey), Value: []byte(strconv.Itoa(i)), TTL: strata.NoExpiry})
}

// crashChild restores the latest checkpoint of $STRATA_CHECKPOINT_DIR, then
// loops: set the store to crashState(i), checkpoint, print "published i id".
// The parent kills it at random points.
func crashChild() int {
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
	i := 0
	if _, err := c.RestoreLatest(ctx); err == nil {
		v, err := s.Get(ctx, []byte(iterKey))
		if err != nil {
			fmt.Fprintln(os.Stderr, "restored state has no iteration:", err)
			return 3
		}
		i, _ = strconv.Atoi(string(v))
	} else if !errors.Is(err, checkpoint.ErrNoCheckpoint) {
		fmt.Fprintln(os.Stderr, "RestoreLatest:", err)
		return 3
	}
	parent := os.Getppid()
	for range 10_000 { // bounded, and ends with the parent
		if os.Getppid() != parent {
			return 5
		}
		i++
		es := crashState(i)
		var gone [][]byte
		for j := len(es) - 1; j < crashMaxKeys; j++ {
			gone = append(gone, fmt.Appendf(nil, "k%05d", j))
		}
		if _, err := s.DeleteMany(ctx, gone); err != nil {
			fmt.Fprintln(os.Stderr, "DeleteMany:", err)
			return 4
		}
		if err := s.PutMany(ctx, es); err != nil {
			fmt.Fprintln(os.Stderr, "PutMany:", err)
			return 4
		}
		m, err := c.Checkpoint(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "Checkpoint:", err)
			return 4
		}
		fmt.Printf("published %d %s\n", i, m.ID)
	}
	return 0
}

// child starts the test binary in role with dir; lines receives its stdout
// lines and is closed when it ends.
func child(t *testing.T, role, dir string, env ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, dirEnv+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines
}

// next returns the next line, failing after a generous deadline.
func next(t *testing.T, lines <-chan string) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-lines:
		return l, ok
	case <-time.After(60 * time.Second):
		t.Fatal("child printed nothing for 60s")
		return "", false
	}
}

// kill SIGKILLs cmd and waits for it and its output.
func kill(t *testing.T, cmd *exec.Cmd, lines <-chan string) []string {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return rest
}

// TestCrashDuringCheckpoint SIGKILLs a process that checkpoints in a loop,
// many times, at random points. Each time, RestoreLatest must restore,
// without skipping anything, exactly the state of a checkpoint that was
// taken (recomputed independently here from its iteration number), and
// never one older than the last checkpoint the child reported published.
func TestCrashDuringCheckpoint(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	ctx := context.Background()
	published := 0
	for round := range rounds {
		cmd, lines := child(t, "crash", dir)
		// Let it publish 1 to 3 checkpoints, then kill it somewhere in the
		// next ones: the random delay picks the kill point.
		for range 1 + rng.IntN(3) {
			l, ok := next(t, lines)
			if !ok {
				t.Fatalf("round %d: child ended early", round)
			}
			published = parsePublished(t, l)
		}
		time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
		for _, l := range kill(t, cmd, lines) {
			published = parsePublished(t, l)
		}

		s := newMem(t, nil)
		c, err := checkpoint.New(s, &checkpoint.Options{Dir: dir, MaxCheckpoints: 3})
		if err != nil {
			t.Fatal(err)
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmps) > 0 {
			t.Fatalf("round %d: New left temporary files %v", round, tmps)
		}
		rep, err := c.RestoreLatest(ctx)
		if err != nil {
			t.Fatalf("round %d: RestoreLatest: %v", round, err)
		}
		if len(rep.Skipped) > 0 {
			t.Fatalf("round %d: RestoreLatest skipped %v", round, rep.Skipped)
		}
		v, err := s.Get(ctx, []byte(iterKey))
		if err != nil {
			t.Fatal(err)
		}
		iter, _ := strconv.Atoi(string(v))
		// The child prints after publishing: the restored checkpoint is at
		// least the last one printed, and at most one more.
		if iter < published || iter > published+1 {
			t.Fatalf("round %d: restored iteration %d, last published %d", round, iter, published)
		}
		want := map[string]item{}
		for _, e := range crashState(iter) {
			want[string(e.Key)] = item{Value: string(e.Value), TTL: e.TTL}
		}
		got := dump(t, s)
		for k, g := range got {
			// TTLs are checked as bounds: the real clock moved since.
			if w, ok := want[k]; ok && w.TTL > 0 && g.TTL > 0 && g.TTL <= w.TTL && g.TTL > w.TTL-10*time.Minute {
				g.TTL = w.TTL
				got[k] = g
			}
		}
		if d := diff(got, want); d != "" {
			t.Fatalf("round %d: restored state of iteration %d differs:\n%s", round, iter, d)
		}
		s.Close()
	}
	if published < rounds {
		t.Fatalf("only %d checkpoints published over %d rounds", published, rounds)
	}
}

func parsePublished(t *testing.T, line string) int {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "published" {
		t.Fatalf("unexpected child output %q", line)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// chainKeys is the number of keys of the chain crash test's state.
const chainKeys = 3000

// chainTouched reports whether iteration i changes key j: a tenth of the
// keys each time, so that checkpoints are deltas.
func chainTouched(i, j int) bool { return (j+i)%10 == 0 }

// chainEntry is key j as iteration i leaves it (i is the last iteration
// that touched it, 0 for the initial state): deleted (ok false) one time in
// three, otherwise with a value and TTL that depend on i and j.
func chainEntry(i, j int) (strata.Entry, bool) {
	e := strata.Entry{Key: fmt.Appendf(nil, "k%05d", j), TTL: strata.NoExpiry}
	if i > 0 && (j/10+i)%3 == 0 {
		return e, false
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d", i, j))
	e.Value = []byte(hex.EncodeToString(sum[:])[:10+(i+j)%50])
	if j%4 == 1 {
		e.TTL = time.Duration(1+(i+j)%5) * time.Hour
	}
	return e, true
}

// chainState is the state after iteration i, computed directly.
func chainState(i int) map[string]item {
	want := map[string]item{iterKey: {Value: strconv.Itoa(i), TTL: strata.NoExpiry}}
	for j := range chainKeys {
		last := i - (j+i)%10 // the last iteration <= i that touched j
		if last < 1 {
			last = 0
		}
		if e, ok := chainEntry(last, j); ok {
			want[string(e.Key)] = item{Value: string(e.Value), TTL: e.TTL}
		}
	}
	return want
}

// chainChild restores the latest checkpoint of the location
// $STRATA_CHECKPOINT_DIR names, then loops: change the keys iteration i
// touches, through a Tracker, and checkpoint (mostly deltas, MaxDeltas 3),
// printing "published i id". The parent kills it at random points.
func chainChild() int {
	ctx := context.Background()
	s := memory.New(nil)
	tr, err := checkpoint.Track(s, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Track:", err)
		return 3
	}
	c, err := checkpoint.New(tr, &checkpoint.Options{
		Location: os.Getenv(dirEnv), MaxCheckpoints: 3, MaxDeltas: 3,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "New:", err)
		return 3
	}
	i := 0
	if _, err := c.RestoreLatest(ctx); err == nil {
		v, err := s.Get(ctx, []byte(iterKey))
		if err != nil {
			fmt.Fprintln(os.Stderr, "restored state has no iteration:", err)
			return 3
		}
		i, _ = strconv.Atoi(string(v))
	} else if !errors.Is(err, checkpoint.ErrNoCheckpoint) {
		fmt.Fprintln(os.Stderr, "RestoreLatest:", err)
		return 3
	} else {
		var es []strata.Entry
		for j := range chainKeys {
			e, _ := chainEntry(0, j)
			es = append(es, e)
		}
		es = append(es, strata.Entry{Key: []byte(iterKey), Value: []byte("0"), TTL: strata.NoExpiry})
		if err := tr.PutMany(ctx, es); err != nil {
			fmt.Fprintln(os.Stderr, "PutMany:", err)
			return 4
		}
	}
	parent := os.Getppid()
	for range 10_000 { // bounded, and ends with the parent
		if os.Getppid() != parent {
			return 5
		}
		i++
		var puts []strata.Entry
		var dels [][]byte
		for j := range chainKeys {
			if !chainTouched(i, j) {
				continue
			}
			if e, ok := chainEntry(i, j); ok {
				puts = append(puts, e)
			} else {
				dels = append(dels, e.Key)
			}
		}
		puts = append(puts, strata.Entry{Key: []byte(iterKey), Value: []byte(strconv.Itoa(i)), TTL: strata.NoExpiry})
		if _, err := tr.DeleteMany(ctx, dels); err != nil {
			fmt.Fprintln(os.Stderr, "DeleteMany:", err)
			return 4
		}
		if err := tr.PutMany(ctx, puts); err != nil {
			fmt.Fprintln(os.Stderr, "PutMany:", err)
			return 4
		}
		m, err := c.Checkpoint(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "Checkpoint:", err)
			return 4
		}
		fmt.Printf("published %d %s\n", i, m.ID)
	}
	return 0
}

func TestCrashChainDir(t *testing.T) { testCrash(t, "file://"+t.TempDir(), nil) }

// testCrash SIGKILLs a process that checkpoints chains of deltas into the
// location url, 20 times (6 with -short), at random points. Each time,
// RestoreLatest must restore, without skipping anything, exactly the state
// of an iteration that was checkpointed, and never one older than the last
// the child reported published. On a bucket (srv), what the crashed child
// left must be garbage that the next Coordinator collects: afterwards,
// every data object is named by a manifest.
func testCrash(t *testing.T, url string, srv *testserver.S3) {
	rounds := 20
	if testing.Short() {
		rounds = 6
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	ctx := context.Background()
	// The parent collects orphans at once: the child is dead by then.
	parentURL := url
	if srv != nil {
		parentURL += "&orphan_age=1ms"
	}
	published, deltas := 0, 0
	for round := range rounds {
		cmd, lines := child(t, "chain", url)
		for range 1 + rng.IntN(4) {
			l, ok := next(t, lines)
			if !ok {
				t.Fatalf("round %d: child ended early", round)
			}
			published = parsePublished(t, l)
		}
		time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond) // picks the kill point
		for _, l := range kill(t, cmd, lines) {
			published = parsePublished(t, l)
		}

		s := newMem(t, nil)
		c := newCoordinator(t, s, checkpoint.Options{Location: parentURL, MaxCheckpoints: 3})
		rep, err := c.RestoreLatest(ctx)
		if err != nil {
			t.Fatalf("round %d: RestoreLatest: %v", round, err)
		}
		if len(rep.Skipped) > 0 {
			t.Fatalf("round %d: RestoreLatest skipped %v", round, rep.Skipped)
		}
		if len(rep.Chain) > 1 {
			deltas++
		}
		v, err := s.Get(ctx, []byte(iterKey))
		if err != nil {
			t.Fatal(err)
		}
		iter, _ := strconv.Atoi(string(v))
		if iter < published || iter > published+1 {
			t.Fatalf("round %d: restored iteration %d, last published %d", round, iter, published)
		}
		got := dump(t, s)
		want := chainState(iter)
		for k, g := range got {
			if w, ok := want[k]; ok && w.TTL > 0 && g.TTL > 0 && g.TTL <= w.TTL && g.TTL > w.TTL-10*time.Minute {
				g.TTL = w.TTL
				got[k] = g
			}
		}
		if d := diff(got, want); d != "" {
			t.Fatalf("round %d: restored state of iteration %d (chain %v) differs:\n%s", round, iter, rep.Chain, d)
		}
		if srv != nil {
			checkNoOrphans(t, c, srv)
		}
		c.Close()
		s.Close()
	}
	if published < rounds {
		t.Fatalf("only %d checkpoints published over %d rounds", published, rounds)
	}
	if deltas == 0 {
		t.Fatal("no round restored a chain of deltas")
	}
}

// checkNoOrphans checks that every object under c's prefix is a manifest
// or the data object a manifest names.
func checkNoOrphans(t *testing.T, c *checkpoint.Coordinator, srv *testserver.S3) {
	t.Helper()
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, in := range list {
		named[strings.TrimPrefix(in.Path, "s3://"+srv.Bucket+"/")] = true
	}
	loc := c.Location().String() // s3://bucket/prefix/
	prefix := strings.TrimPrefix(loc, "s3://"+srv.Bucket+"/")
	out, err := srv.Client(t).ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String(prefix + "data/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if !named[*o.Key] {
			t.Fatalf("data object %s is named by no manifest after the next Coordinator started", *o.Key)
		}
	}
}
