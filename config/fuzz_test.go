package config_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
)

// FuzzParse: any document either parses (with every table the linked-in
// packages know checked) or fails with ErrInvalidConfig; neither the error
// nor the printed Config ever shows the password "hunter2".
func FuzzParse(f *testing.F) {
	for _, doc := range []string{
		"[state]\nbackend = \"memory\"\ndefault_ttl = \"1h\"\n",
		"[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://:hunter2@h:1/0\"\nread_timeout = \"1s\"\n",
		"[state]\nurl = \"redis://u:hunter2@h/0\"\n",
		"[state.redis]\nbogus = 1\n",
		"[state.redis\n",
		"[state.tier]\nmax_bytes = 1024\ninvalidation = \"none\"\n",
		"[checkpoint]\ncheckpoint_dir = \"/x\"\ninterval = \"1m\"\nmax_checkpoints = 2\ncompress = false\n",
		"[state.custom]\npassword = \"hunter2\"\n",
	} {
		f.Add([]byte(doc))
	}
	if files, err := filepath.Glob("testdata/*.toml"); err == nil {
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := config.Parse(doc, nil)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalidConfig) {
				t.Fatalf("Parse = %v, not ErrInvalidConfig", err)
			}
			if secretOnly(doc) && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("Parse error shows the password: %v", err)
			}
			return
		}
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "c", c)
		for _, out := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), logged.String()} {
			if secretOnly(doc) && strings.Contains(out, "hunter2") {
				t.Fatalf("printed Config shows the password: %s", out)
			}
		}
	})
}

// secretOnly reports whether doc holds "hunter2" only as a password: in
// a URL's user information (":hunter2@") or as the value of a password
// key. Elsewhere (a key name, a duration) an error may rightly quote it.
func secretOnly(doc []byte) bool {
	var rest strings.Builder
	for line := range strings.SplitSeq(string(doc), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "password" {
			continue
		}
		rest.WriteString(strings.ReplaceAll(line, ":hunter2@", ""))
		rest.WriteByte('\n')
	}
	return !strings.Contains(rest.String(), "hunter2")
}
