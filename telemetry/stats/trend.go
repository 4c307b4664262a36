package stats

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// MannKendallResult is the outcome of a Mann-Kendall trend test.
type MannKendallResult struct {
	N int `json:"n"`
	// S is the number of later-larger pairs minus later-smaller pairs.
	S float64 `json:"s"`
	// Var is the variance of S under no trend, corrected for ties.
	Var float64 `json:"var"`
	// Z is the normal score of S with continuity correction: (S∓1)/√Var.
	Z float64 `json:"z"`
	// P is the two-sided p-value of Z.
	P float64 `json:"p"`
}

// MannKendall returns the Mann-Kendall test for a monotonic trend in ys,
// taken in order (Gilbert 1987, ch. 16): S = Σ_{i<j} sign(y_j - y_i),
// Var(S) = [n(n-1)(2n+5) - Σ t(t-1)(2t+5)]/18 over groups of t equal values,
// Z = (S-1)/√Var for S > 0, (S+1)/√Var for S < 0, else 0, and
// p = 2·(1 - Φ(|Z|)). It assumes independent observations: a strongly
// autocorrelated series looks more significant than it is (Trend reduces
// long series to block medians partly for that reason). It needs at least 3
// values; the normal approximation is rough below about 10. Its cost is
// O(n²).
func MannKendall(ys []float64) (MannKendallResult, error) {
	if err := checkSample("series", ys, 3); err != nil {
		return MannKendallResult{}, err
	}
	n := len(ys)
	var s float64
	for i := 0; i < n-1; i++ {
		for j := i + 1; j < n; j++ {
			switch {
			case ys[j] > ys[i]:
				s++
			case ys[j] < ys[i]:
				s--
			}
		}
	}
	_, ties := midranks(ys)
	fn := float64(n)
	v := fn * (fn - 1) * (2*fn + 5)
	for _, t := range ties {
		ft := float64(t)
		v -= ft * (ft - 1) * (2*ft + 5)
	}
	v /= 18
	r := MannKendallResult{N: n, S: s, Var: v, P: 1}
	if v > 0 {
		switch {
		case s > 0:
			r.Z = (s - 1) / math.Sqrt(v)
		case s < 0:
			r.Z = (s + 1) / math.Sqrt(v)
		}
		r.P = math.Min(1, 2*distuv.UnitNormal.Survival(math.Abs(r.Z)))
	}
	return r, nil
}

// TheilSenResult is a robust line fit with a confidence interval of its
// slope.
type TheilSenResult struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	// Lo and Hi bound the slope at the confidence level asked for.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// TheilSen returns the Theil-Sen slope of ys against xs, the median of the
// slopes between all pairs of points with different x, with its confidence
// interval by Sen (1968), computed as scipy.stats.theilslopes does (method
// "separate": intercept = median(y) - slope·median(x)). A few wild points
// barely move it, unlike a least-squares slope. It needs at least 3 points
// and two distinct x; its cost is O(n²) time and memory, so reduce series
// longer than a few thousand points first (Trend does).
func TheilSen(xs, ys []float64, confidence float64) (TheilSenResult, error) {
	if len(xs) != len(ys) {
		return TheilSenResult{}, fmt.Errorf("Theil-Sen got %d x and %d y values: pass one x per y", len(xs), len(ys))
	}
	if !(confidence > 0 && confidence < 1) {
		return TheilSenResult{}, fmt.Errorf("confidence level %v is not in (0, 1): use for example 0.95", confidence)
	}
	if err := checkSample("x", xs, 3); err != nil {
		return TheilSenResult{}, err
	}
	if err := checkSample("series", ys, 3); err != nil {
		return TheilSenResult{}, err
	}
	n := len(ys)
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if dx := xs[j] - xs[i]; dx > 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return TheilSenResult{}, fmt.Errorf("all x values are equal: a slope needs at least two distinct times")
	}
	slices.Sort(slopes)
	var r TheilSenResult
	r.Slope = medianSorted(slopes)
	r.Intercept = medianSorted(sorted(ys)) - r.Slope*medianSorted(sorted(xs))

	// Sen (1968), eq. 2.6: the ranks of the interval's ends among the
	// sorted slopes come from the variance of Kendall's S, corrected for
	// ties in x and in y. np.round rounds half to even, hence RoundToEven.
	z := distuv.UnitNormal.Quantile((1 - confidence) / 2) // negative
	_, xt := midranks(xs)
	_, yt := midranks(ys)
	fn := float64(n)
	sigsq := fn * (fn - 1) * (2*fn + 5)
	for _, t := range append(xt, yt...) {
		ft := float64(t)
		sigsq -= ft * (ft - 1) * (2*ft + 5)
	}
	sigsq /= 18
	nt := float64(len(slopes))
	sigma := math.Sqrt(math.Max(sigsq, 0))
	hi := min(int(math.RoundToEven((nt-z*sigma)/2)), len(slopes)-1)
	lo := max(int(math.RoundToEven((nt+z*sigma)/2))-1, 0)
	r.Lo, r.Hi = slopes[lo], slopes[hi]
	return r, nil
}

// TrendDirection says which way a series moves.
type TrendDirection string

const (
	Increasing TrendDirection = "increasing"
	Decreasing TrendDirection = "decreasing"
	NoTrend    TrendDirection = "none"
)

// TrendOptions set Trend. Start from DefaultTrendOptions.
type TrendOptions struct {
	// Alpha is the significance level of the Mann-Kendall test.
	Alpha float64 `json:"alpha"`
	// MinChange is the smallest change over the whole series (see
	// TrendResult.Change) that counts as a trend: a statistically sure drift of
	// 0.5 % over a soak run is rarely a leak.
	MinChange float64 `json:"min_change"`
	// MaxPoints: longer series are reduced to this many block medians
	// first, which keeps the O(n²) tests fast and damps the short-range
	// autocorrelation of sampled metrics that would make them
	// overconfident.
	MaxPoints int `json:"max_points"`
	// Confidence is the level of the Theil-Sen slope's interval.
	Confidence float64 `json:"confidence"`
}

// DefaultTrendOptions returns alpha 0.01, a 5 % minimum change, 200 points
// and a 95 % interval of the slope.
func DefaultTrendOptions() TrendOptions {
	return TrendOptions{Alpha: 0.01, MinChange: 0.05, MaxPoints: 200, Confidence: 0.95}
}

// TrendResult is what Trend found in a series.
type TrendResult struct {
	// Direction is the sign of a Mann-Kendall trend significant at Alpha,
	// NoTrend otherwise.
	Direction TrendDirection `json:"direction"`
	// Significant is true when the trend is also at least MinChange: the
	// flag to raise (a leak, a degradation).
	Significant bool              `json:"significant"`
	MannKendall MannKendallResult `json:"mann_kendall"`
	// TheilSen is fitted to the (reduced) series with x in units of the
	// original sample index, so Slope is per sample of the input.
	TheilSen TheilSenResult `json:"theil_sen"`
	// Change is the fitted change over the whole series relative to the
	// fitted value at its start: Slope·(n-1)/|Intercept|, "RSS grew by
	// 30 % over the run"; relative to the median when the fit starts at 0,
	// and 0 when that is 0 too.
	Change  float64      `json:"change"`
	Reason  string       `json:"reason"`
	Options TrendOptions `json:"options"`
}

// Trend tests the series ys, sampled at equal intervals, for a monotonic
// trend, as a leak detector for soak runs: a significant Mann-Kendall test
// (p < Alpha) and a Theil-Sen change over the series of at least MinChange
// of its starting level. For memory or open files, Increasing means a leak;
// for throughput, Decreasing means degradation. It needs at least 10
// values. Comparing against the previous version's series (Compare on
// per-run slopes, say) catches slower leaks than any threshold.
func Trend(ys []float64, opt TrendOptions) (TrendResult, error) {
	if !(opt.Alpha > 0 && opt.Alpha < 1) || !(opt.Confidence > 0 && opt.Confidence < 1) || opt.MinChange < 0 || opt.MaxPoints < 10 {
		return TrendResult{}, fmt.Errorf("trend options %+v out of range: start from stats.DefaultTrendOptions", opt)
	}
	if err := checkSample("series", ys, 10); err != nil {
		return TrendResult{}, err
	}
	xs, rs := reduce(ys, opt.MaxPoints)
	r := TrendResult{Options: opt, Direction: NoTrend}
	var err error
	if r.MannKendall, err = MannKendall(rs); err != nil {
		return TrendResult{}, err
	}
	if r.TheilSen, err = TheilSen(xs, rs, opt.Confidence); err != nil {
		return TrendResult{}, err
	}
	ref := math.Abs(r.TheilSen.Intercept)
	if ref == 0 {
		ref = math.Abs(medianSorted(sorted(ys)))
	}
	if ref != 0 {
		r.Change = r.TheilSen.Slope * float64(len(ys)-1) / ref
		if r.Change < -1 && slices.Min(ys) >= 0 {
			// A series that never goes below zero (goodput falling to
			// nothing) cannot lose more than all of it, though its fitted
			// line can run below zero.
			r.Change = -1
		}
	}
	switch {
	case r.MannKendall.P >= opt.Alpha:
		r.Reason = fmt.Sprintf("no significant trend (Mann-Kendall %s, need p < %g)", formatP(r.MannKendall.P), opt.Alpha)
		return r, nil
	case r.MannKendall.S > 0:
		r.Direction = Increasing
	default:
		r.Direction = Decreasing
	}
	if ref != 0 && math.Abs(r.Change) < opt.MinChange {
		r.Reason = fmt.Sprintf("%s (%s) but only by %+.1f %% over the series, under the %.0f %% minimum", r.Direction, formatP(r.MannKendall.P), 100*r.Change, 100*opt.MinChange)
		return r, nil
	}
	r.Significant = true
	r.Reason = fmt.Sprintf("%s by %+.1f %% over the series (Theil-Sen slope %.4g per sample, Mann-Kendall %s)", r.Direction, 100*r.Change, r.TheilSen.Slope, formatP(r.MannKendall.P))
	return r, nil
}

// reduce returns ys as at most maxPoints points: unchanged (with x = index) when
// short enough, else the medians of maxPoints consecutive blocks of near-equal
// length, each at the mean index of its block.
func reduce(ys []float64, maxPoints int) (xs, rs []float64) {
	n := len(ys)
	if n <= maxPoints {
		xs = make([]float64, n)
		for i := range xs {
			xs[i] = float64(i)
		}
		return xs, ys
	}
	for b := 0; b < maxPoints; b++ {
		lo, hi := b*n/maxPoints, (b+1)*n/maxPoints
		xs = append(xs, float64(lo+hi-1)/2)
		rs = append(rs, medianSorted(sorted(ys[lo:hi])))
	}
	return xs, rs
}
