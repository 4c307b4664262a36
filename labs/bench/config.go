// Package bench is what `forgelab bench` needs besides running: the
// [bench] section of a lab file (modes, points, metrics), the interleaved
// order of runs, the metrics of a recorded run, the baseline store, and
// the verdict with its report. It runs nothing itself: labs.Manager.Bench
// plays the runs through the run machinery (labs/run.go).
//
// The section, every key with its default (docs/bench.md explains them):
//
//	[bench]
//	runs      = 5            # measured runs per mode and point (--runs overrides)
//	warmup    = 1            # warm-up rounds, not measured (--warmup overrides)
//	timeout   = "2m"         # upper bound of one run: its workloads must end by then
//	noise     = "5%"         # a relative change below this is noise, even when significant
//	tolerance = "10%"        # how much worse than the baseline or reference is accepted
//	reference = "reference"  # the mode --against-reference compares the others with
//	restart   = ["srv"]      # [[service]] names restarted before each run (links are always reset)
//
//	[[bench.mode]]
//	name      = "native"     # required, unique: the runs' variant
//	kind      = "native"     # native | external | reference; default: the name, when it is one of them
//	workloads = ["w"]        # required: [[workload]] names (usually start = "bench") started by each run
//	metrics   = { goodput_mbps = "higher", rtt_ms = "lower" }
//	                         # required: JSON fields the workloads print, and which way is better
//
//	[[bench.point]]          # optional: link conditions; every mode runs at every point
//	name  = "loss1"          # required, unique
//	link  = "ab"             # required: a [[link]]
//	rate, delay, jitter, loss   # as in [[link]]; unset keys keep the lab file's quality
package bench

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/tomlfile"
	"github.com/forgelab/forgelab/labs/units"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// Mode kinds.
const (
	KindNative    = "native"    // the software's own benchmark program, the network as a library
	KindExternal  = "external"  // a traffic generator feeding the software under test
	KindReference = "reference" // a third-party tool (iperf3) over the same links
)

// Kinds lists the mode kinds.
var Kinds = []string{KindNative, KindExternal, KindReference}

// Defaults of the [bench] section.
const (
	DefaultRuns      = 5
	DefaultWarmup    = 1
	DefaultTimeout   = 2 * time.Minute
	DefaultNoise     = 0.05
	DefaultTolerance = 0.10
)

// Config is the [bench] section of a lab file.
type Config struct {
	File      string
	Runs      int
	Warmup    int
	Timeout   time.Duration
	Noise     float64 // relative, 0.05 for 5 %
	Tolerance float64
	Reference string   // a mode name; "" when the file has no reference mode
	Restart   []string // service names
	Modes     []Mode
	Points    []Point
}

// Mode is one [[bench.mode]].
type Mode struct {
	Name      string
	Kind      string
	Workloads []string
	Metrics   []Metric // sorted by name
	Line      int
}

// Metric is one JSON field a mode's workloads report.
type Metric struct {
	Name   string
	Better stats.Direction
}

// Point is one [[bench.point]]: link conditions every mode runs under.
type Point struct {
	Name     string
	Link     string
	RateBits *int64
	Delay    *time.Duration
	Jitter   *time.Duration
	Loss     *float64 // percent
	Line     int
}

// Describe returns the point's conditions as a user reads them.
func (p Point) Describe() string {
	var parts []string
	if p.RateBits != nil {
		parts = append(parts, "rate "+units.FormatRate(*p.RateBits))
	}
	if p.Delay != nil {
		parts = append(parts, "delay "+p.Delay.String())
	}
	if p.Jitter != nil {
		parts = append(parts, "jitter "+p.Jitter.String())
	}
	if p.Loss != nil {
		parts = append(parts, "loss "+units.FormatPercent(*p.Loss))
	}
	return p.Link + ": " + strings.Join(parts, ", ")
}

// Mode returns the mode called name.
func (c *Config) Mode(name string) (*Mode, bool) {
	for i := range c.Modes {
		if c.Modes[i].Name == name {
			return &c.Modes[i], true
		}
	}
	return nil, false
}

// ModeNames lists the modes in file order.
func (c *Config) ModeNames() []string {
	var out []string
	for _, m := range c.Modes {
		out = append(out, m.Name)
	}
	return out
}

// Metric returns the metric called name.
func (m *Mode) Metric(name string) (Metric, bool) {
	for _, x := range m.Metrics {
		if x.Name == name {
			return x, true
		}
	}
	return Metric{}, false
}

// Error is one problem in the [bench] section, at a line of its file.
type Error = tomlfile.Error

// Errors is every problem found, in line order.
type Errors = tomlfile.Errors

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Parse reads the [bench] section of data (the lab file file, already
// checked into sp by spec.Parse). A file without one is an error that
// says how to add it.
func Parse(file string, data []byte, sp *spec.Spec) (*Config, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		return nil, fmt.Errorf("%s: not valid TOML: %w", file, err)
	}
	p := &parser{tomlfile.Problems{File: file, Lines: tomlfile.Scan(string(data))}}
	raw, ok := root["bench"]
	if !ok {
		return nil, Errors{{File: file, Msg: "no [bench] section: add one with at least one [[bench.mode]] (docs/bench.md shows how)"}}
	}
	t, ok := raw.(map[string]any)
	if !ok {
		return nil, Errors{{File: file, Line: p.Lines.Find("bench"), Msg: "bench must be a table ([bench])"}}
	}
	c := p.config(&tomlfile.Table{P: &p.Problems, Path: "bench", What: "[bench]", M: t}, sp)
	if len(p.Errs) > 0 {
		return nil, p.Sorted()
	}
	return c, nil
}

type parser struct{ tomlfile.Problems }

func (p *parser) config(t *tomlfile.Table, sp *spec.Spec) *Config {
	c := &Config{File: p.File, Runs: DefaultRuns, Warmup: DefaultWarmup, Timeout: DefaultTimeout,
		Noise: DefaultNoise, Tolerance: DefaultTolerance}
	t.OnlyKeys([]string{"runs", "warmup", "timeout", "noise", "tolerance", "reference", "restart", "mode", "point"}, "")
	if n, ok := t.Int("runs"); ok {
		if n < 1 {
			t.Errorf("runs", "runs must be at least 1, not %d", n)
		}
		c.Runs = n
	}
	if n, ok := t.Int("warmup"); ok {
		if n < 0 {
			t.Errorf("warmup", "warmup must not be negative, not %d", n)
		}
		c.Warmup = n
	}
	if s, ok := t.Str("timeout"); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Errorf("timeout", "timeout %q is not a positive duration (e.g. \"90s\")", s)
		}
		c.Timeout = d
	}
	for key, into := range map[string]*float64{"noise": &c.Noise, "tolerance": &c.Tolerance} {
		if s, ok := t.Str(key); ok {
			v, err := units.ParsePercent(s)
			if err != nil || v < 0 || v >= 100 {
				t.Errorf(key, "%s %q is not a percentage in [0, 100) (e.g. \"5%%\")", key, s)
			}
			*into = v / 100
		}
	}
	services := map[string]bool{}
	for _, s := range sp.Services {
		services[s.Name] = true
	}
	if list, ok := t.Strings("restart"); ok {
		for _, s := range list {
			if !services[s] {
				t.Errorf("restart", "restart names service %q, which the lab file does not have (services: %s)", s, orNone(slices.Sorted(maps.Keys(services))))
			}
		}
		c.Restart = list
	}
	workloads := map[string]bool{}
	for _, w := range sp.Workloads {
		workloads[w.Name] = true
	}
	for i, mt := range tables(t, "mode") {
		if m, ok := p.mode(mt, i, workloads); ok {
			if _, dup := c.Mode(m.Name); dup {
				mt.Errorf("name", "a mode %q is defined twice", m.Name)
				continue
			}
			c.Modes = append(c.Modes, m)
		}
	}
	if len(c.Modes) == 0 && !t.Has("mode") {
		t.Errorf("", "no modes: add at least one [[bench.mode]] with name, workloads and metrics")
	}
	links := map[string]bool{}
	for _, l := range sp.Links {
		links[l.Name] = true
	}
	seen := map[string]bool{}
	for i, pt := range tables(t, "point") {
		if pnt, ok := p.point(pt, i, links); ok {
			if seen[pnt.Name] {
				pt.Errorf("name", "a point %q is defined twice", pnt.Name)
				continue
			}
			seen[pnt.Name] = true
			c.Points = append(c.Points, pnt)
		}
	}
	if s, ok := t.Str("reference"); ok {
		if _, found := c.Mode(s); !found {
			t.Errorf("reference", "reference names mode %q, which [bench] does not have (modes: %s)", s, orNone(c.ModeNames()))
		}
		c.Reference = s
	} else {
		for _, m := range c.Modes {
			if m.Kind == KindReference {
				c.Reference = m.Name
				break
			}
		}
	}
	return c
}

func (p *parser) mode(t *tomlfile.Table, i int, workloads map[string]bool) (Mode, bool) {
	n := len(p.Errs)
	t.What = fmt.Sprintf("[[bench.mode]] %d", i+1)
	t.OnlyKeys([]string{"name", "kind", "workloads", "metrics"}, "")
	m := Mode{Line: t.Line("")}
	if s, ok := t.Str("name"); !ok {
		t.Errorf("", "name is missing (e.g. name = \"native\")")
	} else if !nameRE.MatchString(s) {
		t.Errorf("name", "name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", s)
	} else {
		m.Name = s
		t.What = "mode " + s
	}
	m.Kind = m.Name
	if s, ok := t.Str("kind"); ok {
		m.Kind = s
	}
	if !slices.Contains(Kinds, m.Kind) {
		if t.Has("kind") {
			t.Errorf("kind", "kind %q is not known (use native, external or reference)", m.Kind)
		} else if m.Name != "" {
			t.Errorf("", "kind is missing: add kind = \"native\", \"external\" or \"reference\" (it may be left out only when the name is one of them)")
		}
	}
	if list, ok := t.Strings("workloads"); !ok || len(list) == 0 {
		if !t.Has("workloads") || ok {
			t.Errorf("workloads", "workloads is missing or empty: name the [[workload]]s each run of this mode starts")
		}
	} else {
		for _, w := range list {
			if !workloads[w] {
				t.Errorf("workloads", "workload %q is not a [[workload]] of the lab file (workloads: %s)", w, orNone(slices.Sorted(maps.Keys(workloads))))
			}
		}
		m.Workloads = list
	}
	if mt := t.Sub("metrics", "%[1]s must be a table, e.g. %[1]s = { name = \"higher\" }"); mt == nil {
		if !t.Has("metrics") {
			t.Errorf("", `metrics is missing: name the JSON fields the workloads print and which way is better, e.g. metrics = { goodput_mbps = "higher" }`)
		}
	} else {
		for _, k := range slices.Sorted(maps.Keys(mt.M)) {
			s, ok := mt.Str(k)
			if !ok {
				continue
			}
			var d stats.Direction
			switch s {
			case "higher":
				d = stats.HigherIsBetter
			case "lower":
				d = stats.LowerIsBetter
			default:
				mt.Errorf(k, "metric %s: %q is not a direction (use \"higher\" or \"lower\": which way is better)", k, s)
				continue
			}
			m.Metrics = append(m.Metrics, Metric{Name: k, Better: d})
		}
		if len(mt.M) == 0 {
			t.Errorf("metrics", "metrics is empty: name at least one JSON field")
		}
	}
	return m, len(p.Errs) == n
}

func (p *parser) point(t *tomlfile.Table, i int, links map[string]bool) (Point, bool) {
	n := len(p.Errs)
	t.What = fmt.Sprintf("[[bench.point]] %d", i+1)
	t.OnlyKeys([]string{"name", "link", "rate", "delay", "jitter", "loss"}, "")
	pt := Point{Line: t.Line("")}
	if s, ok := t.Str("name"); !ok {
		t.Errorf("", "name is missing (e.g. name = \"loss1\")")
	} else if !nameRE.MatchString(s) {
		t.Errorf("name", "name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", s)
	} else {
		pt.Name = s
		t.What = "point " + s
	}
	if s, ok := t.Str("link"); !ok {
		t.Errorf("", "link is missing: name the [[link]] whose quality this point sets")
	} else if !links[s] {
		t.Errorf("link", "link %q is not a [[link]] of the lab file (links: %s)", s, orNone(slices.Sorted(maps.Keys(links))))
	} else {
		pt.Link = s
	}
	if s, ok := t.Str("rate"); ok {
		if v, err := units.ParseRate(s); err != nil {
			t.Errorf("rate", "rate %q: %v", s, err)
		} else {
			pt.RateBits = &v
		}
	}
	for key, into := range map[string]**time.Duration{"delay": &pt.Delay, "jitter": &pt.Jitter} {
		if s, ok := t.Str(key); ok {
			if v, err := units.ParseDelay(s); err != nil {
				t.Errorf(key, "%s %q: %v", key, s, err)
			} else {
				*into = &v
			}
		}
	}
	if s, ok := t.Str("loss"); ok {
		if v, err := units.ParsePercent(s); err != nil || v > 100 {
			t.Errorf("loss", "loss %q is not a percentage (e.g. \"1%%\")", s)
		} else {
			pt.Loss = &v
		}
	}
	if pt.RateBits == nil && pt.Delay == nil && pt.Jitter == nil && pt.Loss == nil && len(p.Errs) == n {
		t.Errorf("", "the point sets nothing: give at least one of rate, delay, jitter, loss")
	}
	return pt, len(p.Errs) == n
}

// tables reads [[bench.key]]. Unlike the other file types, bench takes no
// inline array of tables (key = [{...}]).
func tables(t *tomlfile.Table, key string) []*tomlfile.Table {
	if _, inline := t.M[key].([]any); inline {
		t.Errorf(key, "%s must be written as [[bench.%s]] tables", key, key)
		return nil
	}
	return t.Tables(key, "bench."+key)
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
