package tier_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	_ "github.com/strata-kv/strata/stores/all"
	"github.com/strata-kv/strata/tier"
)

func TestOpenURL(t *testing.T) {
	ctx := t.Context()
	s, err := strata.Open(ctx, "tier+pebble://"+filepath.Join(t.TempDir(), "p")+"?tier.max_bytes=1048576&tier.negative_ttl=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr, ok := s.(*tier.Tier)
	if !ok {
		t.Fatalf("tier+pebble opened a %T", s)
	}
	if st := tr.TierStats(); st.L1MaxBytes != 1<<20 {
		t.Fatalf("L1MaxBytes = %d", st.L1MaxBytes)
	}
	if got := tr.Stats().Backend; !strings.Contains(got, "pebble") && got != "tier" {
		t.Fatalf("Backend = %q", got)
	}
	o, err := strata.Open(ctx, "tier+mem://?tier.engine=otter")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := o.(*tier.Tier).Engine(); got != tier.EngineOtter {
		t.Fatalf("tier.engine=otter opened a tier on %q", got)
	}
	for _, u := range []string{"tier+mem://?tier.colour=red", "tier+mem://?tier.invalidation=sometimes", "tier+mem://?tier.engine=lru", "tier+nosuch://x"} {
		if s, err := strata.Open(ctx, u); !errors.Is(err, strata.ErrInvalidConfig) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalidConfig", u, err)
		}
	}
}

func TestOpenConfig(t *testing.T) {
	doc := fmt.Sprintf("[state]\nbackend = \"pebble\"\npath = %q\n[state.tier]\nmax_bytes = 2097152\nmax_local_ttl = \"1m\"\ninvalidation = \"none\"\nengine = \"otter\"\n", filepath.Join(t.TempDir(), "p"))
	cfg, err := config.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := config.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if tr, ok := s.(*tier.Tier); !ok || tr.TierStats().L1MaxBytes != 2<<20 || tr.Engine() != tier.EngineOtter {
		t.Fatalf("config.Open with [state.tier] gave %T", s)
	}
	_, err = config.Parse([]byte("[state.tier]\nmax_bytes = \"big\"\nttl = 3\ninvalidation = \"sometimes\"\n"), nil)
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "state.tier.max_bytes") || !strings.Contains(err.Error(), "state.tier.ttl: unknown key") {
		t.Fatalf("config.Parse with a bad [state.tier] = %v", err)
	}
	_, err = config.Parse([]byte("[state.tier]\nengine = \"lru\"\n"), nil)
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), `state.tier.engine "lru" is unknown`) {
		t.Fatalf("config.Parse with a bad engine = %v", err)
	}
	_, err = config.Parse([]byte("[state.tier]\ninvalidation = \"sometimes\"\n"), nil)
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), `state.tier.invalidation "sometimes" is unknown`) {
		t.Fatalf("config.Parse with a bad invalidation = %v", err)
	}
}
