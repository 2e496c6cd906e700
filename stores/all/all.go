// Package all links every built-in store into a program, so that
// strata.Open and config.Open know their URL schemes and config
// tables, with the tier's Redis invalidator, so that a tier over a Redis
// store (tier+redis://...) follows other clients' writes:
//
//	import _ "github.com/strata-kv/strata/stores/all"
package all

import (
	// Each package registers its schemes in init.
	_ "github.com/strata-kv/strata/stores/bolt"
	_ "github.com/strata-kv/strata/stores/memory"
	_ "github.com/strata-kv/strata/stores/pebble"
	_ "github.com/strata-kv/strata/stores/redis"

	// A tier over a Redis store follows other clients' writes through it.
	_ "github.com/strata-kv/strata/tier/redistrack"
)
