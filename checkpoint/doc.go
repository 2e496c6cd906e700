// Package checkpoint snapshots any strata.Store to a file and restores such
// a file into any store: the same checkpoint can bring a Pebble store's
// state into Redis, or a job's in-memory state back after a crash.
//
// A [Coordinator] keeps the checkpoints of a store in a [Location]: a
// directory, or a prefix of an object storage bucket (s3://, and gs:// or
// azblob:// with their gocloud.dev/blob drivers), named by a URL
// ([OpenLocation]). [Coordinator.Start] takes checkpoints periodically,
// [Coordinator.Checkpoint] on demand, [Coordinator.CheckpointAt] at a job's
// cut, [Coordinator.Shutdown] a final one; retention keeps the newest
// MaxCheckpoints; [Coordinator.RestoreLatest] restores the newest valid
// one. The Coordinator schedules and decides; the Location publishes,
// lists and deletes. The lower-level [Write], [NewWriter], [NewReader],
// [Verify], [Apply] and [RestoreFile] work on any io.Writer, io.Reader or
// path, for tools and migrations.
//
// # Incremental checkpoints
//
// Over a store wrapped in a [Tracker], which records the keys written
// through it, and with Options.MaxDeltas > 0, a checkpoint is a delta: the
// entries changed and the keys deleted since the previous checkpoint, its
// parent. A full checkpoint and the deltas over it form a chain, rebased to
// a new full checkpoint after MaxDeltas deltas or once the deltas outgrow
// their base. A restore resolves the chain, checks that each link continues
// its parent (id, checksum, depth, base), verifies every link whole, and
// only then applies the base and each delta in order; RestoreLatest falls
// back past a damaged or incomplete chain to the newest whole one.
// Retention never deletes a checkpoint that a kept one needs.
//
// # File format (version 1, and version 2 for deltas)
//
// All integers are big-endian unless marked uvarint. Full checkpoints are
// version 1; deltas are version 2, which is version 1 with a kind byte (0
// put, 1 delete) before each record, and a manifest that names the parent,
// its checksum, the chain's base and the delta's depth.
//
//	header   "strataCP" | version uint16 (1, or 2 for a delta) | compression uint8 (0 none, 1 zstd) | 5 zero bytes
//	block*   raw length uint32 (> 0) | stored length uint32 | stored bytes
//	end      8 zero bytes (a block header with both lengths 0)
//	footer   manifest JSON | manifest length uint32 | SHA-256 [32] | "strataCE"
//
// A block's stored bytes are one zstd frame (or, uncompressed, the raw
// bytes) that decode to exactly the raw length. The raw bytes are whole
// records, each: key length, value length and absolute expiry (Unix
// milliseconds, 0 for none) as uvarints, then the key and the value.
// Records never span blocks; the writer fills blocks to BlockSize (1 MiB)
// and a larger record gets a block of its own.
//
// The header, blocks and end marker form the data section. The manifest's
// Checksum is the SHA-256 of the data section; the trailer's SHA-256 covers
// the data section, the manifest and its length. So every byte of the file
// is covered, the manifest travels inside the file (there is no sidecar),
// and a checkpoint is verifiable on its own. The manifest also repeats the
// entry count, raw size and data size, which the reader checks.
//
// # Memory
//
// Writing streams: the writer holds the block it fills and one being
// compressed (a goroutine compresses, hashes and writes it meanwhile), so
// memory is a few blocks whatever the number of entries. Reading holds one
// block at a time (plus, when restoring, up to three batches). The reader
// checks every length against [Limits] before allocating: keys are at most
// strata.MaxKeyLen, values at most Limits.MaxValueSize, a block's raw size
// at most [MaxBlockSize] plus one record, the manifest at most
// [MaxManifestSize]. zstd frames may declare a window of at most 8 MiB and
// are decoded into a buffer of exactly the declared raw size, so a frame
// that would decompress to gigabytes fails after one block's worth.
//
// # TTLs
//
// A snapshot reports the time each entry has left when it is read; the
// writer stores now+TTL as an absolute expiry. A restore computes, for each
// batch, the time left at that moment, writes entries with that TTL and
// skips those that have expired meanwhile. The clocks of the machines that
// write and restore a checkpoint must therefore agree.
//
// # Consistency of the source
//
// The writer reads the store through strata.SnapshotOf. Memory, bbolt and
// Pebble give point-in-time snapshots: a checkpoint is exactly the state at
// one instant, whatever writers do meanwhile. Redis has no point-in-time
// read: its snapshot walks SCAN and reads each key with its TTL. A Redis
// checkpoint holds every key that was live for the whole checkpoint, each
// with a value (and TTL) it held at some moment during it; keys written or
// deleted during the checkpoint may or may not appear, and a key SCAN
// yields twice is recorded twice (a restore writes it twice; the entry
// count includes both). Keys written at different moments may thus come
// from different moments: for a consistent cut across keys (a job's
// offset and its aggregates), take the checkpoint while the job does not
// write. An Aligned Coordinator does this with the job: between two
// commits the job asks [Coordinator.Due] and, when a checkpoint is due,
// calls [Coordinator.CheckpointAt] with its [Cut] (offset, fence key and
// token), writing nothing until it returns. The manifest records the cut.
//
// # Fences
//
// A checkpoint whose cut carries a fence is not restored over a store
// whose fence holds a newer token: a newer holder of the job's lease has
// committed since, and the restore would roll its state back. RestoreFile,
// Restore and RestoreLatest then fail with [ErrStale] before writing
// anything (RestoreOptions.Force overrides).
//
// # Publishing and crashes
//
// In a directory, each checkpoint is written to a temporary file, synced,
// read back to check both sums, hard-linked to ID.ckpt (which fails if the
// name exists) and the directory synced. In a bucket, the checkpoint file
// is uploaded as a data object first, and a small manifest object naming it
// is published last with a conditional write (If-None-Match: *) that fails
// if the id exists. Either way a crash at any point leaves the previous set
// of checkpoints or the new one, and what a crashed writer left (a
// temporary file, a data object no manifest names) is garbage that the
// next checkpoint collects. The test suite kills a checkpointing process
// at random points, on a directory and on S3, to check this.
//
// Several writers may share a location: ids are never reused, and ids of a
// cut under a fence token sort by that token first, so a checkpoint
// published by a leader that lost its lease never becomes the one
// RestoreLatest picks over its successor's; such a leader's CheckpointAt
// fails with [ErrStale].
//
// # Restoring
//
// [RestoreFile] and the Coordinator read the file twice: the first pass
// verifies everything (structure, limits, counts, both SHA-256 sums)
// without touching the target; only then does the second pass write. A
// damaged checkpoint therefore never restores partly; the cost is reading
// and decompressing the file twice (the second pass overlaps reading with
// the store's writes). Mode [Replace] first deletes every key the target
// lists (for a strata.WithPrefix view, only its namespace); [Merge]
// overwrites and keeps other keys. Writes go in batches through
// strata.PutMany. Neither mode is atomic: a store failure part-way leaves
// the target partly restored, and restoring again is idempotent.
//
// # Errors
//
//   - strata.ErrCorrupt: a file that is truncated, damaged, of another
//     format version, or beyond the Limits; the message says what and
//     where.
//   - [ErrInvalidID] (which also matches strata.ErrInvalidConfig): an id
//     that could name a path outside the directory.
//   - [ErrExist] (which also matches strata.ErrConflict): another writer
//     published a checkpoint with that id first.
//   - [ErrNoCheckpoint] (which also matches strata.ErrNotFound): no such
//     checkpoint, or no valid one for RestoreLatest (joined with each
//     reason it skipped one).
//   - [ErrTooSoon]: Checkpoint called within MinInterval.
//   - [ErrStale] (which also matches strata.ErrFenced): the target's fence
//     is newer than the checkpoint's cut, or the location holds
//     checkpoints under a newer token than CheckpointAt's.
//   - strata.ErrCorrupt also for a chain whose link is missing, damaged or
//     not the one its child was written over, and for a bucket manifest
//     whose data object is missing or different.
//   - strata.ErrInvalidConfig: bad options or location URLs.
//   - strata.ErrClosed: the Coordinator was shut down.
//   - The store's own errors (wrapped once by the store), context errors,
//     and file system and object storage errors, wrapped once.
package checkpoint
