// Package bench compares the strata tier's L1 with other Go caches: its
// hit path with the client-side caches in front of Redis (rueidis's
// client-side caching, go-redis/cache with its TinyLFU local cache,
// go-redis v9's built-in client-side cache), its parallel hit throughput
// with the raw engines (ristretto, otter, theine), and (cmd/hitratio, on
// the traces of testdata/traces) its hit ratio with LRU, otter and
// theine. It is a separate module so that strata itself does not depend
// on them. Run it with:
//
//	cd bench && go test -run '^$' -bench . -count 5
//	cd bench && go run ./cmd/hitratio
package bench
