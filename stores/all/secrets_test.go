package all_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/stores/redis"
	_ "github.com/strata-kv/strata/tier"
)

// secret is the password FuzzNoSecrets hides in URLs.
const secret = "hunter2"

// secretSchemes are the schemes FuzzNoSecrets builds URLs of: every
// registered kind, a wrapper, and one nobody registered.
var secretSchemes = []string{"mem", "bolt", "pebble", "redis", "rediss", "redis+cluster", "rediss+cluster", "tier+mem", "tier+redis", "nosuch",
	"redis+sentinel", "rediss+sentinel"}

// secretParams are query parameters that carry a password, as users write
// them: the sentinels' password of a redis+sentinel URL, and others no
// store knows.
var secretParams = []string{"password", "pass", "pwd", "passwd", "Password", "PASSWORD", "pass%77ord", "secret", "token", "auth", "access_token", "tier.password",
	"sentinel_password"}

// FuzzNoSecrets builds URLs with a password in each place a URL can carry
// one (user information with and without a user name, the opaque form
// "scheme:user:password@host", a query parameter, one of a config file's
// urls, the password fields: the master's and the sentinels') around fuzzed
// user names, paths and parameters,
// hands them to every URL parser (strata.Open, redis.ParseURL,
// redis.Options.Validate, config.Parse) and fails if the password shows in
// any error, or in the %v, %+v, %#v or slog output of what they return.
//
// Redis URLs name 127.0.0.1:1 and strata.Open gets a cancelled context, so
// that nothing is dialled beyond a closed loopback port.
func FuzzNoSecrets(f *testing.F) {
	f.Add(uint8(0), uint8(3), uint8(0), "user", "/0", "prefix=app:")
	f.Add(uint8(1), uint8(4), uint8(1), "", "", "")
	f.Add(uint8(2), uint8(9), uint8(0), "user", "", "")
	f.Add(uint8(2), uint8(3), uint8(2), "u", "/0", "colour=blue")
	f.Add(uint8(3), uint8(0), uint8(0), "", "", "colour=blue")
	f.Add(uint8(3), uint8(7), uint8(11), "", "", "tier.max_bytes=1024")
	f.Add(uint8(3), uint8(5), uint8(6), "", "/", "pool_max_conns=x")
	f.Add(uint8(4), uint8(3), uint8(0), "default", "/0", "")
	f.Add(uint8(5), uint8(3), uint8(0), "default", "/1", "read_timeout=soon")
	f.Add(uint8(0), uint8(1), uint8(0), "user", "/var/lib/x", "no_sync=1")
	f.Add(uint8(3), uint8(10), uint8(12), "", "/mymaster/0", "prefix=app:")
	f.Add(uint8(1), uint8(11), uint8(0), "", "/mymaster", "sentinel_username=s")
	f.Add(uint8(5), uint8(10), uint8(12), "u", "/mymaster/1", "")
	f.Add(uint8(6), uint8(10), uint8(0), "u", "/mymaster/1", "")
	f.Fuzz(func(t *testing.T, form, scheme, param uint8, user, path, query string) {
		if strings.Contains(strings.ToLower(user+path+query), secret[:4]) {
			t.Skip("the fuzzed parts hold the marker themselves")
		}
		t.Chdir(t.TempDir()) // relative bolt and pebble paths land here
		s := secretSchemes[int(scheme)%len(secretSchemes)]
		p := secretParams[int(param)%len(secretParams)]
		raw, pw := secretURL(int(form), s, p, user, path, query)
		check := func(what string, err error) {
			t.Helper()
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("%s: the error shows the password: %v", what, err)
			}
		}
		checkPrinted := func(what string, v any) {
			t.Helper()
			var logged strings.Builder
			slog.New(slog.NewTextHandler(&logged, nil)).Info("open", "v", v)
			slog.New(slog.NewJSONHandler(&logged, nil)).Info("open", "v", v)
			if out := fmt.Sprintf("%v %+v %#v %s", v, v, v, logged.String()); strings.Contains(out, secret) {
				t.Fatalf("%s: printed, it shows the password: %s", what, out)
			}
		}

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if st, err := strata.Open(ctx, raw); err == nil {
			st.Close()
		} else {
			check(fmt.Sprintf("strata.Open(%q)", raw), err)
		}

		o := redis.Options{URL: raw, Password: pw}
		if form%7 == 6 {
			o = redis.Options{URL: raw, SentinelPassword: pw}
		}
		if form%7 == 4 {
			o = redis.Options{URLs: []string{raw, strings.Replace(raw, "127.0.0.1:1", "127.0.0.1:2", 1)}}
		}
		checkPrinted(fmt.Sprintf("redis.Options for %q", raw), o)
		checkPrinted(fmt.Sprintf("*redis.Options for %q", raw), &o)
		check(fmt.Sprintf("redis.Options{%q}.Validate", raw), o.Validate())
		if ro, err := redis.ParseURL(raw); err == nil {
			checkPrinted(fmt.Sprintf("redis.ParseURL(%q)", raw), ro)
		} else {
			check(fmt.Sprintf("redis.ParseURL(%q)", raw), err)
		}

		for _, doc := range []string{
			fmt.Sprintf("[state]\nurl = %q\n", raw),
			fmt.Sprintf("[state]\nbackend = \"redis\"\n[state.redis]\nurl = %q\npassword = %q\n", raw, pw),
			fmt.Sprintf("[state]\nbackend = \"redis\"\n[state.redis]\nurls = [%q, %q]\n", raw, raw),
			fmt.Sprintf("[state]\nbackend = \"redis\"\n[state.redis]\nurl = %q\nsentinel_password = %q\n", raw, pw),
			fmt.Sprintf("[state]\nbackend = \"redis\"\n[state.redis]\nurls = [%q]\nsentinel_master = \"m\"\nsentinel_password = %q\n", raw, pw),
		} {
			c, err := config.Parse([]byte(doc), nil)
			if err != nil {
				check(fmt.Sprintf("config.Parse(%q)", doc), err)
				continue
			}
			checkPrinted(fmt.Sprintf("config.Parse(%q)", doc), c)
			if ro, err := redis.OptionsFromConfig(c); err == nil {
				checkPrinted(fmt.Sprintf("redis.OptionsFromConfig(%q)", doc), ro)
			} else if !errors.Is(err, strata.ErrInvalidConfig) || strings.Contains(err.Error(), secret) {
				t.Fatalf("redis.OptionsFromConfig(%q) = %v", doc, err)
			}
		}
	})
}

// secretURL returns a URL of scheme with the secret in the place form
// picks, built around the fuzzed user, path and query so that they cannot
// move it out of that place, and the password the form puts in an Options
// field ("" for most).
func secretURL(form int, scheme, param, user, path, query string) (raw, pw string) {
	host := "127.0.0.1:1"
	if strings.Contains(scheme, "cluster") || strings.Contains(scheme, "sentinel") {
		host = "127.0.0.1:1,127.0.0.1:2"
	}
	var segs []string
	for seg := range strings.SplitSeq(strings.TrimPrefix(path, "/"), "/") {
		segs = append(segs, url.PathEscape(seg))
	}
	escPath := ""
	if path != "" {
		escPath = "/" + strings.Join(segs, "/")
	}
	var pairs []string
	for pair := range strings.SplitSeq(query, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	withQuery := func(s string) string {
		if len(pairs) == 0 {
			return s
		}
		return s + "?" + strings.Join(pairs, "&")
	}
	switch form % 7 {
	case 0: // user:password@host
		return withQuery(scheme + "://" + url.UserPassword(user, secret).String() + "@" + host + escPath), ""
	case 1: // :password@host
		return withQuery(scheme + "://:" + secret + "@" + host + escPath), ""
	case 2: // scheme:user:password@host, no "//"
		return withQuery(scheme + ":" + url.QueryEscape(user) + ":" + secret + "@" + host + escPath), ""
	case 3: // ?password=...
		at := len(pairs) / 2
		pairs = append(pairs[:at], append([]string{param + "=" + secret}, pairs[at:]...)...)
		return withQuery(scheme + "://" + host + escPath), ""
	case 4: // one of urls, as user information
		return withQuery(scheme + "://" + url.UserPassword(user, secret).String() + "@" + host + escPath), ""
	default: // the Password field (5) or the SentinelPassword field (6), beside a URL with none
		return withQuery(scheme + "://" + url.QueryEscape(user) + "@" + host + escPath), secret
	}
}
