package pebble

// RawKeyCount returns how many keys the database physically holds, expired
// ones included, for tests of the sweep. Call it while s is open.
func RawKeyCount(s *Store) int {
	n := 0
	if err := s.eng.Scan(nil, nil, func(_, _ []byte) bool { n++; return true }); err != nil {
		panic(err)
	}
	return n
}
