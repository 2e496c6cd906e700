package checkpoint

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-kv/strata"
)

// Limits bound what a Reader accepts and allocates. The zero value (or nil)
// gives the defaults.
type Limits struct {
	// MaxValueSize bounds a record's value; a larger one fails as corrupt.
	// The reader's largest allocation is about two blocks of
	// MaxBlockSize+MaxValueSize+strata.MaxKeyLen bytes. Default
	// DefaultMaxValueSize (32 MiB); a larger value than MaxValueSizeLimit
	// (which no file can exceed) counts as MaxValueSizeLimit.
	MaxValueSize int
}

func (l *Limits) maxValue() int {
	if l == nil || l.MaxValueSize <= 0 {
		return DefaultMaxValueSize
	}
	return min(l.MaxValueSize, MaxValueSizeLimit)
}

// decoders holds one zstd decoder per raw block limit, shared by every
// Reader with that limit: DecodeAll is safe for concurrent use. Each call is
// limited both by the decoder's maximum (the largest raw block the Limits
// allow) and by the capacity of its destination (the block's declared raw
// size, checked against that maximum first), and frames may not declare a
// window above zstdMaxWindow, so a frame that would decompress to gigabytes
// fails after at most one block's worth of output.
var decoders struct {
	sync.Mutex
	m map[int]*zstd.Decoder
}

func decoderFor(maxRaw int) (*zstd.Decoder, error) {
	decoders.Lock()
	defer decoders.Unlock()
	if d := decoders.m[maxRaw]; d != nil {
		return d, nil
	}
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(uint64(maxRaw)),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: zstd decoder: %w", err)
	}
	if decoders.m == nil {
		decoders.m = make(map[int]*zstd.Decoder)
	}
	decoders.m[maxRaw] = d
	return d, nil
}

// Reader reads a checkpoint front to back, from any io.Reader. It checks
// the structure of every block and record as it goes and the SHA-256 and
// manifest at the end: Next returns records before the whole file is
// verified. Callers that must not act on unverified data run Verify first
// (as RestoreFile and the Coordinator do) and read again.
type Reader struct {
	br      *bufio.Reader
	h       hash.Hash
	limits  Limits
	comp    Compression
	maxRaw  int
	version int

	block  []byte // current raw block; records alias it
	off    int
	stored []byte // reused buffer for compressed blocks

	entries, deletes, rawBytes, dataBytes int64
	manifest                              Manifest
	err                                   error // sticky; io.EOF once verified
}

// NewReader reads and checks the header of the checkpoint in r. Errors
// from a malformed header match strata.ErrCorrupt.
func NewReader(r io.Reader, limits *Limits) (*Reader, error) {
	rd := &Reader{
		br: bufio.NewReaderSize(r, 64<<10),
		h:  sha256.New(),
	}
	rd.limits.MaxValueSize = limits.maxValue()
	rd.maxRaw = maxRawBlock(rd.limits.MaxValueSize)
	var hdr [headerLen]byte
	if err := rd.readFull(hdr[:], "header"); err != nil {
		return nil, err
	}
	if string(hdr[:8]) != headerMagic {
		return nil, corrupt("not a checkpoint file (bad magic %q)", hdr[:8])
	}
	switch v := binary.BigEndian.Uint16(hdr[8:]); v {
	case FormatVersion, DeltaFormatVersion:
		rd.version = int(v)
	default:
		return nil, corrupt("format version %d is not supported (this build reads versions %d and %d)", v, FormatVersion, DeltaFormatVersion)
	}
	switch hdr[10] {
	case codeZstd:
		rd.comp = CompressionZstd
	case codeNone:
		rd.comp = CompressionNone
	default:
		return nil, corrupt("unknown compression code %d in header", hdr[10])
	}
	if !allZero(hdr[11:]) {
		return nil, corrupt("reserved header bytes are not zero")
	}
	return rd, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readFull reads len(p) bytes and hashes them; a short read is corruption
// (truncation), any other error is returned wrapped.
func (rd *Reader) readFull(p []byte, what string) error {
	if _, err := io.ReadFull(rd.br, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corrupt("truncated in the %s at byte %d", what, rd.dataBytes)
		}
		return fmt.Errorf("checkpoint: read: %w", err)
	}
	rd.h.Write(p)
	rd.dataBytes += int64(len(p))
	return nil
}

// readN reads n bytes into buf (reusing its capacity), growing it at most
// readStep bytes ahead of the data actually read, so that a truncated file
// that declares a large block costs no more memory than it holds.
func (rd *Reader) readN(buf []byte, n int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), readStep)
		buf = slices.Grow(buf, step)
		if err := rd.readFull(buf[len(buf):len(buf)+step], "block"); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+step]
	}
	return buf, nil
}

const readStep = 1 << 20

// Compression returns the compression recorded in the header.
func (rd *Reader) Compression() Compression { return rd.comp }

// Version returns the format version recorded in the header:
// FormatVersion for a full checkpoint, DeltaFormatVersion for a delta.
func (rd *Reader) Version() int { return rd.version }

// Next returns the next record. Its Key and Value alias the reader's block
// buffer; the reader never overwrites them, so they stay valid, but keeping
// one keeps its whole block (about BlockSize bytes) alive.
//
// After the last record Next reads the footer and verifies the SHA-256 and
// the manifest, then returns io.EOF. Any other error is sticky: a malformed
// or truncated file, a checksum mismatch or a record beyond the Limits
// match strata.ErrCorrupt; read errors are returned as they are, wrapped.
func (rd *Reader) Next() (Record, error) {
	for rd.err == nil && rd.off >= len(rd.block) {
		rd.err = rd.nextBlock()
	}
	if rd.err != nil {
		return Record{}, rd.err
	}
	rec, n, err := rd.decodeRecord(rd.block[rd.off:])
	if err != nil {
		rd.err = err
		return Record{}, err
	}
	rd.off += n
	rd.entries++
	return rec, nil
}

func (rd *Reader) decodeRecord(b []byte) (Record, int, error) {
	var lens [3]uint64
	n := 0
	del := false
	if rd.version == DeltaFormatVersion {
		switch b[0] {
		case recordPut:
		case recordDelete:
			del = true
		default:
			return Record{}, 0, corrupt("unknown record kind %d in block ending at byte %d", b[0], rd.dataBytes)
		}
		n++
	}
	for i := range lens {
		v, k := binary.Uvarint(b[n:])
		if k <= 0 {
			return Record{}, 0, corrupt("bad record header in block ending at byte %d", rd.dataBytes)
		}
		lens[i] = v
		n += k
	}
	klen, vlen, exp := lens[0], lens[1], lens[2]
	switch {
	case klen == 0 || klen > strata.MaxKeyLen:
		return Record{}, 0, corrupt("record key length %d (limit %d)", klen, strata.MaxKeyLen)
	case vlen > uint64(rd.limits.MaxValueSize):
		return Record{}, 0, corrupt("record value length %d exceeds Limits.MaxValueSize %d", vlen, rd.limits.MaxValueSize)
	case exp > uint64(maxExpiryMillis):
		return Record{}, 0, corrupt("record expiry %d ms out of range", exp)
	case klen+vlen > uint64(len(b)-n):
		return Record{}, 0, corrupt("record of %d bytes overruns its block", klen+vlen)
	case del && (vlen != 0 || exp != 0):
		return Record{}, 0, corrupt("delete record with a value or an expiry")
	}
	if del {
		rd.deletes++
	}
	key := b[n : n+int(klen) : n+int(klen)]
	n += int(klen)
	val := b[n : n+int(vlen) : n+int(vlen)]
	n += int(vlen)
	return Record{Key: key, Value: val, ExpiresAt: int64(exp), Delete: del}, n, nil
}

// nextBlock reads the next block, or the footer after the end marker.
func (rd *Reader) nextBlock() error {
	var bh [blockHdrLen]byte
	if err := rd.readFull(bh[:], "block header"); err != nil {
		return err
	}
	rawLen := binary.BigEndian.Uint32(bh[0:])
	storedLen := binary.BigEndian.Uint32(bh[4:])
	if rawLen == 0 {
		if storedLen != 0 {
			return corrupt("end marker with %d stored bytes", storedLen)
		}
		return rd.finish()
	}
	if int64(rawLen) > int64(rd.maxRaw) {
		return corrupt("block of %d raw bytes exceeds the limit of %d", rawLen, rd.maxRaw)
	}
	switch rd.comp {
	case CompressionNone:
		if storedLen != rawLen {
			return corrupt("uncompressed block stores %d bytes for %d raw", storedLen, rawLen)
		}
		block, err := rd.readN(nil, int(rawLen))
		if err != nil {
			return err
		}
		rd.block = block
	default:
		// A zstd frame is never much larger than its input; anything
		// beyond this bound is corrupt and would only cost memory.
		if int64(storedLen) > int64(rawLen)+int64(rawLen>>7)+4096 {
			return corrupt("block stores %d bytes for %d raw", storedLen, rawLen)
		}
		stored, err := rd.readN(rd.stored, int(storedLen))
		if err != nil {
			return err
		}
		rd.stored = stored
		dec, err := decoderFor(rd.maxRaw)
		if err != nil {
			return err
		}
		block, err := dec.DecodeAll(stored, make([]byte, 0, rawLen))
		if err != nil {
			return corrupt("block ending at byte %d does not decompress: %v", rd.dataBytes, err)
		}
		if len(block) != int(rawLen) {
			return corrupt("block decompresses to %d bytes, header says %d", len(block), rawLen)
		}
		rd.block = block
	}
	rd.off = 0
	rd.rawBytes += int64(rawLen)
	return nil
}

// finish reads the footer after the end marker and verifies the file.
func (rd *Reader) finish() error {
	rd.block, rd.off = nil, 0
	dataSum := rd.h.Sum(nil)
	rest, err := io.ReadAll(io.LimitReader(rd.br, MaxManifestSize+trailerLen+1))
	if err != nil {
		return fmt.Errorf("checkpoint: read: %w", err)
	}
	if len(rest) < trailerLen {
		return corrupt("truncated footer (%d bytes)", len(rest))
	}
	if len(rest) > MaxManifestSize+trailerLen {
		return corrupt("footer longer than %d bytes", MaxManifestSize+trailerLen)
	}
	m, err := parseFooter(rest)
	if err != nil {
		return err
	}
	rd.h.Write(rest[:len(rest)-trailerLen+4])
	if !bytes.Equal(rd.h.Sum(nil), rest[len(rest)-trailerLen+4:len(rest)-8]) {
		return corrupt("SHA-256 mismatch: the file was changed or damaged")
	}
	switch {
	case m.FormatVersion != rd.version:
		return corrupt("manifest format version %d, header %d", m.FormatVersion, rd.version)
	case m.Deletes != rd.deletes:
		return corrupt("manifest counts %d deletes, file holds %d", m.Deletes, rd.deletes)
	case m.Checksum != "sha256:"+hex.EncodeToString(dataSum):
		return corrupt("manifest checksum %q does not match the data", m.Checksum)
	case m.Entries != rd.entries:
		return corrupt("manifest counts %d entries, file holds %d", m.Entries, rd.entries)
	case m.RawBytes != rd.rawBytes:
		return corrupt("manifest counts %d raw bytes, file holds %d", m.RawBytes, rd.rawBytes)
	case m.CompressedBytes != rd.dataBytes:
		return corrupt("manifest counts %d data bytes, file holds %d", m.CompressedBytes, rd.dataBytes)
	case m.Compression != rd.comp.String():
		return corrupt("manifest compression %q, header %q", m.Compression, rd.comp)
	}
	rd.manifest = m
	return io.EOF
}

// parseFooter checks the trailer's structure and decodes the manifest that
// precedes it. footer is exactly the manifest and the trailer.
func parseFooter(footer []byte) (Manifest, error) {
	n := len(footer)
	if string(footer[n-8:]) != trailerMagic {
		return Manifest{}, corrupt("bad trailer magic (truncated or not a checkpoint)")
	}
	mlen := binary.BigEndian.Uint32(footer[n-trailerLen:])
	if int64(mlen) != int64(n-trailerLen) {
		return Manifest{}, corrupt("trailer says %d manifest bytes, footer holds %d", mlen, n-trailerLen)
	}
	var m Manifest
	if err := json.Unmarshal(footer[:mlen], &m); err != nil {
		return Manifest{}, corrupt("manifest: %v", err)
	}
	if err := ValidateID(m.ID); err != nil {
		return Manifest{}, corrupt("manifest id: %v", err)
	}
	if err := m.checkChain(m.FormatVersion); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Manifest returns the verified manifest once Next has returned io.EOF,
// and the zero Manifest before.
func (rd *Reader) Manifest() Manifest { return rd.manifest }

// Verify reads the whole checkpoint in r, checking every block and record
// against the limits, the entry and byte counts, and both SHA-256 sums, and
// returns its manifest. Any defect is an error matching strata.ErrCorrupt.
func Verify(ctx context.Context, r io.Reader, limits *Limits) (Manifest, error) {
	rd, err := NewReader(r, limits)
	if err != nil {
		return Manifest{}, err
	}
	for i := 0; ; i++ {
		if i&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return Manifest{}, err
			}
		}
		if _, err := rd.Next(); err != nil {
			if err == io.EOF {
				return rd.Manifest(), nil
			}
			return Manifest{}, err
		}
	}
}

// ReadManifest reads the manifest from the footer at the end of the
// checkpoint in r (size bytes long) without reading the data: it checks the
// trailer's structure but not the checksums, so it is cheap and does not
// prove the file is intact. Use Verify for that.
func ReadManifest(r io.ReaderAt, size int64) (Manifest, error) {
	if size < headerLen+blockHdrLen+trailerLen {
		return Manifest{}, corrupt("file of %d bytes is too short", size)
	}
	var tr [trailerLen]byte
	if _, err := r.ReadAt(tr[:], size-trailerLen); err != nil {
		return Manifest{}, fmt.Errorf("checkpoint: read: %w", err)
	}
	if string(tr[trailerLen-8:]) != trailerMagic {
		return Manifest{}, corrupt("bad trailer magic (truncated or not a checkpoint)")
	}
	mlen := int64(binary.BigEndian.Uint32(tr[:]))
	if mlen > MaxManifestSize || mlen > size-trailerLen-headerLen-blockHdrLen {
		return Manifest{}, corrupt("trailer says %d manifest bytes", mlen)
	}
	footer := make([]byte, mlen+trailerLen)
	if _, err := r.ReadAt(footer, size-int64(len(footer))); err != nil {
		return Manifest{}, fmt.Errorf("checkpoint: read: %w", err)
	}
	return parseFooter(footer)
}
