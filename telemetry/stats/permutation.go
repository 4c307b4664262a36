package stats

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/combin"
)

// TestResult is the outcome of a two-sample test.
type TestResult struct {
	// Method names the test and how its p-value was found, e.g.
	// "permutation (exact, 252 splits)".
	Method string `json:"method"`
	// Statistic is the test statistic: mean(candidate) - mean(baseline)
	// for the permutation test, U of the baseline sample for Mann-Whitney.
	Statistic float64 `json:"statistic"`
	// P is the two-sided p-value.
	P float64 `json:"p"`
	// Exact is true when P comes from the exact null distribution rather
	// than from Monte Carlo resampling or a normal approximation.
	Exact bool `json:"exact"`
}

// PermutationOptions tune PermutationTest. The zero value is usable.
type PermutationOptions struct {
	// MaxExact is the largest number of splits C(n+m, n) that is enumerated
	// exactly; above it the test resamples. 0 means DefaultMaxExact.
	MaxExact int `json:"max_exact,omitempty"`
	// Resamples is the number of random splits drawn when the test does not
	// enumerate. 0 means DefaultResamples.
	Resamples int `json:"resamples,omitempty"`
	// Seed seeds the random splits, so a Monte Carlo p-value is the same on
	// every run with the same input.
	Seed uint64 `json:"seed"`
}

const (
	// DefaultMaxExact covers 10 runs against 10 (C(20,10) = 184756 splits),
	// which enumerates in a few milliseconds.
	DefaultMaxExact = 200000
	// DefaultResamples is scipy's default. Its Monte Carlo error at p near
	// 0.01 is about ±0.001, and its smallest reachable p is 2/10000.
	DefaultResamples = 9999
)

// PermutationTest returns the two-sided p-value of the hypothesis that
// baseline and candidate come from one distribution, using the difference
// of their means as the statistic (as Firecracker's A/B test does). It
// assumes only exchangeability: that under the hypothesis every split of the
// pooled values into groups of the two sizes is equally likely, which holds
// for independent runs, interleaved so that drift hits both sides alike.
//
// When there are at most MaxExact splits it enumerates them all; otherwise
// it draws Resamples random splits. The p-value is computed as scipy's
// permutation_test does: p = min(1, 2·min(P(T ≤ t), P(T ≥ t))), where the
// Monte Carlo version counts the observed split among the draws
// ((k+1)/(R+1)) so that p is never 0.
func PermutationTest(baseline, candidate []float64, opt PermutationOptions) (TestResult, error) {
	if err := checkSample("baseline", baseline, 1); err != nil {
		return TestResult{}, err
	}
	if err := checkSample("candidate", candidate, 1); err != nil {
		return TestResult{}, err
	}
	if opt.MaxExact == 0 {
		opt.MaxExact = DefaultMaxExact
	}
	if opt.Resamples == 0 {
		opt.Resamples = DefaultResamples
	}
	if opt.MaxExact < 0 || opt.Resamples < 0 {
		return TestResult{}, fmt.Errorf("permutation options MaxExact %d and Resamples %d must not be negative: use 0 for the defaults", opt.MaxExact, opt.Resamples)
	}

	n, m := len(baseline), len(candidate)
	// Work on values centred on the pooled mean: the statistic does not
	// change, but rounding errors then scale with the spread of the data
	// rather than with its level (1e9 ± 1 stays resolvable).
	pooled := make([]float64, 0, n+m)
	pooled = append(pooled, baseline...)
	pooled = append(pooled, candidate...)
	centre := mean(pooled)
	var total, spread float64
	for i := range pooled {
		pooled[i] -= centre
		total += pooled[i]
		spread = math.Max(spread, math.Abs(pooled[i]))
	}
	// stat returns mean(candidate side) - mean(baseline side) given the
	// sum of the values put on the candidate side.
	stat := func(sumCand float64) float64 {
		return sumCand/float64(m) - (total-sumCand)/float64(n)
	}
	var sumCand float64
	for _, x := range pooled[n:] {
		sumCand += x
	}
	observed := stat(sumCand)
	// Splits whose statistic equals the observed one in exact arithmetic
	// differ from it in the last bits when the same total is reached by
	// adding other values; count them as equal. The tolerance is far
	// below any real difference between splits of data with a few
	// significant digits.
	gamma := 1e-12 * spread

	var less, greater, count int
	tally := func(t float64) {
		if t <= observed+gamma {
			less++
		}
		if t >= observed-gamma {
			greater++
		}
		count++
	}

	splits := binomial(n+m, m)
	res := TestResult{Statistic: observed}
	if splits <= float64(opt.MaxExact) {
		idx := make([]int, m)
		gen := combin.NewCombinationGenerator(n+m, m)
		for gen.Next() {
			gen.Combination(idx)
			var s float64
			for _, i := range idx {
				s += pooled[i]
			}
			tally(stat(s))
		}
		res.Exact = true
		res.Method = fmt.Sprintf("permutation (exact, %d splits)", count)
		res.P = math.Min(1, 2*math.Min(float64(less), float64(greater))/float64(count))
		return res, nil
	}

	rng := rand.New(rand.NewPCG(opt.Seed, 0x666f72676c6162)) // "forglab"
	perm := make([]int, n+m)
	for i := range perm {
		perm[i] = i
	}
	for r := 0; r < opt.Resamples; r++ {
		// A partial Fisher-Yates shuffle: the first m slots become a
		// uniform random m-subset, which is all the statistic needs.
		var s float64
		for i := 0; i < m; i++ {
			j := i + rng.IntN(n+m-i)
			perm[i], perm[j] = perm[j], perm[i]
			s += pooled[perm[i]]
		}
		tally(stat(s))
	}
	res.Method = fmt.Sprintf("permutation (Monte Carlo, %d resamples)", opt.Resamples)
	pLess := float64(less+1) / float64(count+1)
	pGreater := float64(greater+1) / float64(count+1)
	res.P = math.Min(1, 2*math.Min(pLess, pGreater))
	return res, nil
}

// binomial returns C(n, k) as a float64, exact for the small values where
// that matters and never overflowing for large ones.
func binomial(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	return math.Round(combin.GeneralizedBinomial(float64(n), float64(k)))
}

// MinPValue returns the smallest two-sided p-value that an exact
// permutation test or an exact Mann-Whitney U test can give for n against
// m distinct values: 2/C(n+m, n), capped at 1. Ties only raise it. With 3
// runs against 3 it is 2/20 = 0.1, so no such test can ever report
// p < 0.01, however large the difference.
func MinPValue(n, m int) float64 {
	if n < 1 || m < 1 {
		return 1
	}
	return math.Min(1, 2/binomial(n+m, n))
}

// MinRunsPerSide returns the smallest n for which n runs against n can
// reach a two-sided p below alpha (see MinPValue): 4 for alpha 0.05, 5 for
// 0.01, 6 for 0.005. It returns 0 for an alpha outside (0, 1).
func MinRunsPerSide(alpha float64) int {
	if !(alpha > 0 && alpha < 1) {
		return 0
	}
	n := 1
	for MinPValue(n, n) >= alpha {
		n++
	}
	return n
}

// EnoughRuns returns nil when n baseline and m candidate runs can reach a
// two-sided p below alpha, and otherwise an error that says how many runs
// per side are needed, for `bench` to show before it spends time on runs
// that cannot decide anything.
func EnoughRuns(n, m int, alpha float64) error {
	if !(alpha > 0 && alpha < 1) {
		return fmt.Errorf("significance level %v is not in (0, 1): use for example 0.01", alpha)
	}
	if MinPValue(n, m) < alpha {
		return nil
	}
	need := MinRunsPerSide(alpha)
	return fmt.Errorf("need at least %d runs per side to reach p < %g, have %d baseline and %d candidate runs: run with --runs %d",
		need, alpha, n, m, need)
}
