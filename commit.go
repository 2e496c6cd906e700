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
	// The whole batch is validated before any I/O, as storekit.CheckBatch does:
	// keys, values and TTLs follow the rules of [Store.Put].
	//
	// Store authors find the shared validation and condition semantics in
	// package storekit (CheckBatch, EvalConditions).
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
	// stored token to Token (see storekit.FenceValue).
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
	k := quoteKey(c.Key)
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

// fenceDigits is the width of the token in a fence value (see
// storekit.FenceValue).
const fenceDigits = 20

// parseFence reads a fence value: the token as 20 decimal digits, then the
// batch ID. A value that is not one fails with an error matching
// ErrCorrupt.
func parseFence(v []byte) (token uint64, id []byte, err error) {
	if len(v) < fenceDigits {
		return 0, nil, fmt.Errorf("%w: fence value of %d bytes, want at least %d digits", ErrCorrupt, len(v), fenceDigits)
	}
	token, err = strconv.ParseUint(string(v[:fenceDigits]), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: fence value %q is not a token", ErrCorrupt, v[:fenceDigits])
	}
	return token, v[fenceDigits:], nil
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
	token, _, err := parseFence(v)
	if err != nil {
		return 0, newOpError("read_fence", "", key, err)
	}
	return token, nil
}
