// Package ttlval is the value format of the embedded stores (stores/bolt
// and stores/pebble): every stored value carries a fixed 9-byte header with
// its absolute expiry, so that a read decides liveness from the value alone,
// with no second lookup.
//
// The layout of a stored value is
//
//	byte 0     format version, 0x01
//	bytes 1-8  absolute expiry in Unix milliseconds, big-endian int64;
//	           0 means the key never expires
//	bytes 9-   the caller's value, as given (possibly empty)
//
// The expiry is absolute (not a remaining duration) so that a file copied,
// reopened or restored later expires its keys at the same wall-clock time.
// A stored value shorter than the header, with another version byte or with
// a negative expiry fails to decode with an error matching strata.ErrCorrupt.
package ttlval

import (
	"encoding/binary"
	"fmt"

	"github.com/strata-kv/strata"
)

const (
	// Version is the first byte of every header this package writes.
	Version byte = 1
	// HeaderSize is the number of bytes in front of every value.
	HeaderSize = 9
)

// The decode errors are allocated once: a corrupt value costs no allocation
// to report.
var (
	errShort   = fmt.Errorf("%w: stored value shorter than its %d-byte header", strata.ErrCorrupt, HeaderSize)
	errVersion = fmt.Errorf("%w: stored value has an unknown header version (want %d)", strata.ErrCorrupt, Version)
	errExpiry  = fmt.Errorf("%w: stored value has a negative expiry", strata.ErrCorrupt)
)

// Encode returns a new slice holding the header for exp (Unix ms, 0 for
// never) followed by value.
func Encode(exp int64, value []byte) []byte {
	return Append(make([]byte, 0, HeaderSize+len(value)), exp, value)
}

// Append appends the header for exp followed by value to dst and returns
// the extended slice. A negative exp (a clock set before 1970) is stored as
// 1, the earliest expiry, so that the value stays readable.
func Append(dst []byte, exp int64, value []byte) []byte {
	if exp < 0 {
		exp = 1
	}
	dst = append(dst, Version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(exp))
	return append(dst, value...)
}

// Size returns the stored size of a value of n bytes.
func Size(n int) int { return HeaderSize + n }

// Decode splits a stored value into its expiry (Unix ms, 0 for never) and
// the caller's value, which aliases raw. The value of a present entry is
// never nil, even when empty.
func Decode(raw []byte) (exp int64, value []byte, err error) {
	exp, err = Expiry(raw)
	if err != nil {
		return 0, nil, err
	}
	return exp, raw[HeaderSize:], nil
}

// Expiry returns the expiry of a stored value without touching the rest.
func Expiry(raw []byte) (int64, error) {
	if len(raw) < HeaderSize {
		return 0, errShort
	}
	if raw[0] != Version {
		return 0, errVersion
	}
	exp := int64(binary.BigEndian.Uint64(raw[1:HeaderSize]))
	if exp < 0 {
		return 0, errExpiry
	}
	return exp, nil
}
