package strata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Committer is implemented by stores that apply a [WriteBatch] atomically:
// the unit of work of a stream processor, the state a batch of input
// changed together with the input offset that produced it, under the
// writer's lease. There is no fallback: [Commit] returns ErrUnsupported for
// stores without it.
type Committer interface {
	// Commit checks every condition of b against the current state and, if
	// all hold, applies every write of b and raises every fence of b, as one
	// atomic step: a reader of the same backend sees all of the batch or
	// none of it, and a crash leaves all or none. If a condition fails,
	// nothing is written and the error is a *[ConflictError] (matching
	// ErrConflict, and ErrFenced for a fence) naming the first condition, in
	// the order of b.Conditions, that failed.
	//
	// The whole batch is validated before any I/O, as [CheckBatch] does:
	// keys, values and TTLs follow the rules of [Store.Put].
	//
	// When b.ID is set and b has a fence condition, a batch that was already
	// applied with the same ID and token (a retry after ErrIndeterminate) is
	// recognised by its fence and not applied twice: Commit returns nil.
	//
	// Commit does not retain b or any slice in it.
	Commit(ctx context.Context, b *WriteBatch) error
}

// ConditionKind is what a [Condition] requires of its key.
type ConditionKind uint8

// The kinds of condition.
const (
	// CondEqual requires the key to be live and hold exactly Value.
	CondEqual ConditionKind = iota + 1
	// CondAbsent requires the key to be absent or expired.
	CondAbsent
	// CondFence requires the fence token stored under the key to be at most
	// Token (an absent key holds token 0). A commit that passes raises the
	// stored token to Token (see [FenceValue]).
	CondFence
)

// String names the kind: "equal", "absent" or "fence".
func (k ConditionKind) String() string {
	switch k {
	case CondEqual:
		return "equal"
	case CondAbsent:
		return "absent"
	case CondFence:
		return "fence"
	}
	return "ConditionKind(" + strconv.Itoa(int(k)) + ")"
}

// Condition is a precondition of a [WriteBatch].
type Condition struct {
	Kind  ConditionKind
	Key   []byte
	Value []byte // CondEqual: the value Key must hold
	Token uint64 // CondFence: the committer's token
}

// Write is one put or delete of a [WriteBatch].
type Write struct {
	Key    []byte
	Value  []byte        // the value to store; ignored by a delete
	TTL    time.Duration // as for [Store.Put]; ignored by a delete
	Delete bool          // remove Key instead of storing Value
}

// WriteBatch is a set of writes applied all at once, or not at all, by
// [Commit], with conditions that must hold for it to apply. The zero value
// is an empty batch. Build one with Put, Delete and the If methods (they
// return b, so calls chain), or fill the fields directly.
//
// Writes apply in order: a later write of a key replaces an earlier one.
// Conditions are checked against the state before the batch. A key may not
// be both a fence and written by the batch.
//
// The batch holds the caller's slices: do not modify them until Commit
// returns. A WriteBatch is not safe for concurrent use.
type WriteBatch struct {
	// ID, when set together with a fence condition, makes the commit
	// idempotent: the fence records it, and a retry of a batch already
	// applied under the same token and ID is not applied again. Use a value
	// unique to the batch, such as the input offset it ends at.
	ID []byte

	Writes     []Write
	Conditions []Condition
}

// Put adds a write of value under key with ttl (see [Store.Put]).
func (b *WriteBatch) Put(key, value []byte, ttl time.Duration) *WriteBatch {
	b.Writes = append(b.Writes, Write{Key: key, Value: value, TTL: ttl})
	return b
}

// Delete adds the removal of key.
func (b *WriteBatch) Delete(key []byte) *WriteBatch {
	b.Writes = append(b.Writes, Write{Key: key, Delete: true})
	return b
}

// IfEqual adds the condition that key holds value.
func (b *WriteBatch) IfEqual(key, value []byte) *WriteBatch {
	b.Conditions = append(b.Conditions, Condition{Kind: CondEqual, Key: key, Value: value})
	return b
}

// IfAbsent adds the condition that key is absent or expired.
func (b *WriteBatch) IfAbsent(key []byte) *WriteBatch {
	b.Conditions = append(b.Conditions, Condition{Kind: CondAbsent, Key: key})
	return b
}

// IfFence adds the condition that the token stored under key is at most
// token; the commit then stores token there. A writer that holds a lease
// passes the lease's fencing token: once a newer holder has committed, the
// older holder's commits fail with ErrFenced, whatever its clock or pauses.
func (b *WriteBatch) IfFence(key []byte, token uint64) *WriteBatch {
	b.Conditions = append(b.Conditions, Condition{Kind: CondFence, Key: key, Token: token})
	return b
}

// If adds condition c, such as the fence of a lease (see package locks).
func (b *WriteBatch) If(c Condition) *WriteBatch {
	b.Conditions = append(b.Conditions, c)
	return b
}

// Reset empties b, keeping its storage for reuse.
func (b *WriteBatch) Reset() {
	clear(b.Writes)
	clear(b.Conditions)
	b.ID, b.Writes, b.Conditions = nil, b.Writes[:0], b.Conditions[:0]
}

// Empty reports whether b has no writes and no conditions.
func (b *WriteBatch) Empty() bool { return len(b.Writes) == 0 && len(b.Conditions) == 0 }

// Keys calls yield for every key b touches, conditions first, then writes,
// in order, with repeats; it stops when yield returns false.
func (b *WriteBatch) Keys(yield func(key []byte) bool) {
	for _, c := range b.Conditions {
		if !yield(c.Key) {
			return
		}
	}
	for _, w := range b.Writes {
		if !yield(w.Key) {
			return
		}
	}
}

// Commit applies b to s through the store's [Committer], or fails with
// ErrUnsupported when s has none: no other combination of operations makes
// a batch atomic. An empty batch succeeds without I/O on any Committer.
func Commit(ctx context.Context, s Store, b *WriteBatch) error {
	c, ok := s.(Committer)
	if !ok {
		return unsupported("commit", nil)
	}
	return c.Commit(ctx, b)
}

// ConflictError reports the condition that stopped a commit. It matches
// ErrConflict, and also ErrFenced when the condition is a fence.
type ConflictError struct {
	// Index is the condition's position in WriteBatch.Conditions.
	Index int
	// Condition is a copy of the condition that failed.
	Condition Condition
	// Token is the fence token found under the key, for a fence.
	Token uint64
}

// Error says which condition failed, quoting at most 64 bytes of its key.
func (e *ConflictError) Error() string {
	c := e.Condition
	k := QuoteKey(c.Key)
	switch c.Kind {
	case CondFence:
		return fmt.Sprintf("%v: fence %s holds token %d, newer than %d (condition %d)", ErrFenced, k, e.Token, c.Token, e.Index)
	case CondAbsent:
		return fmt.Sprintf("%v: %s is present (condition %d)", ErrConflict, k, e.Index)
	}
	return fmt.Sprintf("%v: %s does not hold the expected value (condition %d)", ErrConflict, k, e.Index)
}

// Is matches ErrConflict, and ErrFenced for a fence condition.
func (e *ConflictError) Is(target error) bool {
	return target == ErrConflict || (target == ErrFenced && e.Condition.Kind == CondFence)
}

// conflict returns the error for condition i of b.
func conflict(b *WriteBatch, i int, token uint64) *ConflictError {
	c := b.Conditions[i]
	c.Key = bytes.Clone(c.Key)
	c.Value = bytes.Clone(c.Value)
	return &ConflictError{Index: i, Condition: c, Token: token}
}

// NewConflictError returns the *ConflictError for condition i of b, for
// stores that evaluate conditions themselves (in a server-side script, say);
// token is the fence token found, for a fence. It copies what it keeps.
func NewConflictError(b *WriteBatch, i int, token uint64) error {
	if i < 0 || i >= len(b.Conditions) {
		return fmt.Errorf("%w: condition index %d out of range", ErrCorrupt, i)
	}
	return conflict(b, i, token)
}

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
// fails with an error matching ErrCorrupt.
func ParseFence(v []byte) (token uint64, id []byte, err error) {
	if len(v) < fenceDigits {
		return 0, nil, fmt.Errorf("%w: fence value of %d bytes, want at least %d digits", ErrCorrupt, len(v), fenceDigits)
	}
	token, err = strconv.ParseUint(string(v[:fenceDigits]), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: fence value %q is not a token", ErrCorrupt, v[:fenceDigits])
	}
	return token, v[fenceDigits:], nil
}

var errFenceWritten = fmt.Errorf("%w: a fence key is also written by the batch", ErrInvalidKey)

// CheckBatch validates b for a store with defaultTTL and maxValueSize (0: no
// limit), as a Committer does before any I/O: every write as [CheckEntry]
// checks it, every condition's key and kind, and that no fence key is also
// written. It returns each write's resolved TTL (0 for a delete), or the
// offending key and the reason, for the store to wrap in its *OpError.
func CheckBatch(b *WriteBatch, defaultTTL time.Duration, maxValueSize int) (ttls []time.Duration, bad []byte, err error) {
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
		case CondEqual, CondAbsent:
		case CondFence:
			for _, w := range b.Writes {
				if bytes.Equal(w.Key, c.Key) {
					return nil, c.Key, errFenceWritten
				}
			}
		default:
			return nil, c.Key, fmt.Errorf("%w: unknown condition kind %v", ErrInvalidKey, c.Kind)
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
// process. It returns nil when every condition holds, the *ConflictError of
// the first that fails, ErrAlreadyApplied when b.ID is set and a fence of b
// records this ID under b's token, get's error, or an error matching
// ErrCorrupt for a fence key that holds something other than a fence.
func EvalConditions(b *WriteBatch, get func(key []byte) (value []byte, ok bool, err error)) error {
	if len(b.ID) > 0 {
		for _, c := range b.Conditions {
			if c.Kind != CondFence {
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
		case CondEqual:
			if !ok || !bytes.Equal(v, c.Value) {
				return conflict(b, i, 0)
			}
		case CondAbsent:
			if ok {
				return conflict(b, i, 0)
			}
		case CondFence:
			if !ok {
				continue
			}
			token, _, err := ParseFence(v)
			if err != nil {
				return fmt.Errorf("fence %s: %w", QuoteKey(c.Key), err)
			}
			if token > c.Token {
				return conflict(b, i, token)
			}
		}
	}
	return nil
}

// ReadFence returns the token stored under a fence key of s (0 when the key
// is absent).
func ReadFence(ctx context.Context, s Store, key []byte) (uint64, error) {
	v, err := s.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	token, _, err := ParseFence(v)
	if err != nil {
		return 0, NewOpError("read_fence", "", key, err)
	}
	return token, nil
}
