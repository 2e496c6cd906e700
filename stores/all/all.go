// Package all links every built-in store into a program, so that
// strata.Open and config.Open know their URL schemes and config tables:
//
//	import _ "github.com/strata-kv/strata/stores/all"
package all

import (
	// Each package registers its schemes in init.
	_ "github.com/strata-kv/strata/stores/bolt"
	_ "github.com/strata-kv/strata/stores/memory"
	_ "github.com/strata-kv/strata/stores/pebble"
	_ "github.com/strata-kv/strata/stores/redis"
)
