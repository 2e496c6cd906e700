// Package bench compares the strata tier's L1 hit path with other Go
// client-side caches in front of Redis: rueidis's client-side caching,
// go-redis/cache with its TinyLFU local cache, and go-redis v9's built-in
// client-side cache. It is a separate module so that strata itself does
// not depend on them. Run it with:
//
//	cd bench && go test -run '^$' -bench . -count 5
package bench
