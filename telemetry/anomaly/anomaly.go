// Package anomaly finds what a run's series say went wrong while it ran
// (issue 12, item 4): leaks and slow degradation (a robust trend), and
// sudden drops (change points). Find is the one entry point; `forgelab
// runs check`, compare and bench reports call it.
//
// What it looks at:
//
//   - processes.csv, per host and workload or service: resident memory
//     and open file descriptors. A leak is a significant increasing trend
//     (Mann-Kendall p < Alpha) whose Theil-Sen fit grows by at least
//     LeakChange of its starting level over the run, and by at least an
//     absolute floor (MinRSSGrowth, MinFDGrowth).
//   - the workloads' JSON-line numeric fields, by name: resource fields
//     (rss, mem, heap, alloc, fds, goroutines, threads) as leaks;
//     throughput fields (throughput, goodput, bps, rate, delivery,
//     delivered, ops, qps, rps, recv, received) as degradation when they
//     trend down by DegradeChange, and as a drop at a change point
//     (E-divisive) where the mean falls by DropChange; latency fields
//     (latency, lat, rtt, delay, p50, p90, p99, jitter) as degradation
//     when they trend up by DegradeChange, and as a rise at a change point
//     where the mean grows by RiseChange. Other fields are left alone: a
//     counter or a sequence number always "trends".
//
// Samples before WarmUp (a share of the run) are left out: a program's
// memory grows while it starts, which is not a leak.
package anomaly

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// Options set Find. Start from DefaultOptions.
type Options struct {
	// Alpha is the Mann-Kendall significance level of a trend.
	Alpha float64
	// LeakChange is the smallest growth of a resource over the run,
	// relative to its fitted starting level, that is a leak.
	LeakChange float64
	// MinRSSGrowth (bytes) and MinFDGrowth (descriptors) are the smallest
	// absolute growths over the run that are a leak.
	MinRSSGrowth float64
	MinFDGrowth  float64
	// DegradeChange is the smallest relative trend of a throughput (down)
	// or latency (up) series that is a degradation.
	DegradeChange float64
	// DropChange and RiseChange are the smallest relative changes of the
	// mean at a change point that are a drop (throughput) or a rise
	// (latency).
	DropChange, RiseChange float64
	// WarmUp is the share of each series' time span left out at its start.
	WarmUp float64
	// ChangePoints are the E-divisive settings.
	ChangePoints stats.ChangePointOptions
}

// DefaultOptions: alpha 0.01; a leak grows by at least 10 % of its level
// and by at least 4 MiB or 4 descriptors; a degradation trends by 10 %;
// a drop loses 20 % of the mean at a change point and a rise adds 50 %;
// the first 10 % of each series is warm-up.
//
// Why: alpha 0.01 because a run checks tens of series and a false alarm
// in CI costs more than a leak found one run later. 10 % of the level
// separates a leak from an allocator that settles (glibc arenas, Go's
// heap goal move RSS by a few per cent in a steady state); the absolute
// floors keep a small process (a shell at 3 MiB) that maps one more page
// of libc, or a program that opens a log file lazily, from being flagged
// on relative growth alone; 4 MiB because a Go program's heap settles by
// a MiB or two in its first minute (the handover demo's sender grew
// 1.0 MiB over a 60 s run, and that is not a leak). 20 % and 50 % for change points because
// throughput and latency of a loaded link under TCG vary by 10-30 %
// sample to sample; E-divisive already asks that a shift be significant,
// these ask that it matter.
func DefaultOptions() Options {
	return Options{Alpha: 0.01, LeakChange: 0.10, MinRSSGrowth: 4 << 20, MinFDGrowth: 4,
		DegradeChange: 0.10, DropChange: 0.20, RiseChange: 0.50, WarmUp: 0.10,
		ChangePoints: stats.DefaultChangePointOptions()}
}

// Kinds of finding.
const (
	Leak        = "leak"        // a resource grows
	Degradation = "degradation" // throughput trends down, latency up
	Drop        = "drop"        // throughput falls at a change point
	Rise        = "rise"        // latency rises at a change point
)

// Finding is one series' verdict.
type Finding struct {
	Kind    string  `json:"kind"`
	Series  string  `json:"series"` // as docs/metrics.md names it, with labels
	Flagged bool    `json:"flagged"`
	Change  float64 `json:"change"` // relative: over the run (trends), at the point (change points)
	// Growth is the fitted absolute change over the run (trends), Rate
	// the same per second.
	Growth float64 `json:"growth,omitempty"`
	Rate   float64 `json:"rate_per_second,omitempty"`
	P      float64 `json:"p"`
	At     float64 `json:"at,omitempty"` // t of a change point, seconds into the run
	Text   string  `json:"text"`
}

// Find returns what is flagged in run: leaks, degradations, drops and
// rises (Analyze returns every verdict, flagged or not).
func Find(run *runs.Run, opt Options) ([]Finding, error) {
	all, err := Analyze(run, opt)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(f Finding) bool { return !f.Flagged }), nil
}

// Analyze returns a verdict for every series Find looks at.
func Analyze(run *runs.Run, opt Options) ([]Finding, error) {
	if opt == (Options{}) {
		opt = DefaultOptions()
	}
	var out []Finding
	procs, err := run.Processes()
	if err != nil {
		return nil, err
	}
	type key struct{ host, process, kind string }
	type series struct{ t, rss, fds []float64 }
	byKey := map[key]*series{}
	var keys []key
	for _, p := range procs {
		k := key{p.Host, p.Process, p.Kind}
		s := byKey[k]
		if s == nil {
			s = &series{}
			byKey[k] = s
			keys = append(keys, k)
		}
		s.t = append(s.t, p.T)
		s.rss = append(s.rss, p.RSSBytes)
		s.fds = append(s.fds, p.OpenFDs)
	}
	for _, k := range keys {
		s := byKey[k]
		labels := fmt.Sprintf(`{host="%s",process="%s",kind="%s"}`, k.host, k.process, k.kind)
		if f, ok := leak("forgelab_process_resident_memory_bytes"+labels, s.t, s.rss, opt.MinRSSGrowth, "B", opt); ok {
			out = append(out, f)
		}
		if f, ok := leak("forgelab_process_open_fds"+labels, s.t, s.fds, opt.MinFDGrowth, "", opt); ok {
			out = append(out, f)
		}
	}
	for _, wf := range run.Workloads() {
		recs, err := run.Workload(wf.Host, wf.Name)
		if err != nil {
			return nil, err
		}
		fields := map[string]bool{}
		for _, r := range recs {
			for k, v := range r.Fields {
				if _, ok := number(v); ok {
					fields[k] = true
				}
			}
		}
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, field := range names {
			class := classify(field)
			if class == "" {
				continue
			}
			var t, v []float64
			for _, r := range recs {
				if x, ok := number(r.Fields[field]); ok {
					t, v = append(t, r.T), append(v, x)
				}
			}
			name := fmt.Sprintf(`%s{host="%s",workload="%s",field="%s"}`, runs.MetricWorkloadValue, wf.Host, wf.Name, field)
			switch class {
			case "resource":
				if f, ok := leak(name, t, v, 0, "", opt); ok {
					out = append(out, f)
				}
			case "throughput", "latency":
				out = append(out, perf(name, class, t, v, opt)...)
			}
		}
	}
	return out, nil
}

// classify tells a workload field's kind from its name.
func classify(field string) string {
	f := strings.ToLower(field)
	words := strings.FieldsFunc(f, func(r rune) bool { return r == '_' || r == '.' || r == '-' })
	has := func(list ...string) bool {
		for _, w := range words {
			if slices.Contains(list, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("rss", "mem", "memory", "heap", "alloc", "fds", "fd", "goroutines", "threads"):
		return "resource"
	case has("latency", "lat", "rtt", "delay", "p50", "p90", "p99", "jitter"):
		return "latency"
	case has("throughput", "goodput", "bps", "rate", "delivery", "delivered", "ops", "qps", "rps", "recv", "received"):
		return "throughput"
	}
	return ""
}

// afterWarmUp drops the samples in the first share of the time span and
// the NaNs.
func afterWarmUp(t, v []float64, share float64) (ts, vs []float64) {
	if len(t) == 0 {
		return nil, nil
	}
	from := t[0] + share*(t[len(t)-1]-t[0])
	for i := range t {
		if t[i] >= from && !math.IsNaN(v[i]) && !math.IsInf(v[i], 0) {
			ts, vs = append(ts, t[i]), append(vs, v[i])
		}
	}
	return ts, vs
}

// leak tests one resource series for growth; false when it is too short
// to say.
func leak(name string, t, v []float64, floor float64, unit string, opt Options) (Finding, bool) {
	t, v = afterWarmUp(t, v, opt.WarmUp)
	if len(v) < 10 {
		return Finding{}, false
	}
	tr, err := stats.Trend(v, stats.TrendOptions{Alpha: opt.Alpha, MinChange: opt.LeakChange, MaxPoints: 200, Confidence: 0.95})
	if err != nil {
		return Finding{}, false
	}
	f := Finding{Kind: Leak, Series: name, Change: tr.Change, P: tr.MannKendall.P}
	f.Growth = tr.TheilSen.Slope * float64(len(v)-1)
	if span := t[len(t)-1] - t[0]; span > 0 {
		f.Rate = f.Growth / span
	}
	f.Flagged = tr.Significant && tr.Direction == stats.Increasing && f.Growth >= floor
	switch {
	case f.Flagged:
		f.Text = fmt.Sprintf("grows by %s (%+.0f %%) over %.0f s, %s/s (Theil-Sen; Mann-Kendall p=%.2g)", amount(f.Growth, unit), 100*f.Change, t[len(t)-1]-t[0], amount(f.Rate, unit), f.P)
	case tr.Significant && tr.Direction == stats.Increasing:
		f.Text = fmt.Sprintf("grows by %s (%+.0f %%), under the %s floor", amount(f.Growth, unit), 100*f.Change, amount(floor, unit))
	default:
		f.Text = tr.Reason
	}
	return f, true
}

// perf tests a throughput or latency series: a trend the wrong way, and
// change points.
func perf(name, class string, t, v []float64, opt Options) []Finding {
	t, v = afterWarmUp(t, v, opt.WarmUp)
	var out []Finding
	if len(v) >= 10 {
		if tr, err := stats.Trend(v, stats.TrendOptions{Alpha: opt.Alpha, MinChange: opt.DegradeChange, MaxPoints: 200, Confidence: 0.95}); err == nil {
			bad := stats.Decreasing
			if class == "latency" {
				bad = stats.Increasing
			}
			f := Finding{Kind: Degradation, Series: name, Change: tr.Change, P: tr.MannKendall.P, Flagged: tr.Significant && tr.Direction == bad, Text: tr.Reason}
			f.Growth = tr.TheilSen.Slope * float64(len(v)-1)
			if span := t[len(t)-1] - t[0]; span > 0 {
				f.Rate = f.Growth / span
			}
			out = append(out, f)
		}
	}
	cpo := opt.ChangePoints
	if len(v) >= 2*cpo.MinSize {
		cps, err := stats.ChangePoints(v, cpo)
		if err == nil {
			for _, cp := range cps {
				f := Finding{Kind: Drop, Series: name, Change: cp.Change, P: cp.P, At: t[cp.Index]}
				if class == "latency" {
					f.Kind = Rise
					f.Flagged = cp.Change >= opt.RiseChange
				} else {
					f.Flagged = cp.Change <= -opt.DropChange
				}
				f.Text = fmt.Sprintf("mean %.4g before t=%.1fs, %.4g after (%+.0f %%, p=%.2g)", cp.MeanBefore, f.At, cp.MeanAfter, 100*cp.Change, cp.P)
				out = append(out, f)
			}
		}
	}
	return out
}

func amount(x float64, unit string) string {
	if unit != "B" {
		return fmt.Sprintf("%.3g", x)
	}
	a := math.Abs(x)
	switch {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", x/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.2f MiB", x/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", x/(1<<10))
	}
	return fmt.Sprintf("%.0f B", x)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case interface{ Float64() (float64, error) }:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}
