// Package storemock holds gomock mocks (go.uber.org/mock) of the strata
// interfaces, for users who mock the store in their own unit tests. Prefer
// the real stores/memory store where a fake is enough: it keeps the whole
// contract, which a mock only keeps as far as its expectations say.
package storemock

//go:generate go tool mockgen -destination=mocks.go -package=storemock -typed github.com/strata-kv/strata Store,Batcher,Atomic,Expirer,BatchExpirer,Snapshotter,Snapshot,Pinger,StatsReporter,Committer
