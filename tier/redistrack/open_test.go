package redistrack_test

import (
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	_ "github.com/strata-kv/strata/stores/all"
	"github.com/strata-kv/strata/tier"
)

// A tier+redis URL tracks Redis, by default and when tracking is required
// ("redis" is the older name of "required").
func TestOpenURLRedisTracks(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	for _, q := range []string{"", "&tier.invalidation=required", "&tier.invalidation=redis"} {
		s, err := strata.Open(t.Context(), "tier+"+r.URL()+"?prefix=app:"+q)
		if err != nil {
			t.Fatal(err)
		}
		tr := s.(*tier.Tier)
		if ok, err := tr.Tracking(); !ok || len(trackedMasters(tr)) != 1 {
			t.Errorf("%q: Tracking = %v, %v; masters %q", q, ok, err, trackedMasters(tr))
		}
		s.Close()
	}
}
