// Package config reads a process's config.toml and opens the store and
// the checkpoints it describes.
//
// Two layouts are read: strata's own,
//
//	[state]
//	backend = "redis"               # memory (default), bolt, pebble, redis
//	# path = "/var/lib/app/state"   # the bolt file or Pebble directory
//	# url = "pebble:///var/lib/app/state"   instead of backend and path
//	default_ttl = "24h"             # optional
//
//	[state.redis]                   # see stores/redis.Options
//	url = "redis://cache:6379/0"
//	key_prefix = "app:"
//	read_timeout = "500ms"
//
//	[state.tier]                    # optional: an in-process cache in front; see tier
//	max_bytes = 67108864
//
//	[checkpoint]                    # see checkpoint.Options
//	checkpoint_dir = "/var/lib/app/checkpoints"
//	# location = "s3://bucket/prefix?region=eu-west-1"   instead of checkpoint_dir
//	interval = "60s"
//	max_checkpoints = 5
//	compress = true
//	min_interval = "10s"
//	max_deltas = 10                 # incremental checkpoints (default 0: full only)
//
// and the layout of the stream processors whose state layer strata
// replaces, as their operators have it in production (docs/config.md in
// the repository shows the whole file). Its keys mean what they meant
// there:
//
//	its key                         strata's spelling
//	[state.redis]
//	urls = ["redis://h1:6379", …]   url: the seed nodes, a cluster when cluster_mode = true, else one server
//	default_ttl_secs = 3600         default_ttl = "1h"
//	min_connections = 10            pool_min_conns
//	max_connections = 50            pool_max_conns
//	connect_timeout_secs = 5        connect_timeout = "5s"
//	read_timeout_secs = 3           read_timeout = "3s"
//	write_timeout_secs = 3          write_timeout = "3s"
//	retry_base_delay_ms = 100       retry_min_backoff = "100ms"
//	retry_max_delay_secs = 5        retry_max_backoff = "5s"
//	tls_enabled = false             tls
//	[checkpoint]
//	enabled = false                 (no periodic checkpoints: see Checkpoint.Enabled)
//	interval_secs = 10              interval = "10s"
//	min_interval_secs = 10          min_interval = "10s"
//
// The keys both layouts share (key_prefix, max_retries, cluster_mode,
// pipeline_batch_size, checkpoint_dir, max_checkpoints, compress) are
// spelled alike.
//
// Durations are quoted strings such as "500ms" or "1h", except keys ending
// in _secs or _ms, which are whole numbers of seconds or milliseconds.
// Giving two spellings of one setting, an unknown key or table, or a value
// of the wrong type is an error that names the key and what it accepts.
//
// Environment variables override the file: REDIS_URL replaces the Redis
// url or urls, and CHECKPOINT_DIR the checkpoint directory.
//
// The tables under [state] are decoded by the packages that register them
// ([Register]): stores/redis for [state.redis], tier for [state.tier].
// Import github.com/strata-kv/strata/stores/all (and tier, for a tier) so
// that [Parse] checks them and [Open] can open them.
//
// # Errors
//
// Every error of [Load], [Parse], [Open] and [Section.Decode] about the
// file matches strata.ErrInvalidConfig and names the key; [Open] returns
// the store's own errors too, such as strata.ErrUnavailable when a server
// does not answer. Errors, and a Config printed with fmt or log/slog, never
// show a password.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// Config is a parsed config file. Create one with [Load] or [Parse].
type Config struct {
	// State is the [state] table's own keys.
	State State
	// Checkpoint is the [checkpoint] table.
	Checkpoint Checkpoint

	tables map[string]map[string]any // the tables under [state], by name
	getenv func(string) string
}

// State is the [state] table, without the tables under it.
type State struct {
	// Backend names the store kind: "memory" (the default), "bolt",
	// "pebble", or a kind configured by its own table, such as "redis".
	Backend string `toml:"backend"`
	// URL opens any store by URL instead of Backend and Path.
	URL string `toml:"url"`
	// Path is the bolt file or Pebble directory.
	Path string `toml:"path"`
	// DefaultTTL applies to writes with ttl == 0, unless the backend's
	// table sets its own. Default: none.
	DefaultTTL time.Duration `toml:"default_ttl" alias:"default_ttl_secs"`
}

// Checkpoint is the [checkpoint] table. checkpoint.OptionsFromConfig turns
// it into the options of a checkpoint.Coordinator, and checkpoint.FromConfig
// into a Coordinator.
type Checkpoint struct {
	// Enabled is true when the file has a [checkpoint] table that does
	// not say enabled = false: the process should take periodic
	// checkpoints (see checkpoint.FromConfig).
	Enabled bool `toml:"enabled"`
	// Dir is the checkpoint directory (checkpoint_dir; CHECKPOINT_DIR
	// overrides it).
	Dir string `toml:"checkpoint_dir"`
	// Interval is the time between periodic checkpoints. Default: the
	// coordinator's (1 minute).
	Interval time.Duration `toml:"interval" alias:"interval_secs"`
	// MinInterval is the least time between two checkpoints. Default
	// none.
	MinInterval time.Duration `toml:"min_interval" alias:"min_interval_secs"`
	// MaxCheckpoints is how many checkpoints retention keeps. Default: the
	// coordinator's (5).
	MaxCheckpoints int `toml:"max_checkpoints"`
	// Compress is nil when the file does not say (the default, zstd).
	Compress *bool `toml:"compress"`
	// Location is the URL of the checkpoints' location (location), such as
	// s3://bucket/prefix?region=eu-west-1, instead of checkpoint_dir.
	// CHECKPOINT_DIR, when set, replaces either.
	Location string `toml:"location"`
	// MaxDeltas is the longest chain of incremental checkpoints
	// (max_deltas). Default 0: full checkpoints only.
	MaxDeltas int `toml:"max_deltas"`
}

// Load reads and parses the config file at path (see the package
// documentation), with the environment overrides of the process.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", strata.ErrInvalidConfig, err)
	}
	return Parse(data, os.Getenv)
}

// Parse parses a config file's text, with getenv for the environment
// overrides (nil: no overrides). It checks every table it knows: [state],
// [checkpoint], and the tables under [state] whose packages are linked in
// (the backend's, and the wrappers').
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, fmt.Errorf("%w: config: %s", strata.ErrInvalidConfig, errReason(err))
	}
	c := &Config{tables: map[string]map[string]any{}, getenv: getenv}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if k != "state" && k != "checkpoint" {
			errs = append(errs, fmt.Errorf("%s: unknown table or key (accepted: [state], [checkpoint])", k))
			continue
		}
		if _, ok := doc[k].(map[string]any); !ok {
			errs = append(errs, fmt.Errorf("%s: %w", k, want("a table ["+k+"]", doc[k])))
		}
	}
	if state, ok := doc["state"].(map[string]any); ok {
		errs = append(errs, decodeTable("state", state, &c.State, true)...)
		for name, v := range state {
			if t, ok := v.(map[string]any); ok {
				c.tables[name] = t
			}
		}
	}
	if cp, ok := doc["checkpoint"].(map[string]any); ok {
		c.Checkpoint.Enabled = true
		errs = append(errs, decodeTable("checkpoint", cp, &c.Checkpoint, false)...)
		if n := c.Checkpoint.MaxCheckpoints; cp["max_checkpoints"] != nil && n < 1 {
			errs = append(errs, fmt.Errorf("checkpoint.max_checkpoints: %d is not a positive number", n))
		}
		if n := c.Checkpoint.MaxDeltas; n < 0 {
			errs = append(errs, fmt.Errorf("checkpoint.max_deltas: %d is negative", n))
		}
		if c.Checkpoint.Location != "" && c.Checkpoint.Dir != "" {
			errs = append(errs, errors.New("checkpoint: give checkpoint_dir or location, not both"))
		}
	}
	if dir := getenv("CHECKPOINT_DIR"); dir != "" {
		c.Checkpoint.Dir, c.Checkpoint.Location = dir, ""
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: config: %w", strata.ErrInvalidConfig, errors.Join(errs...))
	}
	// The tables of linked-in packages check themselves; their errors
	// match ErrInvalidConfig already.
	var tableErrs []error
	for _, name := range c.used() {
		if t, ok := lookup(name); ok && t.Check != nil {
			if err := t.Check(c.Section(name)); err != nil {
				tableErrs = append(tableErrs, err)
			}
		}
	}
	if len(tableErrs) > 0 {
		return nil, errors.Join(tableErrs...)
	}
	return c, nil
}

// used returns the names of the tables under [state] that opening the
// store reads: the backend's (even when absent: an environment variable
// may configure it), and those of the registered wrappers present.
func (c *Config) used() []string {
	var names []string
	if c.State.URL == "" && c.State.Backend != "" {
		names = append(names, c.State.Backend)
	}
	for _, name := range slices.Sorted(maps.Keys(c.tables)) {
		if t, ok := lookup(name); ok && t.Wrapper {
			names = append(names, name)
		}
	}
	return names
}

// Tables returns the names of the tables under [state] in the file,
// sorted.
func (c Config) Tables() []string { return slices.Sorted(maps.Keys(c.tables)) }

// Section returns the table [state.<name>], for the package that decodes
// it (its Defined method reports whether the file has it).
func (c *Config) Section(name string) Section {
	t, ok := c.tables[name]
	return Section{name: name, table: t, defined: ok, state: c.State, getenv: c.getenv}
}

// String describes c without the tables' values and with any password in
// State.URL redacted, for %v and %+v.
func (c Config) String() string {
	return fmt.Sprintf("config.Config{State: %v, Checkpoint: %+v, Tables: [%s]}",
		c.State, c.Checkpoint, strings.Join(c.Tables(), " "))
}

// GoString is String, so that %#v does not print a password either.
func (c Config) GoString() string { return c.String() }

// LogValue is what log/slog prints for c: no password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("state", c.State),
		slog.Any("checkpoint", c.Checkpoint),
		slog.String("tables", strings.Join(c.Tables(), " ")),
	)
}

// String describes s with any password in URL redacted.
func (s State) String() string {
	return fmt.Sprintf("config.State{Backend: %q, URL: %q, Path: %q, DefaultTTL: %v}",
		s.Backend, storekit.RedactURL(s.URL), s.Path, s.DefaultTTL)
}

// GoString is String, so that %#v does not print a password either.
func (s State) GoString() string { return s.String() }

// LogValue is what log/slog prints for s: no password.
func (s State) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("backend", s.Backend),
		slog.String("url", storekit.RedactURL(s.URL)),
		slog.String("path", s.Path),
		slog.Duration("default_ttl", s.DefaultTTL),
	)
}

// String describes c, showing an unset Compress as the default.
func (c Checkpoint) String() string {
	return fmt.Sprintf("{Enabled: %t, Dir: %q, Location: %q, Interval: %v, MinInterval: %v, MaxCheckpoints: %d, MaxDeltas: %d, Compress: %s}",
		c.Enabled, c.Dir, storekit.RedactURL(c.Location), c.Interval, c.MinInterval, c.MaxCheckpoints, c.MaxDeltas, c.compress())
}

func (c Checkpoint) compress() string {
	if c.Compress == nil {
		return "default"
	}
	return fmt.Sprint(*c.Compress)
}

// LogValue is what log/slog prints for c.
func (c Checkpoint) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("enabled", c.Enabled),
		slog.String("dir", c.Dir),
		slog.String("location", storekit.RedactURL(c.Location)),
		slog.Duration("interval", c.Interval),
		slog.Duration("min_interval", c.MinInterval),
		slog.Int("max_checkpoints", c.MaxCheckpoints),
		slog.Int("max_deltas", c.MaxDeltas),
		slog.String("compress", c.compress()),
	)
}

// errReason returns a TOML decoding error's message without quoting the
// document: a syntax error would quote its line, which may hold a password.
func errReason(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("syntax error at line %d, column %d", pe.Position.Line, pe.Position.Col)
	}
	return "malformed TOML"
}
