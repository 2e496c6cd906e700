package checkpoint

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Mode says what a restore does with the keys already in the target.
type Mode uint8

const (
	// Replace clears the target first: every key the target's Keys lists
	// (for a strata.WithPrefix view, the keys under its prefix) is deleted,
	// then the checkpoint is written. It is the default.
	Replace Mode = iota
	// Merge writes the checkpoint over the target: keys in the checkpoint
	// are overwritten, other keys are kept.
	Merge
)

// String returns "replace" or "merge".
func (m Mode) String() string {
	switch m {
	case Replace:
		return "replace"
	case Merge:
		return "merge"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// DefaultBatchSize is the number of entries per write of a restore when
// RestoreOptions.BatchSize is zero.
const DefaultBatchSize = 4096

// RestoreOptions configure a restore. The zero value (or nil) gives the
// defaults.
type RestoreOptions struct {
	// Mode is Replace (the default) or Merge.
	Mode Mode

	// BatchSize is how many entries one strata.PutMany (and, when
	// clearing, one strata.DeleteMany) carries. Large batches matter for
	// stores that sync each batch (bbolt, Pebble). Default
	// DefaultBatchSize (4096).
	BatchSize int

	// BatchBytes flushes a batch early once its keys and values reach this
	// many bytes, bounding memory. Default 4 MiB.
	BatchBytes int

	// Limits bound what the reader accepts (nil: the defaults).
	Limits *Limits

	// Clock tells the time that remaining TTLs are computed from. Default:
	// the system clock.
	Clock strata.Clock

	// Force restores a checkpoint whose cut is older than the target's
	// fence (see ErrStale), rolling back the state a newer lease holder
	// committed. Default false: such a restore fails and writes nothing.
	Force bool

	// Progress, if set, is called from the goroutine that restores: once
	// when the restore begins to change the target (after verification and
	// the fence check, before clearing), then after each batch it clears
	// or writes. Default: none.
	Progress func(Progress)
}

// Progress is how far a restore has come.
type Progress struct {
	// ID and Entries are the checkpoint's id and the entries of its chain
	// (every link's), known when the files were verified first
	// (RestoreFile, Coordinator.Restore and RestoreLatest); "" and 0 for
	// Apply on its own.
	ID      string
	Entries int64
	// Cleared, Restored, Deleted and Expired are the counts of the Report
	// so far.
	Cleared, Restored, Deleted, Expired int64
}

// progress returns the function that reports rep's counts to o.Progress,
// for the checkpoint id of entries in all (nil if no one listens).
func (o *RestoreOptions) progress(rep *Report, id string, entries int64) func() {
	if o.Progress == nil {
		return func() {}
	}
	return func() {
		o.Progress(Progress{ID: id, Entries: entries, Cleared: rep.Cleared, Restored: rep.Restored, Deleted: rep.Deleted, Expired: rep.Expired})
	}
}

func (o *RestoreOptions) resolve() (RestoreOptions, error) {
	var r RestoreOptions
	if o != nil {
		r = *o
	}
	if r.Mode != Replace && r.Mode != Merge {
		return r, fmt.Errorf("%w: checkpoint: restore mode %d (accepted: replace, merge)", strata.ErrInvalidConfig, r.Mode)
	}
	if r.BatchSize == 0 {
		r.BatchSize = DefaultBatchSize
	}
	if r.BatchBytes == 0 {
		r.BatchBytes = 4 << 20
	}
	if r.BatchSize < 0 || r.BatchBytes < 0 {
		return r, fmt.Errorf("%w: checkpoint: negative batch size", strata.ErrInvalidConfig)
	}
	if r.Clock == nil {
		r.Clock = strata.SystemClock{}
	}
	return r, nil
}

// Report describes a restore.
type Report struct {
	// ID is the checkpoint restored: for a chain, its newest delta.
	ID string
	// Manifest is its verified manifest.
	Manifest Manifest
	// Chain lists the ids of the checkpoints applied, the full checkpoint
	// first and then each delta; just ID for a full checkpoint.
	Chain []string
	// Restored counts the entries written to the target.
	Restored int64
	// Deleted counts the keys that deltas deleted (including the keys a
	// delta wrote with an expiry that had passed by the restore).
	Deleted int64
	// Expired counts the entries skipped because they had expired by the
	// time they were written.
	Expired int64
	// Cleared counts the keys Replace deleted from the target first.
	Cleared int64
	// Skipped lists the newer checkpoints RestoreLatest passed over, newest
	// first, each with the reason.
	Skipped []Skip
}

// Skip is a checkpoint that RestoreLatest passed over.
type Skip struct {
	ID  string
	Err error // why: matches strata.ErrCorrupt for a damaged file
}

// Apply writes the records of rd into dst, in batches, after clearing dst
// when opts.Mode is Replace. Each record keeps its remaining TTL, computed
// when its batch is written; records expired by then are skipped.
//
// A delta (rd.Version() == DeltaFormatVersion) applies over the state of
// its parent: its puts are written, its deletes deleted, and a put whose
// expiry has passed deletes its key. Clearing the target first would lose
// that state, so a delta needs Mode Merge (Replace fails with
// strata.ErrInvalidConfig); restore a chain with Coordinator.Restore or
// RestoreFile instead, which verify and apply every link.
//
// Apply does not verify the file before writing: the reader checks the
// checksum only at the end, so a damaged file fails part-way, with earlier
// batches applied. Use RestoreFile, or run Verify first, to apply only
// verified checkpoints. Neither mode is atomic: a failure part-way leaves
// the target partly restored (and, with Replace, partly cleared); restoring
// again is idempotent.
func Apply(ctx context.Context, rd *Reader, dst strata.Store, opts *RestoreOptions) (Report, error) {
	o, err := opts.resolve()
	if err != nil {
		return Report{}, err
	}
	delta := rd.Version() == DeltaFormatVersion
	if delta && o.Mode == Replace {
		return Report{}, invalid("a delta applies over its parent's state: Apply it with Mode Merge, or restore its chain")
	}
	var rep Report
	progress := o.progress(&rep, "", 0)
	progress()
	if o.Mode == Replace {
		if rep.Cleared, err = clearStore(ctx, dst, o.BatchSize, &rep, progress); err != nil {
			return rep, err
		}
	}
	if err := applyRecords(ctx, rd, dst, &o, delta, &rep, progress); err != nil {
		return rep, err
	}
	rep.Manifest = rd.Manifest()
	rep.ID = rep.Manifest.ID
	rep.Chain = []string{rep.ID}
	return rep, nil
}

// applyRecords writes the records of rd into dst, counting them in rep and
// calling progress after each batch. For a delta, deletes and expired puts
// delete their keys.
func applyRecords(ctx context.Context, rd *Reader, dst strata.Store, o *RestoreOptions, delta bool, rep *Report, progress func()) error {
	// A goroutine reads and decompresses the next batches while this one
	// writes: a restore into a store that syncs each batch overlaps the two.
	// At most three batches are alive: one filling, one queued, one being
	// written.
	full := make(chan []Record, 1)
	free := make(chan []Record, 2)
	stop := make(chan struct{})
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		defer close(full)
		recs, bytes := make([]Record, 0, o.BatchSize), 0
		send := func() bool {
			select {
			case full <- recs:
			case <-stop:
				return false
			}
			select {
			case recs = <-free:
			default:
				recs = make([]Record, 0, o.BatchSize)
			}
			bytes = 0
			return true
		}
		for {
			r, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				readErr = err
				return
			}
			recs = append(recs, r)
			bytes += len(r.Key) + len(r.Value)
			if (len(recs) >= o.BatchSize || bytes >= o.BatchBytes) && !send() {
				return
			}
		}
		if len(recs) > 0 {
			send()
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	ents := make([]strata.Entry, 0, o.BatchSize)
	var dels [][]byte
	for recs := range full {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := o.Clock.Now()
		ents, dels = ents[:0], dels[:0]
		for _, r := range recs {
			if r.Delete {
				dels = append(dels, r.Key)
				continue
			}
			ttl := storekit.Remaining(now, r.ExpiresAt)
			if ttl == 0 {
				rep.Expired++
				if delta {
					dels = append(dels, r.Key) // its parent's value is gone too
				}
				continue
			}
			ents = append(ents, strata.Entry{Key: r.Key, Value: r.Value, TTL: ttl})
		}
		if len(ents) > 0 {
			if err := strata.PutMany(ctx, dst, ents); err != nil {
				return err
			}
			rep.Restored += int64(len(ents))
		}
		if len(dels) > 0 {
			if _, err := strata.DeleteMany(ctx, dst, dels); err != nil {
				return err
			}
			rep.Deleted += int64(len(dels))
		}
		clear(recs) // drop the references to their blocks
		select {
		case free <- recs[:0]:
		default:
		}
		progress()
	}
	<-done
	return readErr
}

// clearStore deletes every key dst lists, batch by batch, while listing (the
// strata contract allows writes during Keys), keeping rep.Cleared current
// and calling progress after each batch.
func clearStore(ctx context.Context, dst strata.Store, batch int, rep *Report, progress func()) (int64, error) {
	var n int64
	keys := make([][]byte, 0, batch)
	del := func() error {
		if len(keys) == 0 {
			return nil
		}
		d, err := strata.DeleteMany(ctx, dst, keys)
		n += int64(d)
		rep.Cleared = n
		keys = keys[:0]
		progress()
		return err
	}
	for k, err := range dst.Keys(ctx, nil) {
		if err != nil {
			return n, err
		}
		keys = append(keys, k)
		if len(keys) >= batch {
			if err := del(); err != nil {
				return n, err
			}
		}
	}
	return n, del()
}

// RestoreFile restores the checkpoint file at path into dst in two passes:
// it first verifies the whole file (structure, limits, both SHA-256 sums)
// without touching dst, then reads it again and applies it with Apply. A
// checkpoint whose cut carries a fence is refused with ErrStale when dst's
// fence holds a newer token (unless opts.Force). A
// damaged file therefore never restores partly; the price is reading and
// decompressing the file twice. (Only a file changed between the passes
// can fail in the second one; that is reported as corrupt.)
//
// A delta restores with its chain: path must then be ID.ckpt in the
// directory that holds its parents, which are found, verified and applied
// as Coordinator.Restore does.
func RestoreFile(ctx context.Context, path string, dst strata.Store, opts *RestoreOptions) (Report, error) {
	o, err := opts.resolve()
	if err != nil {
		return Report{}, err
	}
	m, err := verifyFile(ctx, path, o.Limits)
	if err != nil {
		return Report{}, err
	}
	if m.IsDelta() {
		if filepath.Base(path) != m.ID+Ext {
			return Report{}, invalid("%s is delta %s: restore it from its directory, as %s%s", path, m.ID, m.ID, Ext)
		}
		loc, err := DirLocation(filepath.Dir(path))
		if err != nil {
			return Report{}, err
		}
		ls, err := loc.List(ctx)
		if err != nil {
			return Report{}, err
		}
		return restoreID(ctx, loc, ls, m.ID, dst, &o, nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	return applyVerified(ctx, []io.Reader{f}, []Manifest{m}, dst, &o)
}

// checkFence fails with ErrStale when m records a cut under a fence and dst
// holds a newer token under that key, unless force.
func checkFence(ctx context.Context, m Manifest, dst strata.Store, force bool) error {
	if force || m.Cut == nil || len(m.Cut.FenceKey) == 0 {
		return nil
	}
	token, err := strata.ReadFence(ctx, dst, m.Cut.FenceKey)
	if err != nil {
		return fmt.Errorf("checkpoint %s: reading the target's fence: %w", m.ID, err)
	}
	if token > m.Cut.Token {
		return fmt.Errorf("%w: checkpoint %s was taken at offset %s under token %d, the target's fence %s holds token %d "+
			"(restore with force to roll it back)", ErrStale, m.ID, m.Cut.Offset, m.Cut.Token, storekit.QuoteKey(m.Cut.FenceKey), token)
	}
	return nil
}

// applyVerified is the second pass of a restore: files are the links of a
// chain (base first, or one full checkpoint), opened for reading, and ms
// their manifests as the first pass verified them.
func applyVerified(ctx context.Context, files []io.Reader, ms []Manifest, dst strata.Store, o *RestoreOptions) (Report, error) {
	head := ms[len(ms)-1]
	if err := checkFence(ctx, head, dst, o.Force); err != nil {
		return Report{}, err
	}
	var rep Report
	var entries int64
	for _, m := range ms {
		entries += m.Entries
	}
	progress := o.progress(&rep, head.ID, entries)
	progress()
	if o.Mode == Replace {
		var err error
		if rep.Cleared, err = clearStore(ctx, dst, o.BatchSize, &rep, progress); err != nil {
			return rep, err
		}
	}
	for i, f := range files {
		rd, err := NewReader(f, o.Limits)
		if err != nil {
			return rep, err
		}
		if err := applyRecords(ctx, rd, dst, o, i > 0, &rep, progress); err != nil {
			return rep, err
		}
		if rd.Manifest().Checksum != ms[i].Checksum {
			return rep, corrupt("%s changed between verification and restore", ms[i].ID)
		}
		rep.Chain = append(rep.Chain, ms[i].ID)
	}
	rep.Manifest, rep.ID = head, head.ID
	return rep, nil
}
