package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
	lockredis "github.com/strata-kv/strata/locks/redis"
	"github.com/strata-kv/strata/metrics"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/stores/redis"
	"github.com/strata-kv/strata/tier"
)

// everySource returns a Collector over one source of every kind, each
// real and each having done some work: a memory store, a Redis store, a
// tier over Redis, a checkpoint coordinator that checkpointed and
// restored, and an instrumented Redis locker holding a lease.
func everySource(t *testing.T) *metrics.Collector {
	t.Helper()
	ctx := t.Context()
	srv := testserver.StartRedis(t, nil)

	mem := memory.New(nil)
	t.Cleanup(func() { mem.Close() })
	rs, err := redis.Open(ctx, &redis.Options{URL: srv.URL(), KeyPrefix: "metrics:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	l2, err := redis.Open(ctx, &redis.Options{URL: srv.URL(), KeyPrefix: "tier:"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tier.New(l2, &tier.Options{MaxBytes: 8 << 20, Invalidation: tier.InvalidationNone})
	if err != nil {
		l2.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	for _, s := range []strata.Store{mem, rs, tr} {
		if err := s.Put(ctx, []byte("a"), []byte("12345"), 0); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "a", "missing"} {
			if _, err := s.Get(ctx, []byte(k)); err != nil && k != "missing" {
				t.Fatal(err)
			}
		}
	}

	co, err := checkpoint.New(mem, &checkpoint.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	if _, err := co.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := co.RestoreLatest(ctx); err != nil {
		t.Fatal(err)
	}

	rl, err := lockredis.New(srv.Client(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	lk := locks.Instrument(rl)
	lease, err := lk.TryAcquire(ctx, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lease.Release(t.Context())
		<-lease.Done()
	})

	c := metrics.NewCollector()
	c.AddStore("memory", mem)
	c.AddStore("redis", rs)
	c.AddStore("tier", tr)
	c.AddCheckpoints("state", co)
	c.AddLocker("jobs", lk)
	return c
}

// promlint finds nothing to say about any metric the package exports.
func TestLint(t *testing.T) {
	c := everySource(t)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if t.Failed() {
		return
	}
	mfs := gather(t, c)
	if len(mfs) < 40 {
		t.Fatalf("only %d metric families gathered", len(mfs))
	}
	for _, mf := range mfs {
		// Every built-in reading is described in a sentence of its own.
		if strings.Contains(mf.GetHelp(), "does not describe") {
			t.Errorf("%s: no description: %q", mf.GetName(), mf.GetHelp())
		}
		if strings.HasSuffix(mf.GetName(), "_total") != (mf.GetType() == dto.MetricType_COUNTER) {
			t.Errorf("%s is a %s", mf.GetName(), mf.GetType())
		}
	}
}

// Durations are histograms with classic and native buckets in the same
// series, and no percentile gauge remains.
func TestHistograms(t *testing.T) {
	c := everySource(t)
	want := map[string]string{
		"strata_store_operation_duration_seconds":    "redis",
		"strata_checkpoint_duration_seconds":         "state",
		"strata_checkpoint_restore_duration_seconds": "state",
		"strata_lock_acquire_duration_seconds":       "jobs",
	}
	for _, mf := range gather(t, c) {
		name := mf.GetName()
		for _, bad := range []string{"p50", "p99", "p999", "avg", "latency", "quantile"} {
			if strings.Contains(name, bad) {
				t.Errorf("%s: a percentile or average metric", name)
			}
		}
		label, ok := want[name]
		if !ok {
			continue
		}
		delete(want, name)
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s is a %s", name, mf.GetType())
			continue
		}
		var found bool
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != label {
				continue
			}
			found = true
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 || h.GetSampleSum() <= 0 {
				t.Errorf("%s{%s}: count %d, sum %g", name, label, h.GetSampleCount(), h.GetSampleSum())
			}
			if len(h.GetBucket()) < 5 {
				t.Errorf("%s{%s}: %d classic buckets", name, label, len(h.GetBucket()))
			}
			if h.GetSchema() != strata.HistogramSchema || len(h.GetPositiveSpan()) == 0 {
				t.Errorf("%s{%s}: native schema %d, %d spans", name, label, h.GetSchema(), len(h.GetPositiveSpan()))
			}
			var native uint64
			var running int64
			for _, d := range h.GetPositiveDelta() {
				running += d
				native += uint64(running)
			}
			if native+h.GetZeroCount() != h.GetSampleCount() {
				t.Errorf("%s{%s}: native buckets hold %d of %d observations", name, label, native+h.GetZeroCount(), h.GetSampleCount())
			}
		}
		if !found {
			t.Errorf("%s: no series for %q", name, label)
		}
	}
	for name := range want {
		t.Errorf("%s not exported", name)
	}
}

func gather(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}
