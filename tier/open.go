package tier

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/urlopt"
)

// The tier registers itself as a wrapper of any store URL and as the
// [state.tier] table of a config file:
//
//	tier+pebble:///var/lib/app/state?tier.max_bytes=67108864&tier.max_local_ttl=1m
//	tier+redis://cache:6379/0?prefix=app:&tier.invalidation=required
//
//	[state.tier]
//	max_bytes = 67108864
//	max_local_ttl = "1m"
//	negative_ttl = "1s"
//	invalidation = "auto"   # auto, none or required ("redis" is read as required)
func init() {
	strata.RegisterWrapper("tier", openURL)
	strata.RegisterConfig("tier", true, openConfig)
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
	q := urlopt.New(&url.URL{Scheme: "tier", RawQuery: params.Encode()})
	o := &Options{
		MaxBytes:    int64(q.Int("max_bytes", 0)),
		MaxLocalTTL: q.Duration("max_local_ttl", 0),
		NegativeTTL: q.Duration("negative_ttl", 0),
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

func openConfig(ctx context.Context, sec strata.ConfigSection, inner strata.Store) (strata.Store, error) {
	md, table := sec.TOML()
	var raw map[string]any
	if err := md.PrimitiveDecode(table, &raw); err != nil {
		return nil, fmt.Errorf("%w: config: [state.tier]: %v", strata.ErrInvalidConfig, err)
	}
	o := &Options{}
	var errs []error
	duration := func(k string, v any) time.Duration {
		s, ok := v.(string)
		d, err := time.ParseDuration(s)
		if !ok || err != nil || d < 0 {
			errs = append(errs, fmt.Errorf(`state.tier.%s: %v is not a quoted duration such as "1m"`, k, v))
		}
		return d
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "max_bytes":
			n, ok := v.(int64)
			if !ok || n < 0 {
				errs = append(errs, fmt.Errorf("state.tier.max_bytes: %v is not a non-negative integer", v))
			}
			o.MaxBytes = n
		case "max_local_ttl":
			o.MaxLocalTTL = duration(k, v)
		case "negative_ttl":
			o.NegativeTTL = duration(k, v)
		case "invalidation":
			s, _ := v.(string)
			m, err := parseInvalidation(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("state.tier.invalidation: %w", err))
			}
			o.Invalidation = m
		default:
			errs = append(errs, fmt.Errorf("state.tier.%s: unknown key (accepted: %s)", k,
				strings.Join([]string{"invalidation", "max_bytes", "max_local_ttl", "negative_ttl"}, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: config: %w", strata.ErrInvalidConfig, errors.Join(errs...))
	}
	return newWaiting(ctx, inner, o)
}
