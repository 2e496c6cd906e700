package tier

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/storekit"
)

// The tier registers itself as a wrapper of any store URL and as the
// [state.tier] table of a config file:
//
//	tier+pebble:///var/lib/app/state?tier.max_bytes=67108864&tier.max_local_ttl=1m&tier.engine=otter
//	tier+redis://cache:6379/0?prefix=app:&tier.invalidation=required
//
//	[state.tier]
//	max_bytes = 67108864
//	engine = "ristretto"    # ristretto or otter
//	max_local_ttl = "1m"
//	negative_ttl = "1s"
//	invalidation = "auto"   # auto, none or required ("redis" is read as required)
func init() {
	strata.RegisterWrapper("tier", openURL)
	config.Register("tier", config.Table{Wrapper: true, Check: checkConfig, Open: openConfig})
}

var invalidations = map[string]Invalidation{
	"auto": InvalidationAuto, "none": InvalidationNone, "required": InvalidationRequired, "redis": InvalidationRequired,
}

func parseInvalidation(s string) (Invalidation, error) {
	m, ok := invalidations[s]
	if !ok {
		return 0, fmt.Errorf("invalidation %q is unknown (accepted: auto, none, required)", s)
	}
	return m, nil
}

func openURL(ctx context.Context, inner strata.Store, params url.Values) (strata.Store, error) {
	q := storekit.NewQuery(&url.URL{Scheme: "tier", RawQuery: params.Encode()})
	o := &Options{
		MaxBytes:    int64(q.Int("max_bytes", 0)),
		MaxLocalTTL: q.Duration("max_local_ttl", 0),
		NegativeTTL: q.Duration("negative_ttl", 0),
		Engine:      Engine(q.String("engine", "")),
	}
	mode := q.String("invalidation", "auto")
	if err := q.Err(); err != nil {
		return nil, err
	}
	var err error
	if o.Invalidation, err = parseInvalidation(mode); err != nil {
		return nil, fmt.Errorf("%w: tier: %w", strata.ErrInvalidConfig, err)
	}
	return newWaiting(ctx, inner, o)
}

// newWaiting opens a tier and, with an Invalidator, waits briefly for it
// to be up so that the first reads are cached.
func newWaiting(ctx context.Context, inner strata.Store, o *Options) (strata.Store, error) {
	t, err := New(inner, o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", strata.ErrInvalidConfig, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = t.WaitTracking(wctx) // until it is up the tier bypasses L1: correct, only slower
	return t, nil
}

// table is the [state.tier] table of a config file.
type table struct {
	MaxBytes     int64         `toml:"max_bytes"`
	MaxLocalTTL  time.Duration `toml:"max_local_ttl"`
	NegativeTTL  time.Duration `toml:"negative_ttl"`
	Invalidation string        `toml:"invalidation"`
	Engine       string        `toml:"engine"`
}

// optionsOf decodes and checks a [state.tier] table.
func optionsOf(sec config.Section) (*Options, error) {
	t := table{Invalidation: "auto"}
	if err := sec.Decode(&t); err != nil {
		return nil, err
	}
	if t.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: config: state.tier.max_bytes: %d is negative", strata.ErrInvalidConfig, t.MaxBytes)
	}
	m, err := parseInvalidation(t.Invalidation)
	if err != nil {
		return nil, fmt.Errorf("%w: config: state.tier.%w", strata.ErrInvalidConfig, err)
	}
	o := &Options{MaxBytes: t.MaxBytes, MaxLocalTTL: t.MaxLocalTTL, NegativeTTL: t.NegativeTTL, Invalidation: m, Engine: Engine(t.Engine)}
	if err := o.Engine.check(); err != nil {
		return nil, fmt.Errorf("%w: config: state.tier.%w", strata.ErrInvalidConfig, err)
	}
	return o, nil
}

func checkConfig(sec config.Section) error {
	_, err := optionsOf(sec)
	return err
}

func openConfig(ctx context.Context, sec config.Section, inner strata.Store) (strata.Store, error) {
	o, err := optionsOf(sec)
	if err != nil {
		return nil, err
	}
	return newWaiting(ctx, inner, o)
}
