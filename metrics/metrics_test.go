package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/strata-kv/strata/metrics"
	"github.com/strata-kv/strata/stores/memory"
	"github.com/strata-kv/strata/stores/pebble"
	"github.com/strata-kv/strata/tier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCollector(t *testing.T) {
	c := everySource(t)
	peb, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peb.Close()
	c.AddStore("disk", peb)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	want := `
# HELP strata_store_reads_total Keys the store read (Get, each key of a GetMany, GetWithTTL, GetAndDelete), by result: hit when a live key was found, miss when not.
# TYPE strata_store_reads_total counter
strata_store_reads_total{result="hit",store="disk"} 0
strata_store_reads_total{result="hit",store="memory"} 2
strata_store_reads_total{result="hit",store="redis"} 2
strata_store_reads_total{result="hit",store="tier"} 2
strata_store_reads_total{result="miss",store="disk"} 0
strata_store_reads_total{result="miss",store="memory"} 1
strata_store_reads_total{result="miss",store="redis"} 1
strata_store_reads_total{result="miss",store="tier"} 1
# HELP strata_checkpoint_created_total Checkpoints the coordinator published, full or delta.
# TYPE strata_checkpoint_created_total counter
strata_checkpoint_created_total{checkpoints="state"} 1
# HELP strata_lock_held Leases the locker holds now.
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

// A tier's L1 accounting reaches Prometheus: the bytes charged against
// MaxBytes and, within them, the fixed structures.
func TestCollectorTierMemory(t *testing.T) {
	tr, err := tier.New(memory.New(nil), &tier.Options{MaxBytes: 8 << 20, Invalidation: tier.InvalidationNone})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Put(t.Context(), []byte("k"), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	c := metrics.NewCollector()
	c.AddStore("cache", tr)
	st := tr.TierStats()
	if st.L1FixedBytes <= 0 || st.L1FixedBytes != tier.DefaultEngine.FixedCost(8<<20) {
		t.Fatalf("L1FixedBytes = %d, want FixedCost %d", st.L1FixedBytes, tier.DefaultEngine.FixedCost(8<<20))
	}
	want := fmt.Sprintf(`
# HELP strata_tier_l1_fixed_bytes Bytes of the tier's L1 fixed structures, charged at creation.
# TYPE strata_tier_l1_fixed_bytes gauge
strata_tier_l1_fixed_bytes{store="cache"} %d
# HELP strata_tier_l1_max_bytes The tier's L1 budget in bytes (Options.MaxBytes).
# TYPE strata_tier_l1_max_bytes gauge
strata_tier_l1_max_bytes{store="cache"} %d
`, st.L1FixedBytes, 8<<20)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "strata_tier_l1_fixed_bytes", "strata_tier_l1_max_bytes"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "strata_tier_l1_bytes"); n != 1 {
		t.Fatalf("%d strata_tier_l1_bytes series, want 1", n)
	}
}
