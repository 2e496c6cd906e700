package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
)

// s3Prefixes numbers the prefixes that TestS3's subtests use.
var s3Prefixes atomic.Int64

// s3Location returns the URL of a new, empty prefix on srv.
func s3Location(srv *testserver.S3, name string) string {
	return srv.URL(fmt.Sprintf("%s-%d", strings.ReplaceAll(name, "/", "-"), s3Prefixes.Add(1)))
}

// TestS3 runs the tests that need an S3-compatible server against one
// SeaweedFS (weed mini) started for them.
func TestS3(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	t.Run("Location", func(t *testing.T) {
		testLocation(t, func(t *testing.T) checkpoint.Location { return openLocation(t, s3Location(srv, t.Name())) })
	})
	t.Run("Chains", func(t *testing.T) { testChains(t, s3Location(srv, t.Name())) })
	t.Run("ChainCorruption", func(t *testing.T) { testChainCorruption(t, s3Location(srv, t.Name()), s3Damage{srv}) })
	t.Run("MissingData", func(t *testing.T) { testMissingData(t, srv) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, s3Location(srv, t.Name())) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, s3Location(srv, t.Name()), srv) })
}

func openLocation(t *testing.T, url string) checkpoint.Location {
	t.Helper()
	loc, err := checkpoint.OpenLocation(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })
	return loc
}

func TestLocationDir(t *testing.T) {
	testLocation(t, func(t *testing.T) checkpoint.Location { return openLocation(t, "file://"+t.TempDir()) })
}

func TestLocationMemBucket(t *testing.T) {
	testLocation(t, func(t *testing.T) checkpoint.Location {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { b.Close() })
		loc, err := checkpoint.BucketLocation(blob.PrefixedBucket(b, "ckpt/"), "mem://ckpt/", nil)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	})
}

// writeTo writes a small checkpoint with id to loc and returns the pending
// checkpoint and its manifest, unpublished.
func writeTo(t *testing.T, loc checkpoint.Location, id string, n int) (checkpoint.Pending, checkpoint.Manifest) {
	t.Helper()
	p, err := loc.Create(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	w, err := checkpoint.NewWriter(p, &checkpoint.WriterOptions{ID: id, Clock: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range sampleEntries(n) {
		if err := w.Append(e.Key, e.Value, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return p, m
}

// testLocation is the contract of a Location, run on each implementation.
func testLocation(t *testing.T, open func(t *testing.T) checkpoint.Location) {
	ctx := context.Background()
	t.Run("PublishListOpenDelete", func(t *testing.T) {
		loc := open(t)
		if ls, err := loc.List(ctx); err != nil || len(ls.Checkpoints) != 0 || len(ls.Garbage) != 0 {
			t.Fatalf("empty location lists %+v, %v", ls, err)
		}
		var want []string
		for _, id := range []string{"b", "a", "c-1"} {
			p, m := writeTo(t, loc, id, 30)
			in, err := p.Publish(ctx, m)
			if err != nil || in.ID != id || in.Size <= 0 || in.Manifest.Checksum != m.Checksum {
				t.Fatalf("Publish(%s) = %+v, %v", id, in, err)
			}
			want = append(want, id)
		}
		slices.Sort(want)
		ls, err := loc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, in := range ls.Checkpoints {
			if in.Err != nil || in.Manifest.ID != in.ID || in.Manifest.Entries != 30 || in.Size <= 0 {
				t.Fatalf("listed %+v", in)
			}
			got = append(got, in.ID)
		}
		if !slices.Equal(got, want) || len(ls.Garbage) != 0 {
			t.Fatalf("List = %v (garbage %v), want %v", got, ls.Garbage, want)
		}
		r, err := loc.Open(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		m, err := checkpoint.Verify(ctx, r, nil)
		r.Close()
		if err != nil || m.ID != "a" {
			t.Fatalf("Verify of an opened checkpoint: %+v, %v", m, err)
		}
		if err := loc.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := loc.Delete(ctx, "a"); err != nil {
			t.Fatalf("deleting a missing checkpoint: %v", err)
		}
		if _, err := loc.Open(ctx, "a"); !errors.Is(err, checkpoint.ErrNoCheckpoint) || !errors.Is(err, strata.ErrNotFound) {
			t.Fatalf("Open of a deleted checkpoint: %v", err)
		}
		if ls, _ := loc.List(ctx); len(ls.Checkpoints) != 2 {
			t.Fatalf("after Delete: %+v", ls)
		}
	})
	t.Run("Exclusive", func(t *testing.T) {
		loc := open(t)
		p1, m1 := writeTo(t, loc, "x", 10)
		p2, m2 := writeTo(t, loc, "x", 20)
		if _, err := p2.Publish(ctx, m2); err != nil {
			t.Fatal(err)
		}
		if _, err := p1.Publish(ctx, m1); !errors.Is(err, checkpoint.ErrExist) || !errors.Is(err, strata.ErrConflict) {
			t.Fatalf("publishing an existing id: %v, want ErrExist", err)
		}
		ls, _ := loc.List(ctx)
		if len(ls.Checkpoints) != 1 || ls.Checkpoints[0].Manifest.Entries != 20 {
			t.Fatalf("the first publisher's checkpoint was replaced: %+v", ls.Checkpoints)
		}
		if len(ls.Garbage) != 0 {
			t.Fatalf("the loser left garbage that is not reported: %v", ls.Garbage)
		}
	})
	t.Run("Abort", func(t *testing.T) {
		loc := open(t)
		p, _ := writeTo(t, loc, "gone", 10)
		p.Abort()
		p.Abort()
		if ls, err := loc.List(ctx); err != nil || len(ls.Checkpoints) != 0 {
			t.Fatalf("an aborted checkpoint is listed: %+v, %v", ls, err)
		}
		if _, err := loc.Open(ctx, "gone"); !errors.Is(err, checkpoint.ErrNoCheckpoint) {
			t.Fatalf("Open of an aborted checkpoint: %v", err)
		}
	})
	t.Run("WrongManifest", func(t *testing.T) {
		loc := open(t)
		p, m := writeTo(t, loc, "y", 10)
		m.ID = "z"
		if _, err := p.Publish(ctx, m); !errors.Is(err, strata.ErrInvalidConfig) {
			t.Fatalf("Publish with another id's manifest: %v", err)
		}
		if ls, _ := loc.List(ctx); len(ls.Checkpoints) != 0 {
			t.Fatalf("listed %+v", ls)
		}
	})
	t.Run("InvalidIDs", func(t *testing.T) {
		loc := open(t)
		for _, id := range []string{"", "../x", "a/b", ".x"} {
			if _, err := loc.Create(ctx, id); !errors.Is(err, checkpoint.ErrInvalidID) {
				t.Errorf("Create(%q): %v", id, err)
			}
			if _, err := loc.Open(ctx, id); !errors.Is(err, checkpoint.ErrInvalidID) {
				t.Errorf("Open(%q): %v", id, err)
			}
			if err := loc.Delete(ctx, id); !errors.Is(err, checkpoint.ErrInvalidID) {
				t.Errorf("Delete(%q): %v", id, err)
			}
		}
	})
}

func TestOpenLocationErrors(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct{ url, msg string }{
		{"", "empty"},
		{"file://host/x", "local directory"},
		{"file://relative", "local directory"},
		{"file:///x?a=b", "no parameters"},
		{"s3://", "no bucket"},
		{"s3://b/p?prefix=x", "prefix as the URL's path"},
		{"s3://user:secret@b/p", "credentials do not belong"},
		{"s3://b/a//b", "empty"},
		{"s3://b/../x", ".."},
		{"s3://b/p?orphan_age=-1s", "orphan_age"},
		{"s3://b/p?use_path_style=maybe", "use_path_style"},
		{"s3://b/p?nonsense=1", "nonsense"},
		{"nosuch://b/p", "nosuch"},
		{"://x", "scheme"},
	} {
		loc, err := checkpoint.OpenLocation(ctx, tc.url)
		if err == nil {
			loc.Close()
		}
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("OpenLocation(%q) = %v, want ErrInvalidConfig saying %q", tc.url, err, tc.msg)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("OpenLocation(%q) error shows the secret: %v", tc.url, err)
		}
	}
	dir := t.TempDir()
	for _, u := range []string{dir, "file://" + dir, "file://localhost" + dir} {
		loc, err := checkpoint.OpenLocation(ctx, u)
		if err != nil {
			t.Fatalf("OpenLocation(%q): %v", u, err)
		}
		if loc.String() != "file://"+dir {
			t.Errorf("OpenLocation(%q).String() = %q", u, loc.String())
		}
		loc.Close()
	}
}

// TestDirLayout: a directory location reads checkpoint files written
// before locations existed, under their names, and writes the same layout.
func TestDirLayout(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "golden.ckpt"), golden, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newMem(t, nil)
	c := newCoordinator(t, s, checkpoint.Options{Location: "file://" + dir})
	rep, err := c.RestoreLatest(ctx)
	if err != nil || rep.ID != "golden" || rep.Restored == 0 {
		t.Fatalf("RestoreLatest of an old file: %+v, %v", rep, err)
	}
	m, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, m.ID+".ckpt"))
	if err != nil {
		t.Fatalf("checkpoint not at <dir>/ID.ckpt: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("strataCP\x00\x01")) {
		t.Fatalf("a full checkpoint is not format version 1: %q", b[:10])
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 2 {
		t.Fatalf("directory holds %d entries, want the two checkpoints", len(des))
	}
}

// TestMemBucketGarbage: a data object that no manifest names is garbage
// once it is older than the orphan age (a writer that crashed before its
// manifest), at once if its id's manifest names another data object (a
// writer that lost the race for the id), and Collect removes it.
func TestMemBucketGarbage(t *testing.T) {
	ctx := t.Context()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	var shift time.Duration
	loc, err := checkpoint.BucketLocation(b, "mem://", &checkpoint.BucketOptions{Now: func() time.Time { return time.Now().Add(shift) }})
	if err != nil {
		t.Fatal(err)
	}
	p, m := writeTo(t, loc, "a", 5)
	if _, err := p.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"data/b.0123456789abcdef.ckpt", "data/a.0123456789abcdef.ckpt", "unrelated.txt", "data/notours"} {
		if err := b.WriteAll(ctx, key, []byte("partial"), nil); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := loc.List(ctx)
	if err != nil || len(ls.Checkpoints) != 1 || !slices.Equal(ls.Garbage, []string{"data/a.0123456789abcdef.ckpt"}) {
		t.Fatalf("List = %+v, %v; want only the loser's data as garbage", ls, err)
	}
	shift = 2 * checkpoint.DefaultOrphanAge
	ls, _ = loc.List(ctx)
	if !slices.Equal(ls.Garbage, []string{"data/a.0123456789abcdef.ckpt", "data/b.0123456789abcdef.ckpt"}) {
		t.Fatalf("garbage after the orphan age: %v", ls.Garbage)
	}
	if err := loc.Collect(ctx, append(ls.Garbage, "unrelated.txt", "a.json")); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"data/b.0123456789abcdef.ckpt": false, "unrelated.txt": true, "a.json": true, "data/notours": true} {
		if ok, _ := b.Exists(ctx, key); ok != want {
			t.Errorf("after Collect, %s exists: %v, want %v", key, ok, want)
		}
	}
	if ls, _ := loc.List(ctx); len(ls.Garbage) != 0 || len(ls.Checkpoints) != 1 {
		t.Fatalf("after Collect: %+v", ls)
	}
}
