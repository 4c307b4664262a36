package stats

import (
	"fmt"
	"math"
	"strings"
)

// DefaultOutlierCutoff is the modified Z-score beyond which a value is an
// outlier, as Iglewicz and Hoaglin recommend. hyperfine uses a laxer
// cutoff, 10 in these units (its 14.826 on the unscaled (x-median)/MAD).
const DefaultOutlierCutoff = 3.5

// ModifiedZScores returns the modified Z-score of every value of xs
// (Iglewicz and Hoaglin): 0.6745·(x - median)/MAD, where MAD is the median
// absolute deviation from the median and 0.6745 makes the score comparable
// to a standard Z-score for normal data. It relies on medians only, so one
// wild run cannot hide itself by inflating the spread as it would with a
// mean and standard deviation. When more than half of the values are equal
// the MAD is 0; the score then uses the mean absolute deviation instead,
// (x - median)/(1.253314·meanAD), and is 0 for all values when that too is 0.
func ModifiedZScores(xs []float64) ([]float64, error) {
	if err := checkSample("sample", xs, 1); err != nil {
		return nil, err
	}
	med := medianSorted(sorted(xs))
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - med)
	}
	scale := medianSorted(sorted(dev)) / 0.6745
	if scale == 0 {
		scale = 1.253314 * mean(dev)
	}
	z := make([]float64, len(xs))
	if scale == 0 {
		return z, nil
	}
	for i, x := range xs {
		z[i] = (x - med) / scale
	}
	return z, nil
}

// Outlier is one value flagged by Outliers.
type Outlier struct {
	Index int     `json:"index"` // position in the input, e.g. the run number from 0
	Value float64 `json:"value"`
	Score float64 `json:"score"` // modified Z-score
}

// Outliers returns the values of xs whose modified Z-score (see
// ModifiedZScores) exceeds cutoff in absolute value, in input order. A
// cutoff of 0 means DefaultOutlierCutoff.
func Outliers(xs []float64, cutoff float64) ([]Outlier, error) {
	if cutoff == 0 {
		cutoff = DefaultOutlierCutoff
	}
	if cutoff < 0 {
		return nil, fmt.Errorf("outlier cutoff %v is negative: use 0 for the default %v", cutoff, DefaultOutlierCutoff)
	}
	z, err := ModifiedZScores(xs)
	if err != nil {
		return nil, err
	}
	var out []Outlier
	for i, s := range z {
		if math.Abs(s) > cutoff {
			out = append(out, Outlier{Index: i, Value: xs[i], Score: s})
		}
	}
	return out, nil
}

// Warning is a remark about a sample of runs that a user should act on.
type Warning struct {
	// Kind is "slow-first-run", "outliers" or "unstable".
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// RunWarnings returns hyperfine's and pyperf's warnings about the runs xs,
// in run order, of a metric of direction d:
//
//   - slow-first-run (hyperfine): the first run is an outlier on the worse
//     side, typical of cold caches; the fix is warm-up runs.
//   - outliers (hyperfine): other runs beyond DefaultOutlierCutoff.
//   - unstable (pyperf): the standard deviation is at least 10 % of the
//     mean, or the minimum or maximum is at least 50 % away from the mean.
//
// It returns no warnings for fewer than 3 runs, where neither a median
// absolute deviation nor a standard deviation says much.
func RunWarnings(xs []float64, d Direction) ([]Warning, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	if err := checkSample("runs", xs, 1); err != nil {
		return nil, err
	}
	if len(xs) < 3 {
		return nil, nil
	}
	var ws []Warning
	out, err := Outliers(xs, DefaultOutlierCutoff)
	if err != nil {
		return nil, err
	}
	med := medianSorted(sorted(xs))
	if len(out) > 0 && out[0].Index == 0 && (out[0].Score > 0) == (d == LowerIsBetter) {
		how := "slower"
		if med != 0 {
			how = fmt.Sprintf("%.2fx the median", xs[0]/med)
		}
		ws = append(ws, Warning{Kind: "slow-first-run", Message: fmt.Sprintf(
			"the first run was significantly worse than the rest (%g, %s, modified Z-score %.1f): caches or connections were probably cold; add warm-up runs",
			xs[0], how, out[0].Score)})
		out = out[1:]
	}
	if len(out) > 0 {
		var runs []string
		for _, o := range out {
			runs = append(runs, fmt.Sprintf("#%d (%g)", o.Index+1, o.Value))
		}
		ws = append(ws, Warning{Kind: "outliers", Message: fmt.Sprintf(
			"%d outlier run(s) by median absolute deviation: %s; another process or a noisy host may have interfered: check the environment and rerun",
			len(out), strings.Join(runs, ", "))})
	}
	if reasons := Instability(xs); len(reasons) > 0 {
		ws = append(ws, Warning{Kind: "unstable", Message: fmt.Sprintf(
			"unstable runs: %s; quiet the machine or record more runs", strings.Join(reasons, "; "))})
	}
	return ws, nil
}

// Instability returns pyperf's reasons to call the runs xs unstable, empty
// when they look stable: the sample standard deviation is at least 10 % of
// the mean, or the minimum or the maximum is at least 50 % away from the
// mean. It assumes a positive mean (times, rates); with a mean of 0 it
// returns nothing, as the ratios mean nothing.
func Instability(xs []float64) []string {
	if len(xs) < 2 {
		return nil
	}
	s, err := Summarize(xs)
	if err != nil || s.Mean == 0 {
		return nil
	}
	var reasons []string
	m := math.Abs(s.Mean)
	if pct := 100 * s.StdDev / m; pct >= 10 {
		reasons = append(reasons, fmt.Sprintf("the standard deviation (%.4g) is %.0f %% of the mean (%.4g)", s.StdDev, pct, s.Mean))
	}
	if pct := 100 * (s.Mean - s.Min) / m; pct >= 50 {
		reasons = append(reasons, fmt.Sprintf("the minimum (%.4g) is %.0f %% smaller than the mean (%.4g)", s.Min, pct, s.Mean))
	}
	if pct := 100 * (s.Max - s.Mean) / m; pct >= 50 {
		reasons = append(reasons, fmt.Sprintf("the maximum (%.4g) is %.0f %% greater than the mean (%.4g)", s.Max, pct, s.Mean))
	}
	return reasons
}
