// Package metrics exposes strata's stats to Prometheus: the counters and
// latency distributions of stores and tiers (strata.Stats and their
// backend readings), checkpoint coordinators and lockers, read at scrape
// time.
//
//	c := metrics.NewCollector()
//	c.AddStore("state", store)
//	c.AddCheckpoints("state", coordinator)
//	prometheus.MustRegister(c)
//
// # Names
//
// Metric names follow Prometheus conventions: a strata_ prefix, base units
// in the name (_seconds, _bytes), _total on counters and only on them.
// Each source's name is the value of the label "store", "checkpoints" or
// "locker". docs/operations.md lists every metric; the dashboard in
// metrics/dashboards/strata.json charts them.
//
// A store's backend readings (strata.Stats.Gauges) become
// strata_<backend>_<reading>, with the store's own sentence as help text:
// a tier's include strata_tier_l1_bytes, the bytes its L1 is charged
// against its MaxBytes (strata_tier_l1_max_bytes), and within them
// strata_tier_l1_fixed_bytes, its fixed structures.
//
// # Histograms
//
// Durations are histograms, never percentiles (which cannot be added up
// across processes): each carries classic buckets (_bucket, _sum, _count,
// readable by every Prometheus) and, in the same series, native
// exponential buckets of schema strata.HistogramSchema (a growth factor of
// about 1.09, what client_golang's NativeHistogramBucketFactor 1.1
// chooses), which a Prometheus scraping with native histograms enabled
// keeps instead. They are:
//
//	strata_store_operation_duration_seconds     stores that time their operations (Stats.Latency)
//	strata_checkpoint_duration_seconds          checkpoints published
//	strata_checkpoint_restore_duration_seconds  successful restores
//	strata_lock_acquire_duration_seconds        successful acquisitions, waits included
package metrics

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/checkpoint"
	"github.com/strata-kv/strata/locks"
)

// Collector is a prometheus.Collector over any number of stores,
// checkpoint coordinators and lockers. It is safe for concurrent use.
type Collector struct {
	mu          sync.Mutex
	stores      map[string]strata.StatsReporter
	checkpoints map[string]func() checkpoint.Stats
	lockers     map[string]func() locks.Stats
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{
		stores:      map[string]strata.StatsReporter{},
		checkpoints: map[string]func() checkpoint.Stats{},
		lockers:     map[string]func() locks.Stats{},
	}
}

// AddStore exposes s's stats under the label store=name. A store without
// stats (not a strata.StatsReporter) is ignored.
func (c *Collector) AddStore(name string, s strata.Store) {
	r, ok := s.(strata.StatsReporter)
	if !ok {
		return
	}
	c.mu.Lock()
	c.stores[name] = r
	c.mu.Unlock()
}

// AddCheckpoints exposes a checkpoint Coordinator's stats under the label
// checkpoints=name.
func (c *Collector) AddCheckpoints(name string, co *checkpoint.Coordinator) {
	c.mu.Lock()
	c.checkpoints[name] = co.Stats
	c.mu.Unlock()
}

// AddLocker exposes an instrumented Locker's stats under the label
// locker=name.
func (c *Collector) AddLocker(name string, l *locks.InstrumentedLocker) {
	c.mu.Lock()
	c.lockers[name] = l.Stats
	c.mu.Unlock()
}

func desc(name, help string, label string) *prometheus.Desc {
	return prometheus.NewDesc("strata_"+name, help, []string{label}, nil)
}

var (
	storeReads = prometheus.NewDesc("strata_store_reads_total",
		"Keys the store read (Get, each key of a GetMany, GetWithTTL, GetAndDelete), by result: hit when a live key was found, miss when not.",
		[]string{"store", "result"}, nil)
	storeWrites   = desc("store_writes_total", "Keys the store wrote: Put, each entry of a PutMany or a commit, and successful atomic writes.", "store")
	storeDeletes  = desc("store_deletes_total", "Keys the store deleted: Delete and each key of a DeleteMany or a commit.", "store")
	storeErrors   = desc("store_errors_total", "Store operations that failed for a reason other than bad input or a missing key, such as a backend that is down.", "store")
	storeRead     = desc("store_read_bytes_total", "Value bytes the store returned to its callers.", "store")
	storeWritten  = desc("store_written_bytes_total", "Key and value bytes the store accepted from its callers.", "store")
	storeKeys     = desc("store_keys", "Live keys in the store, for stores that know the number without reading them all.", "store")
	storeDuration = desc("store_operation_duration_seconds", "Time the store's operations took, retries included; a batch (GetMany, PutMany, a commit) counts as one operation.", "store")

	ckptCreated     = desc("checkpoint_created_total", "Checkpoints the coordinator published, full or delta.", "checkpoints")
	ckptFailures    = desc("checkpoint_failures_total", "Checkpoints that failed; a checkpoint refused as too soon or cancelled by its caller does not count.", "checkpoints")
	ckptRestores    = desc("checkpoint_restores_total", "Restores from a checkpoint that succeeded.", "checkpoints")
	ckptRestoreFail = desc("checkpoint_restore_failures_total", "Restores from a checkpoint that failed; finding no checkpoint at all does not count.", "checkpoints")
	ckptSkipped     = desc("checkpoint_skipped_total", "Invalid checkpoints (corrupt, truncated, of a broken chain) that restores passed over for an older valid one.", "checkpoints")
	ckptBytes       = desc("checkpoint_written_bytes_total", "File bytes of all the checkpoints the coordinator published.", "checkpoints")
	ckptLastTime    = desc("checkpoint_last_success_timestamp_seconds", "Unix time at which the last published checkpoint was created; alert when it grows old.", "checkpoints")
	ckptLastDur     = desc("checkpoint_last_duration_seconds", "Time the last published checkpoint took, publish included.", "checkpoints")
	ckptDuration    = desc("checkpoint_duration_seconds", "Time each published checkpoint took, from the first read of the store to the durable publish.", "checkpoints")
	ckptRestoreDur  = desc("checkpoint_restore_duration_seconds", "Time each successful restore took, verification of the files included.", "checkpoints")

	lockAcquired  = desc("lock_acquired_total", "Leases the locker handed out, by Acquire or TryAcquire.", "locker")
	lockContended = desc("lock_contended_total", "TryAcquire calls that found the lock held by another owner.", "locker")
	lockFailed    = desc("lock_failed_total", "Acquire and TryAcquire calls that failed for another reason than contention, cancelled contexts included.", "locker")
	lockReleased  = desc("lock_released_total", "Leases ended by their owner's Release.", "locker")
	lockLost      = desc("lock_lost_total", "Leases lost before their owner released them: expired, taken over, or their backend gone. Work fenced by a lost lease must stop.", "locker")
	lockHeld      = desc("lock_held", "Leases the locker holds now.", "locker")
	lockDuration  = desc("lock_acquire_duration_seconds", "Time each successful Acquire or TryAcquire took, waiting for a held lock included.", "locker")
)

// Describe sends nothing, which makes the Collector "unchecked" (see
// prometheus.Collector): the backend readings vary with the stores added,
// so the set of metrics is not known in advance.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every source's stats and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	stores, ckpts, lockers := maps.Clone(c.stores), maps.Clone(c.checkpoints), maps.Clone(c.lockers)
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	// One help text per metric name, as Prometheus requires: the first
	// store's (two tiers over different L2 kinds may describe one
	// l2_ reading differently).
	helps := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(stores)) {
		st := stores[name].Stats()
		counter(storeReads, float64(st.Hits), name, "hit")
		counter(storeReads, float64(st.Misses), name, "miss")
		counter(storeWrites, float64(st.Puts), name)
		counter(storeDeletes, float64(st.Deletes), name)
		counter(storeErrors, float64(st.Errors), name)
		counter(storeRead, float64(st.BytesRead), name)
		counter(storeWritten, float64(st.BytesWritten), name)
		if st.Keys >= 0 {
			gauge(storeKeys, float64(st.Keys), name)
		}
		if st.Latency != nil {
			ch <- histogram{storeDuration, *st.Latency, name}
		}
		for _, g := range slices.Sorted(maps.Keys(st.Gauges)) {
			metric := "strata_" + sanitize(st.Backend) + "_" + sanitize(g)
			help, ok := helps[metric]
			if !ok {
				help = gaugeHelp(st, g)
				helps[metric] = help
			}
			d := prometheus.NewDesc(metric, help, []string{"store"}, nil)
			if strings.HasSuffix(metric, "_total") {
				counter(d, st.Gauges[g], name)
			} else {
				gauge(d, st.Gauges[g], name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ckpts)) {
		st := ckpts[name]()
		counter(ckptCreated, float64(st.Created), name)
		counter(ckptFailures, float64(st.Failures), name)
		counter(ckptRestores, float64(st.Restores), name)
		counter(ckptRestoreFail, float64(st.RestoreFailures), name)
		counter(ckptSkipped, float64(st.Skipped), name)
		counter(ckptBytes, float64(st.TotalBytes), name)
		if !st.LastTime.IsZero() {
			gauge(ckptLastTime, float64(st.LastTime.UnixNano())/1e9, name)
			gauge(ckptLastDur, st.LastDuration.Seconds(), name)
		}
		ch <- histogram{ckptDuration, st.Durations, name}
		ch <- histogram{ckptRestoreDur, st.RestoreDurations, name}
	}
	for _, name := range slices.Sorted(maps.Keys(lockers)) {
		st := lockers[name]()
		counter(lockAcquired, float64(st.Acquired), name)
		counter(lockContended, float64(st.Contended), name)
		counter(lockFailed, float64(st.Failed), name)
		counter(lockReleased, float64(st.Released), name)
		counter(lockLost, float64(st.Lost), name)
		gauge(lockHeld, float64(st.Held), name)
		ch <- histogram{lockDuration, st.AcquireDurations, name}
	}
}

// gaugeHelp returns the help text of st's reading g: the store's sentence,
// or one that names the reading.
func gaugeHelp(st strata.Stats, g string) string {
	if h := st.GaugeHelp[g]; h != "" {
		return h
	}
	return fmt.Sprintf("The reading %s that a %s store reports, which it does not describe further.", g, st.Backend)
}

// histogram is a strata.Histogram as one Prometheus histogram series with
// both classic and native buckets, as a prometheus.Histogram configured
// with Buckets and NativeHistogramBucketFactor writes them.
type histogram struct {
	desc  *prometheus.Desc
	h     strata.Histogram
	label string
}

var _ prometheus.Metric = histogram{}

// Desc returns the metric's description.
func (m histogram) Desc() *prometheus.Desc { return m.desc }

// Write fills out with the classic buckets and, beside them, the native
// ones.
func (m histogram) Write(out *dto.Metric) error {
	h := m.h
	sum := h.Sum.Seconds()
	classic := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		classic[b.Seconds()] = h.Counts[i]
	}
	c, err := prometheus.NewConstHistogram(m.desc, h.Count, sum, classic, m.label)
	if err != nil {
		return err
	}
	positive := make(map[int]int64, len(h.Exponential))
	for i, n := range h.Exponential {
		positive[i] = int64(n)
	}
	// The zero bucket holds exactly the durations of 0 (or less, after a
	// clock step): every positive duration has its exponential bucket.
	n, err := prometheus.NewConstNativeHistogram(m.desc, h.Count, sum, positive, nil, h.Zero,
		strata.HistogramSchema, 0, time.Time{}, m.label)
	if err != nil {
		return err
	}
	if err := c.Write(out); err != nil {
		return err
	}
	var native dto.Metric
	if err := n.Write(&native); err != nil {
		return err
	}
	nh, oh := native.GetHistogram(), out.GetHistogram()
	oh.Schema, oh.ZeroThreshold, oh.ZeroCount = nh.Schema, nh.ZeroThreshold, nh.ZeroCount
	oh.PositiveSpan, oh.PositiveDelta = nh.PositiveSpan, nh.PositiveDelta
	return nil
}

var invalid = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

// sanitize turns a backend or gauge name into a metric name part.
func sanitize(s string) string {
	s = strings.Trim(invalid.ReplaceAllString(s, "_"), "_")
	if s == "" {
		return "unknown"
	}
	return strings.ToLower(s)
}
