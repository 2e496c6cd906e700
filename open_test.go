package strata_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/storekit"
	"github.com/strata-kv/strata/stores/memory"
)

func TestOpenErrors(t *testing.T) {
	for _, c := range []struct {
		url, want string
	}{
		{"nosuch://x", `unknown scheme "nosuch"`},
		{"mem://?default_ttl=soon", `parameter "default_ttl": "soon" is not a non-negative duration`},
		{"mem://?max_value_size=-1", `parameter "max_value_size"`},
		{"mem://?colour=blue", `unknown parameter "colour" (accepted: default_ttl, max_value_size, sweep_interval)`},
		{"mem://?default_ttl=1s&default_ttl=2s", "given more than once"},
		{"://nope", "missing protocol scheme"},
	} {
		s, err := strata.Open(t.Context(), c.url)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.url)
			continue
		}
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v; want ErrInvalidConfig mentioning %q", c.url, err, c.want)
		}
	}
}

func TestOpenRedactsPasswords(t *testing.T) {
	for _, u := range []string{
		"nosuch://user:hunter2@host/",
		"mem://user:hunter2@host/?bad=1",
		"redis://user:hunter2@host:bad port/",
		"mem://user:hunter2@host/%zz",
		"nosuch:user:hunter2@host:1",
		"mem:user:hunter2@host?colour=blue",
		"mem://h/?password=hunter2",
		"mem://h/?colour=blue&api_token=hunter2",
		"mem://h/?Pass%77ord=hunter2&x=1",
		"tier+nosuch://h/?tier.password=hunter2",
	} {
		_, err := strata.Open(t.Context(), u)
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
	for in, want := range map[string]string{
		"redis://:hunter2@h:1/0":                "redis://:xxxxx@h:1/0",
		"redis://u:hunter2@h:1/0?prefix=a":      "redis://u:xxxxx@h:1/0?prefix=a",
		"nosuch:user:hunter2@host:1":            "nosuch:xxxxx@host:1",
		"redis://h/0?password=hunter2&prefix=a": "redis://h/0?password=xxxxx&prefix=a",
		"s3://b/p?X-Amz-Signature=hunter2":      "s3://b/p?X-Amz-Signature=xxxxx",
		"redis://h/0?prefix=a":                  "redis://h/0?prefix=a",
		"redis://u:hunter2@h:bad port/":         "redis://(unparsable)",
	} {
		if got := storekit.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegisterPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering mem twice did not panic")
		}
	}()
	strata.Register("mem", nil)
}

func FuzzOpen(f *testing.F) {
	for _, s := range []string{"mem://", "mem://?default_ttl=1s", "mem://?max_value_size=10&sweep_interval=-1s", "x://y", "%", "mem://u:p@h/?a=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		s, err := strata.Open(t.Context(), u)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalidConfig) {
				t.Fatalf("Open(%q) = %v, not ErrInvalidConfig", u, err)
			}
			return
		}
		s.Close()
	})
}

// TestOpenHandsDownParsedURL checks that a wrapped URL reaches the store's
// opener parsed, as given, less the wrapper's parameters: the user
// information (escapes and all), the host list, the path and the other
// parameters.
func TestOpenHandsDownParsedURL(t *testing.T) {
	var got *url.URL
	strata.Register("parsedonce", func(_ context.Context, u *url.URL) (strata.Store, error) {
		got = u
		return memory.New(nil), nil
	})
	var params url.Values
	strata.RegisterWrapper("wrapparsed", func(_ context.Context, inner strata.Store, p url.Values) (strata.Store, error) {
		params = p
		return inner, nil
	})
	s, err := strata.Open(context.Background(), "wrapparsed+parsedonce://us%3Aer:p%40ss%2Fw@h1:1,h2:2/a%2Fb?x=1&wrapparsed.size=3")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got == nil {
		t.Fatal("the store's opener was not called")
	}
	pw, _ := got.User.Password()
	if got.Scheme != "parsedonce" || got.User.Username() != "us:er" || pw != "p@ss/w" ||
		got.Host != "h1:1,h2:2" || got.EscapedPath() != "/a%2Fb" || got.RawQuery != "x=1" {
		t.Errorf("opener got %#v", got)
	}
	if params.Get("size") != "3" || len(params) != 1 {
		t.Errorf("wrapper got params %v, want size=3", params)
	}
}
