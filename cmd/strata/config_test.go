package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
)

// optimizerConfig writes the operators' config file (config/testdata) with
// its three addresses replaced by addrs, and more replacements applied
// (old, new, old, new, ...), and returns its path.
func optimizerConfig(t *testing.T, addrs []string, more ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "testdata", "optimizer.toml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for i, h := range []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"} {
		doc = strings.Replace(doc, h, addrs[i], 1)
	}
	for i := 0; i+1 < len(more); i += 2 {
		if !strings.Contains(doc, more[i]) {
			t.Fatalf("the config file holds no %q", more[i])
		}
		doc = strings.Replace(doc, more[i], more[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The operators' config file drives the data commands, the checkpoint
// commands and the demo, on a Redis Cluster, with CHECKPOINT_DIR set as
// their deployment sets it.
func TestConfigFileDrivesTheCommand(t *testing.T) {
	c := testserver.StartRedisCluster(t, &testserver.ClusterOptions{Masters: 3})
	cfg := optimizerConfig(t, c.Addrs())
	dir := filepath.Join(t.TempDir(), "ckpt")
	t.Setenv("CHECKPOINT_DIR", dir)

	run(t, "--config", cfg, "put", "user:1", "alice")
	if got := run(t, "--config", cfg, "get", "user:1"); got != "alice\n" {
		t.Fatalf("get = %q", got)
	}
	if got := c.MasterOf(t, "llm_optimizer:user:1").CLI(t, "GET", "llm_optimizer:user:1"); got != "alice" {
		t.Fatalf("redis-cli GET under key_prefix = %q", got)
	}
	if got := run(t, "ttl", "--config", cfg, "user:1"); !strings.HasPrefix(got, "59m") && !strings.HasPrefix(got, "1h0m0s") {
		t.Fatalf("ttl = %q, want default_ttl_secs = 3600", got)
	}
	if got := run(t, "--config", cfg, "keys", "user:"); got != "user:1\n" {
		t.Fatalf("keys = %q", got)
	}
	if got := run(t, "--config", cfg, "stats"); !strings.Contains(got, "redis") {
		t.Fatalf("stats = %q", got)
	}

	// The checkpoint commands take the [checkpoint] table's settings.
	created := regexp.MustCompile(`created (\S+) in `).FindStringSubmatch(run(t, "--config", cfg, "checkpoint", "create"))
	if created == nil {
		t.Fatal("checkpoint create printed no id")
	}
	if _, err := os.Stat(filepath.Join(dir, created[1]+".ckpt")); err != nil {
		t.Fatalf("the checkpoint is not in CHECKPOINT_DIR: %v", err)
	}
	if out := run(t, "--config", cfg, "checkpoint", "inspect", created[1]); !strings.Contains(out, "zstd") {
		t.Fatalf("inspect (compress = true):\n%s", out)
	}
	if out := run(t, "--config", cfg, "checkpoint", "verify"); !strings.Contains(out, created[1]+": ok") {
		t.Fatalf("verify:\n%s", out)
	}
	run(t, "--config", cfg, "del", "user:1")
	if out := run(t, "--config", cfg, "checkpoint", "restore"); !strings.Contains(out, "restored "+created[1]) {
		t.Fatalf("restore:\n%s", out)
	}
	if got := run(t, "--config", cfg, "get", "user:1"); got != "alice\n" {
		t.Fatalf("get after restore = %q", got)
	}

	// The demo: the store and the checkpoints of the file, then a restart
	// that resumes from the store's offset.
	first := run(t, "--config", cfg, "demo", "--duration", "1s", "--rate", "5000", "--batch", "100")
	if !strings.Contains(first, "demo: store of "+cfg+" behind a tier, checkpoints in file://"+dir+" every 10s") {
		t.Fatalf("first run:\n%s", first)
	}
	stopped := regexp.MustCompile(`stopped at offset (\d+) \(\d+ events this run\); \d+ windows hold (\d+) events; last checkpoint (\S+)`).FindStringSubmatch(first)
	if stopped == nil || stopped[1] != stopped[2] || stopped[3] == "none" {
		t.Fatalf("first run did not end consistent, with a checkpoint:\n%s", first)
	}
	second := run(t, "--config", cfg, "demo", "--duration", "1s", "--rate", "5000", "--batch", "100")
	if !strings.Contains(second, "resuming at offset "+stopped[1]) {
		t.Fatalf("second run did not resume from offset %s:\n%s", stopped[1], second)
	}
}

// [checkpoint] enabled = false: the demo takes no checkpoint, and
// cluster_mode = false with one URL is one server.
func TestConfigFileCheckpointsDisabled(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	cfg := optimizerConfig(t, []string{r.Addr, "unused:1", "unused:2"},
		`, "redis://unused:1", "redis://unused:2"]`, `]`, "cluster_mode = true", "cluster_mode = false", "enabled = true", "enabled = false")
	dir := filepath.Join(t.TempDir(), "ckpt")
	t.Setenv("CHECKPOINT_DIR", dir)
	out := run(t, "--config", cfg, "demo", "--duration", "500ms", "--rate", "5000", "--batch", "100", "--no-tier")
	if !strings.Contains(out, "demo: store of "+cfg+", no checkpoints") || !strings.Contains(out, "last checkpoint none") {
		t.Fatalf("demo with enabled = false:\n%s", out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the demo made the checkpoint directory: %v", err)
	}
	if got := r.CLI(t, "EXISTS", "llm_optimizer:{demo}offset"); got != "1" {
		t.Fatalf("the demo's offset is not in the server: EXISTS = %q", got)
	}
}

func TestConfigFlagUsage(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[state]\nbackend = \"memory\"\n[checkpoint]\ncheckpoint_dir = \""+t.TempDir()+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--config", cfg, "get", "--store", "mem://", "k"},
		{"--config", cfg, "bench", "--store", "mem://"},
		{"--config", cfg, "checkpoint", "list", "--dir", "x"},
		{"--config", cfg, "checkpoint", "create", "--store", "mem://"},
		{"--config", cfg, "demo", "--store", "mem://"},
		{"--config", cfg, "demo", "--checkpoint-every", "1s"},
		{"--config", cfg, "migrate", "--from", "mem://", "--to", "mem://"},
	} {
		_, err := runErr(t, args...)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "usage") {
			t.Errorf("strata %s = %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	// A config file with a mistake names it, and the file.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://:hunter2@h\"\nmax_conections = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runErr(t, "--config", bad, "get", "k")
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), bad) ||
		!strings.Contains(err.Error(), "state.redis.max_conections: unknown key") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("get with a bad config file = %v", err)
	}
	// The memory store of the file: --config works with any backend.
	if out := run(t, "--config", cfg, "stats"); !strings.Contains(out, "memory") {
		t.Fatalf("stats of a memory config = %q", out)
	}
	if out := run(t, "--config", cfg, "checkpoint", "list"); !strings.Contains(out, "ID") {
		t.Fatalf("checkpoint list = %q", out)
	}
}
