package redis_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/stores/redis"
)

// FuzzParseURL: any string either parses into Options that validate, or
// fails with ErrInvalidConfig, never panics, and never echoes the password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://localhost:6379/0", "rediss://u:hunter2@h:1/3?prefix=app:",
		"redis+cluster://h1:1,h2:2/?pool_max_conns=10", "redis://:hunter2@h:bad/", "redis://h/99",
		"redis://h:1/0?read_timeout=1s&max_retries=-3", "rediss+cluster://u:hunter2@h:1/?tls_insecure=1",
		"redis+sentinel://u:hunter2@s1:26379,s2:26379/mymaster/0?sentinel_password=hunter2", "rediss+sentinel://s1/m/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		cfg, err := redis.ParseURL(u)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalidConfig) {
				t.Fatalf("ParseURL(%q) = %v, not ErrInvalidConfig", u, err)
			}
			if hasPassword(u, "hunter2") && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("ParseURL(%q) error shows the password: %v", u, err)
			}
			return
		}
		if hasPassword(u, "hunter2") && strings.Contains(cfg.String(), "hunter2") {
			t.Fatalf("Options.String shows the password: %s", cfg)
		}
	})
}

// hasPassword reports whether u carries pw as the password of its user
// information, and not also in its host, path, fragment or parameter names
// (which are not secrets, and which errors may show).
func hasPassword(u, pw string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return strings.Contains(u, ":"+pw+"@")
	}
	got, ok := p.User.Password()
	rest := *p
	rest.User, rest.RawQuery = nil, ""
	for name := range p.Query() {
		rest.RawQuery += name + "&"
	}
	return ok && strings.Contains(got, pw) && !strings.Contains(rest.String(), pw)
}
