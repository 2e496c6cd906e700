package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/internal/testserver"
	"github.com/strata-kv/strata/locks"
	lockredis "github.com/strata-kv/strata/locks/redis"
	"github.com/strata-kv/strata/metrics"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/stores/pebble"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCollector(t *testing.T) {
	ctx := t.Context()
	mem := memory.New(nil)
	defer mem.Close()
	mem.Put(ctx, []byte("a"), []byte("12345"), 0)
	mem.Get(ctx, []byte("a"))
	mem.Get(ctx, []byte("missing"))
	peb, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peb.Close()
	co, err := checkpoint.New(mem, &checkpoint.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := co.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	r := testserver.StartRedis(t, nil)
	rl, err := lockredis.New(r.Client(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	lk := locks.Instrument(rl)
	lease, err := lk.TryAcquire(ctx, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)

	c := metrics.NewCollector()
	c.AddStore("state", mem)
	c.AddStore("disk", peb)
	c.AddCheckpoints("state", co)
	c.AddLocker("jobs", lk)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	want := `
# HELP strata_store_reads_total Keys read, by result (hit or miss).
# TYPE strata_store_reads_total counter
strata_store_reads_total{result="hit",store="disk"} 0
strata_store_reads_total{result="hit",store="state"} 1
strata_store_reads_total{result="miss",store="disk"} 0
strata_store_reads_total{result="miss",store="state"} 1
# HELP strata_checkpoint_created_total Checkpoints published.
# TYPE strata_checkpoint_created_total counter
strata_checkpoint_created_total{checkpoints="state"} 1
# HELP strata_lock_held Leases held now.
# TYPE strata_lock_held gauge
strata_lock_held{locker="jobs"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"strata_store_reads_total", "strata_checkpoint_created_total", "strata_lock_held"); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var pebbleGauges int
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "strata_pebble_") {
			pebbleGauges++
		}
	}
	if pebbleGauges == 0 {
		t.Fatal("no Pebble backend gauges exported")
	}
}
