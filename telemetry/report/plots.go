// Package report draws a comparison (telemetry/compare) for people: PNG
// plots for CI artifacts and a self-contained HTML page (tables,
// statements and the plots inline as SVG: no script, no stylesheet or
// font to fetch, so it opens offline). The plots are gonum's: each run's
// time series overlaid on scenario time with the scenario's markers, the
// grouping's condition over time, and per-bucket bars of each headline
// metric as a share of each run's own best condition.
package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/forgelab/forgelab/telemetry/compare"
	"github.com/forgelab/forgelab/telemetry/stats"
)

// Figure is one plot of a report.
type Figure struct {
	// Name is a file name without extension: series-alice.delivery,
	// buckets-loss-alice.delivery, condition-loss-ab.
	Name    string
	Title   string
	Caption string
	Kind    string // series, condition, buckets
	plot    *plot.Plot
	width   vg.Length
	height  vg.Length
}

// Figures draws every plot of rep: for each grouping, its condition over
// time and the bars of each headline metric; then the time series of
// every metric.
func Figures(rep *compare.Report) ([]Figure, error) {
	var out []Figure
	for _, g := range rep.Groupings {
		if g.By == "loss" && len(g.Condition) > 0 {
			f, err := conditionFigure(rep, g)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		for _, row := range g.Rows {
			f, err := bucketFigure(rep, g, row)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	}
	for _, m := range rep.Metrics {
		f, err := seriesFigure(rep, m)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Y.Tick.Marker = shortTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// shortTicks are gonum's default ticks labelled as the tables write
// numbers: 50000, not 50000.00.
type shortTicks struct{}

func (shortTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = compare.FormatFloat(ts[i].Value)
		}
	}
	return ts
}

// headroom leaves the top fifth of a plot free for the legend, which
// would otherwise cover the data.
func headroom(p *plot.Plot) {
	span := p.Y.Max - p.Y.Min
	if span <= 0 {
		span = 1
	}
	p.Y.Max += span / 4
}

// runColor is run i's colour in every plot.
func runColor(i int) color.Color { return plotutil.Color(i) }

// markerLines draws the scenario's markers as grey dashed verticals.
func markerLines(p *plot.Plot, rep *compare.Report) error {
	if len(rep.Markers) == 0 {
		return nil
	}
	lo, hi := p.Y.Min, p.Y.Max
	if hi <= lo {
		hi = lo + 1
	}
	for _, m := range rep.Markers {
		if m.T < rep.Window[0] || m.T > rep.Window[1] {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: m.T, Y: lo}, {X: m.T, Y: hi}})
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 150}
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
	}
	return nil
}

func seriesFigure(rep *compare.Report, m compare.Metric) (Figure, error) {
	y := m.Field
	if m.Unit != "" && !strings.HasSuffix(m.Field, "_"+m.Unit) && m.Unit != "%" {
		y += " (" + m.Unit + ")"
	}
	p := newPlot(m.ID, "scenario time (s)", y)
	p.X.Min, p.X.Max = rep.Window[0], rep.Window[1]
	for i, mr := range m.Runs {
		if len(mr.T) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(mr.T))
		for j := range mr.T {
			xys[j] = plotter.XY{X: mr.T[j], Y: mr.V[j]}
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return Figure{}, fmt.Errorf("plot %s: %w", m.ID, err)
		}
		l.Color, pts.Color = runColor(i), runColor(i)
		l.Dashes = plotutil.Dashes(i)
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(1.5)
		p.Add(l, pts)
		p.Legend.Add(rep.Runs[i].Label, l, pts)
	}
	headroom(p)
	if err := markerLines(p, rep); err != nil {
		return Figure{}, err
	}
	caption := "each run's samples on scenario time; dashed verticals are the scenario's markers"
	if m.Direction != 0 {
		caption = better(m.Direction) + " is better; " + caption
	}
	return Figure{Name: "series-" + m.ID, Title: m.ID, Caption: caption, Kind: "series", plot: p, width: 16 * vg.Centimeter, height: 8 * vg.Centimeter}, nil
}

func conditionFigure(rep *compare.Report, g compare.Grouping) (Figure, error) {
	p := newPlot("loss on "+g.Link, "scenario time (s)", "loss (%), down = 100")
	p.X.Min, p.X.Max = rep.Window[0], rep.Window[1]
	p.Y.Min, p.Y.Max = 0, 100
	for i, c := range g.Condition {
		if len(c.T) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(c.T))
		for j := range c.T {
			xys[j] = plotter.XY{X: c.T[j], Y: c.V[j]}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return Figure{}, err
		}
		l.StepStyle = plotter.PostStep
		l.Color = runColor(i)
		l.Dashes = plotutil.Dashes(i)
		p.Add(l)
		p.Legend.Add(rep.Runs[i].Label, l)
	}
	if err := markerLines(p, rep); err != nil {
		return Figure{}, err
	}
	return Figure{Name: "condition-loss-" + g.Link, Title: "loss on " + g.Link, Kind: "condition",
		Caption: "the condition the samples are bucketed by: the worse direction's loss, 100 % while down",
		plot:    p, width: 16 * vg.Centimeter, height: 6 * vg.Centimeter}, nil
}

func bucketFigure(rep *compare.Report, g compare.Grouping, row compare.GroupRow) (Figure, error) {
	ylabel := "share of its best (%)"
	if row.Direction == stats.LowerIsBetter {
		ylabel = "times its best"
	}
	title := row.Metric + " by " + g.By
	if g.By == "loss" {
		title = row.Metric + " by loss on " + g.Link
	}
	p := newPlot(title, "", ylabel)
	names := make([]string, len(g.Groups))
	for k, grp := range g.Groups {
		names[k] = shortGroup(grp.Label)
	}
	p.NominalX(names...)
	n := len(row.Runs)
	w := vg.Points(min(40, 240/float64(n*len(g.Groups))))
	for i, bt := range row.Runs {
		vals := make(plotter.Values, len(g.Groups))
		for k, b := range bt.Buckets {
			if b.N == 0 {
				continue
			}
			vals[k] = b.OfBest
			if row.Direction == stats.HigherIsBetter {
				vals[k] = 100 * b.OfBest
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return Figure{}, fmt.Errorf("plot %s: %w", title, err)
		}
		bars.Color = runColor(i)
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(n-1)/2)
		p.Add(bars)
		p.Legend.Add(rep.Runs[i].Label, bars)
	}
	if row.Direction == stats.HigherIsBetter {
		p.Y.Min, p.Y.Max = 0, math.Max(100, p.Y.Max)
	}
	headroom(p)
	return Figure{Name: "buckets-" + g.By + "-" + row.Metric, Title: title, Kind: "buckets",
		Caption: "each bucket's median as a share of the run's own best bucket (" + better(row.Direction) + " is better); no bar: no sample",
		plot:    p, width: 16 * vg.Centimeter, height: 7 * vg.Centimeter}, nil
}

// shortGroup trims a phase's label to its times for the axis: "30-61 s".
func shortGroup(label string) string {
	if s, _, ok := strings.Cut(label, ": "); ok {
		return s
	}
	return label
}

func better(d stats.Direction) string {
	if d == stats.HigherIsBetter {
		return "higher"
	}
	return "lower"
}

// PNG renders the figure at 96 dpi.
func (f Figure) PNG() ([]byte, error) {
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.width, f.height), vgimg.UseDPI(96))}
	f.plot.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("render %s: %w", f.Name, err)
	}
	return b.Bytes(), nil
}

var svgProlog = regexp.MustCompile(`(?s)^.*?(<svg[\s>])`)

// SVG renders the figure as an <svg> element to put inline in HTML (no
// XML prolog, no embedded fonts: the browser's own sans-serif draws the
// text).
func (f Figure) SVG() ([]byte, error) {
	c := vgsvg.New(f.width, f.height)
	f.plot.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("render %s: %w", f.Name, err)
	}
	return svgProlog.ReplaceAll(b.Bytes(), []byte("$1")), nil
}
