package redis_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/stores/redis"
)

func TestValidate(t *testing.T) {
	ok := redis.Options{URL: "redis://localhost:6379/0"}
	noErr(t, "Validate of a good config", ok.Validate())
	for _, c := range []struct {
		cfg  redis.Options
		want string // part of the message: the field and what it accepts
	}{
		{redis.Options{}, "url: required"},
		{redis.Options{URL: "http://h:1"}, `scheme "http"`},
		{redis.Options{URL: "redis://"}, "no host"},
		{redis.Options{URL: "redis://h:99999"}, "bad port"},
		{redis.Options{URL: "redis://h:6379/x"}, "database number"},
		{redis.Options{URL: "redis://h1:1,h2:2"}, "without cluster mode"},
		{redis.Options{URL: "redis+cluster://h1:1,h2:2/3"}, "only database 0"},
		{redis.Options{URL: "redis://h", ClusterNodes: []string{"h2:1"}}, "cluster_nodes: given without cluster_mode"},
		{redis.Options{URL: "redis://h", ClusterMode: true, ClusterNodes: []string{"h2"}}, `"h2" is not host:port`},
		{redis.Options{URL: "redis://h", ReadTimeout: -time.Second}, "read_timeout: -1s is negative"},
		{redis.Options{URL: "redis://h", WriteTimeout: -1}, "write_timeout"},
		{redis.Options{URL: "redis://h", DialTimeout: -1}, "connect_timeout"},
		{redis.Options{URL: "redis://h", DefaultTTL: -1}, "default_ttl"},
		{redis.Options{URL: "redis://h", MaxValueSize: -1}, "max_value_size"},
		{redis.Options{URL: "redis://h", MinIdleConns: -1}, "pool_min_conns"},
		{redis.Options{URL: "redis://h", PoolSize: -2}, "pool_max_conns"},
		{redis.Options{URL: "redis://h", MinIdleConns: 5, PoolSize: 2}, "pool_min_conns: 5 exceeds pool_max_conns 2"},
		{redis.Options{URL: "redis://h", MaxRetries: -2}, "max_retries: -2"},
		{redis.Options{URL: "redis://h", MinRetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}, "retry_min_backoff: 1s exceeds retry_max_backoff 1ms"},
		{redis.Options{URL: "redis://h", PipelineBatchSize: -1}, "pipeline_batch_size"},
		{redis.Options{URL: "redis://h", TLSInsecureSkipVerify: true}, "tls_insecure_skip_verify: set without TLS"},
		{redis.Options{URL: "rediss://h", TLSCertFile: "c.pem"}, "tls_cert_file and tls_key_file go together"},
		{redis.Options{URL: "redis://h", TLSCAFile: "ca.pem"}, "TLS settings given without TLS"},
		{redis.Options{URL: "redis://h?nope=1"}, `unknown parameter "nope"`},
		{redis.Options{URL: "redis://h?read_timeout=fast"}, `parameter "read_timeout"`},
		{redis.Options{URL: "redis://h?prefix=a:", KeyPrefix: "b:"}, `parameter "prefix": also set`},
		{redis.Options{URL: "redis://h?max_retries=-5"}, `parameter "max_retries"`},
		{redis.Options{URL: "rediss://h?tls_insecure_skip_verify=true", TLSInsecureSkipVerify: true}, "refused"},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%v) = %v, want ErrInvalidConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	// Every bad value is reported at once.
	err := redis.Options{URL: "redis://h", ReadTimeout: -1, PoolSize: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "read_timeout") || !strings.Contains(err.Error(), "pool_max_conns") {
		t.Fatalf("Validate with two bad fields = %v, want both named", err)
	}
}

func TestParseURL(t *testing.T) {
	c, err := redis.ParseURL("rediss://user:pw@cache.internal:6380/2?prefix=app:&default_ttl=1h&max_value_size=1024" +
		"&pool_min_conns=2&pool_max_conns=8&connect_timeout=1s&read_timeout=250ms&write_timeout=300ms" +
		"&max_retries=5&retry_min_backoff=1ms&retry_max_backoff=100ms&pipeline_batch_size=64&tls_server_name=cache" +
		"&disable_auto_pipeline=true")
	noErr(t, "ParseURL", err)
	want := redis.Options{
		URL: c.URL, KeyPrefix: "app:", DefaultTTL: time.Hour, MaxValueSize: 1024, MinIdleConns: 2, PoolSize: 8,
		DialTimeout: time.Second, ReadTimeout: 250 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
		MaxRetries: 5, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond,
		PipelineBatchSize: 64, TLS: true, TLSServerName: "cache", DisableAutoPipeline: true,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("ParseURL =\n%v\nwant\n%v", c, want)
	}
	c, err = redis.ParseURL("redis+cluster://:pw@n1:7000,n2:7001,n3:7002/?max_retries=0")
	noErr(t, "ParseURL of a cluster URL", err)
	if !c.ClusterMode || c.TLS || c.MaxRetries != -1 {
		t.Fatalf("cluster URL = %v; want ClusterMode, MaxRetries -1 (an explicit 0)", c)
	}
	c, err = redis.ParseURL("rediss+cluster://n1:7000")
	noErr(t, "ParseURL", err)
	if !c.ClusterMode || !c.TLS {
		t.Fatalf("rediss+cluster URL = %v", c)
	}
	_, err = redis.ParseURL("redis://user:hunter2@h/0?bogus=1")
	if !errors.Is(err, strata.ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("ParseURL with a bad parameter = %v; want ErrInvalidConfig without the password", err)
	}
	_, err = redis.ParseURL("redis://user:hunter2@h:bad/0")
	if !errors.Is(err, strata.ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("ParseURL of a malformed URL = %v", err)
	}
	// A password given as a query parameter is unknown, and stays out of
	// the error that says so.
	for _, u := range []string{"redis://h/0?password=hunter2", "redis:user:hunter2@h", "redis://h?auth_token=hunter2&pool_max_conns=x"} {
		_, err = redis.ParseURL(u)
		if !errors.Is(err, strata.ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q) = %v; want ErrInvalidConfig without the password", u, err)
		}
	}
}

func TestOptionsRedaction(t *testing.T) {
	o := redis.Options{URL: "redis://user:hunter2@h:6379/0", Password: "hunter3", KeyPrefix: "p:"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("open", "opts", o, "ptr", &o)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("open", "opts", o, "ptr", &o)
	for _, out := range []string{fmt.Sprintf("%v", o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprintf("%s", o),
		fmt.Sprintf("%v", &o), fmt.Sprintf("%+v", &o), fmt.Sprintf("%#v", &o), logged.String()} {
		if strings.Contains(out, "hunter") {
			t.Fatalf("printed Options show a password: %s", out)
		}
		if !strings.Contains(out, "xxxxx") || !strings.Contains(out, `p:`) {
			t.Fatalf("printed Options = %s", out)
		}
	}
}

const fileTOML = `
[state]
backend = "redis"

[state.redis]
url = "redis://:s3cret@cache.internal:6379/0"
key_prefix = "stream:"
default_ttl = "24h"
pool_min_conns = 2
pool_max_conns = 32
connect_timeout = "2s"
read_timeout = "500ms"
write_timeout = "500ms"
max_retries = 5
retry_min_backoff = "10ms"
retry_max_backoff = "1s"
cluster_mode = false
tls = false
pipeline_batch_size = 500
disable_auto_pipeline = true

[checkpoint]
checkpoint_dir = "/var/lib/app/checkpoints"
`

// fileOptions returns the Options of a config file's [state.redis] table.
func fileOptions(doc string, env map[string]string) (redis.Options, error) {
	c, err := config.Parse([]byte(doc), func(k string) string { return env[k] })
	if err != nil {
		return redis.Options{}, err
	}
	o, err := redis.OptionsFromConfig(c)
	if err != nil {
		return redis.Options{}, err
	}
	return *o, nil
}

func TestOptionsFromConfigFile(t *testing.T) {
	c, err := fileOptions(fileTOML, nil)
	noErr(t, "fileOptions", err)
	want := redis.Options{
		URL: "redis://:s3cret@cache.internal:6379/0", KeyPrefix: "stream:", DefaultTTL: 24 * time.Hour,
		MinIdleConns: 2, PoolSize: 32, DialTimeout: 2 * time.Second, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 5, MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: time.Second, PipelineBatchSize: 500, DisableAutoPipeline: true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("fileOptions =\n%v\nwant\n%v", c, want)
	}
	// REDIS_URL replaces the url; [state] default_ttl applies when the
	// table sets none.
	c, err = fileOptions("[state]\nbackend = \"redis\"\ndefault_ttl = \"1h\"\n[state.redis]\nurl = \"redis://h\"\n",
		map[string]string{"REDIS_URL": "redis://from-env:6380/1"})
	noErr(t, "fileOptions with REDIS_URL", err)
	if c.URL != "redis://from-env:6380/1" || c.DefaultTTL != time.Hour {
		t.Fatalf("fileOptions with REDIS_URL = %v", c)
	}
	for _, bad := range []struct{ doc, want string }{
		{"[state.redis]\nurl = \"redis://h\"\nread_timout = \"1s\"\n", `state.redis.read_timout: unknown key`},
		{"[state.redis]\nurl = \"redis://h\"\nread_timeout = 5\n", `state.redis.read_timeout: want a quoted duration`},
		{"[state.redis]\nurl = \"redis://h\"\nread_timeout = \"5 seconds\"\n", `state.redis.read_timeout: "5 seconds" is not a non-negative duration`},
		{"[state.redis]\nurl = \"redis://h\"\npool_max_conns = \"many\"\n", "state.redis.pool_max_conns: want an integer"},
		{"[state.redis]\nurl = \"redis://h\"\n[state.redis.tls]\non = true\n", "state.redis.tls: want true or false, not a table"},
		{"[state.redis]\nurl = \"redis://h\"\nmax_retries = -3\n", "max_retries"},
		{"[state]\nbackend = \"redis\"\n", "url: required"},
		{"[state.redis]\nurl = \"redis://:s3cret@h\npassword = \"s3cret\"\n", "syntax error at line 2"},
		{"[state.redis]\nurl = \"redis://:s3cret@h:bad/0\"\n", "malformed URL"},
	} {
		_, err := fileOptions(bad.doc, nil)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("fileOptions(%q) = %v, want ErrInvalidConfig mentioning %q", bad.doc, err, bad.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("fileOptions error shows the password: %v", err)
		}
	}
}

// MaxRetries counts as go-redis counts: 0 is the default (3), -1 none. A
// client that retries on its own gets no store retries by default, so that
// attempts do not multiply.
func TestNewMaxRetries(t *testing.T) {
	for _, c := range []struct{ client, opt, want int }{
		{client: -1, opt: 0, want: redis.DefaultMaxRetries},
		{client: -1, opt: -1, want: -1},
		{client: -1, opt: 5, want: 5},
		{client: 0, opt: 0, want: -1}, // go-redis's own default: 3 retries
		{client: 2, opt: 4, want: 4},
	} {
		client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: c.client})
		s, err := redis.New(client, &redis.Options{MaxRetries: c.opt})
		noErr(t, "New", err)
		if got := s.Options().MaxRetries; got != c.want {
			t.Errorf("client MaxRetries %d, Options.MaxRetries %d: the store retries %d times, want %d", c.client, c.opt, got, c.want)
		}
		client.Close()
	}
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, o := range []redis.Options{{MaxRetries: -2}, {DefaultTTL: -1}, {MinRetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}} {
		if _, err := redis.New(client, &o); !errors.Is(err, strata.ErrInvalidConfig) {
			t.Errorf("New(%v) = %v, want ErrInvalidConfig", o, err)
		}
	}
}

func TestJoinURLs(t *testing.T) {
	for _, c := range []struct {
		urls []string
		want string
	}{
		{[]string{"redis://h1:1"}, "redis://h1:1"},
		{[]string{"redis://h1:1", "redis://h2:2", "redis://h3"}, "redis://h1:1,h2:2,h3"},
		{[]string{"rediss://u:pw@h1:1/0?prefix=a:", "rediss://u:pw@h2:2/0?prefix=a:"}, "rediss://u:pw@h1:1,h2:2/0?prefix=a:"},
		{nil, ""},
	} {
		got, err := redis.JoinURLs(c.urls)
		if err != nil || got != c.want {
			t.Errorf("joinURLs(%q) = %q, %v; want %q", c.urls, got, err, c.want)
		}
	}
	for _, c := range []struct {
		urls []string
		want string
	}{
		{[]string{"redis://h1:1", "rediss://h2:2"}, "urls[1]"},
		{[]string{"redis://h1:1", "redis://u:hunter2@h2:2"}, "differs from urls[0]"},
		{[]string{"redis://h1:1/0", "redis://h2:2/1"}, "differs from urls[0]"},
		{[]string{"redis://h1:1?prefix=a:", "redis://h2:2"}, "differs from urls[0]"},
		{[]string{"redis+cluster://h1:1,h2:2"}, "one node per URL"},
		{[]string{"http://h1:1"}, "one node per URL"},
		{[]string{"redis://h1:1,h2:2"}, "want one host:port"},
		{[]string{"redis://:hunter2@h1:bad port"}, "malformed URL"},
	} {
		_, err := redis.JoinURLs(c.urls)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("joinURLs(%q) = %v, want ErrInvalidConfig mentioning %q (no password)", c.urls, err, c.want)
		}
	}
	// urls and url are two spellings of one setting.
	err := redis.Options{URL: "redis://h", URLs: []string{"redis://h"}}.Validate()
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "url and urls") {
		t.Errorf("Validate with url and urls = %v", err)
	}
	// Several urls make a cluster only in cluster mode.
	if err := (redis.Options{URLs: []string{"redis://h1:1", "redis://h2:2"}, ClusterMode: true}).Validate(); err != nil {
		t.Errorf("Validate of two urls in cluster mode: %v", err)
	}
	err = redis.Options{URLs: []string{"redis://h1:1", "redis://h2:2"}}.Validate()
	if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), "urls: 2 hosts without cluster mode") {
		t.Errorf("Validate of two urls without cluster mode = %v", err)
	}
	if s := (redis.Options{URLs: []string{"redis://:hunter2@h1:1"}}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("String shows a password of urls: %s", s)
	}
}
