package tier

import (
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/memory"
)

// redisLike reports the redis backend without being a Redis store.
type redisLike struct{ *memory.Store }

func (redisLike) Stats() strata.Stats { return strata.Stats{Backend: "redis"} }

// A tier over a shared backend whose invalidator is not registered refuses
// to start under InvalidationAuto, also through prefix views, and says
// which package to import; over an embedded backend it needs none.
func TestDetectWithoutRegisteredInvalidator(t *testing.T) {
	none := func(string) InvalidatorFunc { return nil }
	l2 := redisLike{memory.New(nil)}
	defer l2.Close()
	for _, s := range []strata.Store{l2, strata.WithPrefix(strata.WithPrefix(l2, []byte("a:")), []byte("b:"))} {
		inv, err := detectInvalidator(s, none)
		if err == nil || !strings.Contains(err.Error(), "tier/redistrack") || !strings.Contains(err.Error(), "InvalidationNone") {
			t.Errorf("detectInvalidator(%T) = %v, %v; want an error naming tier/redistrack and InvalidationNone", s, inv, err)
		}
	}
	m := memory.New(nil)
	defer m.Close()
	if inv, err := detectInvalidator(m, none); inv != nil || err != nil {
		t.Errorf("detectInvalidator(memory) = %v, %v; want none needed", inv, err)
	}
}
