package compare

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// runData is what compare reads from one run folder.
type runData struct {
	duration float64
	// numeric series by metric id, in the order first seen
	order  []string
	series map[string]*Metric // T and V in Runs[0]
	texts  map[string]*textSeries
	tOrder []string
	links  map[string]*linkCond
	// markers from events.jsonl
	markers []Marker
}

type textSeries struct {
	t []float64
	v []string
}

// linkCond is a link's condition over time, per direction: the loss in
// percent, 100 while down.
type linkCond struct {
	dirs  []string
	steps map[string]*Curve
	// counters of delivered bytes per direction
	tx map[string]*Curve
}

// at is the worse direction's loss at t (each direction's last sample at
// or before t; its first before the first), NaN when nothing is known.
func (l *linkCond) at(t float64) float64 {
	worst := math.NaN()
	for _, d := range l.dirs {
		v := stepAt(l.steps[d], t)
		if !math.IsNaN(v) && (math.IsNaN(worst) || v > worst) {
			worst = v
		}
	}
	return worst
}

// stepAt is the value of a step function at t: the last sample at or
// before t, the first one before it starts, NaN when empty.
func stepAt(c *Curve, t float64) float64 {
	if c == nil || len(c.T) == 0 {
		return math.NaN()
	}
	i := sort.Search(len(c.T), func(i int) bool { return c.T[i] > t })
	if i == 0 {
		return c.V[0]
	}
	return c.V[i-1]
}

// workloadKey names a workload in metric ids: its name, with @host when
// the same name ran on several hosts.
type workloadKey struct{ host, name string }

// readRun reads the series compare uses from a run.
func readRun(r *runs.Run, ids map[workloadKey]string) (*runData, error) {
	d := &runData{series: map[string]*Metric{}, texts: map[string]*textSeries{}, links: map[string]*linkCond{}}
	last := 0.0
	for _, f := range r.Workloads() {
		recs, err := r.Workload(f.Host, f.Name)
		if err != nil {
			return nil, err
		}
		prefix := ids[workloadKey{f.Host, f.Name}]
		for _, rec := range recs {
			last = math.Max(last, rec.T)
			flatten("", rec.Fields, func(field string, v any) {
				id := prefix + "." + field
				switch v := v.(type) {
				case string:
					ts := d.texts[id]
					if ts == nil {
						ts = &textSeries{}
						d.texts[id] = ts
						d.tOrder = append(d.tOrder, id)
					}
					ts.t = append(ts.t, rec.T)
					ts.v = append(ts.v, v)
				default:
					x, ok := number(v)
					if !ok {
						return
					}
					m := d.series[id]
					if m == nil {
						m = &Metric{ID: id, Source: "workload", Host: f.Host, Workload: f.Name, Field: field, Runs: []MetricRun{{}}}
						d.series[id] = m
						d.order = append(d.order, id)
					}
					m.Runs[0].T = append(m.Runs[0].T, rec.T)
					m.Runs[0].V = append(m.Runs[0].V, x)
				}
			})
		}
	}
	rows, err := r.Links()
	if err != nil && !isNotExist(err) {
		return nil, err
	}
	for _, row := range rows {
		last = math.Max(last, row.T)
		l := d.links[row.Link]
		if l == nil {
			l = &linkCond{steps: map[string]*Curve{}, tx: map[string]*Curve{}}
			d.links[row.Link] = l
		}
		if l.steps[row.From] == nil {
			l.dirs = append(l.dirs, row.From)
			l.steps[row.From] = &Curve{}
			l.tx[row.From] = &Curve{}
		}
		cond := 100 * row.LossRatio
		if row.Up == 0 {
			cond = 100
		}
		if !math.IsNaN(cond) {
			s := l.steps[row.From]
			s.T, s.V = append(s.T, row.T), append(s.V, cond)
		}
		if !math.IsNaN(row.TxBytes) {
			c := l.tx[row.From]
			c.T, c.V = append(c.T, row.T), append(c.V, row.TxBytes)
		}
	}
	events, err := r.Events()
	if err != nil && !isNotExist(err) {
		return nil, err
	}
	for _, e := range events {
		last = math.Max(last, e.T)
		if e.Source == runs.SourceScenario && e.Action == "marker" && e.Error == "" {
			d.markers = append(d.markers, Marker{T: e.T, Label: markerLabel(e)})
		}
	}
	// What the run recorded, by its last sample or event: the same for
	// a complete run (its run.end event) and an incomplete one, whose end
	// time is not known.
	d.duration = last
	return d, nil
}

// linkMetrics adds each link's loss and delivered bytes per second, on a
// 1 s grid over [0, end].
func (d *runData) linkMetrics(end float64) {
	names := make([]string, 0, len(d.links))
	for n := range d.links {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		l := d.links[n]
		loss := &Metric{ID: "link." + n + ".loss_percent", Source: "link", Link: n, Field: "loss_percent", Unit: "%", Runs: []MetricRun{{}}}
		tx := &Metric{ID: "link." + n + ".tx_bytes_per_second", Source: "link", Link: n, Field: "tx_bytes_per_second", Unit: "B/s", Runs: []MetricRun{{}}}
		for k := 1.0; k <= end; k++ {
			if c := l.at(k); !math.IsNaN(c) {
				loss.Runs[0].T = append(loss.Runs[0].T, k)
				loss.Runs[0].V = append(loss.Runs[0].V, c)
			}
			sum, known := 0.0, false
			for _, dir := range l.dirs {
				c := l.tx[dir]
				if len(c.T) == 0 || c.T[0] > k-1 {
					continue
				}
				sum += stepAt(c, k) - stepAt(c, k-1)
				known = true
			}
			if known {
				tx.Runs[0].T = append(tx.Runs[0].T, k)
				tx.Runs[0].V = append(tx.Runs[0].V, sum)
			}
		}
		for _, m := range []*Metric{loss, tx} {
			if len(m.Runs[0].T) > 0 {
				d.series[m.ID] = m
				d.order = append(d.order, m.ID)
			}
		}
	}
}

// markerLabel is a marker's label: args.label, else the label quoted in
// the action's description (`10s marker "label"`), else its result.
func markerLabel(e runs.Event) string {
	if s, ok := e.Args["label"].(string); ok && s != "" {
		return s
	}
	if s, ok := e.Args["action"].(string); ok {
		if _, q, found := strings.Cut(s, "marker "); found {
			if u, err := strconv.Unquote(strings.TrimSpace(q)); err == nil {
				return u
			}
			return strings.TrimSpace(q)
		}
	}
	if e.Result != "" {
		return e.Result
	}
	return "marker"
}

// flatten calls f for each leaf of a workload line; nested objects give
// dotted names, as runs' selectors read them. The workload's own clock
// (workload_time, workload_t) is not a metric.
func flatten(prefix string, m map[string]any, f func(string, any)) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if prefix == "" && (k == "workload_time" || k == "workload_t") {
			continue
		}
		switch v := m[k].(type) {
		case map[string]any:
			flatten(prefix+k+".", v, f)
		case []any, nil:
		default:
			f(prefix+k, v)
		}
	}
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		x, err := v.Float64()
		return x, err == nil && !math.IsInf(x, 0) && !math.IsNaN(x)
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// workloadIDs names every workload of the runs for metric ids.
func workloadIDs(rs []*runs.Run) map[workloadKey]string {
	hosts := map[string]map[string]bool{}
	for _, r := range rs {
		for _, f := range r.Workloads() {
			if hosts[f.Name] == nil {
				hosts[f.Name] = map[string]bool{}
			}
			hosts[f.Name][f.Host] = true
		}
	}
	ids := map[workloadKey]string{}
	for name, hs := range hosts {
		for h := range hs {
			id := name
			if len(hs) > 1 {
				id = name + "@" + h
			}
			ids[workloadKey{h, name}] = id
		}
	}
	return ids
}

// classify says from a field's name what kind of figure it is and which
// way is better; "" and 0 when the name does not say.
func classify(field string) (class string, d int) {
	f := strings.ToLower(field)
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	}
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(f, s) {
				return true
			}
		}
		return false
	}
	suffix := func(subs ...string) bool {
		for _, s := range subs {
			if strings.HasSuffix(f, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("rtt", "latency", "delay", "jitter", "owd") || suffix("_ms", "_us", "_ns", "_seconds", "_secs"):
		return "latency", lower
	case has("lost", "loss", "drop", "error", "retrans", "timeout", "fail"):
		return "loss", lower
	case has("delivery", "success", "availability"):
		return "delivery", higher
	case has("goodput", "throughput", "received", "delivered", "bps", "bitrate", "bytes_per", "mbit"):
		return "goodput", higher
	}
	return "", 0
}

const (
	lower  = 1 // stats.LowerIsBetter
	higher = 2 // stats.HigherIsBetter
)

// unitOf guesses a unit from a field's suffix, for labels only.
func unitOf(field string) string {
	for _, u := range []struct{ suffix, unit string }{
		{"_ms", "ms"}, {"_us", "µs"}, {"_ns", "ns"}, {"_seconds", "s"}, {"_bytes", "B"}, {"_bps", "bit/s"}, {"_percent", "%"},
	} {
		if strings.HasSuffix(field, u.suffix) {
			return u.unit
		}
	}
	return ""
}

// headlineRank orders the candidates of a class: the lower, the more a
// field says about the software as a user sees it.
func headlineRank(class, field string) int {
	f := strings.ToLower(field)
	var prefs []string
	switch class {
	case "delivery":
		prefs = []string{"delivery", "success", "availability"}
	case "goodput":
		prefs = []string{"goodput", "throughput", "received", "delivered"}
	case "latency":
		prefs = []string{"p50", "median", "mean", "avg", "rtt", "latency"}
	}
	for i, p := range prefs {
		if strings.Contains(f, p) {
			return i
		}
	}
	return len(prefs)
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

func describeIDs(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, ", ")
}
