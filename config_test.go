package strata_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
)

func TestParseConfig(t *testing.T) {
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
	c, err := strata.ParseConfig([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := c.Checkpoint
	if c.State.Backend != "memory" || c.State.DefaultTTL != time.Hour || cp.Dir != "/var/lib/app/ckpt" ||
		cp.Interval != 30*time.Second || cp.MaxCheckpoints != 3 || cp.Compress == nil || *cp.Compress || cp.MinInterval != 5*time.Second {
		t.Fatalf("parsed %+v %+v", c.State, cp)
	}
	s, err := strata.OpenConfig(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Put(t.Context(), []byte("k"), []byte("v"), 0)
	if ttl, err := strata.TTL(t.Context(), s, []byte("k")); err != nil || ttl < 59*time.Minute {
		t.Fatalf("default_ttl not applied: %v, %v", ttl, err)
	}
}

func TestParseConfigLocation(t *testing.T) {
	doc := "[checkpoint]\nlocation = \"s3://bucket/ckpt?region=eu-west-1\"\nmax_deltas = 10\n"
	c, err := strata.ParseConfig([]byte(doc), nil)
	if err != nil || c.Checkpoint.Location != "s3://bucket/ckpt?region=eu-west-1" || c.Checkpoint.MaxDeltas != 10 {
		t.Fatalf("parsed %+v, %v", c, err)
	}
	if _, err := strata.ParseConfig([]byte("[checkpoint]\nmax_deltas = -1\n"), nil); !errors.Is(err, strata.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "checkpoint.max_deltas") {
		t.Fatalf("negative max_deltas: %v", err)
	}
}

func TestParseConfigEnvOverride(t *testing.T) {
	env := map[string]string{"CHECKPOINT_DIR": "/from/env"}
	c, err := strata.ParseConfig([]byte("[checkpoint]\ncheckpoint_dir = \"/from/file\"\n"), func(k string) string { return env[k] })
	if err != nil || c.Checkpoint.Dir != "/from/env" {
		t.Fatalf("CHECKPOINT_DIR override: %+v, %v", c, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"[state]\nbackend = 1\n", "state.backend"},
		{"[state]\ncolour = \"blue\"\n", "state.colour: unknown key (accepted: backend, url, path, default_ttl"},
		{"[state]\ndefault_ttl = 5\n", `state.default_ttl: want a quoted duration`},
		{"[state]\ndefault_ttl = \"soon\"\n", `"soon" is not a non-negative duration`},
		{"[checkpoint]\nmax_checkpoints = 0\n", "checkpoint.max_checkpoints: 0 is not a positive number"},
		{"[checkpoint]\nretention = 3\n", "checkpoint.retention: unknown key (accepted: checkpoint_dir"},
		{"[state\npassword = \"hunter2\"\n", "syntax error at line"},
		{"[bogus]\nx = 1\n", "bogus: unknown table or key"},
	} {
		_, err := strata.ParseConfig([]byte(c.doc), nil)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q) = %v; want ErrInvalidConfig mentioning %q", c.doc, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestOpenConfigErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"[state]\nbackend = \"cassandra\"\n", `state.backend "cassandra" is unknown`},
		{"[state]\nbackend = \"pebble\"\n", "state.path is required"},
		{"[state]\nurl = \"mem://\"\nbackend = \"memory\"\n", "state.url excludes"},
		{"[state.nosuch]\nx = 1\n", "unknown table [state.nosuch]"},
	} {
		cfg, err := strata.ParseConfig([]byte(c.doc), nil)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", c.doc, err)
		}
		s, err := strata.OpenConfig(t.Context(), cfg)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenConfig(%q) = %v; want ErrInvalidConfig mentioning %q", c.doc, err, c.want)
		}
	}
}
