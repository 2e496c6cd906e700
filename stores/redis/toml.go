package redis

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/strata-kv/strata"
)

// TOMLTable is where the seed's config.toml keeps the Redis settings.
const TOMLTable = "state.redis"

// tomlConfig mirrors Config with durations as strings ("5s"), so that a
// bare number (which TOML would read as nanoseconds) is an error.
type tomlConfig struct {
	URL                   string   `toml:"url"`
	Username              string   `toml:"username"`
	Password              string   `toml:"password"`
	ClusterMode           bool     `toml:"cluster_mode"`
	ClusterNodes          []string `toml:"cluster_nodes"`
	KeyPrefix             string   `toml:"key_prefix"`
	DefaultTTL            any      `toml:"default_ttl"`
	MaxValueSize          int      `toml:"max_value_size"`
	PoolMinConns          int      `toml:"pool_min_conns"`
	PoolMaxConns          int      `toml:"pool_max_conns"`
	ConnectTimeout        any      `toml:"connect_timeout"`
	ReadTimeout           any      `toml:"read_timeout"`
	WriteTimeout          any      `toml:"write_timeout"`
	MaxRetries            int      `toml:"max_retries"`
	RetryMinBackoff       any      `toml:"retry_min_backoff"`
	RetryMaxBackoff       any      `toml:"retry_max_backoff"`
	TLS                   bool     `toml:"tls"`
	TLSServerName         string   `toml:"tls_server_name"`
	TLSCAFile             string   `toml:"tls_ca_file"`
	TLSCertFile           string   `toml:"tls_cert_file"`
	TLSKeyFile            string   `toml:"tls_key_file"`
	TLSInsecureSkipVerify bool     `toml:"tls_insecure_skip_verify"`
	PipelineBatchSize     int      `toml:"pipeline_batch_size"`
}

// tomlKeys are the keys a [state.redis] table accepts.
var tomlKeys = func() []string {
	t := reflect.TypeFor[tomlConfig]()
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("toml")
	}
	slices.Sort(keys)
	return keys
}()

// LoadTOML reads the [state.redis] table of a TOML document laid out as
// the seed's config.toml, ignoring the document's other tables:
//
//	[state.redis]
//	url = "redis://cache.internal:6379/0"
//	key_prefix = "app:"
//	read_timeout = "500ms"
//	max_retries = 5
//
// Keys are the toml tags of Config's fields; durations are strings such as
// "250ms" or "5s". An unknown key, a wrong type or a bad value is an error
// matching strata.ErrInvalidConfig that names the key; the result is
// validated. The password never appears in errors.
func LoadTOML(data []byte) (Config, error) {
	var doc struct {
		State struct {
			Redis toml.Primitive `toml:"redis"`
		} `toml:"state"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return Config{}, fmt.Errorf("%w: redis: TOML: %s", strata.ErrInvalidConfig, tomlErrReason(err))
	}
	if !md.IsDefined("state", "redis") {
		return Config{}, fmt.Errorf("%w: redis: TOML: no [%s] table", strata.ErrInvalidConfig, TOMLTable)
	}
	return DecodeTOML(&md, doc.State.Redis)
}

// DecodeTOML decodes the Redis table prim of a document whose metadata is
// md, as [LoadTOML] does. It is for callers that decode the rest of the
// document themselves (a field of type toml.Primitive holds the table):
//
//	var doc struct{ State struct{ Redis toml.Primitive } }
//	md, err := toml.Decode(text, &doc)
//	cfg, err := redis.DecodeTOML(&md, doc.State.Redis)
func DecodeTOML(md *toml.MetaData, prim toml.Primitive) (Config, error) {
	c, err := decodeTOML(md, prim)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// decodeTOML decodes the table without validating the result.
func decodeTOML(md *toml.MetaData, prim toml.Primitive) (Config, error) {
	var keys map[string]any
	if err := md.PrimitiveDecode(prim, &keys); err != nil {
		return Config{}, fmt.Errorf("%w: redis: [%s]: %s", strata.ErrInvalidConfig, TOMLTable, tomlErrReason(err))
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !slices.Contains(tomlKeys, k) {
			errs = append(errs, fmt.Errorf("%s.%s: unknown key (accepted: %s)", TOMLTable, k, strings.Join(tomlKeys, ", ")))
		}
	}
	if len(errs) > 0 {
		return Config{}, configErr(errs)
	}
	var t tomlConfig
	if err := md.PrimitiveDecode(prim, &t); err != nil {
		return Config{}, fmt.Errorf("%w: redis: [%s]: %s", strata.ErrInvalidConfig, TOMLTable, tomlErrReason(err))
	}
	dur := func(key string, v any) time.Duration {
		if v == nil {
			return 0
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fmt.Errorf("%s.%s: %v is a %T; want a quoted duration such as \"500ms\" or \"5s\"", TOMLTable, key, v, v))
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %q is not a duration such as \"500ms\" or \"5s\"", TOMLTable, key, s))
		}
		return d
	}
	c := Config{
		URL:                   t.URL,
		Username:              t.Username,
		Password:              t.Password,
		ClusterMode:           t.ClusterMode,
		ClusterNodes:          t.ClusterNodes,
		KeyPrefix:             t.KeyPrefix,
		DefaultTTL:            dur("default_ttl", t.DefaultTTL),
		MaxValueSize:          t.MaxValueSize,
		PoolMinConns:          t.PoolMinConns,
		PoolMaxConns:          t.PoolMaxConns,
		ConnectTimeout:        dur("connect_timeout", t.ConnectTimeout),
		ReadTimeout:           dur("read_timeout", t.ReadTimeout),
		WriteTimeout:          dur("write_timeout", t.WriteTimeout),
		MaxRetries:            t.MaxRetries,
		RetryMinBackoff:       dur("retry_min_backoff", t.RetryMinBackoff),
		RetryMaxBackoff:       dur("retry_max_backoff", t.RetryMaxBackoff),
		TLS:                   t.TLS,
		TLSServerName:         t.TLSServerName,
		TLSCAFile:             t.TLSCAFile,
		TLSCertFile:           t.TLSCertFile,
		TLSKeyFile:            t.TLSKeyFile,
		TLSInsecureSkipVerify: t.TLSInsecureSkipVerify,
		PipelineBatchSize:     t.PipelineBatchSize,
	}
	if len(errs) > 0 {
		return Config{}, configErr(errs)
	}
	return c, nil
}

// tomlErrReason returns a decoding error's message. TOML parse errors quote
// the offending line, which may hold the password: such errors are reduced
// to their position.
func tomlErrReason(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("syntax error at line %d, column %d", pe.Position.Line, pe.Position.Col)
	}
	msg := err.Error()
	if strings.Contains(strings.ToLower(msg), "password") {
		return "bad value for a password field"
	}
	return msg
}
