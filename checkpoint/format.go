package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Format versions. A full checkpoint is written in version 1, a delta in
// version 2, which is version 1 with a kind byte before each record (so
// that a delta can record deletes). This package reads both; a file of any
// other version fails with an error matching strata.ErrCorrupt that names
// it.
const (
	// FormatVersion is the version of full checkpoints.
	FormatVersion = 1
	// DeltaFormatVersion is the version of deltas.
	DeltaFormatVersion = 2
)

// Kinds of checkpoint, as Manifest.Kind names them.
const (
	// KindFull is a checkpoint of every entry. Manifests of version 1
	// written before deltas existed leave Kind empty, which means the
	// same.
	KindFull = "full"
	// KindDelta is a checkpoint of the changes since its parent: the
	// entries written and the keys deleted.
	KindDelta = "delta"
)

// MaxDepth bounds Manifest.Depth, the number of deltas in a chain: a
// reader refuses a deeper one as corrupt.
const MaxDepth = 10_000

// Ext is the file name extension of a published checkpoint: a checkpoint
// with id ID lives in <dir>/ID.ckpt.
const Ext = ".ckpt"

// Size limits of the format.
const (
	// DefaultMaxValueSize bounds a record's value when Limits (reading) or
	// WriterOptions (writing) leave MaxValueSize zero: 32 MiB.
	DefaultMaxValueSize = 32 << 20

	// DefaultBlockSize is the raw size that the writer fills a block to
	// before compressing it: 1 MiB.
	DefaultBlockSize = 1 << 20

	// MaxBlockSize bounds WriterOptions.BlockSize: 16 MiB. A block may exceed
	// it only to hold a single record larger than the block size.
	MaxBlockSize = 16 << 20

	// MaxValueSizeLimit bounds WriterOptions.MaxValueSize and
	// Limits.MaxValueSize: 2 GiB. A block stores its raw and compressed
	// lengths as uint32, which must hold a block of one such record,
	// compressed or not.
	MaxValueSizeLimit = 1 << 31

	// MaxManifestSize bounds the JSON manifest in the footer: 1 MiB.
	MaxManifestSize = 1 << 20

	// MaxIDLen bounds a checkpoint id.
	MaxIDLen = 128
)

const (
	headerMagic  = "strataCP"
	trailerMagic = "strataCE"
	headerLen    = 16
	blockHdrLen  = 8
	trailerLen   = 4 + 32 + 8 // manifest length, SHA-256, magic
	// maxRecordOverhead is the longest encoding of a record's kind byte
	// (deltas) and three varints.
	maxRecordOverhead = 1 + 3*binary.MaxVarintLen64
	// maxExpiryMillis keeps expiry*1e6 (nanoseconds) inside int64.
	maxExpiryMillis = math.MaxInt64 / int64(time.Millisecond)
	// zstdMaxWindow bounds the window a block's zstd frame may declare.
	zstdMaxWindow = 8 << 20
)

// Sentinel errors of the package. Corrupt or hostile files fail with errors
// matching strata.ErrCorrupt.
var (
	// ErrInvalidID: a checkpoint id is empty, too long, or has a character
	// outside [A-Za-z0-9._-], a leading dot or "..", so it could name a
	// path outside the checkpoint directory. It matches
	// strata.ErrInvalidConfig as well.
	ErrInvalidID = fmt.Errorf("%w: invalid checkpoint id", strata.ErrInvalidConfig)

	// ErrNoCheckpoint: the directory holds no checkpoint with the id asked
	// for, or (RestoreLatest) no valid checkpoint at all. It matches
	// strata.ErrNotFound as well.
	ErrNoCheckpoint = fmt.Errorf("%w: no checkpoint", strata.ErrNotFound)

	// ErrTooSoon: Coordinator.Checkpoint was called less than
	// Options.MinInterval after the previous successful checkpoint started.
	// Nothing was written.
	ErrTooSoon = errors.New("checkpoint: too soon after the previous checkpoint (min_interval)")

	// ErrStale: the checkpoint records a job's cut under a fence token, and
	// the target store's fence holds a newer one: a newer holder of the
	// job's lease has committed since, and restoring would roll its state
	// back. Nothing was written. Restore with RestoreOptions.Force to do it
	// anyway. It matches strata.ErrFenced as well.
	ErrStale = fmt.Errorf("checkpoint: the store holds newer state (%w)", strata.ErrFenced)
)

// ValidateID returns nil if id can name a checkpoint file, and otherwise an
// error matching ErrInvalidID (and strata.ErrInvalidConfig). A valid id is
// 1 to MaxIDLen bytes of A-Z, a-z, 0-9, '.', '_' and '-', does not start
// with '.' and does not contain "..": it can never name a path outside the
// checkpoint directory.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidID, len(id), MaxIDLen)
	case id[0] == '.':
		return fmt.Errorf("%w %q: starts with '.'", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w %q: byte %q at %d (allowed: A-Z a-z 0-9 . _ -)", ErrInvalidID, id, c, i)
		}
		if c == '.' && i+1 < len(id) && id[i+1] == '.' {
			return fmt.Errorf("%w %q: contains \"..\"", ErrInvalidID, id)
		}
	}
	return nil
}

// Compression selects how the writer stores record blocks.
type Compression uint8

const (
	// CompressionDefault is zstd.
	CompressionDefault Compression = iota
	// CompressionZstd compresses each block as one zstd frame.
	CompressionZstd
	// CompressionNone stores blocks as they are.
	CompressionNone
)

// String returns "zstd" or "none".
func (c Compression) String() string {
	switch c {
	case CompressionDefault, CompressionZstd:
		return "zstd"
	case CompressionNone:
		return "none"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// header byte values of the compression.
const (
	codeNone = 0
	codeZstd = 1
)

// Manifest describes a checkpoint. The writer stores it as JSON in the
// file's footer, covered by the file's SHA-256, so a checkpoint is
// verifiable on its own: there is no sidecar file.
type Manifest struct {
	// FormatVersion is the file format version (FormatVersion).
	FormatVersion int `json:"format_version"`
	// ID names the checkpoint.
	ID string `json:"id"`
	// Created is when the writer started, UTC, millisecond precision.
	Created time.Time `json:"created"`
	// Entries is the number of records.
	Entries int64 `json:"entries"`
	// RawBytes is the size of the encoded records before compression.
	RawBytes int64 `json:"raw_bytes"`
	// CompressedBytes is the size of the data section: header, framed
	// (compressed) blocks and end marker; the bytes Checksum covers.
	CompressedBytes int64 `json:"compressed_bytes"`
	// Source names the kind of store the entries came from, such as
	// "memory" or "redis".
	Source string `json:"source"`
	// Compression is "zstd" or "none".
	Compression string `json:"compression"`
	// Checksum is "sha256:" and the hex SHA-256 of the data section. The
	// trailer holds a second SHA-256 that covers the data section and this
	// manifest: together they cover every byte of the file.
	Checksum string `json:"checksum"`
	// Labels are the writer's free-form annotations (WriterOptions.Labels).
	Labels map[string]string `json:"labels,omitempty"`
	// Cut, when set, is the position of the job whose state the checkpoint
	// holds: taken between two of its commits, the checkpoint is the state
	// exactly at that offset (see Coordinator.CheckpointAt).
	Cut *Cut `json:"cut,omitempty"`

	// Kind is KindFull or KindDelta; empty (version 1 files written before
	// deltas existed) means KindFull.
	Kind string `json:"kind,omitempty"`
	// Parent is the id of the checkpoint a delta applies over (a full
	// checkpoint or another delta); empty for a full checkpoint.
	Parent string `json:"parent,omitempty"`
	// ParentChecksum is the parent's Checksum: a restore checks that the
	// parent it found is the one the delta was written over.
	ParentChecksum string `json:"parent_checksum,omitempty"`
	// Base is the id of the full checkpoint at the root of a delta's
	// chain; empty for a full checkpoint.
	Base string `json:"base,omitempty"`
	// Depth is a delta's place in its chain: 1 for a delta over a full
	// checkpoint, its parent's Depth plus 1 otherwise; 0 for a full one.
	Depth int `json:"depth,omitempty"`
	// Deletes counts the delete records of a delta (Entries counts every
	// record, deletes included).
	Deletes int64 `json:"deletes,omitempty"`
}

// IsDelta reports whether m describes a delta.
func (m *Manifest) IsDelta() bool { return m.Kind == KindDelta }

// checkChain checks the chain fields of a manifest read from a file of
// format version: a full checkpoint has none, a delta has all of them.
func (m *Manifest) checkChain(version int) error {
	switch m.Kind {
	case "", KindFull:
		if m.Parent != "" || m.ParentChecksum != "" || m.Base != "" || m.Depth != 0 || m.Deletes != 0 {
			return corrupt("manifest of a full checkpoint names a parent, base, depth or deletes")
		}
		if version != FormatVersion {
			return corrupt("full checkpoint in format version %d (want %d)", version, FormatVersion)
		}
	case KindDelta:
		if version != DeltaFormatVersion {
			return corrupt("delta in format version %d (want %d)", version, DeltaFormatVersion)
		}
		if err := ValidateID(m.Parent); err != nil {
			return corrupt("delta's parent: %v", err)
		}
		if err := ValidateID(m.Base); err != nil {
			return corrupt("delta's base: %v", err)
		}
		if !validChecksum(m.ParentChecksum) {
			return corrupt("delta's parent checksum %q is not sha256:<64 hex digits>", m.ParentChecksum)
		}
		if m.Depth < 1 || m.Depth > MaxDepth {
			return corrupt("delta depth %d (accepted: 1 to %d)", m.Depth, MaxDepth)
		}
		if (m.Depth == 1) != (m.Parent == m.Base) {
			return corrupt("delta of depth %d with parent %q and base %q", m.Depth, m.Parent, m.Base)
		}
		if m.Parent == m.ID || m.Base == m.ID {
			return corrupt("delta %q is its own parent or base", m.ID)
		}
		if m.Deletes < 0 || m.Deletes > m.Entries {
			return corrupt("delta counts %d deletes of %d records", m.Deletes, m.Entries)
		}
	default:
		return corrupt("unknown checkpoint kind %q", m.Kind)
	}
	return nil
}

// validChecksum reports whether s is "sha256:" and 64 lower-case hex digits.
func validChecksum(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Cut is where a job stood when a checkpoint was taken between two of its
// commits: the input offset its state reflects, and the fence its commits
// carry. Restoring a checkpoint with a fence over a store whose fence holds
// a newer token fails with ErrStale (see RestoreOptions.Force).
type Cut struct {
	// Offset is the job's input position, in the job's own notation (a
	// number, a Kafka partition:offset list, ...).
	Offset string `json:"offset"`
	// FenceKey is the key of the job's fence in the store, if it has one.
	FenceKey []byte `json:"fence_key,omitempty"`
	// Token is the fence token of the job's commits at the cut.
	Token uint64 `json:"token,omitempty"`
}

// Record is one entry of a checkpoint, or one delete of a delta.
type Record struct {
	Key   []byte
	Value []byte
	// ExpiresAt is the absolute expiry in Unix milliseconds; 0 means never.
	ExpiresAt int64
	// Delete marks a delta's record of a key deleted since the parent
	// (Value is empty and ExpiresAt 0). Full checkpoints have none.
	Delete bool
}

// TTL returns the time r has left at now: strata.NoExpiry when it never
// expires, and a duration <= 0 once it has expired.
func (r Record) TTL(now time.Time) time.Duration {
	return storekit.Remaining(now, r.ExpiresAt)
}

// Record kinds of a delta (format version 2): a byte before each record.
const (
	recordPut    = 0
	recordDelete = 1
)

// appendRecord appends the encoding of one record: the key length, the
// value length and the expiry as uvarints, then the key and the value.
func appendRecord(b, key, value []byte, expiresAt int64) []byte {
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = binary.AppendUvarint(b, uint64(len(value)))
	b = binary.AppendUvarint(b, uint64(expiresAt))
	b = append(b, key...)
	return append(b, value...)
}

// maxRawBlock is the largest raw block a reader with maxValue accepts.
func maxRawBlock(maxValue int) int {
	return MaxBlockSize + maxRecordOverhead + strata.MaxKeyLen + maxValue
}

// invalid returns an error matching strata.ErrInvalidConfig.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: checkpoint: %s", strata.ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// corrupt returns an error matching strata.ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: checkpoint: %s", strata.ErrCorrupt, fmt.Sprintf(format, args...))
}
