package stats

import (
	"fmt"
	"math"
	"strings"
)

// Verdict is the outcome of a regression gate on one metric.
type Verdict string

const (
	// Regression: significantly worse, beyond the noise threshold and the
	// tolerance.
	Regression Verdict = "regression"
	// Improvement: significantly better, beyond the noise threshold.
	Improvement Verdict = "improvement"
	// NoChange: not significant, or within the noise threshold, or worse
	// but within the tolerance.
	NoChange Verdict = "no change"
	// Undecidable: too few runs for the test ever to reach alpha.
	Undecidable Verdict = "undecidable"
)

// GateOptions set the regression gate. Start from DefaultGateOptions.
type GateOptions struct {
	Direction Direction `json:"direction"`
	// Alpha is the significance level: the permutation test's p must be
	// below it.
	Alpha float64 `json:"alpha"`
	// Noise is the relative change of the means below which a difference
	// is called noise even when significant (Firecracker uses 5 %).
	Noise float64 `json:"noise"`
	// Tolerance is how much worse than the baseline, relative, the user
	// accepts: only a worse change beyond it is a regression.
	Tolerance float64 `json:"tolerance"`
	// Permutation tunes the permutation test (seed, resamples).
	Permutation PermutationOptions `json:"permutation"`
}

// DefaultGateOptions returns alpha 0.01, a 5 % noise threshold and a 10 %
// tolerance for a metric of the given direction.
func DefaultGateOptions(d Direction) GateOptions {
	return GateOptions{Direction: d, Alpha: 0.01, Noise: 0.05, Tolerance: 0.10}
}

// Comparison is the result of Compare: a verdict and what it rests on.
type Comparison struct {
	Verdict Verdict `json:"verdict"`
	// Reason says in one sentence why, with the fix for Undecidable.
	Reason    string  `json:"reason"`
	Baseline  Summary `json:"baseline"`
	Candidate Summary `json:"candidate"`
	// Change is the relative change of the means, (cand-base)/|base|,
	// the quantity the permutation test is about.
	Change float64 `json:"change"`
	// MedianChange is the relative change of the medians, for display.
	MedianChange float64    `json:"median_change"`
	Test         TestResult `json:"test"`
	// MinRuns is the number of runs per side needed to reach Alpha; it
	// matters when Verdict is Undecidable.
	MinRuns int `json:"min_runs"`
	// BaselineWarnings and CandidateWarnings are RunWarnings of each
	// sample (slow first run, outliers, instability), in run order.
	BaselineWarnings  []Warning   `json:"baseline_warnings,omitempty"`
	CandidateWarnings []Warning   `json:"candidate_warnings,omitempty"`
	Options           GateOptions `json:"options"`
}

// Compare judges candidate against baseline as Firecracker's A/B test does:
// a regression needs a permutation test on the difference of means with
// p < Alpha, a relative change of the means beyond Noise, and that change in
// the worse direction beyond Tolerance. It assumes independent runs,
// interleaved so that drift hits both sides alike. It returns an error for
// bad input (empty samples, NaN, a zero baseline mean, bad options); too few
// runs is not an error but the verdict Undecidable, with the number needed.
func Compare(baseline, candidate []float64, opt GateOptions) (Comparison, error) {
	if err := opt.Direction.check(); err != nil {
		return Comparison{}, err
	}
	if !(opt.Alpha > 0 && opt.Alpha < 1) {
		return Comparison{}, fmt.Errorf("significance level %v is not in (0, 1): start from stats.DefaultGateOptions", opt.Alpha)
	}
	if opt.Noise < 0 || opt.Tolerance < 0 {
		return Comparison{}, fmt.Errorf("noise threshold %v and tolerance %v must not be negative: start from stats.DefaultGateOptions", opt.Noise, opt.Tolerance)
	}
	var c Comparison
	var err error
	if c.Baseline, err = Summarize(baseline); err != nil {
		return Comparison{}, fmt.Errorf("baseline: %w", err)
	}
	if c.Candidate, err = Summarize(candidate); err != nil {
		return Comparison{}, fmt.Errorf("candidate: %w", err)
	}
	c.Options = opt
	if c.Change, err = RelativeChange(c.Baseline.Mean, c.Candidate.Mean); err != nil {
		return Comparison{}, fmt.Errorf("baseline mean: %w", err)
	}
	if c.Baseline.Median != 0 {
		c.MedianChange, _ = RelativeChange(c.Baseline.Median, c.Candidate.Median)
	}
	c.MinRuns = MinRunsPerSide(opt.Alpha)
	if c.Test, err = PermutationTest(baseline, candidate, opt.Permutation); err != nil {
		return Comparison{}, err
	}
	if c.BaselineWarnings, err = RunWarnings(baseline, opt.Direction); err != nil {
		return Comparison{}, fmt.Errorf("baseline: %w", err)
	}
	if c.CandidateWarnings, err = RunWarnings(candidate, opt.Direction); err != nil {
		return Comparison{}, fmt.Errorf("candidate: %w", err)
	}

	if err := EnoughRuns(len(baseline), len(candidate), opt.Alpha); err != nil {
		c.Verdict = Undecidable
		c.Reason = err.Error()
		return c, nil
	}
	worse := (opt.Direction == LowerIsBetter) == (c.Change > 0)
	size := math.Abs(c.Change)
	switch {
	case c.Test.P >= opt.Alpha:
		c.Verdict = NoChange
		c.Reason = fmt.Sprintf("no significant difference (%s, need p < %g)", formatP(c.Test.P), opt.Alpha)
		if worse && size > opt.Tolerance {
			// As Chromium's Pinpoint does between its two thresholds:
			// the data neither show a regression nor rule one out.
			c.Reason += fmt.Sprintf(", though the means differ by %.1f %%, beyond the %.0f %% tolerance: more runs may decide", 100*size, 100*opt.Tolerance)
		}
	case size <= opt.Noise:
		c.Verdict = NoChange
		c.Reason = fmt.Sprintf("significant (%s) but the change %+.1f %% is within the %.0f %% noise threshold", formatP(c.Test.P), 100*c.Change, 100*opt.Noise)
	case !worse:
		c.Verdict = Improvement
		c.Reason = fmt.Sprintf("better by %.1f %% (%s)", 100*size, formatP(c.Test.P))
	case size <= opt.Tolerance:
		c.Verdict = NoChange
		c.Reason = fmt.Sprintf("worse by %.1f %% (%s) but within the %.0f %% tolerance", 100*size, formatP(c.Test.P), 100*opt.Tolerance)
	default:
		c.Verdict = Regression
		c.Reason = fmt.Sprintf("worse by %.1f %% (%s), beyond the %.0f %% tolerance", 100*size, formatP(c.Test.P), 100*opt.Tolerance)
	}
	return c, nil
}

// Line returns the comparison as benchstat prints it, followed by the
// verdict: "4.421m ± 1%  4.512m ± 2%  +2.06% (p=0.002 n=10)  regression".
// Values are the medians with the half-width of their confidence interval
// as a percentage; the change is that of the means, or "~" when the test
// found no significant difference. unit is appended to each value.
func (c Comparison) Line(unit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ± %s  %s ± %s  ", FormatValue(c.Baseline.Median, unit), pctRange(c.Baseline),
		FormatValue(c.Candidate.Median, unit), pctRange(c.Candidate))
	n := fmt.Sprintf("n=%d", c.Baseline.N)
	if c.Candidate.N != c.Baseline.N {
		n = fmt.Sprintf("n=%d+%d", c.Baseline.N, c.Candidate.N)
	}
	p := fmt.Sprintf("p=%.3f", c.Test.P)
	switch {
	case c.Verdict == Undecidable:
		fmt.Fprintf(&b, "? (%s %s, need n>=%d)", p, n, c.MinRuns)
	case c.Test.P >= c.Options.Alpha:
		fmt.Fprintf(&b, "~ (%s %s)", p, n)
	default:
		fmt.Fprintf(&b, "%+.2f%% (%s %s)", 100*c.Change, p, n)
	}
	fmt.Fprintf(&b, "  %s", c.Verdict)
	return b.String()
}

// formatP returns "p=0.0123" with three significant digits, or "p<0.0001"
// for smaller values, where more digits would claim a precision that the
// test's assumptions do not give.
func formatP(p float64) string {
	if p < 1e-4 {
		return "p<0.0001"
	}
	return fmt.Sprintf("p=%.3g", p)
}

// pctRange returns the half-width of a summary's confidence interval
// relative to its median, as benchstat shows it ("3%"): the larger of the
// two sides. It returns "?" when the interval straddles zero and "∞" when
// the sample is too small for the interval to reach its level.
func pctRange(s Summary) string {
	if s.Warning != "" {
		return "∞"
	}
	if s.Median == 0 {
		if s.Lo == 0 && s.Hi == 0 {
			return "0%"
		}
		return "?"
	}
	if math.Signbit(s.Lo) != math.Signbit(s.Median) || math.Signbit(s.Hi) != math.Signbit(s.Median) {
		return "?"
	}
	v := math.Max(s.Hi/s.Median-1, 1-s.Lo/s.Median)
	return fmt.Sprintf("%.0f%%", 100*v)
}

// FormatValue returns v with 4 significant digits and an SI prefix so that
// its mantissa is in [1, 1000), followed by unit: 0.004421 "s" gives
// "4.421ms", 940e6 "bit/s" gives "940.0Mbit/s".
func FormatValue(v float64, unit string) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%g%s", v, unit)
	}
	prefixes := []struct {
		scale  float64
		prefix string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}, {1e-3, "m"}, {1e-6, "µ"}, {1e-9, "n"}, {1e-12, "p"}}
	a := math.Abs(v)
	for _, p := range prefixes {
		if a >= p.scale || p.scale == 1e-12 {
			m := v / p.scale
			digits := 3 - int(math.Floor(math.Log10(math.Abs(m))))
			if digits < 0 {
				digits = 0
			}
			return fmt.Sprintf("%.*f%s%s", digits, m, p.prefix, unit)
		}
	}
	return fmt.Sprintf("%g%s", v, unit)
}
