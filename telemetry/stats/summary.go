package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultConfidence is the confidence level of the intervals in a Summary,
// as benchstat uses.
const DefaultConfidence = 0.95

// Summary describes one sample, such as one metric over N benchmark runs.
type Summary struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"stddev"` // sample standard deviation (n-1); 0 when N is 1
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Median float64 `json:"median"`
	// Lo and Hi bound the confidence interval of the median.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Confidence is the actual coverage of [Lo, Hi]. Order statistics give
	// only discrete levels, so it is at least the level asked for, or, when
	// the sample is too small to reach that level, below it with
	// [Lo, Hi] = [Min, Max] and Warning set.
	Confidence float64 `json:"confidence"`
	Warning    string  `json:"warning,omitempty"`
}

// Summarize returns the summary of xs with a 95 % confidence interval of the
// median. It makes no assumption about the distribution (see MedianCI); it
// returns an error for an empty sample or one holding NaN or ±Inf.
func Summarize(xs []float64) (Summary, error) {
	return SummarizeAt(xs, DefaultConfidence)
}

// SummarizeAt is Summarize with the confidence level of the median's
// interval given, in (0, 1).
func SummarizeAt(xs []float64, confidence float64) (Summary, error) {
	if err := checkSample("sample", xs, 1); err != nil {
		return Summary{}, err
	}
	s := sorted(xs)
	lo, hi, conf, err := MedianCI(s, confidence)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{
		N:          len(s),
		Min:        s[0],
		Max:        s[len(s)-1],
		Median:     medianSorted(s),
		Lo:         lo,
		Hi:         hi,
		Confidence: conf,
	}
	if len(s) > 1 {
		sum.Mean, sum.StdDev = stat.MeanStdDev(s, nil)
	} else {
		sum.Mean = s[0]
	}
	if conf < confidence {
		sum.Warning = fmt.Sprintf("need at least %d samples for a %g %% confidence interval of the median, have %d: the interval shown is [min, max] at %.1f %%; record more runs",
			minSamplesForMedianCI(confidence), 100*confidence, len(s), 100*conf)
	}
	return sum, nil
}

// MedianCI returns a distribution-free confidence interval [lo, hi] of the
// median of xs and its actual coverage. It assumes only that the values are
// independent draws from one continuous distribution: the number of values
// below the true median is then Binomial(n, 1/2), so the interval between
// the k-th smallest and k-th largest values covers the median with
// probability 1 - 2·P(B ≤ k-1). MedianCI picks the largest k that still
// reaches the requested level (the narrowest such interval), as benchstat
// does. When even [min, max] does not reach it (fewer than 6 values at 95 %)
// it returns [min, max] with its lower coverage, 1 - 2^(1-n).
func MedianCI(xs []float64, confidence float64) (lo, hi, coverage float64, err error) {
	if !(confidence > 0 && confidence < 1) {
		return 0, 0, 0, fmt.Errorf("confidence level %v is not in (0, 1): use for example 0.95", confidence)
	}
	if err := checkSample("sample", xs, 1); err != nil {
		return 0, 0, 0, err
	}
	s := sorted(xs)
	n := len(s)
	b := distuv.Binomial{N: float64(n), P: 0.5}
	// k is 1-based: the interval is [s[k-1], s[n-k]]. Coverage falls as
	// k grows, so search for the last k that still reaches the level;
	// a binary search keeps long soak series cheap.
	cov := func(k int) float64 { return 1 - 2*b.CDF(float64(k-1)) }
	k, hiK := 1, (n+1)/2
	for k < hiK {
		mid := (k + hiK + 1) / 2
		if cov(mid) >= confidence {
			k = mid
		} else {
			hiK = mid - 1
		}
	}
	coverage = cov(k)
	return s[k-1], s[n-k], math.Max(coverage, 0), nil
}

// minSamplesForMedianCI returns the smallest n for which [min, max] covers
// the median with at least the given confidence: 1 - 2^(1-n) >= confidence.
func minSamplesForMedianCI(confidence float64) int {
	n := 1
	for 1-math.Pow(2, float64(1-n)) < confidence {
		n++
	}
	return n
}
