//go:build race

package redistrack_test

// raceEnabled reports a build with the race detector, which slows the
// code it instruments several times over.
const raceEnabled = true
