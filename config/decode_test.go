package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
)

// custom is a table such as a user's store package would decode.
type custom struct {
	Name     string        `toml:"name"`
	On       bool          `toml:"on" alias:"on_enabled"`
	Flag     *bool         `toml:"flag"`
	Count    int           `toml:"count" alias:"how_many"`
	Big      int64         `toml:"big"`
	Wait     time.Duration `toml:"wait" alias:"wait_secs,wait_ms"`
	Hosts    []string      `toml:"hosts"`
	Internal string        `toml:"-"`
	skipped  string        // unexported: never decoded
}

func section(t *testing.T, body string) config.Section {
	t.Helper()
	c, err := config.Parse([]byte("[state.custom]\n"+body), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c.Section("custom")
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		body string
		want custom
	}{
		{"name = \"a\"\non = true\nflag = false\ncount = 3\nbig = 9000000000\nwait = \"1.5s\"\nhosts = [\"h1\", \"h2\"]\n",
			custom{Name: "a", On: true, Flag: new(false), Count: 3, Big: 9e9, Wait: 1500 * time.Millisecond, Hosts: []string{"h1", "h2"}}},
		{"on_enabled = true\nhow_many = 7\nwait_secs = 5\n", custom{On: true, Count: 7, Wait: 5 * time.Second}},
		{"wait_ms = 100\n", custom{Wait: 100 * time.Millisecond}},
		{"hosts = []\n", custom{Hosts: []string{}}},
		{"", custom{}},
	} {
		var got custom
		if err := section(t, c.body).Decode(&got); err != nil {
			t.Errorf("Decode(%q): %v", c.body, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Decode(%q) = %+v, want %+v", c.body, got, c.want)
		}
	}
}

func TestDecodeKeepsUnsetFields(t *testing.T) {
	got := custom{Name: "default", Wait: time.Minute}
	if err := section(t, "count = 1\n").Decode(&got); err != nil || got.Name != "default" || got.Wait != time.Minute || got.Count != 1 {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"colour = 1\n", "state.custom.colour: unknown key (accepted: big, count (or how_many), flag, hosts, name, on (or on_enabled), wait (or wait_secs, wait_ms))"},
		{"internal = \"x\"\n", "state.custom.internal: unknown key"},
		{"skipped = \"x\"\n", "state.custom.skipped: unknown key"},
		{"wait = \"1s\"\nwait_secs = 1\n", "state.custom.wait and state.custom.wait_secs: two spellings of one setting; give one"},
		{"wait_secs = 1\nwait_ms = 1\n", "state.custom.wait_secs and state.custom.wait_ms: two spellings"},
		{"count = 1\nhow_many = 1\n", "state.custom.count and state.custom.how_many: two spellings"},
		{"wait = 5\n", `state.custom.wait: want a quoted duration such as "500ms" or "5s", not an integer`},
		{"wait = \"5 seconds\"\n", `state.custom.wait: "5 seconds" is not a non-negative duration`},
		{"wait_secs = \"5s\"\n", "state.custom.wait_secs: want a whole number of seconds, not a string"},
		{"wait_secs = -1\n", "state.custom.wait_secs: -1 seconds is out of range"},
		{"wait_secs = 9223372037\n", "state.custom.wait_secs: 9223372037 seconds is out of range"},
		{"wait_ms = 1.5\n", "state.custom.wait_ms: want a whole number of milliseconds, not a float"},
		{"name = 1\n", "state.custom.name: want a string, not an integer"},
		{"on = \"yes\"\n", "state.custom.on: want true or false, not a string"},
		{"flag = 1\n", "state.custom.flag: want true or false, not an integer"},
		{"count = \"3\"\n", "state.custom.count: want an integer, not a string"},
		{"hosts = \"h1\"\n", "state.custom.hosts: want an array of strings"},
		{"hosts = [\"h1\", 2]\n", "state.custom.hosts: element 1: want a string, not an integer"},
		{"name = { a = 1 }\n", "state.custom.name: want a string, not a table"},
		{"name = 1979-05-27T07:32:00Z\n", "state.custom.name: want a string, not a date-time"},
		{"[state.custom.sub]\nx = 1\n", "state.custom.sub: unknown key"},
	} {
		var got custom
		err := section(t, c.body).Decode(&got)
		if !errors.Is(err, strata.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%q) = %v\nwant ErrInvalidConfig mentioning %q", c.body, err, c.want)
		}
		if err != nil && strings.Count(err.Error(), "two spellings") > 1 {
			t.Errorf("Decode(%q) reports the same pair twice: %v", c.body, err)
		}
	}
	// Every problem at once.
	err := section(t, "name = 1\ncount = \"x\"\nnope = 1\n").Decode(&custom{})
	for _, key := range []string{"name", "count", "nope"} {
		if err == nil || !strings.Contains(err.Error(), "state.custom."+key) {
			t.Errorf("Decode with three bad keys = %v, want %s named", err, key)
		}
	}
}

func TestDecodeBadTarget(t *testing.T) {
	var n int
	if err := section(t, "").Decode(&n); err == nil {
		t.Fatal("Decode into an *int succeeded")
	}
	var bad struct {
		M map[string]int `toml:"m"`
	}
	if err := section(t, "m = { a = 1 }\n").Decode(&bad); err == nil || !strings.Contains(err.Error(), "cannot decode into") {
		t.Fatalf("Decode into a map field = %v", err)
	}
}
