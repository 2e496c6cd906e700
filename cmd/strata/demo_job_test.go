package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/internal/wait"
	"github.com/strata-kv/strata/internal/window"
	_ "github.com/strata-kv/strata/stores/all"
)

var stoppedRE = regexp.MustCompile(`stopped at offset (\d+) \(\d+ events this run\); \d+ windows hold (\d+) events`)

// wantExact fails unless a demo run's output ends with windows that hold
// exactly the offset's events.
func wantExact(t *testing.T, out string) string {
	t.Helper()
	m := stoppedRE.FindStringSubmatch(out)
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("the demo did not end with exact totals:\n%s", out)
	}
	return m[1]
}

// demoState reads what the demo job keeps in s: the events its windows
// hold, and its offset.
func demoState(t *testing.T, s strata.Store) (total, offset uint64) {
	t.Helper()
	ctx := t.Context()
	typed := strata.NewTyped(s, strata.Codec[window.State](strata.Binary[window.State, *window.State]{}))
	seen := map[string]bool{}
	for k, err := range s.Keys(ctx, []byte("{demo}window/")) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(k)] {
			continue // Redis SCAN may repeat a key
		}
		seen[string(k)] = true
		w, err := typed.Get(ctx, k)
		if err != nil {
			t.Fatalf("window %q: %v", k, err)
		}
		total += w.Count
	}
	v, err := s.Get(ctx, []byte("{demo}offset"))
	switch {
	case err == nil && len(v) == 8:
		offset = binary.BigEndian.Uint64(v)
	case err != nil && !strings.Contains(err.Error(), "not found"):
		t.Fatal(err)
	}
	return total, offset
}

func openStore(t *testing.T, url string) strata.Store {
	t.Helper()
	s, err := strata.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The demo runs its full duration and ends exact on every kind of store,
// and resumes from the store's own offset when run again.
func TestDemoStores(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := testserver.StartRedisCluster(t, nil)
	sn := testserver.StartRedisSentinel(t, nil)
	for name, store := range map[string]string{
		"Pebble":   "",
		"Bolt":     "bolt://" + filepath.Join(t.TempDir(), "state.db"),
		"Redis":    r.URL(),
		"Cluster":  "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/",
		"Sentinel": sn.URL(),
	} {
		t.Run(name, func(t *testing.T) {
			data := t.TempDir()
			args := []string{"demo", "--data", data, "--duration", "1500ms", "--batch", "200"}
			if store != "" {
				args = append(args, "--store", store)
			}
			first := wantExact(t, run(t, args...))
			second := run(t, args...)
			if !strings.Contains(second, "resuming at offset "+first) {
				t.Fatalf("the second run did not resume at %s:\n%s", first, second)
			}
			wantExact(t, second)
			if store != "" && strings.HasPrefix(store, "redis") && !strings.Contains(second, "holding the lease") {
				t.Fatalf("the demo on Redis took no lease:\n%s", second)
			}
		})
	}
}

// A store that was lost is brought back from the newest checkpoint.
func TestDemoRestoresLostStore(t *testing.T) {
	data := t.TempDir()
	last := wantExact(t, run(t, "demo", "--data", data, "--duration", "1s", "--batch", "200"))
	if err := os.RemoveAll(filepath.Join(data, "state")); err != nil {
		t.Fatal(err)
	}
	out := run(t, "demo", "--data", data, "--duration", "500ms", "--batch", "200")
	if !strings.Contains(out, "restored checkpoint") || !strings.Contains(out, "resuming at offset "+last) {
		t.Fatalf("the demo did not restore offset %s from its final checkpoint:\n%s", last, out)
	}
	wantExact(t, out)
}

// child is a demo running in another process.
type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   bytes.Buffer
	lines chan string
	done  chan error
}

func startDemo(t *testing.T, args ...string) *child {
	t.Helper()
	ch := &child{cmd: command(t, append([]string{"demo"}, args...)...), lines: make(chan string, 1024), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	ch.cmd.Stdout, ch.cmd.Stderr = pw, pw
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ch.mu.Lock()
			ch.out.WriteString(sc.Text() + "\n")
			ch.mu.Unlock()
			select {
			case ch.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		err := ch.cmd.Wait()
		pw.Close()
		ch.done <- err
	}()
	t.Cleanup(func() {
		if ch.cmd.ProcessState == nil {
			ch.cmd.Process.Kill()
			<-ch.done
		}
	})
	return ch
}

func (ch *child) output() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.out.String()
}

// waitLine waits for a line of output containing s.
func (ch *child) waitLine(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	wait.For(t, timeout, fmt.Sprintf("the demo to print %q", s), func() bool {
		return strings.Contains(ch.output(), s)
	})
}

// TestDemoKilled kills the demo with SIGKILL at random points, 20 times per
// store, and checks after each kill that the windows hold exactly the
// events up to the offset: every batch's state and offset landed together
// or not at all.
func TestDemoKilled(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	c := testserver.StartRedisCluster(t, nil)
	for name, store := range map[string]string{
		"Pebble":  "",
		"Redis":   r.URL(),
		"Cluster": "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			url := store
			if url == "" {
				url = "pebble://" + filepath.Join(data, "state")
			}
			args := []string{"--data", data, "--store", url, "--duration", "0", "--batch", "300",
				"--checkpoint-every", "150ms", "--lease-ttl", "1s"}
			var last uint64
			for i := range 20 {
				ch := startDemo(t, args...)
				ch.waitLine(t, "resuming at offset", 60*time.Second)
				time.Sleep(time.Duration(20+rand.IntN(400)) * time.Millisecond) // a random moment to kill at
				ch.cmd.Process.Signal(syscall.SIGKILL)
				<-ch.done
				s := openStore(t, url)
				total, offset := demoState(t, s)
				s.Close()
				if total != offset {
					t.Fatalf("kill %d: windows hold %d events, the offset is %d\n%s", i, total, offset, ch.output())
				}
				if offset < last {
					t.Fatalf("kill %d: the offset went back from %d to %d", i, last, offset)
				}
				last = offset
			}
			if last == 0 {
				t.Fatal("the demo committed nothing in 20 runs")
			}
			out := run(t, "demo", "--data", data, "--store", url, "--duration", "500ms", "--batch", "300")
			wantExact(t, out)
		})
	}
}

// TestDemoTakeover starts two demos on one Redis: only the lease holder
// commits. The holder is stopped past its lease's TTL, the other takes
// over; the first, continued, has its late commit rejected by the fence,
// and the totals stay exact.
func TestDemoTakeover(t *testing.T) {
	r := testserver.StartRedis(t, nil)
	args := []string{"--store", r.URL(), "--duration", "0", "--batch", "200", "--lease-ttl", "600ms", "--rate", "50000"}
	a := startDemo(t, append([]string{"--data", t.TempDir()}, args...)...)
	a.waitLine(t, "holding the lease", 30*time.Second)
	a.waitLine(t, "events/s", 30*time.Second)
	b := startDemo(t, append([]string{"--data", t.TempDir()}, args...)...)
	b.waitLine(t, "waiting for the lease", 30*time.Second)

	a.cmd.Process.Signal(syscall.SIGSTOP)
	b.waitLine(t, "holding the lease", 30*time.Second)
	b.waitLine(t, "resuming at offset", 30*time.Second)
	s := openStore(t, r.URL())
	defer s.Close()
	_, taken := demoState(t, s)
	wait.For(t, 30*time.Second, "the new holder to commit", func() bool {
		_, off := demoState(t, s)
		return off > taken
	})
	a.cmd.Process.Signal(syscall.SIGCONT)
	var aErr error
	select {
	case aErr = <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the deposed demo did not stop:\n%s", a.output())
	}
	if aErr == nil || !(strings.Contains(a.output(), "took the job over") || strings.Contains(a.output(), "lost the lease")) {
		t.Fatalf("the deposed demo ended with %v:\n%s", aErr, a.output())
	}
	b.cmd.Process.Signal(syscall.SIGINT)
	if err := <-b.done; err != nil {
		t.Fatalf("the new holder: %v\n%s", err, b.output())
	}
	wantExact(t, b.output())
	total, offset := demoState(t, s)
	if total != offset || offset <= taken {
		t.Fatalf("after the takeover: windows hold %d events, offset %d (taken over at %d)", total, offset, taken)
	}
}
