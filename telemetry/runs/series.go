package runs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Metrics that do not live in a CSV table.
const (
	MetricWorkloadValue  = "forgelab_workload_value"        // labels host, workload, field: workloads/*.jsonl
	MetricScenarioEvents = "forgelab_scenario_events_total" // label action: events.jsonl
)

// Series is one metric over time: T in seconds since the start of the run,
// V the values (samples with no value are left out).
type Series struct {
	Name   string
	Labels map[string]string // every label, lab included
	T      []float64
	V      []float64
}

// String is the series' full name.
func (s Series) String() string { return formatSeries(s.Name, s.Labels) }

// Series returns the one series sel picks, or an error naming the labels
// that would narrow it down.
func (r *Run) Series(sel string) (Series, error) {
	all, err := r.Select(sel)
	if err != nil {
		return Series{}, err
	}
	if len(all) > 1 {
		names := make([]string, 0, 4)
		for _, s := range all[:min(len(all), 4)] {
			names = append(names, s.String())
		}
		return Series{}, fmt.Errorf("%s matches %d series in run %s (%s, ...): add labels to pick one", sel, len(all), r.Name(), strings.Join(names, ", "))
	}
	return all[0], nil
}

// Select returns every series sel matches, in the order they first
// appear. The names and labels are those of docs/metrics.md; lab may be
// given and must be the run's.
func (r *Run) Select(selector string) ([]Series, error) {
	sel, err := ParseSelector(selector)
	if err != nil {
		return nil, err
	}
	if lab, ok := sel.Labels["lab"]; ok {
		if lab != r.Meta.Lab {
			return nil, fmt.Errorf("%s: run %s is of lab %s", selector, r.Name(), r.Meta.Lab)
		}
		delete(sel.Labels, "lab")
	}
	var out []Series
	switch sel.Name {
	case MetricWorkloadValue:
		out, err = r.workloadSeries(sel)
	case MetricScenarioEvents:
		out, err = r.eventSeries(sel)
	default:
		out, err = r.tableSeries(sel)
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no samples of %s in run %s: check the label values (forgelab runs show %s lists what was recorded)", selector, r.Name(), r.Name())
	}
	for i := range out {
		out[i].Labels["lab"] = r.Meta.Lab
	}
	return out, nil
}

// tableSeries finds the metric among the CSV tables' value columns.
func (r *Run) tableSeries(sel Selector) ([]Series, error) {
	var known []string
	for _, file := range []string{PositionsFile, LinksFile, HostsFile, ProcessesFile} {
		// The header says whether the metric is there; only then is the
		// whole table read.
		header, err := readHeader(r.path(file))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		names := metricNames(header)
		if !slices.Contains(names, sel.Name) {
			known = append(known, names...)
			continue
		}
		t, err := readTable(r.path(file))
		if err != nil {
			return nil, err
		}
		return seriesFromTable(t, sel)
	}
	known = append(known, MetricWorkloadValue, MetricScenarioEvents)
	slices.Sort(known)
	return nil, fmt.Errorf("run %s has no metric %s; it has: %s (names as in docs/metrics.md)", r.Name(), sel.Name, strings.Join(slices.Compact(known), ", "))
}

// metricNames lists the metrics of a table's value columns.
func metricNames(header []string) []string {
	var names []string
	for _, h := range header {
		if isMetricColumn(h) {
			if sel, err := ParseSelector(h); err == nil {
				names = append(names, sel.Name)
			}
		}
	}
	return names
}

// seriesFromTable returns the series of t that sel picks; the metric is
// known to be in t.
func seriesFromTable(t *table, sel Selector) ([]Series, error) {
	type column struct {
		index int
		fixed map[string]string
	}
	var cols []column
	// Label columns come first, value columns after: the first column
	// named like a metric starts the values.
	first := len(t.header)
	for i := 2; i < len(t.header); i++ {
		if isMetricColumn(t.header[i]) {
			first = i
			break
		}
	}
	labelCols := t.header[2:first]
	for i := first; i < len(t.header); i++ {
		cs, err := ParseSelector(t.header[i])
		if err != nil || cs.Name != sel.Name {
			continue
		}
		ok := true
		for k, v := range cs.Labels {
			if want, given := sel.Labels[k]; given && want != v {
				ok = false
			}
		}
		if ok {
			cols = append(cols, column{index: i, fixed: cs.Labels})
		}
	}
	if len(cols) == 0 {
		return []Series{}, nil // label values match no column
	}
	// Every label asked for must exist: a typo should not match everything.
	for k := range sel.Labels {
		if !slices.Contains(labelCols, k) {
			if _, ok := cols[0].fixed[k]; !ok {
				allowed := slices.Clone(labelCols)
				for f := range cols[0].fixed {
					allowed = append(allowed, f)
				}
				return nil, fmt.Errorf("%s has no label %q (its labels: lab, %s)", sel.Name, k, strings.Join(allowed, ", "))
			}
		}
	}
	out := []Series{}
	byKey := map[string]int{}
	for ri, row := range t.rows {
		match := true
		for k, v := range sel.Labels {
			if j := slices.Index(labelCols, k); j >= 0 && row[2+j] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		_, secs, err := t.stamp(ri)
		if err != nil {
			return nil, err
		}
		for _, c := range cols {
			v, err := parseFloat(row[c.index])
			if err != nil {
				return nil, fmt.Errorf("%s row %d: %s: %w", t.path, ri+2, t.header[c.index], err)
			}
			if v != v { // NaN: no value in this sample
				continue
			}
			labels := map[string]string{}
			for j, name := range labelCols {
				labels[name] = row[2+j]
			}
			for k, fv := range c.fixed {
				labels[k] = fv
			}
			key := formatSeries(sel.Name, labels)
			i, ok := byKey[key]
			if !ok {
				i = len(out)
				byKey[key] = i
				out = append(out, Series{Name: sel.Name, Labels: labels})
			}
			out[i].T = append(out[i].T, secs)
			out[i].V = append(out[i].V, v)
		}
	}
	return out, nil
}

// workloadSeries reads field from each matching workload's JSON lines.
// A field may name a nested value with dots: "stats.delivery".
func (r *Run) workloadSeries(sel Selector) ([]Series, error) {
	field, ok := sel.Labels["field"]
	if !ok {
		return nil, fmt.Errorf("%s needs field=NAME: the key of the workload's JSON lines to read", MetricWorkloadValue)
	}
	for k := range sel.Labels {
		if k != "field" && k != "host" && k != "workload" {
			return nil, fmt.Errorf("%s has no label %q (its labels: lab, host, workload, field)", MetricWorkloadValue, k)
		}
	}
	out := []Series{}
	for _, f := range r.Workloads() {
		if h, ok := sel.Labels["host"]; ok && h != f.Host {
			continue
		}
		if w, ok := sel.Labels["workload"]; ok && w != f.Name {
			continue
		}
		recs, err := r.Workload(f.Host, f.Name)
		if err != nil {
			return nil, err
		}
		s := Series{Name: MetricWorkloadValue, Labels: map[string]string{"host": f.Host, "workload": f.Name, "field": field}}
		for _, rec := range recs {
			if v, ok := lookupNumber(rec.Fields, field); ok {
				s.T = append(s.T, rec.T)
				s.V = append(s.V, v)
			}
		}
		if len(s.T) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// lookupNumber finds a numeric (or boolean: 0, 1) field, trying the whole
// key first, then a dotted path into nested objects.
func lookupNumber(m map[string]any, key string) (float64, bool) {
	v, ok := m[key]
	if !ok {
		head, rest, dotted := strings.Cut(key, ".")
		sub, isMap := m[head].(map[string]any)
		if !dotted || !isMap {
			return 0, false
		}
		return lookupNumber(sub, rest)
	}
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case bool:
		return boolFloat(v), true
	}
	return 0, false
}

// eventSeries counts the scenario's applied actions over time, per action.
func (r *Run) eventSeries(sel Selector) ([]Series, error) {
	for k := range sel.Labels {
		if k != "action" {
			return nil, fmt.Errorf("%s has no label %q (its labels: lab, action)", MetricScenarioEvents, k)
		}
	}
	events, err := r.Events()
	if err != nil {
		return nil, err
	}
	out := []Series{}
	byAction := map[string]int{}
	for _, e := range events {
		if e.Source != SourceScenario || e.Error != "" {
			continue
		}
		if a, ok := sel.Labels["action"]; ok && a != e.Action {
			continue
		}
		i, ok := byAction[e.Action]
		if !ok {
			i = len(out)
			byAction[e.Action] = i
			out = append(out, Series{Name: MetricScenarioEvents, Labels: map[string]string{"action": e.Action}})
		}
		out[i].T = append(out[i].T, e.T)
		out[i].V = append(out[i].V, float64(len(out[i].V)+1))
	}
	return out, nil
}

// isMetricColumn tells a value column (named by docs/metrics.md) from a
// label column.
func isMetricColumn(h string) bool {
	return strings.HasPrefix(h, "forgelab_") || strings.HasPrefix(h, "libvirt_")
}
