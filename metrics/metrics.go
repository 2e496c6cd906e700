// Package metrics exposes strata's stats to Prometheus: the counters of
// stores and tiers (strata.Stats and their backend gauges), checkpoint
// coordinators and lockers, read at scrape time.
//
//	c := metrics.NewCollector()
//	c.AddStore("state", store)
//	c.AddCheckpoints("state", coordinator)
//	prometheus.MustRegister(c)
//
// A tier's gauges include strata_tier_l1_bytes, the bytes its L1 is
// charged against its MaxBytes (strata_tier_l1_max_bytes), and within them
// strata_tier_l1_fixed_bytes, its fixed structures.
//
// Metric names follow Prometheus conventions: a strata_ prefix, base units
// (seconds, bytes), _total on counters. Each source's name is the value of
// the label "store", "checkpoints" or "locker".
package metrics

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

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
	storeReads   = prometheus.NewDesc("strata_store_reads_total", "Keys read, by result (hit or miss).", []string{"store", "result"}, nil)
	storeWrites  = desc("store_writes_total", "Keys written.", "store")
	storeDeletes = desc("store_deletes_total", "Keys deleted.", "store")
	storeErrors  = desc("store_errors_total", "Operations that failed for a reason other than bad input or a miss.", "store")
	storeRead    = desc("store_read_bytes_total", "Value bytes returned to callers.", "store")
	storeWritten = desc("store_written_bytes_total", "Key and value bytes accepted from callers.", "store")
	storeKeys    = desc("store_keys", "Live keys, where the store knows them cheaply.", "store")

	ckptCreated     = desc("checkpoint_created_total", "Checkpoints published.", "checkpoints")
	ckptFailures    = desc("checkpoint_failures_total", "Checkpoints that failed.", "checkpoints")
	ckptRestores    = desc("checkpoint_restores_total", "Successful restores.", "checkpoints")
	ckptRestoreFail = desc("checkpoint_restore_failures_total", "Failed restores.", "checkpoints")
	ckptSkipped     = desc("checkpoint_skipped_total", "Invalid checkpoints passed over by restores.", "checkpoints")
	ckptBytes       = desc("checkpoint_written_bytes_total", "File bytes of every checkpoint published.", "checkpoints")
	ckptLastTime    = desc("checkpoint_last_success_timestamp_seconds", "Creation time of the last published checkpoint.", "checkpoints")
	ckptLastDur     = desc("checkpoint_last_duration_seconds", "How long the last published checkpoint took.", "checkpoints")

	lockAcquired  = desc("lock_acquired_total", "Leases handed out.", "locker")
	lockContended = desc("lock_contended_total", "TryAcquire calls that found the lock held.", "locker")
	lockFailed    = desc("lock_failed_total", "Acquisitions that failed otherwise.", "locker")
	lockReleased  = desc("lock_released_total", "Leases ended by Release.", "locker")
	lockLost      = desc("lock_lost_total", "Leases lost (expired, taken over, backend gone).", "locker")
	lockHeld      = desc("lock_held", "Leases held now.", "locker")
)

// Describe sends nothing, which makes the Collector "unchecked" (see
// prometheus.Collector): the backend gauges vary with the stores added, so
// the set of metrics is not known in advance.
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
		for _, g := range slices.Sorted(maps.Keys(st.Gauges)) {
			metric := "strata_" + sanitize(st.Backend) + "_" + sanitize(g)
			d := prometheus.NewDesc(metric, "Backend reading "+g+" of a "+st.Backend+" store.", []string{"store"}, nil)
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
	}
	for _, name := range slices.Sorted(maps.Keys(lockers)) {
		st := lockers[name]()
		counter(lockAcquired, float64(st.Acquired), name)
		counter(lockContended, float64(st.Contended), name)
		counter(lockFailed, float64(st.Failed), name)
		counter(lockReleased, float64(st.Released), name)
		counter(lockLost, float64(st.Lost), name)
		gauge(lockHeld, float64(st.Held), name)
	}
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
