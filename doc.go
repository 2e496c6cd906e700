// Package strata keeps the state of stream processors (window aggregates,
// offsets, dedup sets, leases) behind one key-value contract.
//
// A [Store] is the small required interface. Stores may implement optional
// capabilities, found by type assertion the way database/sql/driver works:
// [Batcher], [Atomic], [Expirer], [BatchExpirer], [Committer],
// [Snapshotter], [Pinger] and [StatsReporter]. Callers do not write the type switch themselves: the
// package-level helpers ([GetMany], [PutIfAbsent], [TTL], ...) use the
// capability when the store has it and otherwise fall back to a loop, or
// return [ErrUnsupported] where no honest fallback exists.
//
// Every built-in store (stores/memory, stores/bolt, stores/pebble,
// stores/redis) implements every capability and passes the suite in package
// conformance, which anyone can run against their own store.
//
// # Opening stores
//
// [Open] opens a store by URL ("mem://", "bolt:///path/state.db",
// "pebble:///path/dir", "redis://host:6379/0?prefix=app:",
// "redis+cluster://h1:6379,h2:6379/", "tier+<any URL>") once its package is
// linked in (github.com/strata-kv/strata/stores/all links them all);
// package config does the same from a config.toml. [WithPrefix] gives a
// namespace of a shared store. [WithTracing] (or Open with
// [WithTracerProvider], or a URL with trace=true) makes an OpenTelemetry
// span of each operation; docs/operations.md lists the spans and the
// Prometheus metrics of package metrics.
//
// # Moving state
//
// [Copy] streams every entry of one store into another, with TTLs, and
// [Verify] compares them afterwards: the migration from an embedded store to
// Redis. Package checkpoint does the same through files.
//
// # Keys, values and TTLs
//
// Keys are non-empty byte strings of at most [MaxKeyLen] bytes; any byte is
// allowed. Values may be empty; a store may bound their size
// ([ErrValueTooLarge]). A TTL greater than zero expires the key after that
// duration, rounded up to the millisecond; zero uses the store's default TTL
// (none unless configured); [NoExpiry] never expires. An expired key is
// invisible to every read at once.
//
// Stores copy the slices they are given and return slices the caller owns.
//
// # Errors
//
// Every error can be classified with [errors.Is] against the sentinels:
//
//   - [ErrNotFound]: the key is absent or expired (Get, GetAndDelete, TTL).
//   - [ErrInvalidKey], [ErrValueTooLarge], [ErrInvalidTTL]: bad input,
//     rejected before any I/O.
//   - [ErrClosed]: the store was closed.
//   - [ErrUnsupported]: the store lacks a capability that has no fallback.
//   - [ErrUnavailable]: the backend could not be reached; the operation was
//     not applied.
//   - [ErrIndeterminate]: the request may or may not have been applied (for
//     example a timeout after the command was sent). Non-idempotent
//     operations are never retried silently; they report this instead.
//   - [ErrCorrupt]: stored or checkpointed data failed validation.
//   - [ErrConflict]: a condition of a [Commit] did not hold; nothing was
//     written (a [*ConflictError] says which). [ErrFenced] too when the
//     condition was a fence: a newer lease holder has committed.
//   - [ErrInvalidConfig]: a malformed URL or configuration value.
//   - [ErrMismatch]: [Verify] found the destination different.
//
// A cancelled or expired context yields an error for which
// errors.Is(err, ctx.Err()) holds. Backend failures and rejected input are
// wrapped once in an [*OpError] that names the operation, the backend and a
// shortened key; its cause stays reachable through [errors.Unwrap].
package strata
