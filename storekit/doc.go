// Package storekit is for store authors: the tools the built-in stores use
// to implement strata.Store and its capabilities, so that a third-party
// store can keep the contract the same way. Users of stores call package
// strata; they do not need this package.
//
//   - Input checks, made before any I/O: [CheckKey], [CheckValue],
//     [ResolveTTL], [CheckEntry], and for commits [CheckBatch].
//   - Expiry arithmetic in Unix milliseconds: [ExpiryMillis], [Remaining],
//     [Expired].
//   - Errors: [NewOpError] wraps a backend failure or rejected input once
//     in a *strata.OpError; [QuoteKey] shortens a key for messages;
//     [RedactURL] hides the passwords a URL can carry.
//   - Commits: [EvalConditions] evaluates a batch's conditions with the
//     semantics every store shares, [FenceValue] and [ParseFence] encode a
//     fence, [NewConflictError] reports a failed condition evaluated
//     elsewhere (a server-side script).
//   - [Counters]: the common strata.Stats counters, updated lock-free.
//   - [Query]: typed URL query parameters, for a store's URL opener (see
//     strata.Register).
//
// A store proves it keeps the contract with the conformance suite
// (package conformance), whose documentation shows a small store written
// with these tools.
package storekit
