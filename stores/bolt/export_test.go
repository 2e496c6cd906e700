package bolt

import bbolt "go.etcd.io/bbolt"

// RawKeyCount returns how many keys the bucket physically holds, expired
// ones included, for tests of the sweep. Call it while s is open.
func RawKeyCount(s *Store) int {
	n := 0
	s.eng.view(func(b *bbolt.Bucket) error {
		n = b.Stats().KeyN
		return nil
	})
	return n
}
