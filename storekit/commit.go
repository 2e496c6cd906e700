package storekit

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/kit"
)

// fenceDigits is the width of the token in a fence value.
const fenceDigits = 20

// FenceValue returns what a commit stores under a fence key: the token as
// 20 decimal digits, zero-padded so that fence values order as their
// tokens do, followed by the batch's ID, if any. It reads well in redis-cli.
func FenceValue(token uint64, id []byte) []byte {
	b := make([]byte, 0, fenceDigits+len(id))
	s := strconv.FormatUint(token, 10)
	for range fenceDigits - len(s) {
		b = append(b, '0')
	}
	b = append(b, s...)
	return append(b, id...)
}

// ParseFence reads a value written by [FenceValue]. A value that is not one
// fails with an error matching strata.ErrCorrupt.
func ParseFence(v []byte) (token uint64, id []byte, err error) { return kit.ParseFence(v) }

var errFenceWritten = fmt.Errorf("%w: a fence key is also written by the batch", strata.ErrInvalidKey)

// CheckBatch validates b for a store with defaultTTL and maxValueSize (0: no
// limit), as a Committer does before any I/O: every write as [CheckEntry]
// checks it, every condition's key and kind, and that no fence key is also
// written. It returns each write's resolved TTL (0 for a delete), or the
// offending key and the reason, for the store to wrap in its *OpError.
func CheckBatch(b *strata.WriteBatch, defaultTTL time.Duration, maxValueSize int) (ttls []time.Duration, bad []byte, err error) {
	ttls = make([]time.Duration, len(b.Writes))
	for i, w := range b.Writes {
		if w.Delete {
			if err := CheckKey(w.Key); err != nil {
				return nil, w.Key, err
			}
			continue
		}
		ttl, err := CheckEntry(w.Key, w.Value, w.TTL, defaultTTL, maxValueSize)
		if err != nil {
			return nil, w.Key, err
		}
		ttls[i] = ttl
	}
	for _, c := range b.Conditions {
		if err := CheckKey(c.Key); err != nil {
			return nil, c.Key, err
		}
		switch c.Kind {
		case strata.CondEqual, strata.CondAbsent:
		case strata.CondFence:
			for _, w := range b.Writes {
				if bytes.Equal(w.Key, c.Key) {
					return nil, c.Key, errFenceWritten
				}
			}
		default:
			return nil, c.Key, fmt.Errorf("%w: unknown condition kind %v", strata.ErrInvalidKey, c.Kind)
		}
	}
	return ttls, nil, nil
}

// ErrAlreadyApplied is returned by [EvalConditions] when the batch's fence
// shows that a batch with its ID and token was applied already.
var ErrAlreadyApplied = errors.New("strata: batch already applied")

// EvalConditions checks b's conditions in order against the current state,
// read through get (which returns the live value of a key, or ok == false
// when it is absent or expired), for stores that evaluate conditions in
// process. It returns nil when every condition holds, the *strata.ConflictError of
// the first that fails, ErrAlreadyApplied when b.ID is set and a fence of b
// records this ID under b's token, get's error, or an error matching
// strata.ErrCorrupt for a fence key that holds something other than a fence.
func EvalConditions(b *strata.WriteBatch, get func(key []byte) (value []byte, ok bool, err error)) error {
	if len(b.ID) > 0 {
		for _, c := range b.Conditions {
			if c.Kind != strata.CondFence {
				continue
			}
			v, ok, err := get(c.Key)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			token, id, err := ParseFence(v)
			if err == nil && token == c.Token && bytes.Equal(id, b.ID) {
				return ErrAlreadyApplied
			}
		}
	}
	for i, c := range b.Conditions {
		v, ok, err := get(c.Key)
		if err != nil {
			return err
		}
		switch c.Kind {
		case strata.CondEqual:
			if !ok || !bytes.Equal(v, c.Value) {
				return NewConflictError(b, i, 0)
			}
		case strata.CondAbsent:
			if ok {
				return NewConflictError(b, i, 0)
			}
		case strata.CondFence:
			if !ok {
				continue
			}
			token, _, err := ParseFence(v)
			if err != nil {
				return fmt.Errorf("fence %s: %w", QuoteKey(c.Key), err)
			}
			if token > c.Token {
				return NewConflictError(b, i, token)
			}
		}
	}
	return nil
}

// NewConflictError returns the *strata.ConflictError for condition i of b, for
// stores that evaluate conditions themselves (in a server-side script, say);
// token is the fence token found, for a fence. It copies what it keeps.
func NewConflictError(b *strata.WriteBatch, i int, token uint64) error {
	if i < 0 || i >= len(b.Conditions) {
		return fmt.Errorf("%w: condition index %d out of range", strata.ErrCorrupt, i)
	}
	c := b.Conditions[i]
	c.Key = bytes.Clone(c.Key)
	c.Value = bytes.Clone(c.Value)
	return &strata.ConflictError{Index: i, Condition: c, Token: token}
}
