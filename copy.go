package strata

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// CopyOptions configure [Copy] and [Verify]. The zero value (or nil) copies
// everything in batches of 1000.
type CopyOptions struct {
	// Prefix limits the copy to keys that start with it. Keys keep their
	// full name in the destination.
	Prefix []byte

	// BatchSize is the number of entries read and written per batch.
	// Default 1000.
	BatchSize int

	// Resume skips entries the destination already holds with the same
	// value, so that a copy interrupted part-way can be run again cheaply:
	// each batch costs one GetMany on the destination instead of a write.
	Resume bool

	// Progress, if set, is called after every batch, from the goroutine
	// that called Copy.
	Progress func(CopyProgress)

	// TTLTolerance is how far apart the source and destination TTLs of a
	// key may be before [Verify] reports it, plus a thousandth of the TTL
	// (3.6s for an hour) and the time Verify's two reads of a batch took.
	// Default 1s. Copy writes the time left when it writes, but a network
	// store starts the TTL when the command reaches the server: a write
	// delayed on its way (a loaded machine, a slow link) outlives its
	// source by that delay.
	TTLTolerance time.Duration
}

func (o *CopyOptions) withDefaults() CopyOptions {
	var c CopyOptions
	if o != nil {
		c = *o
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.TTLTolerance <= 0 {
		c.TTLTolerance = time.Second
	}
	return c
}

// CopyProgress reports how far a copy has come.
type CopyProgress struct {
	Read    int64         // entries read from the source
	Written int64         // entries written to the destination
	Skipped int64         // entries the destination already held (Resume)
	Expired int64         // entries whose TTL ran out between reading and writing them
	Bytes   int64         // key and value bytes written
	Total   int64         // live keys in the source if it reports them, else -1
	Elapsed time.Duration // since Copy started
}

// ETA estimates the time left from the rate so far, or 0 if unknown.
func (p CopyProgress) ETA() time.Duration {
	if p.Total <= 0 || p.Read == 0 || p.Read >= p.Total {
		return 0
	}
	perEntry := p.Elapsed / time.Duration(p.Read)
	return perEntry * time.Duration(p.Total-p.Read)
}

// Copy streams every live entry of src (under opts.Prefix) into dst, in
// batches, keeping each entry's remaining TTL. Memory is bounded by one
// batch. It reads src through [SnapshotOf], so an embedded source is copied
// as of one point in time while a Redis source is scanned live (keys
// written during the copy may or may not be copied).
//
// Copy is not atomic: an error or a cancelled context leaves the batches
// written so far in dst. Run it again with Resume to finish the job, then
// [Verify].
func Copy(ctx context.Context, dst, src Store, opts *CopyOptions) (CopyProgress, error) {
	o := opts.withDefaults()
	start := time.Now()
	p := CopyProgress{Total: -1}
	if st, ok := StatsOf(src); ok && len(o.Prefix) == 0 {
		p.Total = st.Keys
	}
	sn, err := SnapshotOf(ctx, src)
	if err != nil {
		return p, fmt.Errorf("copy: snapshot of the source: %w", err)
	}
	defer sn.Close()

	batch := make([]Entry, 0, o.BatchSize)
	reads := make([]time.Time, 0, o.BatchSize) // when each entry's TTL was read
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// A TTL is what was left when the entry was read: write what is
		// left now, so that the copy expires when the original does, and
		// drop what has expired meanwhile.
		live := batch[:0]
		for i, e := range batch {
			if e.TTL != NoExpiry {
				if e.TTL = remaining(e.TTL, reads[i]); e.TTL <= 0 {
					p.Expired++
					continue
				}
			}
			live = append(live, e)
		}
		write := live
		if o.Resume {
			var err error
			if write, err = missing(ctx, dst, live); err != nil {
				return err
			}
			p.Skipped += int64(len(live) - len(write))
		}
		if err := PutMany(ctx, dst, write); err != nil {
			return fmt.Errorf("copy: writing to the destination: %w", err)
		}
		for _, e := range write {
			p.Bytes += int64(len(e.Key) + len(e.Value))
		}
		p.Written += int64(len(write))
		p.Elapsed = time.Since(start)
		if o.Progress != nil {
			o.Progress(p)
		}
		batch, reads = batch[:0], reads[:0]
		return nil
	}
	for e, err := range sn.Entries(ctx, o.Prefix) {
		if err != nil {
			return p, fmt.Errorf("copy: reading the source: %w", err)
		}
		p.Read++
		batch, reads = append(batch, e), append(reads, time.Now())
		if len(batch) == o.BatchSize {
			if err := flush(); err != nil {
				return p, err
			}
		}
	}
	if err := flush(); err != nil {
		return p, err
	}
	p.Elapsed = time.Since(start)
	return p, nil
}

// missing returns the entries of batch that dst does not hold with the
// same value.
func missing(ctx context.Context, dst Store, batch []Entry) ([]Entry, error) {
	keys := make([][]byte, len(batch))
	for i, e := range batch {
		keys[i] = e.Key
	}
	have, err := GetMany(ctx, dst, keys)
	if err != nil {
		return nil, fmt.Errorf("copy: reading the destination: %w", err)
	}
	out := batch[:0:0]
	for i, e := range batch {
		if have[i] == nil || !bytes.Equal(have[i], e.Value) {
			out = append(out, e)
		}
	}
	return out, nil
}

// VerifyResult counts what [Verify] compared.
type VerifyResult struct {
	Checked   int64    // source entries compared
	Expired   int64    // of those, absent from the destination because their TTL ran out meanwhile
	Missing   int64    // absent from the destination
	Different int64    // present with another value
	TTLDiff   int64    // same value, TTLs further apart than the tolerance
	Examples  [][]byte // up to 10 keys that differ, for the report
}

// OK reports whether the destination matched the source everywhere.
func (r VerifyResult) OK() bool { return r.Missing == 0 && r.Different == 0 && r.TTLDiff == 0 }

// String summarizes the counts for a report line.
func (r VerifyResult) String() string {
	s := fmt.Sprintf("%d checked, %d missing, %d different, %d with TTLs apart", r.Checked, r.Missing, r.Different, r.TTLDiff)
	if r.Expired > 0 {
		s += fmt.Sprintf(" (%d expired while being compared)", r.Expired)
	}
	return s
}

// Verify compares every live entry of src (under opts.Prefix) with dst:
// values byte for byte, and, when both stores are [Expirer]s, TTLs within
// opts.TTLTolerance, both read at the same moment (the source's again,
// batch by batch, with GetManyWithTTL). It returns an error matching
// ErrMismatch when anything differs. Keys present only in dst are not
// reported. An entry with a TTL that is gone from dst and has expired in
// src by the time dst is read counts as Expired, not Missing: a faithful
// copy of short-lived state (a dedup set) verifies.
func Verify(ctx context.Context, dst, src Store, opts *CopyOptions) (VerifyResult, error) {
	o := opts.withDefaults()
	var r VerifyResult
	sn, err := SnapshotOf(ctx, src)
	if err != nil {
		return r, fmt.Errorf("verify: snapshot of the source: %w", err)
	}
	defer sn.Close()
	_, srcTTL := src.(Expirer)
	_, dstTTL := dst.(Expirer)
	checkTTL := srcTTL && dstTTL
	batch := make([]Entry, 0, o.BatchSize)
	note := func(k []byte) {
		if len(r.Examples) < 10 {
			r.Examples = append(r.Examples, k)
		}
	}
	check := func() error {
		keys := make([][]byte, len(batch))
		for i, e := range batch {
			keys[i] = e.Key
		}
		// The destination first: an entry gone from it, then found gone
		// from the source too, has expired in both.
		var have, now []Entry
		began := time.Now()
		if dstTTL {
			if have, err = GetManyWithTTL(ctx, dst, keys); err != nil {
				return fmt.Errorf("verify: reading the destination: %w", err)
			}
		} else {
			vs, err := GetMany(ctx, dst, keys)
			if err != nil {
				return fmt.Errorf("verify: reading the destination: %w", err)
			}
			have = make([]Entry, len(vs))
			for i, v := range vs {
				have[i] = Entry{Key: keys[i], Value: v}
			}
		}
		if srcTTL {
			if now, err = GetManyWithTTL(ctx, src, keys); err != nil {
				return fmt.Errorf("verify: reading the source again: %w", err)
			}
		}
		// The two reads are not one instant: TTLs read a moment apart may
		// differ by that moment as well.
		tol := o.TTLTolerance + time.Since(began)
		for i, e := range batch {
			r.Checked++
			switch {
			case have[i].Value == nil && e.TTL != NoExpiry && srcTTL && now[i].Value == nil:
				r.Expired++ // gone from both since the snapshot's read
			case have[i].Value == nil:
				r.Missing++
				note(e.Key)
			case !bytes.Equal(have[i].Value, e.Value):
				r.Different++
				note(e.Key)
			case !checkTTL:
			case now[i].Value == nil:
				// Expired (or deleted) in the source since the snapshot
				// read it, and not yet in the destination: the TTLs
				// agree if the destination's is about to run out.
				if have[i].TTL == NoExpiry || have[i].TTL > tol {
					r.TTLDiff++
					note(e.Key)
				}
			case !ttlClose(now[i].TTL, have[i].TTL, tol):
				r.TTLDiff++
				note(e.Key)
			}
		}
		batch = batch[:0]
		return nil
	}
	for e, err := range sn.Entries(ctx, o.Prefix) {
		if err != nil {
			return r, fmt.Errorf("verify: reading the source: %w", err)
		}
		batch = append(batch, e)
		if len(batch) == o.BatchSize {
			if err := check(); err != nil {
				return r, err
			}
		}
	}
	if len(batch) > 0 {
		if err := check(); err != nil {
			return r, err
		}
	}
	if !r.OK() {
		return r, fmt.Errorf("%w: %s", ErrMismatch, r)
	}
	return r, nil
}

// remaining returns what is left at now of ttl, read at read.
func remaining(ttl time.Duration, read time.Time) time.Duration {
	if ttl == NoExpiry {
		return ttl
	}
	return ttl - time.Since(read)
}

// ttlClose reports whether two TTLs agree: both NoExpiry, or both finite
// and within tol.
func ttlClose(a, b, tol time.Duration) bool {
	if a == NoExpiry || b == NoExpiry {
		return a == b
	}
	tol += max(a, b) / 1000
	d := a - b
	return -tol <= d && d <= tol
}
