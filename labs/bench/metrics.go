package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// Key names one measured quantity: a metric of a mode at a point.
type Key struct {
	Mode   string `json:"mode"`
	Point  string `json:"point,omitempty"`
	Metric string `json:"metric"`
}

func (k Key) String() string {
	if k.Point == "" {
		return k.Mode + " " + k.Metric
	}
	return k.Mode + " " + k.Point + " " + k.Metric
}

// Series is the values of one key, one per measured run, in run order.
type Series struct {
	Key    Key             `json:"key"`
	Better stats.Direction `json:"better"`
	Values []float64       `json:"values"`
	Runs   []string        `json:"runs"` // LAB/ID of each value's run
}

// Samples is every series of a bench (or a baseline), sorted by key.
type Samples []Series

// Get returns the series of k.
func (s Samples) Get(k Key) (*Series, bool) {
	for i := range s {
		if s[i].Key == k {
			return &s[i], true
		}
	}
	return nil, false
}

// Add appends one run's value to the series of k, making it if needed.
func (s *Samples) Add(k Key, better stats.Direction, v float64, run string) {
	if x, ok := s.Get(k); ok {
		x.Values = append(x.Values, v)
		x.Runs = append(x.Runs, run)
		return
	}
	*s = append(*s, Series{Key: k, Better: better, Values: []float64{v}, Runs: []string{run}})
	slices.SortStableFunc(*s, func(a, b Series) int { return strings.Compare(a.Key.String(), b.Key.String()) })
}

// Value is one metric of one run.
type Value struct {
	Key    Key
	Better stats.Direction
	Value  float64
}

// RunValues reads the metrics of a bench run from its folder: for each
// metric of the run's mode, the value in the last JSON line that has the
// field, from the one workload (and host) of the mode that prints it. c is
// the bench the run belongs to; nil reads it from the run's own lab file
// (a bench saves the file it was read from). A run that is not a complete
// bench run, or that did not report a metric, is an error naming the run,
// the workload and the fields it did report.
func RunValues(r *runs.Run, c *Config) ([]Value, error) {
	b := r.Meta.Bench
	if b == nil {
		return nil, fmt.Errorf("run %s is not a bench run (made by forgelab %s, not forgelab bench): give runs that `forgelab bench` recorded", r.Name(), orRun(r.Meta.Scenario))
	}
	if r.Meta.Status != runs.StatusComplete {
		return nil, fmt.Errorf("run %s is %s%s: its metrics cannot be trusted; run the bench again", r.Name(), r.Meta.Status, paren(r.Meta.Reason))
	}
	if c == nil {
		var err error
		if c, err = RunConfig(r); err != nil {
			return nil, err
		}
	}
	m, ok := c.Mode(b.Mode)
	if !ok {
		return nil, fmt.Errorf("run %s measured mode %q, which %s no longer has (modes: %s)", r.Name(), b.Mode, c.File, orNone(c.ModeNames()))
	}
	// Every JSON line of every workload of the mode, by workload and host.
	type source struct{ workload, host string }
	lines := map[source][]runs.WorkloadRecord{}
	var sources []source
	for _, f := range r.Workloads() {
		if !slices.Contains(m.Workloads, f.Name) {
			continue
		}
		recs, err := r.Workload(f.Host, f.Name)
		if err != nil {
			return nil, err
		}
		s := source{f.Name, f.Host}
		lines[s] = recs
		sources = append(sources, s)
	}
	var out []Value
	for _, mt := range m.Metrics {
		var found []source
		var v float64
		for _, s := range sources {
			recs := lines[s]
			for i := len(recs) - 1; i >= 0; i-- {
				raw, ok := recs[i].Fields[mt.Name]
				if !ok {
					continue
				}
				x, err := number(raw)
				if err != nil {
					return nil, fmt.Errorf("run %s: workload %s on host %s printed %s = %v: %v", r.Name(), s.workload, s.host, mt.Name, raw, err)
				}
				v = x
				found = append(found, s)
				break
			}
		}
		switch len(found) {
		case 0:
			var seen []string
			for _, s := range sources {
				fields := map[string]bool{}
				for _, rec := range lines[s] {
					for k := range rec.Fields {
						fields[k] = true
					}
				}
				seen = append(seen, fmt.Sprintf("%s on %s printed %s", s.workload, s.host, orNone(slices.Sorted(maps.Keys(fields)))))
			}
			if len(seen) == 0 {
				seen = []string{"no workload of the mode printed a JSON line"}
			}
			return nil, fmt.Errorf("run %s (mode %s): no workload reported the metric %q (%s); fix the workload or the metrics of mode %s in %s (forgelab runs show %s has its output)",
				r.Name(), m.Name, mt.Name, strings.Join(seen, "; "), m.Name, c.File, r.Name())
		case 1:
			out = append(out, Value{Key: Key{Mode: m.Name, Point: b.Point, Metric: mt.Name}, Better: mt.Better, Value: v})
		default:
			var names []string
			for _, s := range found {
				names = append(names, s.workload+" on "+s.host)
			}
			return nil, fmt.Errorf("run %s (mode %s): the metric %q is reported by %s: only one workload on one host may report a metric (rename the field in all but one)",
				r.Name(), m.Name, mt.Name, strings.Join(names, " and "))
		}
	}
	return out, nil
}

// RunConfig reads the [bench] section of the lab file a run saved.
func RunConfig(r *runs.Run) (*Config, error) {
	path := filepath.Join(r.Dir, runs.LabFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("run %s: its lab file: %w", r.Name(), err)
	}
	sp, err := spec.Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("run %s: its lab file: %w", r.Name(), err)
	}
	return Parse(path, data, sp)
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Float64()
	case float64:
		return x, nil
	}
	return 0, fmt.Errorf("not a number")
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func orRun(s string) string {
	if s == "" {
		return "run"
	}
	return "run, scenario " + s
}
