package compare

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// analyse reads the runs and fills in rep's metrics, groupings,
// statements and text fields.
func analyse(rs []*runs.Run, opt Options, rep *Report) error {
	ids := workloadIDs(rs)
	data := make([]*runData, len(rs))
	end := math.Inf(1)
	for i, r := range rs {
		d, err := readRun(r, ids)
		if err != nil {
			return fmt.Errorf("read run %s: %w", r.Name(), err)
		}
		data[i] = d
		rep.Runs[i].Duration = d.duration
		end = math.Min(end, d.duration)
	}
	if !(end > 0) {
		return fmt.Errorf("run %s recorded nothing (no workload line, link sample or event after its start): nothing to compare", rs[slices.IndexFunc(data, func(d *runData) bool { return !(d.duration > 0) })].Name())
	}
	rep.Window = [2]float64{0, end}
	for _, d := range data {
		d.linkMetrics(end)
	}
	if err := buildMetrics(rs, data, opt, rep); err != nil {
		return err
	}
	rep.Markers = data[rep.Baseline].markers
	if err := lossGrouping(rs, data, opt, rep); err != nil {
		return err
	}
	phaseGrouping(rs, data, rep)
	rep.Statements = statements(rep)
	rep.Texts = texts(data, end)
	return nil
}

// buildMetrics gathers every metric of every run (or those asked for) in
// the window, summarises each run's samples and relates them to the
// baseline.
func buildMetrics(rs []*runs.Run, data []*runData, opt Options, rep *Report) error {
	var order []string
	proto := map[string]*Metric{}
	for _, d := range data {
		for _, id := range d.order {
			if proto[id] == nil {
				proto[id] = d.series[id]
				order = append(order, id)
			}
		}
	}
	// Workload metrics first, then links, each by name.
	slices.SortStableFunc(order, func(a, b string) int {
		if d := boolInt(proto[a].Source == "link") - boolInt(proto[b].Source == "link"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})

	chosen, dirs, err := selectMetrics(rs, data, order, opt.Metrics)
	if err != nil {
		return err
	}
	for _, id := range chosen {
		p := proto[id]
		m := Metric{ID: id, Source: p.Source, Host: p.Host, Workload: p.Workload, Link: p.Link, Field: p.Field, Unit: p.Unit}
		if m.Unit == "" {
			m.Unit = unitOf(m.Field)
		}
		class, guess := classify(m.Field)
		if m.Source == "link" {
			class, guess = "", 0 // conditions and traffic, not the software's figures
		}
		m.Class = class
		m.Direction = stats.Direction(guess)
		if d, ok := dirs[id]; ok {
			m.Direction = d
		}
		for _, rd := range data {
			var mr MetricRun
			if s := rd.series[id]; s != nil {
				for j, t := range s.Runs[0].T {
					if t >= rep.Window[0] && t <= rep.Window[1] {
						mr.T = append(mr.T, t)
						mr.V = append(mr.V, s.Runs[0].V[j])
					}
				}
			}
			if len(mr.V) > 0 {
				s, err := stats.Summarize(mr.V)
				if err != nil {
					return fmt.Errorf("metric %s: %w", id, err)
				}
				mr.Summary = &s
			}
			m.Runs = append(m.Runs, mr)
		}
		base := m.Runs[rep.Baseline].Summary
		for i := range m.Runs {
			s := m.Runs[i].Summary
			if i == rep.Baseline || s == nil || base == nil {
				continue
			}
			if c, err := stats.RelativeChange(base.Median, s.Median); err == nil {
				m.Runs[i].Change = &c
			}
			m.Runs[i].Overlap = s.Lo <= base.Hi && base.Lo <= s.Hi
		}
		rep.Metrics = append(rep.Metrics, m)
	}
	markHeadlines(rep, len(opt.Metrics) > 0)
	return nil
}

// selectMetrics returns the metric ids the user asked for (all when
// none), with the directions they gave. Every metric asked for must be in
// every run.
func selectMetrics(rs []*runs.Run, data []*runData, all []string, specs []string) ([]string, map[string]stats.Direction, error) {
	dirs := map[string]stats.Direction{}
	if len(specs) == 0 {
		return all, dirs, nil
	}
	var chosen []string
	for _, spec := range specs {
		name, dir, hasDir := strings.Cut(spec, ":")
		var d stats.Direction
		if hasDir {
			if err := d.UnmarshalText([]byte(dir)); err != nil {
				return nil, nil, fmt.Errorf("metric %q: %w, e.g. --metric rtt_p50_ms:lower", spec, err)
			}
		}
		match := func(id string, m *Metric) bool {
			return id == name || (!strings.Contains(name, ".") && m.Source == "workload" && m.Field == name)
		}
		for i, d := range data {
			found := false
			for _, id := range d.order {
				if match(id, d.series[id]) {
					found = true
				}
			}
			if !found {
				return nil, nil, fmt.Errorf("metric %s: run %s has no such metric; it has %s (name one as WORKLOAD.FIELD, FIELD or link.LINK.loss_percent)", name, rs[i].Name(), describeIDs(d.order))
			}
		}
		for _, id := range all {
			var m *Metric
			for _, d := range data {
				if m = d.series[id]; m != nil {
					break
				}
			}
			if m == nil || !match(id, m) || slices.Contains(chosen, id) {
				continue
			}
			chosen = append(chosen, id)
			if hasDir {
				dirs[id] = d
				continue
			}
			if _, guess := classify(m.Field); guess == 0 || m.Source == "link" {
				return nil, nil, fmt.Errorf("metric %s: its name does not say whether higher or lower is better: add it, e.g. --metric %s:higher or %s:lower", id, name, name)
			}
		}
	}
	return chosen, dirs, nil
}

// markHeadlines picks the metrics the statements are about: those asked
// for, or else one each of delivery, goodput and latency, the one whose
// name says most (delivery; goodput, received; p50, mean).
func markHeadlines(rep *Report, asked bool) {
	if asked {
		for i := range rep.Metrics {
			rep.Metrics[i].Headline = rep.Metrics[i].Direction != 0
		}
		return
	}
	for _, class := range []string{"delivery", "goodput", "latency"} {
		best := -1
		for i, m := range rep.Metrics {
			if m.Class != class || m.Direction == 0 {
				continue
			}
			if best < 0 || headlineRank(class, m.Field) < headlineRank(class, rep.Metrics[best].Field) {
				best = i
			}
		}
		if best >= 0 {
			rep.Metrics[best].Headline = true
		}
	}
}

// lossGrouping buckets the headline metrics' samples by the loss on the
// chosen link at each sample's time.
func lossGrouping(rs []*runs.Run, data []*runData, opt Options, rep *Report) error {
	edges := opt.Edges
	if edges == nil {
		edges = DefaultEdges
	}
	link := opt.Link
	if link != "" {
		for i, d := range data {
			if d.links[link] == nil {
				return fmt.Errorf("link %s: run %s has no samples of it in %s; its links: %s", link, rs[i].Name(), runs.LinksFile, describeIDs(linkNames(d)))
			}
		}
	} else {
		link = busiestLink(data, rep.Window[1])
		if link == "" {
			rep.warn("no link's loss changed during the runs, so there are no loss buckets: choose a link with --link to bucket anyway")
			return nil
		}
	}
	g := Grouping{By: "loss", Link: link, Title: "loss on " + link + " (the worse direction at each sample; down counts as 100 %)"}
	for i := 0; i+1 < len(edges); i++ {
		label := FormatFloat(edges[i]) + "-" + FormatFloat(edges[i+1]) + " %"
		if edges[i+1] >= 100 {
			label += " or down"
		}
		g.Groups = append(g.Groups, Group{Label: label, Lo: edges[i], Hi: edges[i+1]})
	}
	for _, d := range data {
		var c Curve
		l := d.links[link]
		for k := 0.0; k <= rep.Window[1]; k += 0.1 {
			if v := l.at(k); !math.IsNaN(v) {
				c.T, c.V = append(c.T, k), append(c.V, v)
			}
		}
		g.Condition = append(g.Condition, c)
	}
	err := fillRows(&g, rep, edges, func(run int, t float64) float64 { return data[run].links[link].at(t) })
	if err != nil {
		return err
	}
	rep.Groupings = append(rep.Groupings, g)
	return nil
}

// busiestLink is the link whose loss changed most over the runs (the
// largest range, summed over runs); "" when none changed.
func busiestLink(data []*runData, end float64) string {
	spread := map[string]float64{}
	for _, d := range data {
		for name, l := range d.links {
			lo, hi := math.Inf(1), math.Inf(-1)
			for k := 0.0; k <= end; k += 0.5 {
				if v := l.at(k); !math.IsNaN(v) {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
			if hi > lo {
				spread[name] += hi - lo
			}
		}
	}
	best := ""
	for name, s := range spread {
		if best == "" || s > spread[best] || (s == spread[best] && name < best) {
			best = name
		}
	}
	return best
}

func linkNames(d *runData) []string {
	var out []string
	for n := range d.links {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// phaseGrouping buckets the headline metrics by the scenario's phases:
// from its start to the first marker, between markers, from the last to
// the end of the window.
func phaseGrouping(rs []*runs.Run, data []*runData, rep *Report) {
	base := data[rep.Baseline].markers
	var ms []Marker
	for _, m := range base {
		if m.T > 0 && m.T < rep.Window[1] && (len(ms) == 0 || m.T > ms[len(ms)-1].T) {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return
	}
	inWindow := func(ms []Marker) []Marker {
		var out []Marker
		for _, m := range ms {
			if m.T <= rep.Window[1] {
				out = append(out, m)
			}
		}
		return out
	}
	base = inWindow(base)
	for i, d := range data {
		if i == rep.Baseline {
			continue
		}
		other := inWindow(d.markers)
		if len(other) != len(base) {
			rep.warn("run %s has %d scenario markers, the baseline %d: phases are the baseline's", rs[i].Name(), len(other), len(base))
			continue
		}
		for j, m := range other {
			if math.Abs(m.T-base[j].T) > 1 {
				rep.warn("run %s reached marker %q at %.1f s, the baseline at %.1f s: phases are the baseline's", rs[i].Name(), m.Label, m.T, base[j].T)
				break
			}
		}
	}
	edges := []float64{0}
	names := []string{"start"}
	for _, m := range ms {
		edges = append(edges, m.T)
		names = append(names, m.Label)
	}
	edges = append(edges, rep.Window[1])
	g := Grouping{By: "phase", Title: "scenario phase (between markers)"}
	for i := 0; i+1 < len(edges); i++ {
		g.Groups = append(g.Groups, Group{Label: fmt.Sprintf("%.0f-%.0f s: %s", edges[i], edges[i+1], names[i]),
			Lo: edges[i], Hi: edges[i+1], Name: names[i]})
	}
	if err := fillRows(&g, rep, edges, func(_ int, t float64) float64 { return t }); err != nil {
		rep.warn("phases: %v", err)
		return
	}
	rep.Groupings = append(rep.Groupings, g)
}

// fillRows buckets each headline metric of each run by cond(run, t).
func fillRows(g *Grouping, rep *Report, edges []float64, cond func(run int, t float64) float64) error {
	for _, m := range rep.Metrics {
		if !m.Headline {
			continue
		}
		row := GroupRow{Metric: m.ID, Direction: m.Direction}
		for i, mr := range m.Runs {
			var obs []stats.Observation
			for j, t := range mr.T {
				if c := cond(i, t); !math.IsNaN(c) {
					obs = append(obs, stats.Observation{Condition: c, Value: mr.V[j]})
				}
			}
			bt, err := stats.Buckets(obs, edges, m.Direction)
			if err != nil {
				return fmt.Errorf("--edges: %w", err)
			}
			for k := range bt.Buckets {
				bt.Buckets[k].Label = g.Groups[k].Label
			}
			rebase(&bt, m.Direction)
			row.Runs = append(row.Runs, bt)
		}
		g.Rows = append(g.Rows, row)
	}
	return nil
}

// MinBestSamples is the fewest samples a bucket needs to be a run's best
// condition, the one the others are measured against: a condition passed
// through within one sample (a ramp crossing 1-5 % in half a second)
// says too little to be the reference.
const MinBestSamples = 3

// rebase makes the best bucket the best of those with MinBestSamples
// samples, where there is one, and relates the others to it again.
func rebase(bt *stats.BucketTable, d stats.Direction) {
	if bt.Best < 0 || bt.Buckets[bt.Best].N >= MinBestSamples {
		return
	}
	best := -1
	for k, b := range bt.Buckets {
		if b.N < MinBestSamples {
			continue
		}
		m := b.Summary.Median
		if best < 0 || (d == stats.HigherIsBetter && m > bt.Buckets[best].Summary.Median) || (d == stats.LowerIsBetter && m < bt.Buckets[best].Summary.Median) {
			best = k
		}
	}
	if best < 0 {
		return
	}
	bt.Best = best
	ref := bt.Buckets[best].Summary.Median
	for k := range bt.Buckets {
		bt.Buckets[k].OfBest = 0
		if bt.Buckets[k].N > 0 && ref != 0 {
			bt.Buckets[k].OfBest = bt.Buckets[k].Summary.Median / ref
		}
	}
}

// statements writes one sentence per group and headline metric, naming
// every run's share of its own best: "With 10-100 % loss on ab or ab
// down, babeld kept 98 % of its delivery (alice); static 0 %."
func statements(rep *Report) []Statement {
	var out []Statement
	for _, g := range rep.Groupings {
		for k, grp := range g.Groups {
			for _, row := range g.Rows {
				some := false
				for _, bt := range row.Runs {
					some = some || bt.Buckets[k].N > 0
				}
				if !some {
					continue
				}
				st := Statement{Grouping: g.By, Group: grp.Label, Metric: row.Metric}
				what := metricPhrase(row.Metric)
				var parts []string
				for i, bt := range row.Runs {
					b := bt.Buckets[k]
					label := rep.Runs[i].Label
					var of *float64
					var part string
					switch {
					case b.N == 0:
						part = "no samples"
						if i == 0 {
							part = "had no samples of " + what
						}
					case bt.Buckets[bt.Best].Summary.Median == 0:
						part = fmt.Sprintf("median %s (its best is 0: no share)", FormatFloat(b.Summary.Median))
						if i == 0 {
							part = fmt.Sprintf("had %s at median %s (its best is 0: no share)", what, FormatFloat(b.Summary.Median))
						}
					case row.Direction == stats.HigherIsBetter:
						v := b.OfBest
						of = &v
						part = fmt.Sprintf("%.0f %%", 100*v)
						if i == 0 {
							part = fmt.Sprintf("kept %.0f %% of its %s", 100*v, what)
						}
					default:
						v := b.OfBest
						of = &v
						part = fmt.Sprintf("%.1f times its best", v)
						if i == 0 {
							part = fmt.Sprintf("had %s at %.1f times its best", what, v)
						}
					}
					if b.N > 0 && b.N < MinBestSamples {
						part += fmt.Sprintf(" (%s)", plural(b.N, "sample"))
					}
					st.OfBest = append(st.OfBest, of)
					parts = append(parts, label+" "+part)
				}
				st.Text = conditionPhrase(g, grp) + ", " + strings.Join(parts, "; ") + "."
				out = append(out, st)
			}
		}
	}
	return out
}

// conditionPhrase starts a statement: "With 5-10 % loss on ab", "From 30
// to 61 s (ab out of range)".
func conditionPhrase(g Grouping, grp Group) string {
	if g.By == "loss" {
		s := fmt.Sprintf("With %s-%s %% loss on %s", FormatFloat(grp.Lo), FormatFloat(grp.Hi), g.Link)
		if grp.Hi >= 100 {
			s += " or " + g.Link + " down"
		}
		return s
	}
	return fmt.Sprintf("From %.0f to %.0f s (%s)", grp.Lo, grp.Hi, grp.Name)
}

// metricPhrase names a metric in a sentence: "delivery (alice)".
func metricPhrase(id string) string {
	w, f, ok := strings.Cut(id, ".")
	if !ok {
		return id
	}
	return f + " (" + w + ")"
}

// texts lists the text fields whose value changed in some run, as
// segments of equal value.
func texts(data []*runData, end float64) []TextMetric {
	var order []string
	for _, d := range data {
		for _, id := range d.tOrder {
			if !slices.Contains(order, id) {
				order = append(order, id)
			}
		}
	}
	var out []TextMetric
	for _, id := range order {
		tm := TextMetric{ID: id}
		changed := false
		for _, d := range data {
			var segs []Segment
			if ts := d.texts[id]; ts != nil {
				for j, t := range ts.t {
					if t > end {
						break
					}
					if n := len(segs); n > 0 && segs[n-1].Value == ts.v[j] {
						segs[n-1].To = t
						continue
					}
					if n := len(segs); n > 0 {
						segs[n-1].To = t
					}
					segs = append(segs, Segment{Value: ts.v[j], From: t, To: t})
				}
			}
			changed = changed || len(segs) > 1
			tm.Runs = append(tm.Runs, segs)
		}
		if changed {
			out = append(out, tm)
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
