package locks

import (
	"context"
	"sync"

	"github.com/strata-kv/strata"
)

// Fence returns the condition that fences a commit with l: the fence
// stored under l's name, as a key of the store being committed to, must
// hold no token newer than l.Token(), and the commit then records
// l.Token() there. Add it to every batch a lease holder commits:
//
//	b := new(strata.WriteBatch).If(locks.Fence(lease))
//	// ... b.Put(...) the state and the offset ...
//	err := strata.Commit(ctx, store, b) // ErrFenced once a newer holder committed
//
// Once the next holder of the lock has committed, every commit of an older
// lease fails with strata.ErrFenced and writes nothing, however late it
// arrives (a paused process, a slow network): the store itself rejects it.
// On Redis Cluster the fence must share the batch's hash slot: name the
// lock with the job's hash tag ("{job-42}"), give the store a prefix that
// carries it, or use [FenceAt].
func Fence(l Lease) strata.Condition { return FenceAt(l, []byte(l.Name())) }

// FenceAt is [Fence] with the fence kept under key.
func FenceAt(l Lease, key []byte) strata.Condition {
	return strata.Condition{Kind: strata.CondFence, Key: key, Token: l.Token()}
}

// Context returns a copy of parent that is cancelled as soon as l ends
// (lost or released), with l.Err() as its cause (context.Cause), so that
// the work done under a lease stops when the lease does. Call cancel when
// the work is done, to release the goroutine that watches the lease.
func Context(parent context.Context, l Lease) (ctx context.Context, cancel context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(parent)
	stop := make(chan struct{})
	go func() {
		select {
		case <-l.Done():
			err := l.Err()
			if err == nil {
				err = ErrLost
			}
			cancelCause(err)
		case <-ctx.Done():
		case <-stop:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(stop) })
		cancelCause(context.Canceled)
	}
}
