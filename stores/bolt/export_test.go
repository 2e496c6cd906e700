package bolt

import bbolt "go.etcd.io/bbolt"

// RawKeyCount returns how many keys the bucket physically holds, expired
// ones included, for tests of the sweep.
func RawKeyCount(s *Store) int {
	n := 0
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.view(func(b *bbolt.Bucket) error {
		n = b.Stats().KeyN
		return nil
	})
	return n
}
