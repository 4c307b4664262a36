package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/forgelab/forgelab/telemetry/stats"
)

// Alpha is the significance level of the regression gate: the permutation
// test's p must be below it (as Firecracker's A/B test).
const Alpha = 0.01

// Exit codes of `forgelab bench`, for CI (docs/bench.md).
const (
	ExitOK         = 0 // no regression (or nothing to compare)
	ExitError      = 1 // the bench could not run or finish (lab, runs, metrics)
	ExitUsage      = 2 // bad input: flags, the [bench] section, a baseline, too few runs
	ExitRegression = 3 // at least one metric regressed
)

// ErrUsage is wrapped by errors that are the user's input, not the lab's
// fault: the command exits with ExitUsage for them.
var ErrUsage = errors.New("bad input")

// Usagef returns an error wrapping ErrUsage.
func Usagef(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUsage}, a...)...)
}

// Row is one metric judged against a baseline or the reference mode.
type Row struct {
	Key Key `json:"key"`
	// Against is what the metric is compared with: "baseline NAME" or
	// "reference MODE".
	Against    string           `json:"against"`
	Comparison stats.Comparison `json:"comparison"`
}

// Report is the outcome of a bench: its samples, the comparisons asked
// for, and the warnings.
type Report struct {
	Bench     string   `json:"bench"`
	Lab       string   `json:"lab"`
	Runs      int      `json:"runs"`
	Samples   Samples  `json:"samples"`
	Baseline  string   `json:"baseline,omitempty"`
	Rows      []Row    `json:"rows,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Regressed []Key    `json:"regressed,omitempty"`
}

// ExitCode is ExitRegression when a metric regressed, else ExitOK.
func (r *Report) ExitCode() int {
	if len(r.Regressed) > 0 {
		return ExitRegression
	}
	return ExitOK
}

// Gate is how a bench judges its samples.
type Gate struct {
	Noise     float64 // relative; 0.05 for 5 %
	Tolerance float64
	// Reference, when not "", compares every other mode's metrics with
	// those of the same name of this mode, at the same point.
	Reference string
}

func (g Gate) options(d stats.Direction) stats.GateOptions {
	o := stats.DefaultGateOptions(d)
	o.Alpha, o.Noise, o.Tolerance = Alpha, g.Noise, g.Tolerance
	return o
}

// Judge compares the samples of a bench with a baseline (nil: none) and,
// when g.Reference is set, with its reference mode. A metric of the
// bench that the baseline does not have is a warning; a baseline that
// shares no metric with the bench is an error.
func Judge(r *Report, base *Baseline, g Gate) error {
	for _, s := range r.Samples {
		ws, err := stats.RunWarnings(s.Values, s.Better)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Key, err)
		}
		for _, w := range ws {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %s", s.Key, w.Message))
		}
	}
	if base != nil {
		r.Baseline = base.Name
		matched := 0
		for _, s := range r.Samples {
			b, ok := base.Samples.Get(s.Key)
			if !ok {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s: not in baseline %s, not judged", s.Key, base.Name))
				continue
			}
			matched++
			if err := r.compare(s, b, "baseline "+base.Name, g); err != nil {
				return err
			}
		}
		if matched == 0 {
			return Usagef("baseline %s (lab %s) has none of this bench's metrics (it has: %s): compare a bench with a baseline of the same modes, points and metrics",
				base.Name, base.Lab, keyList(base.Samples))
		}
	}
	if g.Reference != "" {
		matched := 0
		for _, s := range r.Samples {
			if s.Key.Mode == g.Reference {
				continue
			}
			ref, ok := r.Samples.Get(Key{Mode: g.Reference, Point: s.Key.Point, Metric: s.Key.Metric})
			if !ok {
				continue
			}
			matched++
			if err := r.compare(s, ref, "reference "+g.Reference, g); err != nil {
				return err
			}
		}
		if matched == 0 {
			return Usagef("no mode shares a metric name with the reference mode %s (its metrics: %s): name the same quantity alike in every mode to compare them",
				g.Reference, keyList(filter(r.Samples, g.Reference)))
		}
	}
	return nil
}

func (r *Report) compare(s Series, base *Series, against string, g Gate) error {
	if allZero(base.Values) {
		// A relative change of a count that was 0 (retransmits on a clean
		// link) means nothing; say so rather than fail the bench.
		if !allZero(s.Values) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: 0 in every run of %s, now up to %s (median %s): not judged (a relative change from 0 is undefined)",
				s.Key, against, stats.FormatValue(slices.Max(s.Values), ""), stats.FormatValue(median(s.Values), "")))
		}
		return nil
	}
	c, err := stats.Compare(base.Values, s.Values, g.options(s.Better))
	if err != nil {
		return fmt.Errorf("%s against %s: %w", s.Key, against, err)
	}
	r.Rows = append(r.Rows, Row{Key: s.Key, Against: against, Comparison: c})
	if c.Verdict == stats.Regression && !containsKey(r.Regressed, s.Key) {
		r.Regressed = append(r.Regressed, s.Key)
	}
	return nil
}

func allZero(xs []float64) bool {
	for _, x := range xs {
		if x != 0 {
			return false
		}
	}
	return true
}

func median(xs []float64) float64 {
	m, _ := stats.Median(xs)
	return m
}

func containsKey(ks []Key, k Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func filter(s Samples, mode string) Samples {
	var out Samples
	for _, x := range s {
		if x.Key.Mode == mode {
			out = append(out, x)
		}
	}
	return out
}

func keyList(s Samples) string {
	var ks []string
	for _, x := range s {
		ks = append(ks, x.Key.String())
	}
	return orNone(ks)
}

// RunsNeeded returns nil when n new runs can decide against every series
// of base at p < Alpha, and otherwise a usage error that says how many
// runs are needed. (A permutation test of n against m runs cannot give a
// p below 2/C(n+m, n) however large the difference: 5 against 5 is the
// least that reaches 0.01.)
func RunsNeeded(n int, base *Baseline, reference bool) error {
	if reference {
		if err := stats.EnoughRuns(n, n, Alpha); err != nil {
			return Usagef("--runs %d is too few to compare modes with the reference at p < %g: need %d runs per mode (--runs %d)", n, Alpha, stats.MinRunsPerSide(Alpha), stats.MinRunsPerSide(Alpha))
		}
	}
	if base == nil {
		return nil
	}
	worst := -1
	for _, s := range base.Samples {
		if stats.MinPValue(len(s.Values), n) < Alpha {
			continue
		}
		if worst < 0 || len(s.Values) < worst {
			worst = len(s.Values)
		}
	}
	if worst < 0 {
		return nil
	}
	if need := runsAgainst(worst); need > 0 && need <= 4*stats.MinRunsPerSide(Alpha) {
		return Usagef("--runs %d is too few to decide at p < %g against baseline %s (%d runs per metric): the permutation test needs at least %d runs on this side (5 per side when both have the same number); run with --runs %d",
			n, Alpha, base.Name, worst, need, need)
	}
	return Usagef("baseline %s has only %d run(s) per metric: too few to decide at p < %g against a reasonable number of new runs; set it again from a bench with --runs %d or more",
		base.Name, worst, Alpha, stats.MinRunsPerSide(Alpha))
}

// runsAgainst is the least m for which m runs against n can reach Alpha;
// 0 when no m up to 1000 can.
func runsAgainst(n int) int {
	for m := 1; m <= 1000; m++ {
		if stats.MinPValue(n, m) < Alpha {
			return m
		}
	}
	return 0
}

// Print writes the report as benchstat does: for each metric the median
// ± the half-width of its confidence interval, the change of the means
// with the permutation test's p and the run counts, and the verdict; then
// the warnings as hyperfine writes them, and the verdict in one line.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "bench %s (lab %s): %d measured runs per mode and point\n\n", r.Bench, r.Lab, r.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tpoint\tmetric\tbetter\tvalue\tn")
	for _, s := range r.Samples {
		sum, err := stats.Summarize(s.Values)
		v := "?"
		if err == nil {
			v = stats.FormatValue(sum.Median, "") + " ± " + spread(sum)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", s.Key.Mode, dash(s.Key.Point), s.Key.Metric, better(s.Better), v, len(s.Values))
	}
	tw.Flush()
	if len(r.Rows) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "mode\tpoint\tmetric\tagainst\told\tnew\tchange\tverdict")
		for _, row := range r.Rows {
			parts := strings.SplitN(row.Comparison.Line(""), "  ", 4)
			for len(parts) < 4 {
				parts = append(parts, "")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Key.Mode, dash(row.Key.Point), row.Key.Metric, row.Against,
				parts[0], parts[1], parts[2], parts[3])
		}
		tw.Flush()
		fmt.Fprintf(w, "\nregression: p < %g, a change beyond the %.0f %% noise threshold, and worse by more than the %.0f %% tolerance\n",
			Alpha, 100*r.Rows[0].Comparison.Options.Noise, 100*r.Rows[0].Comparison.Options.Tolerance)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w)
		for _, m := range r.Warnings {
			fmt.Fprintf(w, "warning: %s\n", m)
		}
	}
	fmt.Fprintln(w)
	switch {
	case len(r.Regressed) > 0:
		var ks []string
		for _, k := range r.Regressed {
			ks = append(ks, k.String())
		}
		fmt.Fprintf(w, "REGRESSION in %d metric(s): %s (exit code %d)\n", len(r.Regressed), strings.Join(ks, "; "), ExitRegression)
	case len(r.Rows) > 0:
		fmt.Fprintln(w, "no regression")
	default:
		fmt.Fprintln(w, "nothing compared (--baseline NAME or --against-reference judges the runs)")
	}
}

// spread is the half-width of the median's confidence interval relative
// to the median, as benchstat shows it; "∞" when the sample is too small
// for the interval.
func spread(s stats.Summary) string {
	if s.Warning != "" {
		return "∞"
	}
	if s.Median == 0 {
		return "?"
	}
	v := math.Max(s.Hi/s.Median-1, 1-s.Lo/s.Median)
	return fmt.Sprintf("%.0f%%", 100*math.Abs(v))
}

func better(d stats.Direction) string {
	if d == stats.HigherIsBetter {
		return "higher"
	}
	return "lower"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
