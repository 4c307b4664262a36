package compare

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/forgelab/forgelab/telemetry/stats"
)

// WriteText prints the report for people: the runs, warnings, the
// statements, the condition tables, every metric's median against the
// baseline, and text fields that changed.
func WriteText(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	base := rep.Runs[rep.Baseline]
	scen := base.Scenario
	if scen == "" {
		scen = "(none)"
	}
	fmt.Fprintf(ew, "%d runs of scenario %s, aligned on scenario time %s-%s s; baseline %s\n\n",
		len(rep.Runs), scen, FormatFloat(rep.Window[0]), fmt.Sprintf("%.1f", rep.Window[1]), base.Label)
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tVARIANT\tSTATUS\tRECORDED")
	for i, r := range rep.Runs {
		mark := ""
		if i == rep.Baseline {
			mark = "  (baseline)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f s%s\n", r.Name, r.Label, r.Status, r.Duration, mark)
	}
	tw.Flush()
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(ew)
		for _, s := range rep.Warnings {
			fmt.Fprintln(ew, "warning: "+s)
		}
	}

	if len(rep.Statements) > 0 {
		fmt.Fprintln(ew, "\nUnder each condition, as a share of each run's own best condition:")
		last := ""
		for _, st := range rep.Statements {
			if st.Grouping != last && last != "" {
				fmt.Fprintln(ew)
			}
			last = st.Grouping
			fmt.Fprintln(ew, "  "+st.Text)
		}
	}

	for _, g := range rep.Groupings {
		fmt.Fprintf(ew, "\nBY %s\n", g.Title)
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprint(tw, "METRIC\tCONDITION")
		for _, r := range rep.Runs {
			fmt.Fprintf(tw, "\t%s", r.Label)
		}
		fmt.Fprintln(tw)
		for _, row := range g.Rows {
			for k, grp := range g.Groups {
				name := ""
				if k == 0 {
					name = row.Metric
				}
				fmt.Fprintf(tw, "%s\t%s", name, grp.Label)
				for _, bt := range row.Runs {
					fmt.Fprintf(tw, "\t%s", BucketCell(bt, k, row.Direction))
				}
				fmt.Fprintln(tw)
			}
		}
		tw.Flush()
		fmt.Fprintln(ew, "(share of the run's best condition, marked *; median and samples)")
	}

	fmt.Fprintf(ew, "\nMETRICS: median [95 %% interval] over the window, change of the median against %s (~: the intervals overlap)\n", base.Label)
	tw = tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "METRIC\tBETTER")
	for i, r := range rep.Runs {
		fmt.Fprintf(tw, "\t%s", r.Label)
		if i != rep.Baseline {
			fmt.Fprint(tw, "\tCHANGE")
		}
	}
	fmt.Fprintln(tw)
	for _, m := range rep.Metrics {
		id := m.ID
		if m.Unit != "" && !strings.HasSuffix(id, "_"+m.Unit) && m.Unit != "%" {
			id += " (" + m.Unit + ")"
		}
		if m.Headline {
			id += " *"
		}
		fmt.Fprintf(tw, "%s\t%s", id, Better(m.Direction))
		for i, mr := range m.Runs {
			fmt.Fprintf(tw, "\t%s", SummaryCell(mr.Summary))
			if i != rep.Baseline {
				fmt.Fprintf(tw, "\t%s", ChangeCell(mr))
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(ew, "(* the headline metrics the statements are about)")

	if len(rep.Texts) > 0 {
		fmt.Fprintln(ew, "\nTEXT FIELDS THAT CHANGED (value: from-to s)")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		for _, tm := range rep.Texts {
			for i, segs := range tm.Runs {
				name := ""
				if i == 0 {
					name = tm.ID
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", name, rep.Runs[i].Label, SegmentsCell(segs))
			}
		}
		tw.Flush()
	}
	if len(rep.Anomalies) > 0 {
		fmt.Fprintln(ew, "\nFLAGGED IN A RUN (forgelab runs check: leaks, slow degradation, sudden drops)")
		for _, a := range rep.Anomalies {
			for _, f := range a.Findings {
				fmt.Fprintf(ew, "  %s %s %s: %s\n", a.Run, f.Kind, f.Series, f.Text)
			}
		}
	}
	return ew.err
}

// Better names a direction for tables: higher, lower or -.
func Better(d stats.Direction) string {
	switch d {
	case stats.HigherIsBetter:
		return "higher"
	case stats.LowerIsBetter:
		return "lower"
	}
	return "-"
}

// BucketCell is bucket k of a run's table: share of the best (* marks
// the best), median and count; "-" when empty.
func BucketCell(bt stats.BucketTable, k int, d stats.Direction) string {
	b := bt.Buckets[k]
	if b.N == 0 {
		return "-"
	}
	share := "-"
	if bt.Buckets[bt.Best].Summary.Median != 0 {
		if d == stats.HigherIsBetter {
			share = fmt.Sprintf("%.0f %%", 100*b.OfBest)
		} else {
			share = fmt.Sprintf("%.2fx", b.OfBest)
		}
	}
	if k == bt.Best {
		share += "*"
	}
	return fmt.Sprintf("%s  %s n=%d", share, FormatFloat(b.Summary.Median), b.N)
}

// SummaryCell is "median [lo, hi] n=N", or "-".
func SummaryCell(s *stats.Summary) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%s [%s, %s] n=%d", FormatFloat(s.Median), FormatFloat(s.Lo), FormatFloat(s.Hi), s.N)
}

// ChangeCell is the change against the baseline, "~" when the intervals
// overlap.
func ChangeCell(mr MetricRun) string {
	if mr.Change == nil {
		return "-"
	}
	s := fmt.Sprintf("%+.0f %%", 100**mr.Change)
	if mr.Overlap {
		s += " ~"
	}
	return s
}

// SegmentsCell lists a text field's values with their times.
func SegmentsCell(segs []Segment) string {
	if len(segs) == 0 {
		return "-"
	}
	const most = 6
	var parts []string
	for i, s := range segs {
		if i == most {
			parts = append(parts, fmt.Sprintf("... (%d changes in all)", len(segs)-1))
			break
		}
		v := s.Value
		if v == "" {
			v = `""`
		}
		parts = append(parts, fmt.Sprintf("%s: %.0f-%.0f", v, s.From, s.To))
	}
	return strings.Join(parts, ", ")
}

// FormatFloat writes v with 3 significant digits (more for large
// integers), without an exponent: 0.468, 19.9, 100, 6750000.
func FormatFloat(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	digits := 2 - int(math.Floor(math.Log10(math.Abs(v))))
	if digits < 0 {
		digits = 0
	}
	s := strconv.FormatFloat(v, 'f', digits, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// errWriter keeps the first write error, so printing code stays plain.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, nil
}
