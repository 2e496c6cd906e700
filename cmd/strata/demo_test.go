package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
)

// The README's main job on a fresh machine: the demo runs on an embedded
// store with no server, then runs again and resumes where it stopped.
func TestDemoResumes(t *testing.T) {
	data := t.TempDir()
	first := run(t, "demo", "--data", data, "--duration", "2s", "--checkpoint-every", "300ms", "--batch", "200")
	if !strings.Contains(first, "no checkpoint yet: starting from offset 0") || !regexp.MustCompile(`events/s .* L1 hit`).MatchString(first) {
		t.Fatalf("first run:\n%s", first)
	}
	stopped := wantExact(t, first)
	second := run(t, "demo", "--data", data, "--duration", "1s", "--batch", "200")
	if !strings.Contains(second, "resuming at offset "+stopped) {
		t.Fatalf("second run did not resume from offset %s:\n%s", stopped, second)
	}
	wantExact(t, second)
}

func TestDemoRejectsBadFlags(t *testing.T) {
	if _, err := runErr(t, "demo", "--data", t.TempDir(), "--window", "0s"); err == nil || !strings.Contains(err.Error(), "--window") {
		t.Fatalf("demo --window 0s = %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the demo writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDemoServesMetrics(t *testing.T) {
	var out syncBuffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"demo", "--data", t.TempDir(), "--duration", "3s", "--metrics-addr", "127.0.0.1:0", "--rate", "20000"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(t.Context()) }()
	addr := regexp.MustCompile(`metrics on (http://\S+)`)
	var url string
	wait.For(t, 10*time.Second, "the metrics address", func() bool {
		m := addr.FindStringSubmatch(out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	wait.For(t, 10*time.Second, "the demo's writes in /metrics", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `strata_store_writes_total{store="demo"}`)
	})
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
}

// The demo's checkpoints are deltas between full ones, and go to any
// location URL: here an S3 bucket. (On the in-memory store, which commits
// on every build: the state itself is not what this checks.)
func TestDemoDeltasOnS3(t *testing.T) {
	srv := testserver.StartS3(t)
	srv.SetEnv(t)
	loc := srv.URL("demo")
	out := run(t, "demo", "--data", t.TempDir(), "--store", "mem://", "--no-tier", "--checkpoint-dir", loc,
		"--duration", "1500ms", "--checkpoint-every", "100ms", "--batch", "200", "--max-deltas", "3")
	if !strings.Contains(out, "checkpoints in s3://strata/demo/") || !regexp.MustCompile(`last checkpoint \S+ \(delta \d, \d+ keys\)`).MatchString(out) {
		t.Fatalf("demo:\n%s", out)
	}
	wantExact(t, out)
	list := run(t, "checkpoint", "list", "--location", loc)
	if !strings.Contains(list, "delta ") || !strings.Contains(list, "full") {
		t.Fatalf("list:\n%s", list)
	}
	if out := run(t, "checkpoint", "verify", "--location", loc); strings.Contains(out, "FAILED") {
		t.Fatalf("verify:\n%s", out)
	}
}
