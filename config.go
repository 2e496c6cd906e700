package strata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a config.toml in the seed's layout:
//
//	[state]
//	backend = "pebble"              # memory (default), bolt, pebble, redis
//	path = "/var/lib/app/state"     # bolt file or pebble directory
//	default_ttl = "24h"             # optional
//	# url = "pebble:///var/lib/app/state"   instead of backend and path
//
//	[state.redis]                   # backend = "redis": see stores/redis.Config
//	url = "redis://cache:6379/0"
//	key_prefix = "app:"
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
// Durations are quoted strings such as "500ms" or "1h". Unknown keys and
// tables are errors. Environment variables override the file: REDIS_URL
// sets state.redis.url and CHECKPOINT_DIR sets checkpoint.checkpoint_dir.
type Config struct {
	State      StateConfig
	Checkpoint CheckpointConfig

	md       toml.MetaData
	sections map[string]toml.Primitive // the tables under [state]
	env      func(string) string
}

// StateConfig is the [state] table.
type StateConfig struct {
	// Backend names the store kind: "memory" (the default), "bolt",
	// "pebble", or a kind configured by its own table, such as "redis".
	Backend string
	// URL opens any store by URL instead of Backend and Path.
	URL string
	// Path is the bolt file or Pebble directory.
	Path string
	// DefaultTTL applies to writes with ttl == 0 (0: none).
	DefaultTTL time.Duration
}

// CheckpointConfig is the [checkpoint] table, which package checkpoint
// turns into its Options.
type CheckpointConfig struct {
	Dir            string        `toml:"checkpoint_dir"`
	Interval       time.Duration `toml:"interval"`
	MaxCheckpoints int           `toml:"max_checkpoints"`
	// Compress is nil when the file does not say (the default, zstd).
	Compress    *bool         `toml:"compress"`
	MinInterval time.Duration `toml:"min_interval"`
	// Location is the URL of the checkpoints' location (file://, s3://...),
	// instead of Dir.
	Location string `toml:"location"`
	// MaxDeltas is the longest chain of incremental checkpoints.
	MaxDeltas int `toml:"max_deltas"`
}

// ConfigSection is one table under [state], such as [state.redis], handed
// to the package that registered it with [RegisterConfig].
type ConfigSection struct {
	// Name is the table's name ("redis" for [state.redis]).
	Name string
	// State is the [state] table.
	State StateConfig

	md      *toml.MetaData
	table   toml.Primitive
	defined bool
	env     func(string) string
}

// Defined reports whether the file has the table.
func (s ConfigSection) Defined() bool { return s.defined }

// TOML returns the document's metadata and the table, for decoders that
// take them (stores/redis.DecodeTOML). The decoder must reject keys it does
// not know.
func (s ConfigSection) TOML() (*toml.MetaData, toml.Primitive) { return s.md, s.table }

// Getenv reads an environment variable (tests replace the environment).
func (s ConfigSection) Getenv(name string) string { return s.env(name) }

// ConfigOpener opens a store from its [state.<name>] table (backend = name),
// or, when the table configures a wrapper such as a tier, wraps inner with
// it (inner is nil for a backend).
type ConfigOpener func(ctx context.Context, sec ConfigSection, inner Store) (Store, error)

var configs struct {
	sync.RWMutex
	backends map[string]ConfigOpener
	wrappers map[string]ConfigOpener
}

// RegisterConfig makes a [state.<name>] table known to [OpenConfig].
// A backend opens the store when [state] backend = name; a wrapper wraps
// whatever store the configuration opens whenever its table is present. It
// panics on a duplicate name, as [Register] does.
func RegisterConfig(name string, wrapper bool, open ConfigOpener) {
	configs.Lock()
	defer configs.Unlock()
	m := &configs.backends
	if wrapper {
		m = &configs.wrappers
	}
	if name == "" || open == nil {
		panic("strata: RegisterConfig with an empty name or nil opener")
	}
	if _, dup := configs.backends[name]; dup {
		panic("strata: RegisterConfig called twice for " + name)
	}
	if _, dup := configs.wrappers[name]; dup {
		panic("strata: RegisterConfig called twice for " + name)
	}
	if *m == nil {
		*m = make(map[string]ConfigOpener)
	}
	(*m)[name] = open
}

// LoadConfig reads and parses a config.toml (see [Config]). Errors match
// ErrInvalidConfig and name the key; secrets never appear in them.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return ParseConfig(data, os.Getenv)
}

// ParseConfig parses a config.toml document, with getenv for the
// environment overrides (nil: no overrides).
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var doc struct {
		State      map[string]toml.Primitive `toml:"state"`
		Checkpoint toml.Primitive            `toml:"checkpoint"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, fmt.Errorf("%w: config: %s", ErrInvalidConfig, configErrReason(err))
	}
	c := &Config{md: md, sections: map[string]toml.Primitive{}, env: getenv}
	var errs []error
	for _, k := range md.Keys() {
		if len(k) == 1 && k[0] != "state" && k[0] != "checkpoint" {
			errs = append(errs, fmt.Errorf("%s: unknown table or key (accepted: [state], [checkpoint])", k[0]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(doc.State)) {
		prim := doc.State[k]
		if md.Type("state", k) == "Hash" {
			c.sections[k] = prim
			continue
		}
		var err error
		switch k {
		case "backend":
			err = md.PrimitiveDecode(prim, &c.State.Backend)
		case "url":
			err = md.PrimitiveDecode(prim, &c.State.URL)
		case "path":
			err = md.PrimitiveDecode(prim, &c.State.Path)
		case "default_ttl":
			c.State.DefaultTTL, err = decodeDuration(md, prim)
		default:
			err = errors.New("unknown key (accepted: backend, url, path, default_ttl, and tables such as [state.redis])")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("state.%s: %s", k, configErrReason(err)))
		}
	}
	if md.IsDefined("checkpoint") {
		errs = append(errs, c.decodeCheckpoint(doc.Checkpoint)...)
	}
	if dir := getenv("CHECKPOINT_DIR"); dir != "" {
		c.Checkpoint.Dir = dir
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: config: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return c, nil
}

func (c *Config) decodeCheckpoint(prim toml.Primitive) []error {
	var raw map[string]toml.Primitive
	if err := c.md.PrimitiveDecode(prim, &raw); err != nil {
		return []error{fmt.Errorf("checkpoint: %s", configErrReason(err))}
	}
	var errs []error
	cp := &c.Checkpoint
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		p := raw[k]
		var err error
		switch k {
		case "checkpoint_dir":
			err = c.md.PrimitiveDecode(p, &cp.Dir)
		case "interval":
			cp.Interval, err = decodeDuration(c.md, p)
		case "min_interval":
			cp.MinInterval, err = decodeDuration(c.md, p)
		case "max_checkpoints":
			err = c.md.PrimitiveDecode(p, &cp.MaxCheckpoints)
			if err == nil && cp.MaxCheckpoints < 1 {
				err = fmt.Errorf("%d is not a positive number", cp.MaxCheckpoints)
			}
		case "compress":
			var b bool
			err = c.md.PrimitiveDecode(p, &b)
			cp.Compress = &b
		case "location":
			err = c.md.PrimitiveDecode(p, &cp.Location)
		case "max_deltas":
			err = c.md.PrimitiveDecode(p, &cp.MaxDeltas)
			if err == nil && cp.MaxDeltas < 0 {
				err = fmt.Errorf("%d is negative", cp.MaxDeltas)
			}
		default:
			err = errors.New("unknown key (accepted: checkpoint_dir, location, interval, max_checkpoints, max_deltas, compress, min_interval)")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint.%s: %s", k, configErrReason(err)))
		}
	}
	return errs
}

// decodeDuration reads a quoted duration such as "500ms".
func decodeDuration(md toml.MetaData, p toml.Primitive) (time.Duration, error) {
	var s string
	if err := md.PrimitiveDecode(p, &s); err != nil {
		return 0, errors.New(`want a quoted duration such as "500ms" or "1h"`)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf(`%q is not a non-negative duration such as "500ms" or "1h"`, s)
	}
	return d, nil
}

// configErrReason returns a decoding error's message without quoting the
// document: a syntax error would quote its line, which may hold a password.
func configErrReason(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("syntax error at line %d, column %d", pe.Position.Line, pe.Position.Col)
	}
	return err.Error()
}

// OpenConfig opens the store a [Config] describes: the [state] backend (or
// url), wrapped by the wrappers whose tables are present (a [state.tier]
// puts a cache in front). The packages of the kinds it names must be linked
// in; import github.com/strata-kv/strata/stores/all for every built-in one.
func OpenConfig(ctx context.Context, c *Config) (Store, error) {
	configs.RLock()
	backends, wrappers := maps.Clone(configs.backends), maps.Clone(configs.wrappers)
	configs.RUnlock()
	for name := range c.sections {
		if backends[name] == nil && wrappers[name] == nil {
			known := slices.Sorted(maps.Keys(backends))
			known = append(known, slices.Sorted(maps.Keys(wrappers))...)
			return nil, fmt.Errorf("%w: config: unknown table [state.%s] (known: %s; is its package linked in?)",
				ErrInvalidConfig, name, strings.Join(known, ", "))
		}
	}
	s, err := c.openBackend(ctx, backends)
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(wrappers)) {
		if _, ok := c.sections[name]; !ok {
			continue
		}
		w, err := wrappers[name](ctx, c.section(name), s)
		if err != nil {
			s.Close()
			return nil, err
		}
		s = w
	}
	return s, nil
}

func (c *Config) section(name string) ConfigSection {
	prim, ok := c.sections[name]
	return ConfigSection{Name: name, State: c.State, md: &c.md, table: prim, defined: ok, env: c.env}
}

func (c *Config) openBackend(ctx context.Context, backends map[string]ConfigOpener) (Store, error) {
	st := c.State
	if st.URL != "" {
		if st.Backend != "" || st.Path != "" {
			return nil, fmt.Errorf("%w: config: state.url excludes state.backend and state.path", ErrInvalidConfig)
		}
		return Open(ctx, st.URL)
	}
	backend := st.Backend
	if backend == "" {
		backend = "memory"
	}
	if open := backends[backend]; open != nil {
		return open(ctx, c.section(backend), nil)
	}
	q := url.Values{}
	if st.DefaultTTL > 0 {
		q.Set("default_ttl", st.DefaultTTL.String())
	}
	var u url.URL
	switch backend {
	case "memory":
		u = url.URL{Scheme: "mem", RawQuery: q.Encode()}
	case "bolt", "pebble":
		if st.Path == "" {
			return nil, fmt.Errorf("%w: config: state.path is required for backend %q", ErrInvalidConfig, backend)
		}
		u = url.URL{Scheme: backend, Path: st.Path, RawQuery: q.Encode()}
	default:
		return nil, fmt.Errorf("%w: config: state.backend %q is unknown (accepted: memory, bolt, pebble, %s)",
			ErrInvalidConfig, backend, strings.Join(slices.Sorted(maps.Keys(backends)), ", "))
	}
	return Open(ctx, u.String())
}
