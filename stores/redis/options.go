package redis

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
)

// The URL schemes the package registers with strata.Open.
const (
	SchemeRedis         = "redis"          // one server, plain TCP
	SchemeRedisTLS      = "rediss"         // one server, TLS
	SchemeCluster       = "redis+cluster"  // Redis Cluster, plain TCP
	SchemeClusterTLS    = "rediss+cluster" // Redis Cluster, TLS
	defaultMaxValueSize = 512 << 20        // Redis's proto-max-bulk-len
)

// The URL schemes of a master found through Redis Sentinel, also
// registered with strata.Open.
const (
	SchemeSentinel    = "redis+sentinel"  // plain TCP
	SchemeSentinelTLS = "rediss+sentinel" // TLS to the sentinels and the servers
)

// Defaults of Options, applied to zero fields.
const (
	DefaultDialTimeout       = 5 * time.Second
	DefaultReadTimeout       = 3 * time.Second
	DefaultWriteTimeout      = 3 * time.Second
	DefaultMaxRetries        = 3
	DefaultMinRetryBackoff   = 8 * time.Millisecond
	DefaultMaxRetryBackoff   = 512 * time.Millisecond
	DefaultPipelineBatchSize = 1000
)

// Options configure a store: the connection [Open] makes to Redis,
// standalone, Cluster or a master found through Sentinel, and the store on
// top of it. Field names follow
// go-redis's Options. The zero value of every field but URL means its
// documented default; Validate explains every bad value. Build Options by
// hand or from a URL with [ParseURL]; in a config file (package config),
// the [state.redis] table's keys are the fields' toml tags, or the other
// spellings in their alias tags.
//
// [New], which takes a client already made, uses only the store's fields:
// KeyPrefix, DefaultTTL, MaxValueSize, PipelineBatchSize,
// DisableAutoPipeline, MaxRetries, MinRetryBackoff, MaxRetryBackoff and
// CloseClient.
//
// Options' String method (used by %v, %+v and %#v) and LogValue (used by
// log/slog) redact the passwords (the sentinels' too).
type Options struct {
	// URL names the server or cluster (required by Open, unless URLs is
	// set):
	//
	//	redis://[user:password@]host:port[/db][?param=value&...]
	//	rediss://...                                  (TLS)
	//	redis+cluster://[user:password@]host1:port1,host2:port2[/][?...]
	//	rediss+cluster://...                          (Cluster over TLS)
	//	redis+sentinel://[user:password@]sentinel1:port1,sentinel2:port2/master-name[/db][?...]
	//	rediss+sentinel://...                         (Sentinel, TLS to sentinels and servers)
	//
	// The port defaults to 6379 (26379 for a sentinel) and db to 0
	// (Cluster has only db 0). Query parameters set the fields whose toml
	// tags they name (prefix sets KeyPrefix, sentinel_password
	// SentinelPassword); one given both in the URL and as a field is an
	// error. In a redis+sentinel URL the user information authenticates to
	// the master, as in a redis URL; the sentinels' own credentials are
	// the parameters sentinel_username and sentinel_password.
	URL string `toml:"url"`

	// URLs is the other way to name the seed nodes, one redis:// or
	// rediss:// URL each, which differ only in their host:port: a cluster
	// when ClusterMode is set, the sentinels when MasterName is set, else a
	// single server (one URL). Give URL or URLs, not both.
	URLs []string `toml:"urls"`

	// Username and Password authenticate (Redis ACL user, or requirepass
	// with the default user). They override the URL's user information.
	// Default: the URL's, else none.
	Username string `toml:"username"`
	Password string `toml:"password"`

	// ClusterMode talks the Redis Cluster protocol to URL's node(s), which
	// seed the discovery of the others. The redis+cluster schemes imply it.
	// Default false.
	ClusterMode bool `toml:"cluster_mode"`

	// ClusterNodes are further seed nodes, as host:port, in Cluster mode.
	// Default none.
	ClusterNodes []string `toml:"cluster_nodes"`

	// MasterName is the name under which Redis Sentinel monitors the
	// master to use (go-redis's FailoverOptions.MasterName). Setting it
	// makes the hosts of URL (or URLs) the sentinels: the store asks them
	// for the master, talks to the master only (never to a replica, so
	// that a read never returns a value older than an acknowledged
	// write), and follows it when the sentinels fail over. The
	// redis+sentinel schemes carry it as the first segment of their path.
	// Default none.
	MasterName string `toml:"sentinel_master" alias:"master_name"`

	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (their requirepass, or an ACL user of theirs), which may differ from
	// the master's Username and Password. URL parameters:
	// sentinel_username, sentinel_password. Default none.
	SentinelUsername string `toml:"sentinel_username"`
	SentinelPassword string `toml:"sentinel_password"`

	// KeyPrefix is prepended to every key the store writes, so several
	// stores can share a server. URL parameter: prefix. Default none. In
	// Cluster mode, a prefix with a hash tag such as "{app}:" puts every
	// key in one slot.
	KeyPrefix string `toml:"key_prefix"`

	// DefaultTTL applies to writes with ttl == 0. Default: none.
	DefaultTTL time.Duration `toml:"default_ttl" alias:"default_ttl_secs"`

	// MaxValueSize bounds values, in bytes. Default 512 MiB, the largest
	// value Redis accepts by default.
	MaxValueSize int `toml:"max_value_size"`

	// MinIdleConns is the number of idle connections kept open per server.
	// Default 0.
	MinIdleConns int `toml:"pool_min_conns" alias:"min_connections"`

	// PoolSize bounds the connections per server (go-redis's PoolSize and
	// MaxActiveConns); callers beyond it wait for a free one. Default 10
	// per CPU (go-redis's default).
	PoolSize int `toml:"pool_max_conns" alias:"max_connections"`

	// DialTimeout bounds a dial and TLS handshake. Default 5s.
	DialTimeout time.Duration `toml:"connect_timeout" alias:"connect_timeout_secs"`

	// ReadTimeout and WriteTimeout bound one socket read or write (and so
	// one attempt of a command). Defaults 3s.
	ReadTimeout  time.Duration `toml:"read_timeout" alias:"read_timeout_secs"`
	WriteTimeout time.Duration `toml:"write_timeout" alias:"write_timeout_secs"`

	// MaxRetries is how often the store retries a command after a
	// transient failure, as go-redis counts them: 0 means the default (3),
	// -1 none (an explicit 0 in a URL or a config file means none too).
	// A client passed to New that retries on its own (its go-redis
	// MaxRetries is above 0) gets none by default, so that attempts do not
	// multiply. Non-idempotent operations are only ever retried when the
	// failure proves the command never reached the server (see the
	// package documentation). Open turns go-redis's own retries off, so
	// that the store sees, and counts, every attempt.
	MaxRetries int `toml:"max_retries"`

	// MinRetryBackoff and MaxRetryBackoff bound the randomized exponential
	// backoff between retries. Defaults 8ms and 512ms.
	MinRetryBackoff time.Duration `toml:"retry_min_backoff" alias:"retry_base_delay_ms"`
	MaxRetryBackoff time.Duration `toml:"retry_max_backoff" alias:"retry_max_delay_secs"`

	// TLS turns TLS on; the rediss schemes imply it. Default false.
	TLS bool `toml:"tls" alias:"tls_enabled"`

	// TLSServerName is the name the server certificate must carry.
	// Default: the host each connection dials.
	TLSServerName string `toml:"tls_server_name"`

	// TLSCAFile is a PEM file of the certificate authorities to trust.
	// Default: the system's.
	TLSCAFile string `toml:"tls_ca_file"`

	// TLSCertFile and TLSKeyFile are a PEM client certificate and key, for
	// servers that require one. Default none.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`

	// TLSInsecureSkipVerify accepts any server certificate. It is only
	// honored here, set on purpose: a URL parameter asking for it is
	// refused. Default false.
	TLSInsecureSkipVerify bool `toml:"tls_insecure_skip_verify"`

	// TLSConfig, when set, is used as is (cloned) instead of the TLS fields
	// above. Code only.
	TLSConfig *tls.Config `toml:"-"`

	// PipelineBatchSize is the most keys a batch operation (GetMany,
	// PutMany, DeleteMany, snapshot reads) sends in one round trip; larger
	// batches take several. Default 1000.
	PipelineBatchSize int `toml:"pipeline_batch_size"`

	// DisableAutoPipeline turns auto-pipelining off: each operation then
	// sends its commands on a connection of its own. Default false: the
	// commands of concurrent operations bound for one server share its
	// connections' writes and round trips (see the package documentation).
	// URL parameter: disable_auto_pipeline=true.
	DisableAutoPipeline bool `toml:"disable_auto_pipeline"`

	// CloseClient makes Close close the client as well. Default false: the
	// caller owns a client passed to New and closes it after the store.
	// Open sets it. Code only.
	CloseClient bool `toml:"-"`

	// Hooks are added to the client Open makes, in order, before the
	// store's own hook: each sees every command the store sends once,
	// whatever the retries beneath it. Open by URL or config file takes
	// them from [WithHooks]. New does not use them: add hooks to the
	// client passed to it. Default none. Code only.
	Hooks []goredis.Hook `toml:"-"`

	// TracerProvider, when set, makes Open trace the client's commands
	// with go-redis's redisotel: a span per command or pipeline (after
	// Hooks), with the server's address and the command's name, never its
	// arguments (keys and values) nor an AUTH. Under the spans of
	// strata.WithTracing, the commands of one store operation are its
	// children. Open by URL or config file takes it from
	// strata.WithTracerProvider or trace=true. Default nil: no tracing.
	// Code only.
	TracerProvider trace.TracerProvider `toml:"-"`
}

// String describes o with the passwords redacted.
func (o Options) String() string {
	var b strings.Builder
	b.WriteString("redis.Options{")
	sep := ""
	field := func(name string, v any, set bool) {
		if set {
			fmt.Fprintf(&b, "%s%s: %v", sep, name, v)
			sep = ", "
		}
	}
	field("URL", storekit.RedactURL(o.URL), o.URL != "" || len(o.URLs) == 0)
	if len(o.URLs) > 0 {
		urls := make([]string, len(o.URLs))
		for i, u := range o.URLs {
			urls[i] = storekit.RedactURL(u)
		}
		field("URLs", urls, true)
	}
	field("Username", o.Username, o.Username != "")
	field("Password", "xxxxx", o.Password != "")
	field("ClusterMode", o.ClusterMode, o.ClusterMode)
	field("ClusterNodes", o.ClusterNodes, len(o.ClusterNodes) > 0)
	field("MasterName", strconv.Quote(o.MasterName), o.MasterName != "")
	field("SentinelUsername", o.SentinelUsername, o.SentinelUsername != "")
	field("SentinelPassword", "xxxxx", o.SentinelPassword != "")
	field("KeyPrefix", strconv.Quote(o.KeyPrefix), o.KeyPrefix != "")
	field("DefaultTTL", o.DefaultTTL, o.DefaultTTL != 0)
	field("MaxValueSize", o.MaxValueSize, o.MaxValueSize != 0)
	field("MinIdleConns", o.MinIdleConns, o.MinIdleConns != 0)
	field("PoolSize", o.PoolSize, o.PoolSize != 0)
	field("DialTimeout", o.DialTimeout, o.DialTimeout != 0)
	field("ReadTimeout", o.ReadTimeout, o.ReadTimeout != 0)
	field("WriteTimeout", o.WriteTimeout, o.WriteTimeout != 0)
	field("MaxRetries", o.MaxRetries, o.MaxRetries != 0)
	field("MinRetryBackoff", o.MinRetryBackoff, o.MinRetryBackoff != 0)
	field("MaxRetryBackoff", o.MaxRetryBackoff, o.MaxRetryBackoff != 0)
	field("TLS", o.TLS, o.TLS)
	field("TLSServerName", o.TLSServerName, o.TLSServerName != "")
	field("TLSCAFile", o.TLSCAFile, o.TLSCAFile != "")
	field("TLSCertFile", o.TLSCertFile, o.TLSCertFile != "")
	field("TLSKeyFile", o.TLSKeyFile, o.TLSKeyFile != "")
	field("TLSInsecureSkipVerify", o.TLSInsecureSkipVerify, o.TLSInsecureSkipVerify)
	field("TLSConfig", "(set)", o.TLSConfig != nil)
	field("PipelineBatchSize", o.PipelineBatchSize, o.PipelineBatchSize != 0)
	field("DisableAutoPipeline", o.DisableAutoPipeline, o.DisableAutoPipeline)
	field("CloseClient", o.CloseClient, o.CloseClient)
	field("Hooks", len(o.Hooks), len(o.Hooks) > 0)
	field("TracerProvider", "(set)", o.TracerProvider != nil)
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so that %#v does not print a password either.
func (o Options) GoString() string { return o.String() }

// LogValue is what log/slog prints for o: String, without the passwords.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// Validate reports every bad value of o in one error matching
// strata.ErrInvalidConfig, naming each field and what it accepts. It does
// not read the TLS files.
func (o Options) Validate() error {
	_, err := o.resolve()
	return err
}

// Options returns the options the store runs with, defaults applied: for
// a store made by Open, those of the connection too.
func (s *Store) Options() Options { return s.opts }

// resolved is validated Options with defaults applied and the URL taken
// apart.
type resolved struct {
	url      string  // URL, or URLs joined into one
	opts     Options // with defaults applied and URL parameters merged
	merged   Options // URL parameters merged, no defaults
	addrs    []string
	db       int
	username string
	password string
}

func configErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: redis: %w", strata.ErrInvalidConfig, errors.Join(errs...))
}

// resolve validates o and applies defaults.
func (o Options) resolve() (*resolved, error) { return o.resolveURL(nil) }

// resolveURL is resolve with o.URL already parsed as parsed, when not nil:
// a URL strata.Open parsed is not printed and parsed again.
func (o Options) resolveURL(parsed *url.URL) (*resolved, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	r := &resolved{}
	raw := o.URL
	if len(o.URLs) > 0 {
		if o.URL != "" {
			return nil, fmt.Errorf("%w: redis: url and urls: two spellings of the server address; give one", strata.ErrInvalidConfig)
		}
		var err error
		if raw, err = joinURLs(o.URLs); err != nil {
			return nil, err
		}
	}
	if parsed != nil {
		raw = parsed.String()
	}
	r.url = raw
	if raw == "" {
		bad("url", "required: redis://host:port/db, rediss://…, redis+cluster://host1:port1,host2:port2, or redis+sentinel://sentinel1:port1,sentinel2:port2/master-name")
	} else {
		u := parsed
		if u == nil {
			var err error
			if u, err = url.Parse(raw); err != nil {
				return nil, fmt.Errorf("%w: redis: url %q: malformed URL", strata.ErrInvalidConfig, storekit.RedactURL(raw))
			}
		}
		if err := o.mergeURL(u, r); err != nil {
			return nil, err
		}
		o = r.opts
	}
	r.merged = o
	if o.Username != "" {
		r.username = o.Username
	}
	if o.Password != "" {
		r.password = o.Password
	}
	for _, n := range o.ClusterNodes {
		if _, _, err := net.SplitHostPort(n); err != nil {
			bad("cluster_nodes", "%q is not host:port", n)
			continue
		}
		if !slices.Contains(r.addrs, n) {
			r.addrs = append(r.addrs, n)
		}
	}
	if len(o.ClusterNodes) > 0 && !o.ClusterMode {
		bad("cluster_nodes", "given without cluster_mode (or a redis+cluster URL)")
	}
	if o.ClusterMode && r.db != 0 {
		bad("url", "database %d: Redis Cluster has only database 0", r.db)
	}
	if !o.ClusterMode && o.MasterName == "" && len(r.addrs) > 1 {
		field := "url"
		if len(o.URLs) > 0 {
			field = "urls"
		}
		bad(field, "%d hosts without cluster mode: use cluster_mode = true (or redis+cluster://), sentinel_master (or redis+sentinel://) for sentinels, or name one server", len(r.addrs))
	}
	o.checkSentinel(bad)
	nonNeg := func(field string, d time.Duration) {
		if d < 0 {
			bad(field, "%v is negative; want a duration such as 500ms or 5s (0 for the default)", d)
		}
	}
	nonNeg("connect_timeout", o.DialTimeout)
	nonNeg("read_timeout", o.ReadTimeout)
	nonNeg("write_timeout", o.WriteTimeout)
	if o.MinIdleConns < 0 {
		bad("pool_min_conns", "%d is negative", o.MinIdleConns)
	}
	if o.PoolSize < 0 {
		bad("pool_max_conns", "%d is negative; want at least 1 (0 for 10 per CPU)", o.PoolSize)
	}
	o.checkStore(bad)
	if o.TLSInsecureSkipVerify && !o.TLS {
		bad("tls_insecure_skip_verify", "set without TLS (use rediss:// or tls = true)")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		bad("tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	if !o.TLS && (o.TLSServerName != "" || o.TLSCAFile != "" || o.TLSCertFile != "" || o.TLSConfig != nil) {
		bad("tls", "TLS settings given without TLS (use rediss:// or tls = true)")
	}
	if o.TLSConfig != nil && (o.TLSInsecureSkipVerify || o.TLSServerName != "" || o.TLSCAFile != "" || o.TLSCertFile != "") {
		bad("tls", "TLSConfig replaces the other TLS fields; set one or the other")
	}
	// Defaults.
	if o.PoolSize == 0 {
		o.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	if o.PoolSize > 0 && o.MinIdleConns > o.PoolSize {
		bad("pool_min_conns", "%d exceeds pool_max_conns %d", o.MinIdleConns, o.PoolSize)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	o.storeDefaults(false)
	r.opts = o
	if err := configErr(errs); err != nil {
		return nil, err
	}
	return r, nil
}

// joinURLs returns the one URL that names every node of urls, which must
// be redis:// or rediss:// URLs of one host each that differ in nothing
// else: "redis://:pw@h1:6379/0" and "redis://:pw@h2:6379/0" give
// "redis://:pw@h1:6379,h2:6379/0".
func joinURLs(urls []string) (string, error) {
	var first *url.URL
	hosts := make([]string, len(urls))
	for i, raw := range urls {
		bad := func(format string, args ...any) (string, error) {
			return "", fmt.Errorf("%w: redis: urls[%d] %q: %s", strata.ErrInvalidConfig, i, storekit.RedactURL(raw), fmt.Sprintf(format, args...))
		}
		u, err := url.Parse(raw)
		if err != nil {
			return bad("malformed URL")
		}
		if s := strings.ToLower(u.Scheme); s != SchemeRedis && s != SchemeRedisTLS {
			return bad("want redis://host:port or rediss://host:port (one node per URL)")
		}
		if u.Host == "" || strings.Contains(u.Host, ",") {
			return bad("want one host:port")
		}
		hosts[i] = u.Host
		if first == nil {
			first = u
			continue
		}
		if !strings.EqualFold(u.Scheme, first.Scheme) || u.User.String() != first.User.String() ||
			u.Path != first.Path || u.RawQuery != first.RawQuery || u.Fragment != first.Fragment {
			return bad("differs from urls[0] in more than its host:port")
		}
	}
	if first == nil {
		return "", nil
	}
	joined := *first
	joined.Host = strings.Join(hosts, ",")
	return joined.String(), nil
}

// checkStore reports the bad values of the fields New uses too.
func (o *Options) checkStore(bad func(field, format string, args ...any)) {
	if o.DefaultTTL < 0 {
		bad("default_ttl", "%v is negative; want a duration such as 1h (0 for none)", o.DefaultTTL)
	}
	if o.MaxValueSize < 0 {
		bad("max_value_size", "%d is negative; want a size in bytes (0 for 512 MiB)", o.MaxValueSize)
	}
	if o.PipelineBatchSize < 0 {
		bad("pipeline_batch_size", "%d is negative; want at least 1 (0 for %d)", o.PipelineBatchSize, DefaultPipelineBatchSize)
	}
	if o.MaxRetries < -1 {
		bad("max_retries", "%d: want -1 (no retries), 0 (the default, %d) or a positive count", o.MaxRetries, DefaultMaxRetries)
	}
	if o.MinRetryBackoff < 0 {
		bad("retry_min_backoff", "%v is negative; want a duration such as 10ms (0 for the default)", o.MinRetryBackoff)
	}
	if o.MaxRetryBackoff < 0 {
		bad("retry_max_backoff", "%v is negative; want a duration such as 1s (0 for the default)", o.MaxRetryBackoff)
	}
	minB, maxB := cmp.Or(o.MinRetryBackoff, DefaultMinRetryBackoff), cmp.Or(o.MaxRetryBackoff, DefaultMaxRetryBackoff)
	if o.MinRetryBackoff >= 0 && o.MaxRetryBackoff >= 0 && minB > maxB {
		bad("retry_min_backoff", "%v exceeds retry_max_backoff %v", minB, maxB)
	}
}

// storeDefaults applies the defaults of the fields New uses too.
// clientRetries says the client retries on its own: then MaxRetries
// defaults to none.
func (o *Options) storeDefaults(clientRetries bool) {
	if o.MaxValueSize == 0 {
		o.MaxValueSize = defaultMaxValueSize
	}
	if o.PipelineBatchSize == 0 {
		o.PipelineBatchSize = DefaultPipelineBatchSize
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
		if clientRetries {
			o.MaxRetries = -1
		}
	}
	if o.MinRetryBackoff == 0 {
		o.MinRetryBackoff = DefaultMinRetryBackoff
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
}

// mergeURL takes u apart into r and merges its query parameters into a
// copy of o, stored in r.opts.
func (o Options) mergeURL(u *url.URL, r *resolved) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch strings.ToLower(u.Scheme) {
	case SchemeRedis:
	case SchemeRedisTLS:
		o.TLS = true
	case SchemeCluster:
		o.ClusterMode = true
	case SchemeClusterTLS:
		o.ClusterMode, o.TLS = true, true
	case SchemeSentinel, SchemeSentinelTLS:
		o.TLS = o.TLS || strings.ToLower(u.Scheme) == SchemeSentinelTLS
		name, db, err := sentinelPath(u.Path)
		switch {
		case err != nil:
			bad("url: %w", err)
		case o.MasterName != "" && o.MasterName != name:
			bad("url: the master name differs from sentinel_master")
		}
		o.MasterName, r.db = name, db
	default:
		bad("url: scheme %q: want redis, rediss, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel", u.Scheme)
	}
	defaultPort := "6379"
	if o.MasterName != "" {
		defaultPort = "26379"
	}
	if u.Opaque != "" || u.Host == "" {
		bad("url: no host: want redis://host:port")
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			bad("url: empty host in %q", u.Host)
			continue
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = strings.Trim(h, "[]"), defaultPort
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			bad("url: host %q: bad port", h)
			continue
		}
		r.addrs = append(r.addrs, net.JoinHostPort(host, port))
	}
	if u.User != nil {
		r.username = u.User.Username()
		r.password, _ = u.User.Password()
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" && !isSentinelScheme(u.Scheme) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			bad("url: path: want a database number such as /0")
		}
		r.db = n
	}
	if u.Fragment != "" {
		bad("url: a fragment (\"#...\") is not allowed")
	}
	if err := o.mergeQuery(u); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: redis: url %q: %w", strata.ErrInvalidConfig, storekit.RedactURL(u.String()), errors.Join(errs...))
	}
	// mergeQuery set the fields on o.
	r.opts = o
	return nil
}

// mergeQuery sets the fields named by u's query parameters, refusing a
// parameter whose field is already set.
func (o *Options) mergeQuery(u *url.URL) error {
	if u.RawQuery == "" {
		return nil
	}
	// Refuse, by name, the parameters that would turn off certificate
	// verification, and keep them out of the list of accepted ones.
	var errs []error
	v := u.Query()
	for _, name := range []string{"tls_insecure_skip_verify", "insecure_skip_verify", "skip_verify"} {
		if v.Has(name) {
			errs = append(errs, fmt.Errorf("parameter %q: refused: a URL cannot turn off certificate verification; set Options.TLSInsecureSkipVerify (tls_insecure_skip_verify in a config file) on purpose", name))
			v.Del(name)
		}
	}
	rest := *u
	rest.RawQuery = v.Encode()
	q := storekit.NewQuery(&rest)
	var twice []string
	str := func(name string, f *string) {
		if v := q.String(name, ""); v != "" {
			if *f != "" && *f != v {
				twice = append(twice, name)
			}
			*f = v
		}
	}
	dur := func(name string, f *time.Duration) {
		if v := q.Duration(name, 0); v != 0 {
			if *f != 0 && *f != v {
				twice = append(twice, name)
			}
			*f = v
		}
	}
	num := func(name string, f *int) {
		if v := q.Int(name, 0); v != 0 {
			if *f != 0 && *f != v {
				twice = append(twice, name)
			}
			*f = v
		}
	}
	str("prefix", &o.KeyPrefix)
	dur("default_ttl", &o.DefaultTTL)
	num("max_value_size", &o.MaxValueSize)
	num("pool_min_conns", &o.MinIdleConns)
	num("pool_max_conns", &o.PoolSize)
	dur("connect_timeout", &o.DialTimeout)
	dur("read_timeout", &o.ReadTimeout)
	dur("write_timeout", &o.WriteTimeout)
	dur("retry_min_backoff", &o.MinRetryBackoff)
	dur("retry_max_backoff", &o.MaxRetryBackoff)
	num("pipeline_batch_size", &o.PipelineBatchSize)
	str("tls_server_name", &o.TLSServerName)
	str("tls_ca_file", &o.TLSCAFile)
	str("tls_cert_file", &o.TLSCertFile)
	str("tls_key_file", &o.TLSKeyFile)
	str("sentinel_username", &o.SentinelUsername)
	str("sentinel_password", &o.SentinelPassword)
	if q.Bool("disable_auto_pipeline", false) {
		o.DisableAutoPipeline = true
	}
	if s := q.String("max_retries", ""); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < -1 {
			errs = append(errs, fmt.Errorf("parameter %q: %q is not -1 (no retries) or a non-negative count", "max_retries", s))
		} else {
			if n == 0 {
				n = -1 // an explicit 0 in a URL means none
			}
			if o.MaxRetries != 0 && o.MaxRetries != n {
				twice = append(twice, "max_retries")
			}
			o.MaxRetries = n
		}
	}
	for _, name := range twice {
		errs = append(errs, fmt.Errorf("parameter %q: also set in the Options field it sets, to another value", name))
	}
	if err := q.Err(); err != nil {
		if len(errs) == 0 {
			return err
		}
		errs = append([]error{err}, errs...)
		return errors.Join(errs...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: store URL %q: %w", strata.ErrInvalidConfig, storekit.RedactURL(u.String()), errors.Join(errs...))
	}
	return nil
}

// ParseURL returns the Options a URL describes (see Options.URL for the
// forms and the parameters), as go-redis's ParseURL does. Errors match
// strata.ErrInvalidConfig and never show the password.
func ParseURL(rawURL string) (*Options, error) {
	r, err := Options{URL: rawURL}.resolve()
	if err != nil {
		return nil, err
	}
	// Keep the user's values, not the defaults, so that the Options print
	// and round-trip as given.
	return &r.merged, nil
}

// tlsConfig builds the client TLS configuration of r, or nil without TLS.
func (r *resolved) tlsConfig() (*tls.Config, error) {
	c := r.opts
	if !c.TLS {
		return nil, nil
	}
	if c.TLSConfig != nil {
		return c.TLSConfig.Clone(), nil
	}
	// An empty ServerName makes each connection verify the host it dials
	// (every node of a cluster has its own).
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName, InsecureSkipVerify: c.TLSInsecureSkipVerify}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: redis: tls_ca_file: %w", strata.ErrInvalidConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: redis: tls_ca_file %q holds no PEM certificate", strata.ErrInvalidConfig, c.TLSCAFile)
		}
		t.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: redis: tls_cert_file/tls_key_file: %w", strata.ErrInvalidConfig, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// client builds the go-redis client r describes. go-redis's own retries
// are off: the store's hook retries, and counts, instead. A Sentinel
// deployment gets a failover client: it asks the sentinels for the master,
// follows their +switch-master announcements, and sends every command to
// the master (ReplicaOnly and the replica routing of
// NewFailoverClusterClient stay off: a read from a replica may return a
// value older than a write already acknowledged).
func (r *resolved) client() (goredis.UniversalClient, error) {
	t, err := r.tlsConfig()
	if err != nil {
		return nil, err
	}
	c := r.opts
	u := &goredis.UniversalOptions{
		Addrs:                 r.addrs,
		MasterName:            c.MasterName,
		SentinelUsername:      c.SentinelUsername,
		SentinelPassword:      c.SentinelPassword,
		Username:              r.username,
		Password:              r.password,
		DB:                    r.db,
		TLSConfig:             t,
		MaxRetries:            -1,
		MinRetryBackoff:       c.MinRetryBackoff,
		MaxRetryBackoff:       c.MaxRetryBackoff,
		DialTimeout:           c.DialTimeout,
		DialerRetries:         1,
		ReadTimeout:           c.ReadTimeout,
		WriteTimeout:          c.WriteTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              c.PoolSize,
		MaxActiveConns:        c.PoolSize,
		MinIdleConns:          c.MinIdleConns,
		DisableIdentity:       true,
	}
	switch {
	case c.MasterName != "":
		return goredis.NewFailoverClient(u.Failover()), nil
	case c.ClusterMode:
		return goredis.NewClusterClient(u.Cluster()), nil
	}
	return goredis.NewClient(u.Simple()), nil
}

// clientRetries reports whether client resends failed commands on its own
// (its go-redis MaxRetries is above 0); a client of a type New does not
// know is assumed to.
func clientRetries(client goredis.UniversalClient) bool {
	switch c := client.(type) {
	case *goredis.Client:
		return c.Options().MaxRetries > 0
	case *goredis.ClusterClient:
		return c.Options().MaxRetries > 0
	case *goredis.Ring:
		return c.Options().MaxRetries > 0
	}
	return true
}
