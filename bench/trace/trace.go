// Package trace reads block traces in the format of the ARC traces
// (testdata/traces) and replays them through caches, counting hits: the
// hit-ratio comparison of the strata tier's L1 with other Go caches at the
// same budget.
package trace

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Read returns the block ids of the trace file at path, in access order.
// The file holds one request a line, "start count ignored ignored",
// which stands for the blocks start, start+1, …, start+count-1; a name
// ending in .zst is decompressed on the fly.
func Read(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".zst") {
		d, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	}
	ids, err := Parse(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// Parse reads a trace in text form (see Read).
func Parse(r io.Reader) ([]uint64, error) {
	var ids []uint64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := bytes.Fields(sc.Bytes())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("line %d: want \"start count ...\", got %q", line, sc.Text())
		}
		start, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: start: %w", line, err)
		}
		count, err := strconv.ParseUint(string(fields[1]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: count: %w", line, err)
		}
		for i := range count {
			ids = append(ids, start+i)
		}
	}
	return ids, sc.Err()
}

// Unique returns the distinct ids of trace, sorted.
func Unique(trace []uint64) []uint64 {
	u := slices.Clone(trace)
	slices.Sort(u)
	return slices.Compact(u)
}

// Key returns the 8-byte key of block id into buf (big-endian).
func Key(buf *[8]byte, id uint64) []byte {
	binary.BigEndian.PutUint64(buf[:], id)
	return buf[:]
}

// Cache is a cache under test. Access reads id and reports whether the
// cache held it; on a miss the cache takes it in as it would after reading
// it from its source (a plain cache: Get, then Set on a miss).
type Cache interface {
	Access(ctx context.Context, id uint64) (hit bool, err error)
}

// Replay accesses every id of trace in order and returns the hit ratio,
// from 0 to 1. ratio, when not nil, gives the ratio instead of counting
// Access's answers (the tier counts its own).
func Replay(ctx context.Context, c Cache, trace []uint64, ratio func() float64) (float64, error) {
	hits := 0
	for _, id := range trace {
		hit, err := c.Access(ctx, id)
		if err != nil {
			return 0, err
		}
		if hit {
			hits++
		}
	}
	if ratio != nil {
		return ratio(), nil
	}
	if len(trace) == 0 {
		return 0, nil
	}
	return float64(hits) / float64(len(trace)), nil
}
