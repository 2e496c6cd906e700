package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/kit"
	"github.com/strata-kv/strata/storekit"
)

// Table is what a package registers, with [Register], for its table under
// [state]: how to check it and how to open the store it describes.
type Table struct {
	// Wrapper says the table wraps whatever store the file opens whenever
	// the table is present (a cache tier does), instead of opening a store
	// when [state] backend names it.
	Wrapper bool

	// Check decodes and validates the table without I/O. [Parse] calls
	// it for the tables the file uses. Optional.
	Check func(sec Section) error

	// Open opens the store of a backend table (inner is nil), or wraps
	// inner, the store opened so far, with a wrapper.
	Open func(ctx context.Context, sec Section, inner strata.Store) (strata.Store, error)
}

var registry struct {
	sync.RWMutex
	tables map[string]Table
}

// Register makes the table [state.<name>] known to [Parse] and [Open].
// Store packages call it in an init function. It panics on a duplicate or
// empty name, or a nil t.Open, as strata.Register does.
func Register(name string, t Table) {
	registry.Lock()
	defer registry.Unlock()
	if name == "" || t.Open == nil {
		panic("config: Register with an empty name or nil Open")
	}
	if _, dup := registry.tables[name]; dup {
		panic("config: Register called twice for " + name)
	}
	if registry.tables == nil {
		registry.tables = make(map[string]Table)
	}
	registry.tables[name] = t
}

func lookup(name string) (Table, bool) {
	registry.RLock()
	defer registry.RUnlock()
	t, ok := registry.tables[name]
	return t, ok
}

// registered returns the names of the registered backends and wrappers,
// sorted.
func registered() (backends, wrappers []string) {
	registry.RLock()
	defer registry.RUnlock()
	for _, name := range slices.Sorted(maps.Keys(registry.tables)) {
		if registry.tables[name].Wrapper {
			wrappers = append(wrappers, name)
		} else {
			backends = append(backends, name)
		}
	}
	return backends, wrappers
}

// Section is one table under [state], such as [state.redis], as the
// package that registered it receives it.
type Section struct {
	name    string
	table   map[string]any
	defined bool
	state   State
	getenv  func(string) string
}

// Name is the table's name ("redis" for [state.redis]).
func (s Section) Name() string { return s.name }

// Path is the table's dotted name, for messages ("state.redis").
func (s Section) Path() string { return "state." + s.name }

// Defined reports whether the file has the table.
func (s Section) Defined() bool { return s.defined }

// State is the file's [state] table.
func (s Section) State() State { return s.state }

// Getenv reads an environment variable through the Config's getenv (see
// [Parse]).
func (s Section) Getenv(name string) string {
	if s.getenv == nil {
		return ""
	}
	return s.getenv(name)
}

// Has reports whether the table sets key (in that spelling).
func (s Section) Has(key string) bool {
	_, ok := s.table[key]
	return ok
}

// Decode sets the fields of dst, a pointer to a struct, from the table's
// keys, strictly: each field takes the key of its toml tag and the other
// spellings listed in its alias tag,
//
//	DialTimeout time.Duration `toml:"connect_timeout" alias:"connect_timeout_secs"`
//
// and a key no field takes, a value of the wrong type, or two spellings
// of one field are errors naming the key (see the package documentation
// for durations). Fields of absent keys keep their values. Errors match
// strata.ErrInvalidConfig and never quote a value but a duration's.
func (s Section) Decode(dst any) error {
	if errs := decodeTable(s.Path(), s.table, dst, false); len(errs) > 0 {
		return fmt.Errorf("%w: config: %w", strata.ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// String describes s without its values, which may hold a password.
func (s Section) String() string {
	return fmt.Sprintf("config.Section{[%s]: %s}", s.Path(), strings.Join(slices.Sorted(maps.Keys(s.table)), ", "))
}

// GoString is String, so that %#v does not print a password either.
func (s Section) GoString() string { return s.String() }

// LogValue is what log/slog prints for s: its keys, not their values.
func (s Section) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("table", s.Path()),
		slog.String("keys", strings.Join(slices.Sorted(maps.Keys(s.table)), " ")),
	)
}

// Open opens the store c describes: the [state] backend (or url), wrapped
// by the registered wrappers whose tables are present (a [state.tier] puts
// a cache in front). The packages of the tables it names must be linked in;
// import github.com/strata-kv/strata/stores/all for every built-in store.
//
// opts are strata.Open's options: they reach the opener of every table
// (redis.WithHooks, say), and strata.WithTracerProvider wraps the store
// returned, wrappers included, with strata.WithTracing.
func Open(ctx context.Context, c *Config, opts ...strata.OpenOption) (strata.Store, error) {
	ctx = kit.WithOpenOptions(ctx, opts)
	s, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	if tp, ok := storekit.TracerProvider(ctx); ok {
		s = strata.WithTracing(s, tp)
	}
	return s, nil
}

func (c *Config) open(ctx context.Context) (strata.Store, error) {
	backends, wrappers := registered()
	for _, name := range c.Tables() {
		if _, ok := lookup(name); !ok {
			return nil, fmt.Errorf("%w: config: unknown table [state.%s] (known: %s; is its package linked in?)",
				strata.ErrInvalidConfig, name, strings.Join(append(backends, wrappers...), ", "))
		}
	}
	s, err := c.openBackend(ctx, backends)
	if err != nil {
		return nil, err
	}
	for _, name := range wrappers {
		if _, ok := c.tables[name]; !ok {
			continue
		}
		t, _ := lookup(name)
		w, err := t.Open(ctx, c.Section(name), s)
		if err != nil {
			s.Close()
			return nil, err
		}
		s = w
	}
	return s, nil
}

func (c *Config) openBackend(ctx context.Context, backends []string) (strata.Store, error) {
	st := c.State
	if st.URL != "" {
		if st.Backend != "" || st.Path != "" {
			return nil, fmt.Errorf("%w: config: state.url excludes state.backend and state.path", strata.ErrInvalidConfig)
		}
		return strata.Open(ctx, st.URL)
	}
	backend := st.Backend
	if backend == "" {
		backend = "memory"
	}
	if t, ok := lookup(backend); ok && !t.Wrapper {
		return t.Open(ctx, c.Section(backend), nil)
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
			return nil, fmt.Errorf("%w: config: state.path is required for backend %q", strata.ErrInvalidConfig, backend)
		}
		u = url.URL{Scheme: backend, Path: st.Path, RawQuery: q.Encode()}
	default:
		return nil, fmt.Errorf("%w: config: state.backend %q is unknown (accepted: %s)",
			strata.ErrInvalidConfig, backend, strings.Join(append([]string{"memory", "bolt", "pebble"}, backends...), ", "))
	}
	return strata.OpenURL(ctx, &u)
}
