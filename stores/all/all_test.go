package all_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/internal/testserver"
	_ "github.com/strata-kv/strata/stores/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSchemes(t *testing.T) {
	got := strata.Schemes()
	for _, want := range []string{"bolt", "mem", "pebble", "redis", "redis+cluster", "rediss", "rediss+cluster"} {
		if !slices.Contains(got, want) {
			t.Errorf("scheme %q not registered (have %q)", want, got)
		}
	}
}

// roundTrip writes through a store opened from cfg and reads it back
// through a second one, proving both reach the same backend.
func roundTrip(t *testing.T, doc string, env map[string]string) {
	t.Helper()
	ctx := t.Context()
	open := func() strata.Store {
		cfg, err := config.Parse([]byte(doc), func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("config.Parse: %v", err)
		}
		s, err := config.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("config.Open: %v", err)
		}
		return s
	}
	s := open()
	if err := s.Put(ctx, []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if v, err := s.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get after reopening = %q, %v", v, err)
	}
}

func TestConfigEmbedded(t *testing.T) {
	for _, backend := range []string{"bolt", "pebble"} {
		t.Run(backend, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			roundTrip(t, fmt.Sprintf("[state]\nbackend = %q\npath = %q\ndefault_ttl = \"1h\"\n", backend, path), nil)
			roundTrip(t, fmt.Sprintf("[state]\nurl = \"%s://%s\"\n", backend, path), nil)
		})
	}
}

func TestConfigRedis(t *testing.T) {
	r := testserver.StartRedis(t, &testserver.RedisOptions{Password: "hunter2"})
	roundTrip(t, fmt.Sprintf("[state]\nbackend = \"redis\"\n[state.redis]\nurl = %q\nkey_prefix = \"app:\"\n", r.URL()), nil)
	if got := r.CLI(t, "GET", "app:k"); got != "v" {
		t.Fatalf("redis-cli GET app:k = %q", got)
	}
	// REDIS_URL overrides the file's url.
	roundTrip(t, "[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://127.0.0.1:1/0\"\n", map[string]string{"REDIS_URL": r.URL()})
	// Unknown keys in [state.redis] are errors, and the password stays out
	// of them.
	_, err := config.Parse([]byte(fmt.Sprintf("[state]\nbackend = \"redis\"\n[state.redis]\nurl = %q\npool = 3\n", r.URL())), nil)
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "pool: unknown key") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("config.Parse with an unknown key = %v", err)
	}
}
