package conformance

import (
	"fmt"
	"sync"
)

// lockerRegister is the resource the MutualExclusion subtest protects: a
// fenced register. It accepts a holder only if nobody else is inside and
// its token is above every token it has accepted before, and it rejects
// writes whose token is below the highest it has seen, as a resource
// protected by fencing tokens does.
type lockerRegister struct {
	mu      sync.Mutex
	holder  int    // contender inside, or -1
	highest uint64 // highest token accepted
	n       int    // critical sections entered
	errs    []string
}

func newLockerRegister() *lockerRegister { return &lockerRegister{holder: -1} }

func (r *lockerRegister) violate(format string, args ...any) {
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

// enter records that who holds the lock with token.
func (r *lockerRegister) enter(who int, token uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if r.holder != -1 {
		r.violate("mutual exclusion broken: contender %d (token %d) acquired while contender %d still held the lock",
			who, token, r.holder)
	}
	if token <= r.highest {
		r.violate("token %d of contender %d is not above the previous holder's %d", token, who, r.highest)
	}
	r.holder = who
	r.highest = max(r.highest, token)
}

// write is a fenced write: accepted unless token is stale.
func (r *lockerRegister) write(who int, token uint64, _ int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.highest {
		return false
	}
	if r.holder != who {
		r.violate("contender %d wrote while contender %d held the lock", who, r.holder)
	}
	return true
}

// exit records that who is about to release the lock.
func (r *lockerRegister) exit(who int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.holder == who {
		r.holder = -1
	}
}

func (r *lockerRegister) violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func (r *lockerRegister) entries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
