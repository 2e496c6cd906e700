package locks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Retry calls try until it returns a lease, fails with an error that
// matches neither ErrHeld nor strata.ErrUnavailable, or ctx ends. Between
// attempts it waits with exponential backoff (o.MinBackoff doubling up to
// o.MaxBackoff; nil o means the defaults) and jitter: each wait is drawn
// at random from the upper half of the current step, so that contenders
// released at once do not retry in lockstep. It is Acquire for lockers
// that have a TryAcquire.
//
// When ctx ends, the error matches ctx.Err() and the last attempt's error
// (usually ErrHeld). Options that fail Validate are an error matching
// strata.ErrInvalidConfig, returned before any attempt.
func Retry(ctx context.Context, name string, o *Options, try func(context.Context) (Lease, error)) (Lease, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	step := opts.MinBackoff
	var timer *time.Timer
	for {
		l, err := try(ctx)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrHeld) && !errors.Is(err, strata.ErrUnavailable) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, giveUp(ctx, name, err)
		}
		wait := step/2 + rand.N(step/2+1)
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil, giveUp(ctx, name, err)
		case <-timer.C:
		}
		step = min(step*2, opts.MaxBackoff)
	}
}

// giveUp is Acquire's error when ctx ends before the lock could be taken.
func giveUp(ctx context.Context, name string, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	return fmt.Errorf("locks: acquire %s: %w (last attempt: %w)", storekit.QuoteKey([]byte(name)), ctx.Err(), last)
}
