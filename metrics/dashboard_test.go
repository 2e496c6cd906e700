package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/strata-kv/strata/stores/pebble"
)

// metricName matches the metric names in a PromQL expression: every
// metric the package exports starts with strata_.
var metricName = regexp.MustCompile(`\bstrata_[a-zA-Z0-9_]+`)

// Every metric the dashboard's queries (panel targets and template
// variables) use is one the collector exports, over real stores.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("dashboards/strata.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	walk(dash, func(key string, v any) {
		if s, ok := v.(string); ok && (key == "expr" || key == "definition" || key == "query" && strings.Contains(s, "(")) {
			exprs = append(exprs, s)
		}
	})
	if len(exprs) < 20 {
		t.Fatalf("found %d queries in the dashboard", len(exprs))
	}

	c := everySource(t)
	peb, err := pebble.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peb.Close()
	c.AddStore("disk", peb)
	types := map[string]dto.MetricType{}
	for _, mf := range gather(t, c) {
		types[mf.GetName()] = mf.GetType()
	}
	exported := func(name string) bool {
		if _, ok := types[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == dto.MetricType_HISTOGRAM {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query names no strata metric: %s", e)
		}
		for _, n := range names {
			used[n] = true
			if !exported(n) {
				t.Errorf("query uses %s, which the collector does not export: %s", n, e)
			}
		}
	}
	t.Logf("%d queries use %d metrics of the %d exported", len(exprs), len(used), len(types))
}

// walk calls fn for every key and value of a decoded JSON document.
func walk(v any, fn func(key string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			fn(k, x)
			walk(x, fn)
		}
	case []any:
		for _, x := range v {
			walk(x, fn)
		}
	}
}
