package embedded

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/strata-kv/strata"
)

// lifecycle is the open or closed state of a Store: a lock that every
// method holds for reading while it uses the engine and Close holds for
// writing (so that the engine is never used after it is closed), the open
// snapshots Close releases, and the background work Close stops. The zero
// value is an open store with nothing running.
type lifecycle struct {
	mu     sync.RWMutex
	closed bool

	snapMu sync.Mutex
	snaps  map[io.Closer]struct{} // open snapshots, released by close

	cancel context.CancelFunc // stops the background work; nil if none
	wg     sync.WaitGroup
}

// acquire takes the lock for reading, or returns strata.ErrClosed once the
// store is closed. The caller calls release when acquire returned nil.
func (l *lifecycle) acquire() error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return strata.ErrClosed
	}
	return nil
}

// release releases the lock acquire took.
func (l *lifecycle) release() { l.mu.RUnlock() }

// every runs fn every interval in a goroutine until close, with a context
// that close cancels. Call it before the store is in use, at most once.
func (l *lifecycle) every(interval time.Duration, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
}

// addSnapshot records an open snapshot, for close to close. The snapshot's
// Close calls removeSnapshot. Call it while holding the lock (after
// acquire), so that close does not miss it.
func (l *lifecycle) addSnapshot(sn io.Closer) {
	l.snapMu.Lock()
	if l.snaps == nil {
		l.snaps = make(map[io.Closer]struct{})
	}
	l.snaps[sn] = struct{}{}
	l.snapMu.Unlock()
}

// removeSnapshot forgets a snapshot that has been closed.
func (l *lifecycle) removeSnapshot(sn io.Closer) {
	l.snapMu.Lock()
	delete(l.snaps, sn)
	l.snapMu.Unlock()
}

// openSnapshots returns how many snapshots are open.
func (l *lifecycle) openSnapshots() int {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	return len(l.snaps)
}

// close closes the open snapshots, marks the store closed, closes the
// snapshots taken meanwhile, calls closeEngine under the lock, then stops
// the background work and waits for it. It returns closeEngine's error;
// once the store is closed, it returns nil at once.
//
// Snapshots are closed before the lock is taken: a writer may wait for
// their transactions (bbolt's re-map does), and close waits for that
// writer.
func (l *lifecycle) close(closeEngine func() error) error {
	l.closeSnapshots()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.closeSnapshots() // any taken while close waited for the lock
	err := closeEngine()
	l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	return err
}

func (l *lifecycle) closeSnapshots() {
	l.snapMu.Lock()
	snaps := make([]io.Closer, 0, len(l.snaps))
	for sn := range l.snaps {
		snaps = append(snaps, sn)
	}
	l.snapMu.Unlock()
	for _, sn := range snaps {
		sn.Close()
	}
}
