package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// WriterOptions configure a Writer. The zero value (or nil) gives the
// defaults.
type WriterOptions struct {
	// ID names the checkpoint in its manifest. Default: the creation time,
	// as 20060102T150405.000Z. A non-empty ID must pass ValidateID.
	ID string

	// Source names the kind of store written, for the manifest. Default:
	// "unknown" (WriteStore fills it from the store's Stats().Backend).
	Source string

	// Labels are free-form annotations stored in the manifest, such as the
	// source offset of a stream job. Their JSON must fit MaxManifestSize.
	Labels map[string]string

	// Cut records, in the manifest, the job's position that the
	// checkpointed state reflects (see Manifest.Cut). Default none.
	Cut *Cut

	// Parent makes the Writer write a delta over the checkpoint Parent
	// describes (format version 2): records are the entries written since
	// it (Append) and the keys deleted since it (Delete). The manifest
	// names the parent, its checksum, the chain's base and the depth.
	// Default nil: a full checkpoint (format version 1).
	Parent *Manifest

	// Compression of the record blocks. Default: zstd.
	Compression Compression

	// Level is the zstd level, 1 (fastest) to 22, mapped to the encoder's
	// speeds by zstd.EncoderLevelFromZstd. Default 1: the fastest, which
	// keeps a checkpoint from being bound by compression.
	Level int

	// BlockSize is the raw size of records the writer gathers before it
	// compresses them as one frame, at most MaxBlockSize. Larger blocks
	// compress better and cost more memory (the writer holds about four).
	// Default DefaultBlockSize (1 MiB).
	BlockSize int

	// MaxValueSize bounds the values the writer accepts, so that it never
	// writes a file the default reader refuses. At most MaxValueSizeLimit.
	// Default DefaultMaxValueSize.
	MaxValueSize int

	// Clock dates the manifest and turns remaining TTLs into absolute
	// expiry times. Default: the system clock.
	Clock strata.Clock
}

func (o *WriterOptions) resolve() (WriterOptions, error) {
	var r WriterOptions
	if o != nil {
		r = *o
	}
	if r.Clock == nil {
		r.Clock = strata.SystemClock{}
	}
	if r.ID != "" {
		if err := ValidateID(r.ID); err != nil {
			return r, err
		}
	}
	if r.Source == "" {
		r.Source = "unknown"
	}
	if p := r.Parent; p != nil {
		if err := ValidateID(p.ID); err != nil {
			return r, fmt.Errorf("%w: checkpoint: parent: %w", strata.ErrInvalidConfig, err)
		}
		if !validChecksum(p.Checksum) {
			return r, fmt.Errorf("%w: checkpoint: parent %s has no checksum", strata.ErrInvalidConfig, p.ID)
		}
		if p.Depth >= MaxDepth {
			return r, fmt.Errorf("%w: checkpoint: parent %s is at depth %d, the limit", strata.ErrInvalidConfig, p.ID, p.Depth)
		}
	}
	switch r.Compression {
	case CompressionDefault, CompressionZstd, CompressionNone:
	default:
		return r, fmt.Errorf("%w: checkpoint: compression %d (accepted: default, zstd, none)", strata.ErrInvalidConfig, r.Compression)
	}
	if r.Level == 0 {
		r.Level = 1
	}
	if r.Level < 1 || r.Level > 22 {
		return r, fmt.Errorf("%w: checkpoint: zstd level %d (accepted: 1 to 22)", strata.ErrInvalidConfig, r.Level)
	}
	if r.BlockSize == 0 {
		r.BlockSize = DefaultBlockSize
	}
	if r.BlockSize < 1 || r.BlockSize > MaxBlockSize {
		return r, fmt.Errorf("%w: checkpoint: block size %d (accepted: 1 to %d)", strata.ErrInvalidConfig, r.BlockSize, MaxBlockSize)
	}
	if r.MaxValueSize == 0 {
		r.MaxValueSize = DefaultMaxValueSize
	}
	if r.MaxValueSize < 0 || r.MaxValueSize > MaxValueSizeLimit {
		return r, fmt.Errorf("%w: checkpoint: max value size %d (accepted: 0 to %d)", strata.ErrInvalidConfig, r.MaxValueSize, MaxValueSizeLimit)
	}
	return r, nil
}

// Writer streams records into a checkpoint file. It holds at most a few
// blocks in memory whatever the number of records: while the caller fills
// one block, a goroutine compresses, hashes and writes the previous one.
//
// A Writer must end with Close (which writes the footer) or Abort; both
// stop its goroutine. Its methods are not safe for concurrent use.
type Writer struct {
	dst     io.Writer
	opts    WriterOptions
	enc     *zstd.Encoder
	h       hash.Hash
	created time.Time

	cur  []byte      // block being filled
	jobs chan []byte // full blocks for the worker
	free chan []byte // emptied blocks back from the worker
	done chan struct{}

	mu   sync.Mutex
	werr error // the worker's first error

	version   uint16
	entries   int64
	deletes   int64
	rawBytes  int64
	dataBytes int64 // written by the worker until done is closed
	ended     bool
	err       error // sticky error of the caller's side
}

// NewWriter writes the file header to dst and returns a Writer for the
// records. dst receives the file front to back; it need not seek.
func NewWriter(dst io.Writer, opts *WriterOptions) (*Writer, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	w := &Writer{
		dst:     dst,
		opts:    o,
		h:       sha256.New(),
		created: o.Clock.Now().UTC().Truncate(time.Millisecond),
		jobs:    make(chan []byte, 1),
		free:    make(chan []byte, 2),
		done:    make(chan struct{}),
	}
	if w.opts.ID == "" {
		w.opts.ID = w.created.Format("20060102T150405.000Z")
	}
	w.version = FormatVersion
	if o.Parent != nil {
		w.version = DeltaFormatVersion
		if o.Parent.ID == w.opts.ID {
			return nil, fmt.Errorf("%w: checkpoint: a delta cannot be its own parent (%s)", strata.ErrInvalidConfig, w.opts.ID)
		}
	}
	code := byte(codeZstd)
	if o.Compression == CompressionNone {
		code = codeNone
	} else {
		w.enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(o.Level)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(min(zstdMaxWindow, windowFor(o.BlockSize))))
		if err != nil {
			return nil, fmt.Errorf("checkpoint: zstd encoder: %w", err)
		}
	}
	var hdr [headerLen]byte
	copy(hdr[:], headerMagic)
	binary.BigEndian.PutUint16(hdr[8:], w.version)
	hdr[10] = code
	if err := w.write(hdr[:]); err != nil {
		return nil, err
	}
	w.cur = make([]byte, 0, o.BlockSize)
	w.free <- make([]byte, 0, o.BlockSize)
	go w.run()
	return w, nil
}

// windowFor returns the smallest power of two >= n, at least 1 KiB.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n {
		w <<= 1
	}
	return w
}

// write writes p to dst and hashes it.
func (w *Writer) write(p []byte) error {
	if _, err := w.dst.Write(p); err != nil {
		return fmt.Errorf("checkpoint: write: %w", err)
	}
	w.h.Write(p)
	w.dataBytes += int64(len(p))
	return nil
}

// run compresses, hashes and writes the blocks it receives until jobs is
// closed.
func (w *Writer) run() {
	defer close(w.done)
	var out []byte
	for raw := range w.jobs {
		if w.workerErr() == nil {
			out = append(out[:0], 0, 0, 0, 0, 0, 0, 0, 0) // block header, filled below
			if w.enc != nil {
				out = w.enc.EncodeAll(raw, out)
			} else {
				out = append(out, raw...)
			}
			binary.BigEndian.PutUint32(out[0:], uint32(len(raw)))
			binary.BigEndian.PutUint32(out[4:], uint32(len(out)-blockHdrLen))
			if err := w.write(out); err != nil {
				w.mu.Lock()
				w.werr = err
				w.mu.Unlock()
			}
		}
		w.free <- raw[:0]
	}
}

func (w *Writer) workerErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.werr
}

// Append adds a record: key (which must pass storekit.CheckKey), value (at
// most MaxValueSize bytes) and its absolute expiry in Unix milliseconds, 0
// for none. The Writer copies key and value before Append returns.
func (w *Writer) Append(key, value []byte, expiresAt int64) error {
	return w.append(key, value, expiresAt, false)
}

// Delete adds a delete record for key to a delta (WriterOptions.Parent):
// restoring the delta deletes key. A full checkpoint has no deletes: Delete
// fails with strata.ErrInvalidConfig there.
func (w *Writer) Delete(key []byte) error {
	if w.version != DeltaFormatVersion {
		return fmt.Errorf("%w: checkpoint: delete records exist only in deltas (WriterOptions.Parent)", strata.ErrInvalidConfig)
	}
	return w.append(key, nil, 0, true)
}

func (w *Writer) append(key, value []byte, expiresAt int64, del bool) error {
	if w.err != nil {
		return w.err
	}
	if w.ended {
		return fmt.Errorf("checkpoint: append: %w", strata.ErrClosed)
	}
	if err := storekit.CheckKey(key); err != nil {
		return storekit.NewOpError("checkpoint_append", "checkpoint", key, err)
	}
	if err := storekit.CheckValue(value, w.opts.MaxValueSize); err != nil {
		return storekit.NewOpError("checkpoint_append", "checkpoint", key, err)
	}
	if expiresAt < 0 || expiresAt > maxExpiryMillis {
		return storekit.NewOpError("checkpoint_append", "checkpoint", key,
			fmt.Errorf("%w: expiry %d ms is outside 0..%d", strata.ErrInvalidTTL, expiresAt, maxExpiryMillis))
	}
	size := maxRecordOverhead + len(key) + len(value)
	if len(w.cur) > 0 && len(w.cur)+size > w.opts.BlockSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	n := len(w.cur)
	switch {
	case w.version == FormatVersion:
	case del:
		w.cur = append(w.cur, recordDelete)
		w.deletes++
	default:
		w.cur = append(w.cur, recordPut)
	}
	w.cur = appendRecord(w.cur, key, value, expiresAt)
	w.entries++
	w.rawBytes += int64(len(w.cur) - n)
	return nil
}

// flush hands the current block to the worker and takes an empty one.
func (w *Writer) flush() error {
	if err := w.workerErr(); err != nil {
		w.err = err
		return err
	}
	w.jobs <- w.cur
	w.cur = <-w.free
	return nil
}

// stop flushes nothing, stops the worker and waits for it.
func (w *Writer) stop() {
	if !w.ended {
		w.ended = true
		close(w.jobs)
		<-w.done
	}
}

// Abort stops the Writer without writing the footer: what dst received is
// not a valid checkpoint. Abort after Close, or twice, does nothing.
func (w *Writer) Abort() { w.stop() }

// Close writes the remaining records, the end marker and the footer (the
// manifest and the trailer with the file's SHA-256), and returns the
// manifest. It does not close dst.
func (w *Writer) Close() (Manifest, error) {
	if w.ended {
		return Manifest{}, fmt.Errorf("checkpoint: close: %w", strata.ErrClosed)
	}
	if w.err == nil && len(w.cur) > 0 {
		_ = w.flush()
	}
	w.stop()
	if w.err != nil {
		return Manifest{}, w.err
	}
	if err := w.workerErr(); err != nil {
		return Manifest{}, err
	}
	if err := w.write(make([]byte, blockHdrLen)); err != nil {
		return Manifest{}, err
	}
	m := Manifest{
		FormatVersion:   int(w.version),
		ID:              w.opts.ID,
		Created:         w.created,
		Entries:         w.entries,
		RawBytes:        w.rawBytes,
		CompressedBytes: w.dataBytes,
		Source:          w.opts.Source,
		Compression:     w.opts.Compression.String(),
		Checksum:        "sha256:" + hex.EncodeToString(w.h.Sum(nil)),
		Labels:          w.opts.Labels,
		Cut:             w.opts.Cut,
	}
	if p := w.opts.Parent; p != nil {
		m.Kind, m.Parent, m.ParentChecksum, m.Depth, m.Deletes = KindDelta, p.ID, p.Checksum, p.Depth+1, w.deletes
		m.Base = p.Base
		if !p.IsDelta() {
			m.Base = p.ID
		}
	}
	js, err := json.Marshal(m)
	if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint: manifest: %w", err)
	}
	if len(js) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: checkpoint: manifest of %d bytes exceeds %d (labels too large)", strata.ErrInvalidConfig, len(js), MaxManifestSize)
	}
	footer := binary.BigEndian.AppendUint32(js, uint32(len(js)))
	w.h.Write(footer)
	footer = w.h.Sum(footer)
	footer = append(footer, trailerMagic...)
	if _, err := w.dst.Write(footer); err != nil {
		return Manifest{}, fmt.Errorf("checkpoint: write: %w", err)
	}
	return m, nil
}

// Write streams every live entry of snap into dst as one checkpoint and
// returns its manifest. A TTL read from the snapshot (the time left when
// the entry was yielded) is stored as an absolute expiry: now + TTL;
// entries with no time left are skipped. Memory stays bounded by a few
// blocks, whatever the size of the snapshot. Write does not close snap.
func Write(ctx context.Context, dst io.Writer, snap strata.Snapshot, opts *WriterOptions) (Manifest, error) {
	w, err := NewWriter(dst, opts)
	if err != nil {
		return Manifest{}, err
	}
	clock := w.opts.Clock
	for e, err := range snap.Entries(ctx, nil) {
		if err != nil {
			w.Abort()
			return Manifest{}, err
		}
		var exp int64
		switch {
		case e.TTL == strata.NoExpiry:
		case e.TTL > 0:
			exp = storekit.ExpiryMillis(clock.Now(), e.TTL)
		case e.TTL == 0:
			continue // no time left: expired as it was read
		default:
			w.Abort()
			return Manifest{}, storekit.NewOpError("checkpoint_write", "checkpoint", e.Key,
				fmt.Errorf("%w: snapshot yielded ttl %v", strata.ErrInvalidTTL, e.TTL))
		}
		if err := w.Append(e.Key, e.Value, exp); err != nil {
			w.Abort()
			return Manifest{}, err
		}
		if w.entries&1023 == 0 {
			if err := ctx.Err(); err != nil {
				w.Abort()
				return Manifest{}, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return Manifest{}, err
	}
	return w.Close()
}

// WriteStore takes a snapshot of s with strata.SnapshotOf (the store's own
// point-in-time Snapshot, or a live strata.ScanSnapshot for stores without
// one), writes it with Write and closes the snapshot. An empty
// opts.Source is filled with the store's Stats().Backend when it reports
// one.
func WriteStore(ctx context.Context, dst io.Writer, s strata.Store, opts *WriterOptions) (Manifest, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.Source == "" {
		if st, ok := strata.StatsOf(s); ok && st.Backend != "" {
			o.Source = st.Backend
		}
	}
	snap, err := strata.SnapshotOf(ctx, s)
	if err != nil {
		return Manifest{}, err
	}
	defer snap.Close()
	return Write(ctx, dst, snap, &o)
}
