package redis_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/stores/redis"
)

func TestValidate(t *testing.T) {
	ok := redis.Config{URL: "redis://localhost:6379/0"}
	noErr(t, "Validate of a good config", ok.Validate())
	for _, c := range []struct {
		cfg  redis.Config
		want string // part of the message: the field and what it accepts
	}{
		{redis.Config{}, "url: required"},
		{redis.Config{URL: "http://h:1"}, `scheme "http"`},
		{redis.Config{URL: "redis://"}, "no host"},
		{redis.Config{URL: "redis://h:99999"}, "bad port"},
		{redis.Config{URL: "redis://h:6379/x"}, "database number"},
		{redis.Config{URL: "redis://h1:1,h2:2"}, "without cluster mode"},
		{redis.Config{URL: "redis+cluster://h1:1,h2:2/3"}, "only database 0"},
		{redis.Config{URL: "redis://h", ClusterNodes: []string{"h2:1"}}, "cluster_nodes: given without cluster_mode"},
		{redis.Config{URL: "redis://h", ClusterMode: true, ClusterNodes: []string{"h2"}}, `"h2" is not host:port`},
		{redis.Config{URL: "redis://h", ReadTimeout: -time.Second}, "read_timeout: -1s is negative"},
		{redis.Config{URL: "redis://h", WriteTimeout: -1}, "write_timeout"},
		{redis.Config{URL: "redis://h", ConnectTimeout: -1}, "connect_timeout"},
		{redis.Config{URL: "redis://h", DefaultTTL: -1}, "default_ttl"},
		{redis.Config{URL: "redis://h", MaxValueSize: -1}, "max_value_size"},
		{redis.Config{URL: "redis://h", PoolMinConns: -1}, "pool_min_conns"},
		{redis.Config{URL: "redis://h", PoolMaxConns: -2}, "pool_max_conns"},
		{redis.Config{URL: "redis://h", PoolMinConns: 5, PoolMaxConns: 2}, "pool_min_conns: 5 exceeds pool_max_conns 2"},
		{redis.Config{URL: "redis://h", MaxRetries: -2}, "max_retries: -2"},
		{redis.Config{URL: "redis://h", RetryMinBackoff: time.Second, RetryMaxBackoff: time.Millisecond}, "retry_min_backoff: 1s exceeds retry_max_backoff 1ms"},
		{redis.Config{URL: "redis://h", PipelineBatchSize: -1}, "pipeline_batch_size"},
		{redis.Config{URL: "redis://h", TLSInsecureSkipVerify: true}, "tls_insecure_skip_verify: set without TLS"},
		{redis.Config{URL: "rediss://h", TLSCertFile: "c.pem"}, "tls_cert_file and tls_key_file go together"},
		{redis.Config{URL: "redis://h", TLSCAFile: "ca.pem"}, "TLS settings given without TLS"},
		{redis.Config{URL: "redis://h?nope=1"}, `unknown parameter "nope"`},
		{redis.Config{URL: "redis://h?read_timeout=fast"}, `parameter "read_timeout"`},
		{redis.Config{URL: "redis://h?prefix=a:", KeyPrefix: "b:"}, `parameter "prefix": also set`},
		{redis.Config{URL: "redis://h?max_retries=-5"}, `parameter "max_retries"`},
		{redis.Config{URL: "rediss://h?tls_insecure_skip_verify=true", TLSInsecureSkipVerify: true}, "refused"},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%v) = %v, want ErrInvalidConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	// Every bad value is reported at once.
	err := redis.Config{URL: "redis://h", ReadTimeout: -1, PoolMaxConns: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "read_timeout") || !strings.Contains(err.Error(), "pool_max_conns") {
		t.Fatalf("Validate with two bad fields = %v, want both named", err)
	}
}

func TestParseURL(t *testing.T) {
	c, err := redis.ParseURL("rediss://user:pw@cache.internal:6380/2?prefix=app:&default_ttl=1h&max_value_size=1024" +
		"&pool_min_conns=2&pool_max_conns=8&connect_timeout=1s&read_timeout=250ms&write_timeout=300ms" +
		"&max_retries=5&retry_min_backoff=1ms&retry_max_backoff=100ms&pipeline_batch_size=64&tls_server_name=cache")
	noErr(t, "ParseURL", err)
	want := redis.Config{
		URL: c.URL, KeyPrefix: "app:", DefaultTTL: time.Hour, MaxValueSize: 1024, PoolMinConns: 2, PoolMaxConns: 8,
		ConnectTimeout: time.Second, ReadTimeout: 250 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
		MaxRetries: 5, RetryMinBackoff: time.Millisecond, RetryMaxBackoff: 100 * time.Millisecond,
		PipelineBatchSize: 64, TLS: true, TLSServerName: "cache",
	}
	if !reflect.DeepEqual(c, want) {
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
}

func TestConfigRedaction(t *testing.T) {
	c := redis.Config{URL: "redis://user:hunter2@h:6379/0", Password: "hunter3", KeyPrefix: "p:"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, c)
		if strings.Contains(out, "hunter") {
			t.Fatalf("%s of a Config shows a password: %s", format, out)
		}
		if !strings.Contains(out, "xxxxx") || !strings.Contains(out, `"p:"`) {
			t.Fatalf("%s of a Config = %s", format, out)
		}
	}
	if out := fmt.Sprintf("%v", &c); strings.Contains(out, "hunter") {
		t.Fatalf("%%v of a *Config shows a password: %s", out)
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

[checkpoint]
checkpoint_dir = "/var/lib/app/checkpoints"
`

// fileConfig returns the Config of a config file's [state.redis] table.
func fileConfig(doc string, env map[string]string) (redis.Config, error) {
	c, err := config.Parse([]byte(doc), func(k string) string { return env[k] })
	if err != nil {
		return redis.Config{}, err
	}
	return redis.ConfigOf(c.Section("redis"))
}

func TestConfigFile(t *testing.T) {
	c, err := fileConfig(fileTOML, nil)
	noErr(t, "fileConfig", err)
	want := redis.Config{
		URL: "redis://:s3cret@cache.internal:6379/0", KeyPrefix: "stream:", DefaultTTL: 24 * time.Hour,
		PoolMinConns: 2, PoolMaxConns: 32, ConnectTimeout: 2 * time.Second, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 5, RetryMinBackoff: 10 * time.Millisecond,
		RetryMaxBackoff: time.Second, PipelineBatchSize: 500,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("fileConfig =\n%v\nwant\n%v", c, want)
	}
	// REDIS_URL replaces the url; [state] default_ttl applies when the
	// table sets none.
	c, err = fileConfig("[state]\nbackend = \"redis\"\ndefault_ttl = \"1h\"\n[state.redis]\nurl = \"redis://h\"\n",
		map[string]string{"REDIS_URL": "redis://from-env:6380/1"})
	noErr(t, "fileConfig with REDIS_URL", err)
	if c.URL != "redis://from-env:6380/1" || c.DefaultTTL != time.Hour {
		t.Fatalf("fileConfig with REDIS_URL = %v", c)
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
		_, err := fileConfig(bad.doc, nil)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("fileConfig(%q) = %v, want ErrInvalidConfig mentioning %q", bad.doc, err, bad.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("fileConfig error shows the password: %v", err)
		}
	}
}
