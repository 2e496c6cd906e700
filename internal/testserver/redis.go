package testserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const installRedis = "apt-get install -y redis-server"

// RedisOptions configure a redis-server. The zero value is a plain
// standalone server without a password.
type RedisOptions struct {
	// Password is required of the default user (requirepass).
	Password string

	// Users are ACL rules, one user each, as after the word "user" in
	// redis.conf: "app on >secret ~app:* &* +@all".
	Users []string

	// TLS serves TLS only, with certificates from Certs (generated when
	// nil) for the names localhost and 127.0.0.1.
	TLS   bool
	Certs *Certs

	// Config holds further redis.conf directives, one per line.
	Config []string

	cluster bool
}

// Redis is a running redis-server.
type Redis struct {
	Addr     string // 127.0.0.1:port
	Port     int
	Password string
	Certs    *Certs // set with TLS
	Dir      string // working directory: config, log, cluster state

	opts RedisOptions
	proc *process
}

// StartRedis starts a redis-server and stops it when tb ends.
func StartRedis(tb testing.TB, opts *RedisOptions) *Redis {
	tb.Helper()
	var o RedisOptions
	if opts != nil {
		o = *opts
	}
	bin := need(tb, "redis-server", installRedis, "/usr/bin", "/usr/local/bin")
	offset := 0
	if o.cluster {
		offset = 10000 // the cluster bus listens on port+10000
	}
	r := &Redis{Port: freePort(tb, offset), Password: o.Password, Dir: tb.TempDir(), opts: o}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
	if o.TLS {
		if o.Certs == nil {
			o.Certs = NewCerts(tb)
		}
		r.Certs = o.Certs
		r.opts.Certs = o.Certs
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "redis.conf"), []byte(r.config()), 0o600); err != nil {
		tb.Fatal(err)
	}
	r.run(tb, bin)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redis-server %s log:\n%s", r.Addr, tail(r.proc.log.String()))
		}
		r.proc.stop(syscall.SIGTERM, 5*time.Second)
	})
	return r
}

func (r *Redis) config() string {
	lines := []string{
		"bind 127.0.0.1",
		"protected-mode no",
		"dir " + r.Dir,
		`save ""`,
		"appendonly no",
		"daemonize no",
		"loglevel notice",
	}
	if r.opts.TLS {
		c := r.opts.Certs
		lines = append(lines, "port 0", fmt.Sprintf("tls-port %d", r.Port),
			"tls-cert-file "+c.ServerCert, "tls-key-file "+c.ServerKey, "tls-ca-cert-file "+c.CA,
			"tls-auth-clients optional", "tls-replication yes", "tls-cluster yes")
	} else {
		lines = append(lines, fmt.Sprintf("port %d", r.Port))
	}
	if r.opts.Password != "" {
		lines = append(lines, "requirepass "+r.opts.Password, "masterauth "+r.opts.Password)
	}
	for _, u := range r.opts.Users {
		lines = append(lines, "user "+u)
	}
	if r.opts.cluster {
		lines = append(lines, "cluster-enabled yes", "cluster-config-file nodes.conf",
			"cluster-node-timeout 1500", "cluster-replica-validity-factor 0",
			// Replicas sync at once instead of after Redis's 5s default.
			"repl-diskless-sync-delay 0")
	}
	lines = append(lines, r.opts.Config...)
	return strings.Join(lines, "\n") + "\n"
}

// run starts the server process and waits until it answers PING.
func (r *Redis) run(tb testing.TB, bin string) {
	tb.Helper()
	r.proc = start(tb, "redis-server "+r.Addr, exec.Command(bin, filepath.Join(r.Dir, "redis.conf")))
	c := goredis.NewClient(r.Options())
	defer c.Close()
	waitUntil(tb, r.proc, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
}

// Options returns go-redis options that reach the server as the default
// user, over TLS when it serves TLS.
func (r *Redis) Options() *goredis.Options {
	o := &goredis.Options{Addr: r.Addr, Password: r.Password, MaxRetries: -1, DialTimeout: time.Second}
	if r.Certs != nil {
		o.TLSConfig = r.Certs.ClientConfig()
	}
	return o
}

// Client returns a go-redis client for the server, closed when tb ends.
func (r *Redis) Client(tb testing.TB) *goredis.Client {
	c := goredis.NewClient(r.Options())
	tb.Cleanup(func() { c.Close() })
	return c
}

// URL returns a redis:// (or rediss://) URL of database 0, with the
// default user's password.
func (r *Redis) URL() string {
	u := url.URL{Scheme: "redis", Host: r.Addr, Path: "/0"}
	if r.Certs != nil {
		u.Scheme = "rediss"
	}
	if r.Password != "" {
		u.User = url.UserPassword("default", r.Password)
	}
	return u.String()
}

// CLI runs redis-cli against the server with args and returns its output,
// trimmed; it fails tb if redis-cli fails.
func (r *Redis) CLI(tb testing.TB, args ...string) string {
	tb.Helper()
	bin := need(tb, "redis-cli", installRedis, "/usr/bin", "/usr/local/bin")
	base := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.Port)}
	if r.Certs != nil {
		base = append(base, "--tls", "--cacert", r.Certs.CA, "--sni", "localhost")
	}
	if r.Password != "" {
		base = append(base, "--no-auth-warning", "-a", r.Password)
	}
	out, err := exec.Command(bin, append(base, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Kill stops the server with SIGKILL, as a crash would.
func (r *Redis) Kill() { r.proc.stop(syscall.SIGKILL, time.Second) }

// Pause stops the server with SIGSTOP; Resume continues it.
func (r *Redis) Pause() error { return r.proc.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (r *Redis) Resume() error { return r.proc.signal(syscall.SIGCONT) }

// Restart starts the server again, on the same port and directory, after
// Kill (it kills a running one first).
func (r *Redis) Restart(tb testing.TB) {
	tb.Helper()
	r.Kill()
	r.run(tb, need(tb, "redis-server", installRedis, "/usr/bin", "/usr/local/bin"))
}

// ClientTLS returns a client TLS configuration that trusts the test CA and
// verifies the server name localhost, or nil without TLS.
func (r *Redis) ClientTLS() *tls.Config {
	if r.Certs == nil {
		return nil
	}
	return r.Certs.ClientConfig()
}
