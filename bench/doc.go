// Package bench compares strata with other Go clients and caches, in a
// separate module so that strata itself does not depend on them:
//
//   - the tier's L1 hit path against rueidis's client-side caching,
//     go-redis/cache with its TinyLFU local cache and go-redis v9's
//     built-in client-side cache (BenchmarkHit, BenchmarkHitInterleaved,
//     BenchmarkMiss, BenchmarkMissInterleaved), and its parallel hit
//     throughput against the raw engines (ristretto, otter, theine;
//     BenchmarkHitParallel);
//   - the tier's hit ratio against LRU, otter and theine on the ARC traces
//     of testdata/traces (cmd/hitratio);
//   - stores/redis under concurrency, with and without auto-pipelining,
//     against rueidis, go-redis and redis-benchmark, on one server and on
//     a Cluster (BenchmarkConcurrent, BenchmarkConcurrentCluster).
//
// Run them with:
//
//	cd bench && go test -run '^$' -bench . -count 5
//	cd bench && go run ./cmd/hitratio
//
// Package bench/ycsb is a go-ycsb binding for any strata store, and
// bench/cmd/strata-ycsb runs go-ycsb's workloads with it
// (scripts/ycsb.sh).
package bench
