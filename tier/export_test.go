package tier

// WaitL1 blocks until every L1 Set issued so far has been applied
// (ristretto applies Sets asynchronously).
func (t *Tier) WaitL1() {
	if sh, ok := t.enter(0); ok {
		t.l1.wait()
		sh.active.Add(-1)
	}
}
