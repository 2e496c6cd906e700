package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/config"
	_ "github.com/strata-kv/strata/stores/all"
	_ "github.com/strata-kv/strata/tier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	doc := `
[state]
backend = "memory"
default_ttl = "1h"

[checkpoint]
checkpoint_dir = "/var/lib/app/ckpt"
interval = "30s"
max_checkpoints = 3
compress = false
min_interval = "5s"
`
	c, err := config.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := c.Checkpoint
	if c.State.Backend != "memory" || c.State.DefaultTTL != time.Hour || cp.Dir != "/var/lib/app/ckpt" || !cp.Enabled ||
		cp.Interval != 30*time.Second || cp.MaxCheckpoints != 3 || cp.Compress == nil || *cp.Compress || cp.MinInterval != 5*time.Second {
		t.Fatalf("parsed %v %v", c.State, cp)
	}
	s, err := config.Open(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(t.Context(), []byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if ttl, err := strata.TTL(t.Context(), s, []byte("k")); err != nil || ttl < 59*time.Minute {
		t.Fatalf("default_ttl not applied: %v, %v", ttl, err)
	}
}

func TestParseEnvOverride(t *testing.T) {
	env := map[string]string{"CHECKPOINT_DIR": "/from/env"}
	c, err := config.Parse([]byte("[checkpoint]\ncheckpoint_dir = \"/from/file\"\n"), func(k string) string { return env[k] })
	if err != nil || c.Checkpoint.Dir != "/from/env" {
		t.Fatalf("CHECKPOINT_DIR override: %v, %v", c, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"[state]\nbackend = 1\n", "state.backend: want a string, not an integer"},
		{"[state]\ncolour = \"blue\"\n", "state.colour: unknown key (accepted: backend, default_ttl"},
		{"[state]\ndefault_ttl = 5\n", `state.default_ttl: want a quoted duration`},
		{"[state]\ndefault_ttl = \"soon\"\n", `"soon" is not a non-negative duration`},
		{"[state]\ndefault_ttl = \"-1s\"\n", `"-1s" is not a non-negative duration`},
		{"[checkpoint]\nmax_checkpoints = 0\n", "checkpoint.max_checkpoints: 0 is not a positive number"},
		{"[checkpoint]\nretention = 3\n", "checkpoint.retention: unknown key (accepted: checkpoint_dir, compress"},
		{"[checkpoint]\ncompress = \"yes\"\n", "checkpoint.compress: want true or false, not a string"},
		{"[state\npassword = \"hunter2\"\n", "syntax error at line"},
		{"[bogus]\nx = 1\n", "bogus: unknown table or key"},
		{"state = 3\n", "state: want a table [state], not an integer"},
		{"[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://:hunter2@h\"\npassword = 12345\n", "state.redis.password: want a string, not an integer"},
		{"[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://:hunter2@h:bad\"\n", "redis: url"},
		{"[state.tier]\nmax_bytes = \"big\"\nttl = 3\n", "state.tier.max_bytes: want an integer"},
		{"[state.tier]\nmax_bytes = \"big\"\nttl = 3\n", "state.tier.ttl: unknown key (accepted: engine, invalidation, max_bytes"},
	} {
		_, err := config.Parse([]byte(c.doc), nil)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v; want ErrInvalidConfig mentioning %q", c.doc, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "12345")) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"[state]\nbackend = \"cassandra\"\n", `state.backend "cassandra" is unknown (accepted: memory, bolt, pebble, redis)`},
		{"[state]\nbackend = \"pebble\"\n", "state.path is required"},
		{"[state]\nurl = \"mem://\"\nbackend = \"memory\"\n", "state.url excludes"},
		{"[state.nosuch]\nx = 1\n", "unknown table [state.nosuch]"},
	} {
		cfg, err := config.Parse([]byte(c.doc), nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.doc, err)
		}
		s, err := config.Open(t.Context(), cfg)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v; want ErrInvalidConfig mentioning %q", c.doc, err, c.want)
		}
	}
}

func TestLoad(t *testing.T) {
	if _, err := config.Load(t.TempDir() + "/nosuch.toml"); !errors.Is(err, strata.ErrInvalidConfig) {
		t.Fatalf("Load of a missing file = %v", err)
	}
}

// A loaded config never prints a password: not with fmt's verbs, not
// through log/slog, not in its parts.
func TestConfigRedaction(t *testing.T) {
	for _, doc := range []string{
		"[state]\nbackend = \"redis\"\n[state.redis]\nurls = [\"redis://:hunter2@h1:1\", \"redis://:hunter2@h2:2\"]\n" +
			"cluster_mode = true\npassword = \"hunter2\"\nusername = \"app\"\n[checkpoint]\ncheckpoint_dir = \"/ckpt\"\n",
		"[state]\nurl = \"redis://app:hunter2@h:6379/0?prefix=a:\"\n",
	} {
		c, err := config.Parse([]byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&logged, nil), slog.NewTextHandler(&logged, nil)} {
			slog.New(h).Info("loaded", "config", c, "value", *c, "state", c.State, "section", c.Section("redis"))
		}
		var printed []string
		for _, v := range []any{c, *c, c.State, c.Section("redis")} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				printed = append(printed, fmt.Sprintf(verb, v))
			}
		}
		printed = append(printed, logged.String())
		for _, out := range printed {
			if strings.Contains(out, "hunter2") {
				t.Fatalf("printed config shows the password:\n%s", out)
			}
		}
		if all := strings.Join(printed, "\n"); !strings.Contains(all, "redis") {
			t.Fatalf("printed config says nothing useful:\n%s", all)
		}
	}
}

// FromConfig: the file's settings, over the caller's defaults.
func TestFromConfig(t *testing.T) {
	ctx := t.Context()
	fileDir, callerDir := t.TempDir(), t.TempDir()
	s, err := strata.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		doc     string
		opts    *checkpoint.Options
		wantDir string
	}{
		{"[checkpoint]\ncheckpoint_dir = \"" + fileDir + "\"\n", nil, fileDir},
		{"[checkpoint]\ncheckpoint_dir = \"" + fileDir + "\"\n", &checkpoint.Options{Dir: callerDir}, fileDir},
		{"[checkpoint]\nenabled = true\n", &checkpoint.Options{Dir: callerDir}, callerDir},
	} {
		cfg, err := config.Parse([]byte(c.doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		coord, err := checkpoint.FromConfig(cfg, s, c.opts)
		if err != nil || coord == nil || coord.Dir() != c.wantDir {
			t.Fatalf("FromConfig(%q, %+v) = %v, %v; want one in %s", c.doc, c.opts, coord, err, c.wantDir)
		}
	}
	for doc, want := range map[string]string{
		"[checkpoint]\nenabled = true\n":     "checkpoint_dir, location (or CHECKPOINT_DIR) is required",
		"[checkpoint]\ninterval = \"-1s\"\n": `"-1s" is not a non-negative duration`,
	} {
		cfg, err := config.Parse([]byte(doc), nil)
		if err == nil {
			_, err = checkpoint.FromConfig(cfg, s, nil)
		}
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want ErrInvalidConfig mentioning %q", doc, err, want)
		}
	}
	// No [checkpoint] table: no checkpoints.
	cfg, err := config.Parse([]byte("[state]\nbackend = \"memory\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if coord, err := checkpoint.FromConfig(cfg, s, &checkpoint.Options{Dir: callerDir}); coord != nil || err != nil {
		t.Fatalf("FromConfig without [checkpoint] = %v, %v; want nil, nil", coord, err)
	}
}

func TestCheckpointLocation(t *testing.T) {
	doc := "[checkpoint]\nlocation = \"s3://bucket/ckpt?region=eu-west-1\"\nmax_deltas = 10\n"
	c, err := config.Parse([]byte(doc), nil)
	if err != nil || c.Checkpoint.Location != "s3://bucket/ckpt?region=eu-west-1" || c.Checkpoint.MaxDeltas != 10 {
		t.Fatalf("parsed %+v, %v", c, err)
	}
	o := checkpoint.OptionsFromConfig(c.Checkpoint)
	if o.Location != "s3://bucket/ckpt?region=eu-west-1" || o.MaxDeltas != 10 || o.Dir != "" {
		t.Fatalf("options %+v", o)
	}
	for _, bad := range []string{
		"[checkpoint]\nmax_deltas = -1\n",
		"[checkpoint]\nlocation = \"s3://b/p\"\ncheckpoint_dir = \"/d\"\n",
	} {
		if _, err := config.Parse([]byte(bad), nil); !errors.Is(err, strata.ErrInvalidConfig) {
			t.Fatalf("%q: %v, want ErrInvalidConfig", bad, err)
		}
	}
	// CHECKPOINT_DIR, as the deployment sets it, replaces the file's
	// location too.
	c, err = config.Parse([]byte(doc), func(k string) string { return map[string]string{"CHECKPOINT_DIR": "/mnt/ckpt"}[k] })
	if err != nil || c.Checkpoint.Dir != "/mnt/ckpt" || c.Checkpoint.Location != "" {
		t.Fatalf("CHECKPOINT_DIR over a location: %+v, %v", c.Checkpoint, err)
	}
}
