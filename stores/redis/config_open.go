package redis

import (
	"context"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
)

func init() {
	config.Register("redis", config.Table{Check: checkSection, Open: openSection})
}

// configOf returns the Config of a config file whose backend is "redis":
// its [state.redis] table (keys: the toml tags of Config's fields), with
// REDIS_URL overriding url and the [state] default_ttl applying when the
// table sets none. The result is validated.
func configOf(sec config.Section) (Config, error) {
	var cfg Config
	if err := sec.Decode(&cfg); err != nil {
		return Config{}, err
	}
	if u := sec.Getenv("REDIS_URL"); u != "" {
		cfg.URL = u
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = sec.State().DefaultTTL
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func checkSection(sec config.Section) error {
	_, err := configOf(sec)
	return err
}

func openSection(ctx context.Context, sec config.Section, _ strata.Store) (strata.Store, error) {
	cfg, err := configOf(sec)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		return nil, err // not a nil *Store in a non-nil interface
	}
	return s, nil
}
