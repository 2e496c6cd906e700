package strata_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/stores/memory"
)

func fill(t *testing.T, s strata.Store, n int) {
	t.Helper()
	var batch []strata.Entry
	for i := range n {
		ttl := strata.NoExpiry
		if i%3 == 0 {
			ttl = time.Hour
		}
		batch = append(batch, strata.Entry{Key: fmt.Appendf(nil, "k%06d", i), Value: fmt.Appendf(nil, "v%d", i), TTL: ttl})
	}
	if err := strata.PutMany(t.Context(), s, batch); err != nil {
		t.Fatal(err)
	}
}

func TestCopyAndVerify(t *testing.T) {
	ctx := t.Context()
	src, dst := memory.New(nil), memory.New(nil)
	defer src.Close()
	defer dst.Close()
	fill(t, src, 2500)
	var calls int
	p, err := strata.Copy(ctx, dst, src, &strata.CopyOptions{BatchSize: 1000, Progress: func(p strata.CopyProgress) {
		calls++
		if p.Total != 2500 {
			t.Errorf("progress Total = %d, want 2500", p.Total)
		}
	}})
	if err != nil || p.Read != 2500 || p.Written != 2500 || calls != 3 {
		t.Fatalf("Copy = %+v, %v after %d progress calls; want 2500 read and written in 3 batches", p, err, calls)
	}
	r, err := strata.Verify(ctx, dst, src, nil)
	if err != nil || r.Checked != 2500 || !r.OK() {
		t.Fatalf("Verify = %v, %v", r, err)
	}
	ttl, err := strata.TTL(ctx, dst, []byte("k000000"))
	if err != nil || ttl < 59*time.Minute {
		t.Fatalf("copied TTL = %v, %v; want about 1h", ttl, err)
	}
	if ttl, _ := strata.TTL(ctx, dst, []byte("k000001")); ttl != strata.NoExpiry {
		t.Fatalf("copied TTL of a key without expiry = %v", ttl)
	}
}

func TestVerifyFindsDifferences(t *testing.T) {
	ctx := t.Context()
	src, dst := memory.New(nil), memory.New(nil)
	defer src.Close()
	defer dst.Close()
	fill(t, src, 100)
	if _, err := strata.Copy(ctx, dst, src, nil); err != nil {
		t.Fatal(err)
	}
	dst.Delete(ctx, []byte("k000010"))
	dst.Put(ctx, []byte("k000011"), []byte("changed"), 0)
	dst.Put(ctx, []byte("k000012"), []byte("v12"), time.Minute) // had no TTL
	r, err := strata.Verify(ctx, dst, src, nil)
	if !errors.Is(err, strata.ErrMismatch) || r.Missing != 1 || r.Different != 1 || r.TTLDiff != 1 || len(r.Examples) != 3 {
		t.Fatalf("Verify = %v (%q), %v; want 1 missing, 1 different, 1 TTL apart", r, r.Examples, err)
	}
}

// An interrupted copy, run again with Resume, writes only what is missing
// and ends identical.
func TestCopyResume(t *testing.T) {
	src, dst := memory.New(nil), memory.New(nil)
	defer src.Close()
	defer dst.Close()
	fill(t, src, 5000)
	ctx, cancel := context.WithCancel(t.Context())
	p, err := strata.Copy(ctx, dst, src, &strata.CopyOptions{BatchSize: 500, Progress: func(p strata.CopyProgress) {
		if p.Written >= 2000 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || p.Written != 2000 {
		t.Fatalf("interrupted Copy = %+v, %v; want 2000 written and context.Canceled", p, err)
	}
	p, err = strata.Copy(t.Context(), dst, src, &strata.CopyOptions{BatchSize: 500, Resume: true})
	if err != nil || p.Skipped != 2000 || p.Written != 3000 {
		t.Fatalf("resumed Copy = %+v, %v; want 2000 skipped and 3000 written", p, err)
	}
	if r, err := strata.Verify(t.Context(), dst, src, nil); err != nil {
		t.Fatalf("Verify after resume = %v, %v", r, err)
	}
}

func TestCopyPrefix(t *testing.T) {
	ctx := t.Context()
	src, dst := memory.New(nil), memory.New(nil)
	defer src.Close()
	defer dst.Close()
	fill(t, src, 20)
	src.Put(ctx, []byte("other"), []byte("x"), 0)
	p, err := strata.Copy(ctx, dst, src, &strata.CopyOptions{Prefix: []byte("k00001")})
	if err != nil || p.Written != 10 || p.Total != -1 {
		t.Fatalf("Copy = %+v, %v; want 10 written, total unknown", p, err)
	}
	if _, err := dst.Get(ctx, []byte("other")); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("a key outside the prefix was copied: %v", err)
	}
}

func TestCopyProgressETA(t *testing.T) {
	p := strata.CopyProgress{Read: 100, Total: 400, Elapsed: time.Second}
	if eta := p.ETA(); eta != 3*time.Second {
		t.Fatalf("ETA = %v, want 3s", eta)
	}
	if (strata.CopyProgress{Read: 1, Total: -1, Elapsed: time.Second}).ETA() != 0 {
		t.Fatal("ETA without a total is not 0")
	}
}

// slowReads delays every Get of its store until ready returns true (it has
// only the Store methods: Verify reads it with Get).
type slowReads struct {
	strata.Store
	t     testing.TB
	ready func() bool
}

func (s slowReads) Get(ctx context.Context, key []byte) ([]byte, error) {
	wait.For(s.t, 5*time.Second, "the entry to expire", s.ready)
	return s.Store.Get(ctx, key)
}

// TestVerifyExpiredMeanwhile: an entry that expires in both stores between
// Verify's read of the source and its read of the destination is not
// reported missing (a faithful copy of a dedup set with short TTLs).
func TestVerifyExpiredMeanwhile(t *testing.T) {
	ctx := t.Context()
	src, dst := memory.New(nil), memory.New(nil)
	defer src.Close()
	defer dst.Close()
	for _, s := range []strata.Store{src, dst} {
		if err := s.Put(ctx, []byte("seen/1"), []byte("x"), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, []byte("keep"), []byte("v"), strata.NoExpiry); err != nil {
			t.Fatal(err)
		}
	}
	gone := func() bool {
		_, err := dst.Get(ctx, []byte("seen/1"))
		return errors.Is(err, strata.ErrNotFound)
	}
	r, err := strata.Verify(ctx, slowReads{dst, t, gone}, src, &strata.CopyOptions{TTLTolerance: 10 * time.Millisecond})
	if err != nil || r.Checked != 2 || r.Expired != 1 || r.Missing != 0 || !r.OK() {
		t.Fatalf("Verify = %+v, %v; want 2 checked, 1 expired meanwhile, none missing", r, err)
	}
	// A key missing from the destination long before its TTL runs out is
	// still missing.
	if err := src.Put(ctx, []byte("seen/2"), []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if r, err := strata.Verify(ctx, dst, src, nil); !errors.Is(err, strata.ErrMismatch) || r.Missing != 1 {
		t.Fatalf("Verify with a key missing = %+v, %v", r, err)
	}
}
