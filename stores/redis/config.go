package redis

import (
	"context"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
)

func init() {
	config.Register("redis", config.Table{Check: checkSection, Open: openSection})
}

// optionsOf returns the Options of a config file whose backend is
// "redis": its [state.redis] table (keys: the toml and alias tags of the
// Options fields), with REDIS_URL replacing url or urls, and the [state]
// default_ttl applying when the table sets none. An explicit
// max_retries = 0 means no retries, as in a URL. The result is validated.
func optionsOf(sec config.Section) (*Options, error) {
	var o Options
	if err := sec.Decode(&o); err != nil {
		return nil, err
	}
	if sec.Has("max_retries") && o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	if u := sec.Getenv("REDIS_URL"); u != "" {
		o.URL, o.URLs = u, nil
	}
	if o.DefaultTTL == 0 {
		o.DefaultTTL = sec.State().DefaultTTL
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &o, nil
}

// OptionsFromConfig returns the Options of c's [state.redis] table, as
// config.Open uses them: keys are the toml and alias tags of the Options
// fields (url or urls, connect_timeout or connect_timeout_secs, ...),
// REDIS_URL replaces url or urls, and [state] default_ttl applies when the
// table sets none. The result is validated; errors match
// strata.ErrInvalidConfig.
func OptionsFromConfig(c *config.Config) (*Options, error) {
	return optionsOf(c.Section("redis"))
}

func checkSection(sec config.Section) error {
	_, err := optionsOf(sec)
	return err
}

func openSection(ctx context.Context, sec config.Section, _ strata.Store) (strata.Store, error) {
	o, err := optionsOf(sec)
	if err != nil {
		return nil, err
	}
	withOpenOptions(ctx, o)
	s, err := Open(ctx, o)
	if err != nil {
		return nil, err // not a nil *Store in a non-nil interface
	}
	return s, nil
}
