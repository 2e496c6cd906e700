package tier

import (
	"fmt"
	"time"

	"github.com/strata-kv/strata"
)

// Invalidation selects how a tier learns about writes made by other
// processes to its L2.
type Invalidation int

const (
	// InvalidationAuto uses Options.Invalidator when set, and otherwise
	// the Invalidator registered for the L2's backend (see
	// [RegisterInvalidator]); without one, it is InvalidationNone. A tier
	// over a shared backend whose invalidator is not registered (a Redis
	// store without tier/redistrack imported) fails New. It is the
	// default.
	InvalidationAuto Invalidation = iota

	// InvalidationNone listens to nobody: only this process's own writes
	// through the tier change its L1. Right for an embedded L2 (bbolt,
	// Pebble, memory), which one process owns; for a shared L2 another
	// process's write stays invisible here for up to MaxLocalTTL.
	InvalidationNone

	// InvalidationRequired is InvalidationAuto, except that New fails
	// when it finds no Invalidator.
	InvalidationRequired
)

// String names the mode as the tier.invalidation URL parameter and the
// [state.tier] invalidation key do: "auto", "none" or "required".
func (m Invalidation) String() string {
	switch m {
	case InvalidationAuto:
		return "auto"
	case InvalidationNone:
		return "none"
	case InvalidationRequired:
		return "required"
	}
	return fmt.Sprintf("Invalidation(%d)", int(m))
}

// Defaults of [Options].
const (
	DefaultMaxBytes      = 64 << 20
	DefaultEchoWindow    = time.Second
	DefaultVerifyTimeout = 100 * time.Millisecond
	DefaultEngine        = EngineOtter
)

// Options configure a tier. The zero value (or nil) gives the defaults.
type Options struct {
	// MaxBytes bounds the heap the L1 uses: its fixed structures
	// (Engine.FixedCost, charged at creation) and every cached entry, each
	// charged what it costs (Engine.EntryCost: its allocation, rounded up
	// to Go's size class, and the engine's bookkeeping), and on ristretto
	// its hash tables, charged as they grow (Engine.TableCost).
	// Engine.Budget gives the MaxBytes that holds a number of entries.
	// Default DefaultMaxBytes (64 MiB); the minimum, Engine.Budget(4, 16,
	// 16), is a few hundred KiB; on ristretto the maximum is 4 TiB.
	MaxBytes int64

	// MaxLocalTTL caps how long an entry may stay in L1, whatever its L2
	// TTL. Default 0: no cap beyond the L2 TTL. Set it when another process
	// writes to the L2 and the tier has no invalidation for it: it bounds
	// how long such a write stays invisible here.
	MaxLocalTTL time.Duration

	// NegativeTTL, when positive, caches "not found" answers for at most
	// that long (capped by MaxLocalTTL), so repeated reads of an absent key
	// stop at L1. Default 0: absent keys are not cached.
	NegativeTTL time.Duration

	// Invalidation selects how writes of other processes reach the L1.
	// Default InvalidationAuto.
	Invalidation Invalidation

	// Invalidator reports other clients' changes to the L2. Default nil:
	// under InvalidationAuto the one registered for the L2's backend, if
	// any. The tier starts it and closes it on Close; it is ignored under
	// InvalidationNone.
	Invalidator Invalidator

	// EchoWindow is how long after this tier's own write of a key a report
	// of a change to the key (or to a key sharing its echo slot) may be
	// the echo of that write: such a report is verified against the L2
	// instead of dropping the entry at once, so that the tier's own writes
	// stay cached over Redis. A report with no own write of the slot in
	// flight or within the window is another client's write for sure.
	// Default DefaultEchoWindow (1s); negative: every report drops its
	// entry at once. Measured on the system clock. Used only with an
	// Invalidator.
	EchoWindow time.Duration

	// VerifyTimeout bounds how long after a possible echo arrives the
	// entry may be served before it is verified: a key not verified by
	// then (the L2 read failed or was slow, or an own write of its slot
	// stayed in flight) is dropped as another client's write. It adds to
	// the invalidator's delivery bound in the staleness bound of another
	// client's write. Default DefaultVerifyTimeout (100ms).
	VerifyTimeout time.Duration

	// Clock tells the time for L1 expiry. It must be the clock the L2 uses
	// for its own expiry (tests pass one fake clock to both). Default: the
	// system clock.
	Clock strata.Clock

	// Engine is the cache that holds the L1 entries. Default
	// DefaultEngine.
	Engine Engine

	// KeepL2Open makes Close leave the L2 open. Default false: Close closes
	// the L2 too.
	KeepL2Open bool
}

// EntryOverhead was the fixed charge of an L1 entry on top of its key and
// value, which undercounted what an entry costs.
//
// Deprecated: entries are charged Engine.EntryCost; size a budget with
// Engine.Budget.
const EntryOverhead = 160

func (o *Options) withDefaults() (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	switch {
	case out.MaxBytes < 0:
		return out, fmt.Errorf("tier: MaxBytes %d is negative", out.MaxBytes)
	case out.MaxLocalTTL < 0:
		return out, fmt.Errorf("tier: MaxLocalTTL %v is negative", out.MaxLocalTTL)
	case out.NegativeTTL < 0:
		return out, fmt.Errorf("tier: NegativeTTL %v is negative", out.NegativeTTL)
	case out.Invalidation < InvalidationAuto || out.Invalidation > InvalidationRequired:
		return out, fmt.Errorf("tier: unknown %v", out.Invalidation)
	case out.VerifyTimeout < 0:
		return out, fmt.Errorf("tier: VerifyTimeout %v is negative", out.VerifyTimeout)
	}
	if out.EchoWindow == 0 {
		out.EchoWindow = DefaultEchoWindow
	}
	if out.VerifyTimeout == 0 {
		out.VerifyTimeout = DefaultVerifyTimeout
	}
	if out.MaxBytes == 0 {
		out.MaxBytes = DefaultMaxBytes
	}
	if err := out.Engine.check(); err != nil {
		return out, fmt.Errorf("tier: %w", err)
	}
	if out.Engine == "" {
		out.Engine = DefaultEngine
	}
	if min := out.Engine.minBudget(); out.MaxBytes < min {
		return out, fmt.Errorf("tier: MaxBytes %d is below the minimum %d of engine %s (its fixed structures and 4 small entries)", out.MaxBytes, min, out.Engine)
	}
	if out.Engine == EngineRistretto && out.MaxBytes > maxRistrettoBytes {
		return out, fmt.Errorf("tier: MaxBytes %d is above the maximum %d of engine %s", out.MaxBytes, int64(maxRistrettoBytes), out.Engine)
	}
	if out.Clock == nil {
		out.Clock = strata.SystemClock{}
	}
	return out, nil
}
