package redis

import goredis "github.com/redis/go-redis/v9"

// Slot is slot, for tests that check it against CLUSTER KEYSLOT.
var Slot = slot

// NewFresh is New for a client that has sent nothing yet, as Open makes
// them: the store's hooks see every node a cluster client will use.
var NewFresh = func(c goredis.UniversalClient, o *Options) (*Store, error) { return newStore(c, o, true) }

// JoinURLs is joinURLs.
var JoinURLs = joinURLs

// SetPipeLanes sets the lanes per server of the stores opened from now
// on, standalone and Cluster, and returns the previous values.
func SetPipeLanes(one, cluster int) (int, int) {
	o, c := defaultPipeLanes, clusterPipeLanes
	defaultPipeLanes, clusterPipeLanes = one, cluster
	return o, c
}

// Resolve returns the addresses and the database o resolves to: the
// sentinels' for a Sentinel deployment.
func Resolve(o Options) ([]string, int, error) {
	r, err := o.resolve()
	if err != nil {
		return nil, 0, err
	}
	return r.addrs, r.db, nil
}
