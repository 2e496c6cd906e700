package bolt

import bbolt "go.etcd.io/bbolt"

// RawKeyCount returns how many keys the bucket physically holds, expired
// ones included, for tests of the sweep.
func RawKeyCount(s *Store) int {
	n := 0
	if s.life.Acquire() != nil {
		return 0
	}
	defer s.life.Release()
	s.view(func(b *bbolt.Bucket) error {
		n = b.Stats().KeyN
		return nil
	})
	return n
}
