package tier

import (
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
)

// Invalidation selects how a tier learns about writes made by other
// processes to its L2.
type Invalidation int

const (
	// InvalidationAuto tracks Redis when the L2 is Redis (it implements
	// [RedisBacked]) or Options.Redis is set, and is InvalidationNone
	// otherwise. It is the default.
	InvalidationAuto Invalidation = iota

	// InvalidationNone listens to nobody: only this process's own writes
	// through the tier change its L1. Right for an embedded L2 (bbolt,
	// Pebble, memory), which one process owns; for a shared L2 another
	// process's write stays invisible here for up to MaxLocalTTL.
	InvalidationNone

	// InvalidationRedis requires Redis client-side-caching invalidation
	// (see [RedisInvalidation]); New fails when the tier cannot find a Redis
	// client.
	InvalidationRedis
)

// String names the mode as the tier.invalidation URL parameter and the
// [state.tier] invalidation key do: "auto", "none" or "redis".
func (m Invalidation) String() string {
	switch m {
	case InvalidationAuto:
		return "auto"
	case InvalidationNone:
		return "none"
	case InvalidationRedis:
		return "redis"
	}
	return fmt.Sprintf("Invalidation(%d)", int(m))
}

// Defaults of [Options] and [RedisInvalidation].
const (
	DefaultMaxBytes          = 64 << 20
	DefaultHeartbeatInterval = time.Second
	DefaultTopologyInterval  = time.Second
)

// Options configure a tier. The zero value (or nil) gives the defaults.
type Options struct {
	// MaxBytes bounds the L1, counting len(key)+len(value) plus a fixed
	// per-entry overhead (EntryOverhead) for every cached entry. Default
	// DefaultMaxBytes (64 MiB).
	MaxBytes int64

	// MaxLocalTTL caps how long an entry may stay in L1, whatever its L2
	// TTL. Default 0: no cap beyond the L2 TTL. Set it when another process
	// writes to the L2 and the tier has no invalidation for it: it bounds
	// how long such a write stays invisible here.
	MaxLocalTTL time.Duration

	// NegativeTTL, when positive, caches "not found" answers for at most
	// that long (capped by MaxLocalTTL), so repeated reads of an absent key
	// stop at L1. Default 0: absent keys are not cached.
	NegativeTTL time.Duration

	// Invalidation selects how writes of other processes reach the L1.
	// Default InvalidationAuto.
	Invalidation Invalidation

	// Redis configures Redis invalidation explicitly. Default nil: taken
	// from the L2 when it implements [RedisBacked]. Set it when the L2 is
	// a view of a Redis store that does not say so, such as
	// strata.WithPrefix(redisStore, p).
	Redis *RedisInvalidation

	// Clock tells the time for L1 expiry. It must be the clock the L2 uses
	// for its own expiry (tests pass one fake clock to both). Default: the
	// system clock.
	Clock strata.Clock

	// KeepL2Open makes Close leave the L2 open. Default false: Close closes
	// the L2 too.
	KeepL2Open bool
}

// RedisInvalidation configures the cross-process invalidation of a tier
// whose L2 lives in Redis.
type RedisInvalidation struct {
	// Client reaches the same Redis (standalone, Cluster, Ring or failover)
	// as the L2. The tier reads its options to open one dedicated tracking
	// connection per master and, for a Cluster, to follow the topology
	// (it registers an OnNewNode callback on a ClusterClient, which stays
	// registered, inert, after Close). It is not used for L2 traffic and
	// not closed by the tier. Required.
	Client goredis.UniversalClient

	// KeyPrefix is what the L2 puts before a tier key to form the Redis key:
	// the tier key k lives at KeyPrefix+k. For strata.WithPrefix(s, p) over
	// a Redis store s with prefix sp, it is sp+p. Default "": keys are
	// stored as is.
	KeyPrefix string

	// HeartbeatInterval is how often a tracking connection is pinged. A
	// connection silent for 2×HeartbeatInterval is declared lost (the L1
	// is flushed and bypassed until tracking is back), including one to a
	// server busy that long with a slow command. Default
	// DefaultHeartbeatInterval (1s).
	HeartbeatInterval time.Duration

	// TopologyInterval is how often a Cluster's masters are listed to
	// follow failovers and resharding. Default DefaultTopologyInterval
	// (1s).
	TopologyInterval time.Duration
}

// RedisBacked is implemented by L2 stores kept in Redis. Under
// InvalidationAuto the tier uses it to track the keys the store writes: a
// tier key k is the Redis key KeyPrefix()+k.
type RedisBacked interface {
	// Client returns the client the store uses.
	Client() goredis.UniversalClient
	// KeyPrefix returns the prefix the store puts before every key.
	KeyPrefix() string
}

// redisClientOnly is a store that reveals its Redis client but not its key
// prefix: the tier cannot map the keys Redis reports back to its own.
type redisClientOnly interface {
	Client() goredis.UniversalClient
}

// EntryOverhead is the bytes counted against MaxBytes for each L1 entry on
// top of its key and value: the entry itself and ristretto's bookkeeping.
const EntryOverhead = 160

func (o *Options) withDefaults() (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	switch {
	case out.MaxBytes < 0:
		return out, fmt.Errorf("tier: MaxBytes %d is negative", out.MaxBytes)
	case out.MaxLocalTTL < 0:
		return out, fmt.Errorf("tier: MaxLocalTTL %v is negative", out.MaxLocalTTL)
	case out.NegativeTTL < 0:
		return out, fmt.Errorf("tier: NegativeTTL %v is negative", out.NegativeTTL)
	case out.Invalidation < InvalidationAuto || out.Invalidation > InvalidationRedis:
		return out, fmt.Errorf("tier: unknown %v", out.Invalidation)
	}
	if out.MaxBytes == 0 {
		out.MaxBytes = DefaultMaxBytes
	}
	if out.MaxBytes < 4*EntryOverhead {
		return out, fmt.Errorf("tier: MaxBytes %d is below the minimum %d", out.MaxBytes, 4*EntryOverhead)
	}
	if out.Clock == nil {
		out.Clock = strata.SystemClock{}
	}
	if out.Redis != nil {
		r := *out.Redis
		if r.Client == nil {
			return out, fmt.Errorf("tier: Redis.Client is nil")
		}
		if r.HeartbeatInterval < 0 || r.TopologyInterval < 0 {
			return out, fmt.Errorf("tier: negative Redis interval")
		}
		if r.HeartbeatInterval == 0 {
			r.HeartbeatInterval = DefaultHeartbeatInterval
		}
		if r.TopologyInterval == 0 {
			r.TopologyInterval = DefaultTopologyInterval
		}
		out.Redis = &r
	}
	return out, nil
}
