package redis

import (
	"context"

	"github.com/strata-kv/strata"
)

func init() {
	strata.RegisterConfig("redis", false, openConfig)
}

// openConfig opens the store of a config.toml with backend = "redis": its
// [state.redis] table, with REDIS_URL overriding url and [state]
// default_ttl applying when the table sets none.
func openConfig(ctx context.Context, sec strata.ConfigSection, _ strata.Store) (strata.Store, error) {
	var cfg Config
	if sec.Defined() {
		var err error
		if cfg, err = decodeTOML(sec.TOML()); err != nil {
			return nil, err
		}
	}
	if u := sec.Getenv("REDIS_URL"); u != "" {
		cfg.URL = u
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = sec.State.DefaultTTL
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}
