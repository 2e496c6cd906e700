package redis_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/config"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/stores/redis"
)

// commandLog is a go-redis hook that records the names of the commands
// it sees.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (h *commandLog) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *commandLog) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.mu.Lock()
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *commandLog) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			h.names = append(h.names, c.Name())
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *commandLog) saw(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.names {
		if n == name {
			return true
		}
	}
	return false
}

// A store opened by URL with a tracer provider and hooks makes a span for
// Get with the Redis command's span (redisotel) beneath it, without the
// command's arguments, and passes its commands through the hooks.
func TestOpenURLTracingAndHooks(t *testing.T) {
	srv := testserver.StartRedis(t, &testserver.RedisOptions{Password: "hunter2-secret"})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	hook := &commandLog{}
	ctx := t.Context()

	s, err := strata.Open(ctx, srv.URL(), strata.WithTracerProvider(tp), redis.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, []byte("key-1"), []byte("value-1"), 0); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	if _, err := s.Get(ctx, []byte("key-1")); err != nil {
		t.Fatal(err)
	}
	if !hook.saw("get") || !hook.saw("set") {
		t.Errorf("hook saw %v", hook.names)
	}
	var get sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == "strata.get" {
			get = sp
		}
	}
	if get == nil {
		t.Fatalf("no strata.get span among %d", len(rec.Ended()))
	}
	var children int
	for _, sp := range rec.Ended() {
		for _, kv := range sp.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, "key-1") || strings.Contains(v, "value-1") || strings.Contains(v, "hunter2") {
				t.Errorf("span %s shows %s = %s", sp.Name(), kv.Key, v)
			}
		}
		if sp.Parent().SpanID() == get.SpanContext().SpanID() {
			children++
			if !hasAttr(sp, "db.system", "redis") && !hasAttr(sp, "db.system.name", "redis") {
				t.Errorf("command span %s: attributes %v", sp.Name(), sp.Attributes())
			}
		}
	}
	if children == 0 {
		t.Errorf("no Redis command span under strata.get")
	}
	if !hasAttr(get, "db.system", "redis") || !hasAttr(get, "db.operation", "get") {
		t.Errorf("strata.get attributes %v", get.Attributes())
	}
}

// config.Open hands its options to the [state.redis] table's opener and
// traces the store it returns.
func TestConfigOpenTracingAndHooks(t *testing.T) {
	srv := testserver.StartRedis(t, nil)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte("[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://"+u.Host+"\"\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	hook := &commandLog{}
	s, err := config.Open(t.Context(), c, strata.WithTracerProvider(tp), redis.WithHooks(hook))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(t.Context(), []byte("absent")); err == nil {
		t.Fatal("absent key found")
	}
	if !hook.saw("get") {
		t.Errorf("hook saw %v", hook.names)
	}
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
	}
	if !strings.Contains(strings.Join(names, " "), "strata.get") {
		t.Errorf("spans %v", names)
	}
}

func hasAttr(sp sdktrace.ReadOnlySpan, key, value string) bool {
	for _, kv := range sp.Attributes() {
		if kv.Key == attribute.Key(key) && kv.Value.Emit() == value {
			return true
		}
	}
	return false
}
