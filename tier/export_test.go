package tier

// WaitL1 blocks until every L1 Set issued so far has been applied
// (ristretto applies Sets asynchronously).
func (t *Tier) WaitL1() {
	if sh, ok := t.enter(0); ok {
		t.l1.wait()
		sh.active.Add(-1)
	}
}

// L1Held returns, on ristretto, the most items held and the items held.
func (t *Tier) L1Held() (most, now int64) {
	if r, ok := t.l1.(*ristrettoEngine); ok {
		return r.held.Load(), r.costHeld() & costCountMask
	}
	return 0, 0
}
