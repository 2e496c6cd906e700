// Package window holds the tumbling-window aggregate of the demo and the
// examples: the WindowState of a stream job, with a JSON form and a compact binary
// form for strata.Binary.
package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// State is the aggregate of one tumbling window.
type State struct {
	WindowID  string  `json:"window_id"`
	StartTime int64   `json:"start_time"` // Unix milliseconds, inclusive
	EndTime   int64   `json:"end_time"`   // Unix milliseconds, exclusive
	Count     uint64  `json:"count"`
	Sum       float64 `json:"sum"`
}

// version tags the binary form so that it can evolve.
const version = 1

var errShort = errors.New("window: truncated state")

// AppendBinary appends s's binary form to b.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(s.WindowID)))
	b = append(b, s.WindowID...)
	b = binary.AppendVarint(b, s.StartTime)
	b = binary.AppendVarint(b, s.EndTime)
	b = binary.AppendUvarint(b, s.Count)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Sum)), nil
}

// UnmarshalBinary parses the form AppendBinary writes.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != version {
		return fmt.Errorf("window: unknown state version")
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return errShort
	}
	s.WindowID = string(b[k : k+int(n)])
	b = b[k+int(n):]
	for _, v := range []*int64{&s.StartTime, &s.EndTime} {
		if *v, k = binary.Varint(b); k <= 0 {
			return errShort
		}
		b = b[k:]
	}
	if s.Count, k = binary.Uvarint(b); k <= 0 {
		return errShort
	}
	b = b[k:]
	if len(b) != 8 {
		return errShort
	}
	s.Sum = math.Float64frombits(binary.LittleEndian.Uint64(b))
	return nil
}

// Tumbling assigns event times to fixed, non-overlapping windows of Size.
type Tumbling struct {
	Size time.Duration
}

// Bounds returns the window that contains t: its id and its start and end
// in Unix milliseconds.
func (w Tumbling) Bounds(t time.Time) (id string, start, end int64) {
	size := w.Size.Milliseconds()
	start = t.UnixMilli() - t.UnixMilli()%size
	return strconv.FormatInt(start, 10), start, start + size
}

// Add folds one event of value v at time t into s, which may be the zero
// State of a new window.
func (w Tumbling) Add(s State, t time.Time, v float64) State {
	if s.WindowID == "" {
		s.WindowID, s.StartTime, s.EndTime = w.Bounds(t)
	}
	s.Count++
	s.Sum += v
	return s
}
