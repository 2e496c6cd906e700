package checkpoint_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/conformance"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/memory"
)

// tracked returns a memory store on clock, a Tracker over it and a
// Coordinator of the Tracker at url with opts.
func tracked(t *testing.T, url string, clock strata.Clock, o checkpoint.Options) (strata.Store, *checkpoint.Tracker, *checkpoint.Coordinator) {
	t.Helper()
	s := newMem(t, clock)
	tr, err := checkpoint.Track(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Location, o.Clock = url, clock
	c := newCoordinator(t, tr, o)
	return s, tr, c
}

func TestChainsDir(t *testing.T) { testChains(t, "file://"+t.TempDir()) }

// testChains takes checkpoints of a store changed a little at a time
// through a Tracker: a full checkpoint, deltas up to MaxDeltas, a full one
// again. Every checkpoint retention keeps must restore exactly the state
// it was taken of, and retention must keep every link a kept one needs.
func testChains(t *testing.T, url string) {
	ctx := t.Context()
	clock := fakeClock()
	s, tr, c := tracked(t, url, clock, checkpoint.Options{MaxDeltas: 3, MaxCheckpoints: 2})
	put(t, s, sampleEntries(300)...) // before tracking: the first checkpoint is full anyway
	rng := rand.New(rand.NewPCG(1, 2))
	states := map[string]map[string]item{}
	taken := map[string]time.Time{}
	var kinds []string
	for step := range 10 {
		if step > 0 {
			changeSome(t, tr, rng, step)
		}
		clock.Advance(time.Second)
		m, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		states[m.ID], taken[m.ID] = dump(t, s), clock.Now()
		kinds = append(kinds, cmp(m.IsDelta(), "d", "f"))
		if m.IsDelta() && (m.Depth < 1 || m.Depth > 3 || m.Parent == "" || m.Base == "") {
			t.Fatalf("delta manifest %+v", m)
		}
	}
	if got := strings.Join(kinds, ""); got != "fdddfdddfd" {
		t.Fatalf("kinds %s, want fdddfdddfd (a full checkpoint, then 3 deltas, and again)", got)
	}
	st := c.Stats()
	if st.Created != 10 || st.Deltas != 7 {
		t.Fatalf("stats %+v", st)
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	// Kept: the newest two (a full one and its delta) and nothing else,
	// since they need nothing older.
	if len(list) != 2 {
		t.Fatalf("retention kept %d checkpoints, want 2: %+v", len(list), list)
	}
	for _, in := range list {
		dst := newMem(t, clock)
		rc := newCoordinator(t, dst, checkpoint.Options{Location: url, Clock: clock})
		rep, err := rc.Restore(ctx, in.ID)
		if err != nil {
			t.Fatalf("Restore(%s): %v", in.ID, err)
		}
		if d := diff(dump(t, dst), aged(states[in.ID], clock.Now().Sub(taken[in.ID]))); d != "" {
			t.Fatalf("Restore(%s), chain %v, differs:\n%s", in.ID, rep.Chain, d)
		}
	}
	// Retention with a longer chain: keep the newest 2, which are deltas
	// at depths 2 and 3 whose chain reaches back to their base.
	for range 2 {
		changeSome(t, tr, rng, 99)
		clock.Advance(time.Second)
		m, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		states[m.ID], taken[m.ID] = dump(t, s), clock.Now()
	}
	list, _ = c.List()
	if len(list) != 4 || list[0].Manifest.IsDelta() || list[3].Manifest.Depth != 3 {
		t.Fatalf("retention kept %d: want the base and 3 deltas: %+v", len(list), list)
	}
	dst := newMem(t, clock)
	rc := newCoordinator(t, dst, checkpoint.Options{Location: url, Clock: clock})
	rep, err := rc.RestoreLatest(ctx)
	if err != nil || len(rep.Chain) != 4 || rep.ID != list[3].ID {
		t.Fatalf("RestoreLatest: %+v, %v", rep, err)
	}
	if d := diff(dump(t, dst), aged(states[rep.ID], clock.Now().Sub(taken[rep.ID]))); d != "" {
		t.Fatalf("RestoreLatest differs:\n%s", d)
	}
	if _, err := rc.Verify(ctx, rep.ID); err != nil {
		t.Fatalf("Verify of a chain: %v", err)
	}
}

// aged returns state as it is d later: TTLs shorter by d (none expires in
// these tests).
func aged(state map[string]item, d time.Duration) map[string]item {
	out := make(map[string]item, len(state))
	for k, it := range state {
		if it.TTL > 0 {
			it.TTL -= d
		}
		out[k] = it
	}
	return out
}

func cmp[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// changeSome changes a few keys of tr in every way a job can: puts with
// and without TTLs, TTL changes, deletes, a batch, a commit and the atomic
// operations.
func changeSome(t *testing.T, tr *checkpoint.Tracker, rng *rand.Rand, step int) {
	t.Helper()
	ctx := t.Context()
	key := func() []byte { return fmt.Appendf(nil, "k\x00%05d\xff", rng.IntN(320)) }
	must := func(err error) {
		t.Helper()
		if err != nil && !errors.Is(err, strata.ErrConflict) {
			t.Fatal(err)
		}
	}
	must(tr.Put(ctx, key(), fmt.Appendf(nil, "put-%d", step), strata.NoExpiry))
	must(tr.Put(ctx, key(), fmt.Appendf(nil, "ttl-%d", step), time.Duration(1+rng.IntN(100))*time.Hour))
	must(tr.Delete(ctx, key()))
	_, err := tr.DeleteMany(ctx, [][]byte{key(), key()})
	must(err)
	must(tr.PutMany(ctx, []strata.Entry{{Key: key(), Value: []byte{}, TTL: strata.NoExpiry}, {Key: key(), Value: []byte("many"), TTL: time.Minute}}))
	b := new(strata.WriteBatch).Put(key(), fmt.Appendf(nil, "commit-%d", step), strata.NoExpiry).Delete(key()).IfFence([]byte("fence"), uint64(step))
	must(tr.Commit(ctx, b))
	_, err = tr.PutIfAbsent(ctx, key(), []byte("absent"), strata.NoExpiry)
	must(err)
	_, err = tr.GetAndDelete(ctx, key())
	if !errors.Is(err, strata.ErrNotFound) {
		must(err)
	}
	k := key()
	old, _ := tr.Get(ctx, k)
	_, err = tr.CompareAndSwap(ctx, k, old, []byte("swapped"), strata.NoExpiry)
	must(err)
}

// TestDeltaExpiry: a delta records a key's new expiry; restored after that
// expiry passed, the key is gone, although its base holds it for longer.
func TestDeltaExpiry(t *testing.T) {
	ctx := t.Context()
	clock := fakeClock()
	url := t.TempDir()
	_, tr, c := tracked(t, url, clock, checkpoint.Options{MaxDeltas: 5})
	put(t, tr, strata.Entry{Key: []byte("k"), Value: []byte("v1"), TTL: time.Hour}, strata.Entry{Key: []byte("keep"), Value: []byte("x"), TTL: strata.NoExpiry})
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	put(t, tr, strata.Entry{Key: []byte("k"), Value: []byte("v2"), TTL: 10 * time.Second})
	m, err := c.Checkpoint(ctx)
	if err != nil || !m.IsDelta() || m.Entries != 1 || m.Deletes != 0 {
		t.Fatalf("delta %+v, %v", m, err)
	}
	clock.Advance(20 * time.Second)
	dst := newMem(t, clock)
	put(t, dst, strata.Entry{Key: []byte("k"), Value: []byte("stale"), TTL: strata.NoExpiry})
	rc := newCoordinator(t, dst, checkpoint.Options{Location: url, Clock: clock, Mode: checkpoint.Merge})
	rep, err := rc.RestoreLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Get(ctx, []byte("k")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("k after restoring past its delta's expiry: %v (report %+v)", err, rep)
	}
	if rep.Deleted != 1 || rep.Expired != 1 || len(rep.Chain) != 2 {
		t.Fatalf("report %+v", rep)
	}
}

// TestTrackerOverflow: past MaxKeys the Tracker forgets its keys and the
// next checkpoint is full; a failed checkpoint gives its keys back.
func TestTrackerOverflow(t *testing.T) {
	ctx := t.Context()
	s := newMem(t, nil)
	tr, err := checkpoint.Track(s, &checkpoint.TrackerOptions{MaxKeys: 10})
	if err != nil {
		t.Fatal(err)
	}
	c := newCoordinator(t, tr, checkpoint.Options{MaxDeltas: 5})
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		setValue(t, tr, strconv.Itoa(i), "x")
	}
	if n, ok := tr.Pending(); n != 5 || !ok {
		t.Fatalf("Pending = %d, %v", n, ok)
	}
	if m, err := c.Checkpoint(ctx); err != nil || !m.IsDelta() || m.Entries != 5 {
		t.Fatalf("delta %+v, %v", m, err)
	}
	for i := range 11 {
		setValue(t, tr, strconv.Itoa(i), "y")
	}
	if _, ok := tr.Pending(); ok {
		t.Fatal("11 keys written with MaxKeys 10: the set should be lost")
	}
	if m, err := c.Checkpoint(ctx); err != nil || m.IsDelta() {
		t.Fatalf("after an overflow: %+v, %v; want a full checkpoint", m, err)
	}
	if _, err := checkpoint.Track(s, &checkpoint.TrackerOptions{MaxKeys: -1}); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("negative MaxKeys: %v", err)
	}
	// A checkpoint that fails gives its keys back to the next one.
	setValue(t, tr, "z", "1")
	s.Close()
	if _, err := c.Checkpoint(ctx); err == nil {
		t.Fatal("checkpoint of a closed store succeeded")
	}
	if n, ok := tr.Pending(); n != 1 || !ok {
		t.Fatalf("after a failed checkpoint: Pending = %d, %v; want the key back", n, ok)
	}
	tr.Close()
	if err := tr.Put(ctx, []byte("a"), nil, 0); !errors.Is(err, strata.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}

// TestTrackerConformance runs the store contract through a Tracker.
func TestTrackerConformance(t *testing.T) {
	conformance.RunStore(t, conformance.Harness{
		Open: func(tb testing.TB, o conformance.Options) strata.Store {
			s := memory.New(&memory.Options{Clock: o.Clock, DefaultTTL: o.DefaultTTL, MaxValueSize: o.MaxValueSize})
			tb.Cleanup(func() { s.Close() })
			tr, err := checkpoint.Track(s, nil)
			if err != nil {
				tb.Fatal(err)
			}
			return tr
		},
		Capabilities: conformance.AllCapabilities,
		FakeClock:    true,
	})
}

// damager damages a checkpoint in a location, as a disk or a person would.
type damager interface {
	flip(t *testing.T, c *checkpoint.Coordinator, id string)
	truncate(t *testing.T, c *checkpoint.Coordinator, id string)
}

type dirDamage struct{}

func (dirDamage) flip(t *testing.T, c *checkpoint.Coordinator, id string) {
	p, _ := c.Path(id)
	corruptFile(t, p)
}

func (dirDamage) truncate(t *testing.T, c *checkpoint.Coordinator, id string) {
	p, _ := c.Path(id)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, st.Size()-10); err != nil {
		t.Fatal(err)
	}
}

type s3Damage struct{ srv *testserver.S3 }

// rewrite replaces the data object of checkpoint id with change(data).
func (d s3Damage) rewrite(t *testing.T, c *checkpoint.Coordinator, id string, change func([]byte) []byte) {
	t.Helper()
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, in := range list {
		if in.ID == id {
			// Path is s3://bucket/prefix/data/...: the key is after the bucket.
			key = strings.TrimPrefix(in.Path, "s3://"+d.srv.Bucket+"/")
		}
	}
	cl := d.srv.Client(t)
	out, err := cl.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(d.srv.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	b, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	b = change(b)
	if _, err := cl.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(d.srv.Bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
}

func (d s3Damage) flip(t *testing.T, c *checkpoint.Coordinator, id string) {
	d.rewrite(t, c, id, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b })
}

func (d s3Damage) truncate(t *testing.T, c *checkpoint.Coordinator, id string) {
	d.rewrite(t, c, id, func(b []byte) []byte { return b[:len(b)-10] })
}

func TestChainCorruptionDir(t *testing.T) {
	testChainCorruption(t, "", dirDamage{})
}

// testChainCorruption damages each link of a chain (base and 3 deltas) in
// each way: a bit flip, a truncation, the link deleted. Restoring the
// newest then fails with strata.ErrCorrupt and writes nothing;
// RestoreLatest falls back to the newest checkpoint whose chain is whole.
// url "" means a new directory per case; otherwise url is a bucket prefix,
// extended per case.
func testChainCorruption(t *testing.T, url string, dmg damager) {
	ctx := t.Context()
	for link := range 4 {
		for _, how := range []string{"flip", "truncate", "missing"} {
			t.Run(fmt.Sprintf("link%d-%s", link, how), func(t *testing.T) {
				u := t.TempDir()
				if url != "" {
					u = strings.Replace(url, "?", fmt.Sprintf("/%d-%s?", link, how), 1)
				}
				clock := fakeClock()
				s, tr, c := tracked(t, u, clock, checkpoint.Options{MaxDeltas: 5, MaxCheckpoints: 10})
				put(t, s, sampleEntries(200)...)
				var ids []string
				var states []map[string]item
				rng := rand.New(rand.NewPCG(uint64(link), 3))
				for step := range 4 {
					if step > 0 {
						changeSome(t, tr, rng, step)
					}
					m, err := c.Checkpoint(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if m.IsDelta() != (step > 0) {
						t.Fatalf("step %d: delta %v", step, m.IsDelta())
					}
					ids = append(ids, m.ID)
					states = append(states, dump(t, s))
				}
				switch how {
				case "flip":
					dmg.flip(t, c, ids[link])
				case "truncate":
					dmg.truncate(t, c, ids[link])
				case "missing":
					if err := c.Location().Delete(ctx, ids[link]); err != nil {
						t.Fatal(err)
					}
				}
				dst := newMem(t, clock)
				setValue(t, dst, "sentinel", "untouched")
				rc := newCoordinator(t, dst, checkpoint.Options{Location: u, Clock: clock})
				_, err := rc.Restore(ctx, ids[3])
				if !errors.Is(err, strata.ErrCorrupt) && !(how == "missing" && link == 3 && errors.Is(err, checkpoint.ErrNoCheckpoint)) {
					t.Fatalf("Restore of the damaged chain: %v, want ErrCorrupt", err)
				}
				if got := dump(t, dst); len(got) != 1 || got["sentinel"].Value != "untouched" {
					t.Fatalf("a failed restore wrote to the store (%d keys)", len(got))
				}
				if _, err := rc.Verify(ctx, ids[3]); err == nil {
					t.Fatal("Verify of the damaged chain succeeded")
				}
				rep, err := rc.RestoreLatest(ctx)
				if link == 0 {
					if !errors.Is(err, checkpoint.ErrNoCheckpoint) || (how != "missing" && !errors.Is(err, strata.ErrCorrupt)) {
						t.Fatalf("RestoreLatest with a damaged base: %v", err)
					}
					if got := dump(t, dst); len(got) != 1 {
						t.Fatalf("a failed RestoreLatest wrote to the store (%d keys)", len(got))
					}
					return
				}
				if err != nil || rep.ID != ids[link-1] || len(rep.Chain) != link {
					t.Fatalf("RestoreLatest: %+v, %v; want %s (chain of %d)", rep, err, ids[link-1], link)
				}
				if d := diff(dump(t, dst), states[link-1]); d != "" {
					t.Fatalf("fell back to %s, but the state differs:\n%s", rep.ID, d)
				}
				wantSkipped := 4 - link
				if how == "missing" {
					wantSkipped--
				}
				if len(rep.Skipped) != wantSkipped {
					t.Fatalf("skipped %+v, want %d", rep.Skipped, wantSkipped)
				}
				for _, sk := range rep.Skipped {
					if !errors.Is(sk.Err, strata.ErrCorrupt) {
						t.Fatalf("skip reason %v does not match ErrCorrupt", sk.Err)
					}
				}
			})
		}
	}
}

// testMissingData: a bucket manifest whose data object is gone is corrupt,
// and RestoreLatest falls back past it.
func testMissingData(t *testing.T, srv *testserver.S3) {
	ctx := t.Context()
	url := s3Location(srv, t.Name())
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{Location: url})
	setValue(t, s, "v", "1")
	first, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	setValue(t, s, "v", "2")
	second, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := c.List()
	key := strings.TrimPrefix(list[1].Path, "s3://"+srv.Bucket+"/")
	if _, err := srv.Client(t).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	dst := newMem(t, nil)
	rc := newCoordinator(t, dst, checkpoint.Options{Location: url})
	if _, err := rc.Restore(ctx, second.ID); !errors.Is(err, strata.ErrCorrupt) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Restore of a manifest without data: %v", err)
	}
	rep, err := rc.RestoreLatest(ctx)
	if err != nil || rep.ID != first.ID || len(rep.Skipped) != 1 {
		t.Fatalf("RestoreLatest: %+v, %v", rep, err)
	}
	if v, _ := dst.Get(ctx, []byte("v")); string(v) != "1" {
		t.Fatalf("v = %q", v)
	}
}

// TestDeltaFile: a delta file restores through RestoreFile from its
// directory, and Apply refuses to apply it in Replace mode.
func TestDeltaFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, tr, c := tracked(t, dir, fakeClock(), checkpoint.Options{MaxDeltas: 2})
	setValue(t, tr, "a", "1")
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	setValue(t, tr, "b", "2")
	if err := tr.Delete(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	m, err := c.Checkpoint(ctx)
	if err != nil || !m.IsDelta() || m.Deletes != 1 || m.Entries != 2 {
		t.Fatalf("delta %+v, %v", m, err)
	}
	path := filepath.Join(dir, m.ID+".ckpt")
	dst := newMem(t, nil)
	rep, err := checkpoint.RestoreFile(ctx, path, dst, nil)
	if err != nil || len(rep.Chain) != 2 {
		t.Fatalf("RestoreFile of a delta: %+v, %v", rep, err)
	}
	if d := diff(dump(t, dst), dump(t, s)); d != "" {
		t.Fatalf("restored state differs:\n%s", d)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("strataCP\x00\x02")) {
		t.Fatalf("a delta is not format version 2: %q", b[:10])
	}
	rd, err := checkpoint.NewReader(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.Apply(ctx, rd, dst, nil); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("Apply of a delta in Replace mode: %v", err)
	}
	moved := filepath.Join(t.TempDir(), "x.ckpt")
	if err := os.WriteFile(moved, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.RestoreFile(ctx, moved, dst, nil); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("RestoreFile of a delta away from its chain: %v", err)
	}
	// A full checkpoint cannot carry deletes.
	w, err := checkpoint.NewWriter(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Delete([]byte("k")); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("Delete in a full checkpoint: %v", err)
	}
	w.Abort()
}

// deltaFile returns a delta of n records (every third a delete) over a
// made-up parent.
func deltaFile(tb testing.TB, n int) []byte {
	tb.Helper()
	parent := &checkpoint.Manifest{ID: "parent", Checksum: "sha256:" + strings.Repeat("ab", 32), Kind: checkpoint.KindFull}
	var buf bytes.Buffer
	w, err := checkpoint.NewWriter(&buf, &checkpoint.WriterOptions{ID: "delta", Parent: parent, BlockSize: 200, Clock: fakeClock()})
	if err != nil {
		tb.Fatal(err)
	}
	for i, e := range sampleEntries(n) {
		if i%3 == 0 {
			err = w.Delete(e.Key)
		} else {
			err = w.Append(e.Key, e.Value, int64(i))
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestDeltaHostile: every truncation and bit flip of a delta is corrupt.
func TestDeltaHostile(t *testing.T) {
	data := deltaFile(t, 20)
	m, err := checkpoint.Verify(t.Context(), bytes.NewReader(data), nil)
	if err != nil || m.Parent != "parent" || m.Base != "parent" || m.Depth != 1 || m.Deletes != 7 || m.FormatVersion != 2 {
		t.Fatalf("delta manifest %+v, %v", m, err)
	}
	for cut := range len(data) {
		wantCorrupt(t, "delta cut at "+strconv.Itoa(cut), data[:cut])
	}
	for i := range len(data) * 8 {
		d := bytes.Clone(data)
		d[i/8] ^= 1 << (i % 8)
		wantCorrupt(t, "delta bit "+strconv.Itoa(i), d)
	}
}
