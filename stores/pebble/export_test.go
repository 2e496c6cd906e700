package pebble

// RawKeyCount returns how many keys the database physically holds, expired
// ones included, for tests of the sweep.
func RawKeyCount(s *Store) int {
	if s.life.Acquire() != nil {
		return 0
	}
	defer s.life.Release()
	it, err := s.db.NewIter(nil)
	if err != nil {
		panic(err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n
}
