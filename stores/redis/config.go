package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/urlopt"
)

// The URL schemes the package registers with strata.Open.
const (
	SchemeRedis         = "redis"          // one server, plain TCP
	SchemeRedisTLS      = "rediss"         // one server, TLS
	SchemeCluster       = "redis+cluster"  // Redis Cluster, plain TCP
	SchemeClusterTLS    = "rediss+cluster" // Redis Cluster, TLS
	defaultMaxValueSize = 512 << 20        // Redis's proto-max-bulk-len
)

// Defaults of Config, applied to zero fields.
const (
	DefaultConnectTimeout    = 5 * time.Second
	DefaultReadTimeout       = 3 * time.Second
	DefaultWriteTimeout      = 3 * time.Second
	DefaultMaxRetries        = 3
	DefaultRetryMinBackoff   = 8 * time.Millisecond
	DefaultRetryMaxBackoff   = 512 * time.Millisecond
	DefaultPipelineBatchSize = 1000
)

// Config describes a connection to Redis, standalone or Cluster, and the
// store on top of it. The zero value of every field but URL means its
// documented default; Validate explains every bad value. Build one by
// hand or from a URL with [ParseURL]; in a config file (package config),
// the [state.redis] table's keys are the toml tags of the fields.
//
// Config's String method (used by %v and %+v) redacts the password.
type Config struct {
	// URL names the server or cluster (required):
	//
	//	redis://[user:password@]host:port[/db][?param=value&...]
	//	rediss://...                                  (TLS)
	//	redis+cluster://[user:password@]host1:port1,host2:port2[/][?...]
	//	rediss+cluster://...                          (Cluster over TLS)
	//
	// The port defaults to 6379 and db to 0 (Cluster has only db 0). Query
	// parameters set the fields of the same name below (prefix sets
	// KeyPrefix); one given both in the URL and as a field is an error.
	URL string `toml:"url"`

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

	// KeyPrefix is prepended to every key the store writes (the seed's
	// key_prefix), so several stores can share a server. URL parameter:
	// prefix. Default none. In Cluster mode, a prefix with a hash tag such
	// as "{app}:" puts every key in one slot.
	KeyPrefix string `toml:"key_prefix"`

	// DefaultTTL applies to writes with ttl == 0. Default: none.
	DefaultTTL time.Duration `toml:"default_ttl"`

	// MaxValueSize bounds values, in bytes. Default 512 MiB, the largest
	// value Redis accepts by default.
	MaxValueSize int `toml:"max_value_size"`

	// PoolMinConns is the number of idle connections kept open per server.
	// Default 0.
	PoolMinConns int `toml:"pool_min_conns"`

	// PoolMaxConns bounds the connections per server; callers beyond it
	// wait for a free one. Default 10 per CPU (go-redis's default).
	PoolMaxConns int `toml:"pool_max_conns"`

	// ConnectTimeout bounds a dial and TLS handshake. Default 5s.
	ConnectTimeout time.Duration `toml:"connect_timeout"`

	// ReadTimeout and WriteTimeout bound one socket read or write (and so
	// one attempt of a command). Defaults 3s.
	ReadTimeout  time.Duration `toml:"read_timeout"`
	WriteTimeout time.Duration `toml:"write_timeout"`

	// MaxRetries is how often an idempotent command is retried after a
	// transient failure; -1 disables retries. Default 3. Non-idempotent
	// operations are only ever retried when the failure proves the command
	// never reached the server (see the package documentation).
	MaxRetries int `toml:"max_retries"`

	// RetryMinBackoff and RetryMaxBackoff bound the randomized exponential
	// backoff between retries. Defaults 8ms and 512ms.
	RetryMinBackoff time.Duration `toml:"retry_min_backoff"`
	RetryMaxBackoff time.Duration `toml:"retry_max_backoff"`

	// TLS turns TLS on; the rediss schemes imply it. Default false.
	TLS bool `toml:"tls"`

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
}

// String describes c with the password redacted.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("redis.Config{URL: ")
	b.WriteString(strata.RedactURL(c.URL))
	field := func(name string, v any, set bool) {
		if set {
			fmt.Fprintf(&b, ", %s: %v", name, v)
		}
	}
	field("Username", c.Username, c.Username != "")
	field("Password", "xxxxx", c.Password != "")
	field("ClusterMode", c.ClusterMode, c.ClusterMode)
	field("ClusterNodes", c.ClusterNodes, len(c.ClusterNodes) > 0)
	field("KeyPrefix", strconv.Quote(c.KeyPrefix), c.KeyPrefix != "")
	field("DefaultTTL", c.DefaultTTL, c.DefaultTTL != 0)
	field("MaxValueSize", c.MaxValueSize, c.MaxValueSize != 0)
	field("PoolMinConns", c.PoolMinConns, c.PoolMinConns != 0)
	field("PoolMaxConns", c.PoolMaxConns, c.PoolMaxConns != 0)
	field("ConnectTimeout", c.ConnectTimeout, c.ConnectTimeout != 0)
	field("ReadTimeout", c.ReadTimeout, c.ReadTimeout != 0)
	field("WriteTimeout", c.WriteTimeout, c.WriteTimeout != 0)
	field("MaxRetries", c.MaxRetries, c.MaxRetries != 0)
	field("RetryMinBackoff", c.RetryMinBackoff, c.RetryMinBackoff != 0)
	field("RetryMaxBackoff", c.RetryMaxBackoff, c.RetryMaxBackoff != 0)
	field("TLS", c.TLS, c.TLS)
	field("TLSServerName", c.TLSServerName, c.TLSServerName != "")
	field("TLSCAFile", c.TLSCAFile, c.TLSCAFile != "")
	field("TLSCertFile", c.TLSCertFile, c.TLSCertFile != "")
	field("TLSKeyFile", c.TLSKeyFile, c.TLSKeyFile != "")
	field("TLSInsecureSkipVerify", c.TLSInsecureSkipVerify, c.TLSInsecureSkipVerify)
	field("TLSConfig", "(set)", c.TLSConfig != nil)
	field("PipelineBatchSize", c.PipelineBatchSize, c.PipelineBatchSize != 0)
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// Validate reports every bad value of c in one error matching
// strata.ErrInvalidConfig, naming each field and what it accepts. It does
// not read the TLS files.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolved is a validated Config with defaults applied and the URL taken
// apart.
type resolved struct {
	cfg      Config // with defaults applied and URL parameters merged
	merged   Config // URL parameters merged, no defaults
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

// resolve validates c and applies defaults.
func (c Config) resolve() (*resolved, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	r := &resolved{}
	if c.URL == "" {
		bad("url", "required: redis://host:port/db, rediss://…, or redis+cluster://host1:port1,host2:port2")
	} else {
		u, err := url.Parse(c.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: redis: url %q: malformed URL", strata.ErrInvalidConfig, strata.RedactURL(c.URL))
		}
		if err := c.mergeURL(u, r); err != nil {
			return nil, err
		}
		c = r.cfg
	}
	r.merged = c
	if c.Username != "" {
		r.username = c.Username
	}
	if c.Password != "" {
		r.password = c.Password
	}
	for _, n := range c.ClusterNodes {
		if _, _, err := net.SplitHostPort(n); err != nil {
			bad("cluster_nodes", "%q is not host:port", n)
			continue
		}
		if !slices.Contains(r.addrs, n) {
			r.addrs = append(r.addrs, n)
		}
	}
	if len(c.ClusterNodes) > 0 && !c.ClusterMode {
		bad("cluster_nodes", "given without cluster_mode (or a redis+cluster URL)")
	}
	if c.ClusterMode && r.db != 0 {
		bad("url", "database %d: Redis Cluster has only database 0", r.db)
	}
	if !c.ClusterMode && len(r.addrs) > 1 {
		bad("url", "%d hosts without cluster mode: use redis+cluster:// or cluster_mode = true", len(r.addrs))
	}
	nonNeg := func(field string, d time.Duration) {
		if d < 0 {
			bad(field, "%v is negative; want a duration such as 500ms or 5s (0 for the default)", d)
		}
	}
	nonNeg("default_ttl", c.DefaultTTL)
	nonNeg("connect_timeout", c.ConnectTimeout)
	nonNeg("read_timeout", c.ReadTimeout)
	nonNeg("write_timeout", c.WriteTimeout)
	nonNeg("retry_min_backoff", c.RetryMinBackoff)
	nonNeg("retry_max_backoff", c.RetryMaxBackoff)
	if c.MaxValueSize < 0 {
		bad("max_value_size", "%d is negative; want a size in bytes (0 for 512 MiB)", c.MaxValueSize)
	}
	if c.PoolMinConns < 0 {
		bad("pool_min_conns", "%d is negative", c.PoolMinConns)
	}
	if c.PoolMaxConns < 0 {
		bad("pool_max_conns", "%d is negative; want at least 1 (0 for 10 per CPU)", c.PoolMaxConns)
	}
	if c.MaxRetries < -1 {
		bad("max_retries", "%d: want -1 (no retries), 0 (the default, %d) or a positive count", c.MaxRetries, DefaultMaxRetries)
	}
	if c.PipelineBatchSize < 0 {
		bad("pipeline_batch_size", "%d is negative; want at least 1 (0 for %d)", c.PipelineBatchSize, DefaultPipelineBatchSize)
	}
	if c.TLSInsecureSkipVerify && !c.TLS {
		bad("tls_insecure_skip_verify", "set without TLS (use rediss:// or tls = true)")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	if !c.TLS && (c.TLSServerName != "" || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSConfig != nil) {
		bad("tls", "TLS settings given without TLS (use rediss:// or tls = true)")
	}
	if c.TLSConfig != nil && (c.TLSInsecureSkipVerify || c.TLSServerName != "" || c.TLSCAFile != "" || c.TLSCertFile != "") {
		bad("tls", "TLSConfig replaces the other TLS fields; set one or the other")
	}
	// Defaults.
	if c.MaxValueSize == 0 {
		c.MaxValueSize = defaultMaxValueSize
	}
	if c.PoolMaxConns == 0 {
		c.PoolMaxConns = 10 * runtime.GOMAXPROCS(0)
	}
	if c.PoolMaxConns > 0 && c.PoolMinConns > c.PoolMaxConns {
		bad("pool_min_conns", "%d exceeds pool_max_conns %d", c.PoolMinConns, c.PoolMaxConns)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryMinBackoff == 0 {
		c.RetryMinBackoff = DefaultRetryMinBackoff
	}
	if c.RetryMaxBackoff == 0 {
		c.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if c.RetryMinBackoff > c.RetryMaxBackoff {
		bad("retry_min_backoff", "%v exceeds retry_max_backoff %v", c.RetryMinBackoff, c.RetryMaxBackoff)
	}
	if c.PipelineBatchSize == 0 {
		c.PipelineBatchSize = DefaultPipelineBatchSize
	}
	r.cfg = c
	if err := configErr(errs); err != nil {
		return nil, err
	}
	return r, nil
}

// mergeURL takes u apart into r and merges its query parameters into a
// copy of c, stored in r.cfg.
func (c Config) mergeURL(u *url.URL, r *resolved) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch strings.ToLower(u.Scheme) {
	case SchemeRedis:
	case SchemeRedisTLS:
		c.TLS = true
	case SchemeCluster:
		c.ClusterMode = true
	case SchemeClusterTLS:
		c.ClusterMode, c.TLS = true, true
	default:
		bad("url: scheme %q: want redis, rediss, redis+cluster or rediss+cluster", u.Scheme)
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
			host, port = strings.Trim(h, "[]"), "6379"
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
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			bad("url: path %q: want a database number such as /0", u.Path)
		}
		r.db = n
	}
	if u.Fragment != "" {
		bad("url: fragment %q not allowed", u.Fragment)
	}
	if err := c.mergeQuery(u); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: redis: url %q: %w", strata.ErrInvalidConfig, strata.RedactURL(u.String()), errors.Join(errs...))
	}
	// mergeQuery set the fields on c.
	r.cfg = c
	return nil
}

// mergeQuery sets the fields named by u's query parameters, refusing a
// parameter whose field is already set.
func (c *Config) mergeQuery(u *url.URL) error {
	if u.RawQuery == "" {
		return nil
	}
	// Refuse, by name, the parameters that would turn off certificate
	// verification, and keep them out of the list of accepted ones.
	var errs []error
	v := u.Query()
	for _, name := range []string{"tls_insecure_skip_verify", "insecure_skip_verify", "skip_verify"} {
		if v.Has(name) {
			errs = append(errs, fmt.Errorf("parameter %q: refused: a URL cannot turn off certificate verification; set Config.TLSInsecureSkipVerify (tls_insecure_skip_verify in a config file) on purpose", name))
			v.Del(name)
		}
	}
	rest := *u
	rest.RawQuery = v.Encode()
	q := urlopt.New(&rest)
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
	str("prefix", &c.KeyPrefix)
	dur("default_ttl", &c.DefaultTTL)
	num("max_value_size", &c.MaxValueSize)
	num("pool_min_conns", &c.PoolMinConns)
	num("pool_max_conns", &c.PoolMaxConns)
	dur("connect_timeout", &c.ConnectTimeout)
	dur("read_timeout", &c.ReadTimeout)
	dur("write_timeout", &c.WriteTimeout)
	dur("retry_min_backoff", &c.RetryMinBackoff)
	dur("retry_max_backoff", &c.RetryMaxBackoff)
	num("pipeline_batch_size", &c.PipelineBatchSize)
	str("tls_server_name", &c.TLSServerName)
	str("tls_ca_file", &c.TLSCAFile)
	str("tls_cert_file", &c.TLSCertFile)
	str("tls_key_file", &c.TLSKeyFile)
	if s := q.String("max_retries", ""); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < -1 {
			errs = append(errs, fmt.Errorf("parameter %q: %q is not -1 (no retries) or a non-negative count", "max_retries", s))
		} else {
			if n == 0 {
				n = -1 // an explicit 0 in a URL means none
			}
			if c.MaxRetries != 0 && c.MaxRetries != n {
				twice = append(twice, "max_retries")
			}
			c.MaxRetries = n
		}
	}
	for _, name := range twice {
		errs = append(errs, fmt.Errorf("parameter %q: also set in the Config field of the same name, to another value", name))
	}
	if err := q.Err(); err != nil {
		if len(errs) == 0 {
			return err
		}
		errs = append([]error{err}, errs...)
		return errors.Join(errs...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: store URL %q: %w", strata.ErrInvalidConfig, strata.RedactURL(u.String()), errors.Join(errs...))
	}
	return nil
}

// ParseURL returns the Config a URL describes (see Config.URL for the
// forms and the parameters). Errors match strata.ErrInvalidConfig and never
// show the password.
func ParseURL(rawURL string) (Config, error) {
	c := Config{URL: rawURL}
	r, err := c.resolve()
	if err != nil {
		return Config{}, err
	}
	// Keep the user's values, not the defaults, so that the Config prints
	// and round-trips as given.
	return r.merged, nil
}

// tlsConfig builds the client TLS configuration of r, or nil without TLS.
func (r *resolved) tlsConfig() (*tls.Config, error) {
	c := r.cfg
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
// are off: the store's hook retries, and counts, instead.
func (r *resolved) client() (goredis.UniversalClient, error) {
	t, err := r.tlsConfig()
	if err != nil {
		return nil, err
	}
	c := r.cfg
	if c.ClusterMode {
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:                 r.addrs,
			Username:              r.username,
			Password:              r.password,
			TLSConfig:             t,
			MaxRetries:            -1,
			MinRetryBackoff:       c.RetryMinBackoff,
			MaxRetryBackoff:       c.RetryMaxBackoff,
			DialTimeout:           c.ConnectTimeout,
			DialerRetries:         1,
			ReadTimeout:           c.ReadTimeout,
			WriteTimeout:          c.WriteTimeout,
			ContextTimeoutEnabled: true,
			PoolSize:              c.PoolMaxConns,
			MaxActiveConns:        c.PoolMaxConns,
			MinIdleConns:          c.PoolMinConns,
			DisableIdentity:       true,
		}), nil
	}
	return goredis.NewClient(&goredis.Options{
		Addr:                  r.addrs[0],
		Username:              r.username,
		Password:              r.password,
		DB:                    r.db,
		TLSConfig:             t,
		MaxRetries:            -1,
		MinRetryBackoff:       c.RetryMinBackoff,
		MaxRetryBackoff:       c.RetryMaxBackoff,
		DialTimeout:           c.ConnectTimeout,
		DialerRetries:         1,
		ReadTimeout:           c.ReadTimeout,
		WriteTimeout:          c.WriteTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              c.PoolMaxConns,
		MaxActiveConns:        c.PoolMaxConns,
		MinIdleConns:          c.PoolMinConns,
		DisableIdentity:       true,
	}), nil
}
