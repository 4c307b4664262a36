package stats

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// MWMethod chooses how MannWhitneyU computes its p-value.
type MWMethod int

const (
	// MWAuto uses the exact distribution when there are no ties and both
	// samples have at most MWExactMax values, else the normal approximation.
	MWAuto MWMethod = iota
	// MWExact uses the exact distribution of U; it refuses samples with ties.
	MWExact
	// MWAsymptotic uses the normal approximation with tie and continuity
	// correction.
	MWAsymptotic
)

// MWExactMax is the largest sample size for which MWAuto uses the exact
// distribution. Its cost grows as (n·m)², a few milliseconds at 50 by 50.
const MWExactMax = 50

// MannWhitneyU returns the two-sided Mann-Whitney U test (Wilcoxon rank-sum)
// of baseline against candidate, as benchstat uses to compare benchmarks.
// It assumes independent values; its hypothesis is that a value from one
// sample is as likely to exceed one from the other as the reverse.
// Statistic is U of the baseline: the number of (baseline, candidate) pairs
// where the baseline value is larger, ties counting one half. The p-values
// follow scipy.stats.mannwhitneyu: exact p = 2·P(U ≥ max(U1, U2)) capped at
// 1; asymptotic p from z = (max(U1, U2) - nm/2 - 1/2)/σ with σ corrected
// for ties.
func MannWhitneyU(baseline, candidate []float64, method MWMethod) (TestResult, error) {
	if err := checkSample("baseline", baseline, 1); err != nil {
		return TestResult{}, err
	}
	if err := checkSample("candidate", candidate, 1); err != nil {
		return TestResult{}, err
	}
	n1, n2 := len(baseline), len(candidate)
	pooled := append(slices.Clone(baseline), candidate...)
	ranks, tieGroups := midranks(pooled)
	var r1 float64
	for i := 0; i < n1; i++ {
		r1 += ranks[i]
	}
	u1 := r1 - float64(n1*(n1+1))/2
	u2 := float64(n1*n2) - u1
	u := math.Max(u1, u2)
	ties := len(tieGroups) > 0

	switch method {
	case MWAuto:
		if !ties && n1 <= MWExactMax && n2 <= MWExactMax {
			method = MWExact
		} else {
			method = MWAsymptotic
		}
	case MWExact:
		if ties {
			return TestResult{}, fmt.Errorf("exact Mann-Whitney U needs values without ties, the samples have %d groups of equal values: use MWAsymptotic or MWAuto", len(tieGroups))
		}
	case MWAsymptotic:
	default:
		return TestResult{}, fmt.Errorf("unknown Mann-Whitney method %d: use MWAuto, MWExact or MWAsymptotic", method)
	}

	res := TestResult{Statistic: u1}
	if method == MWExact {
		res.Method = "Mann-Whitney U (exact)"
		res.Exact = true
		res.P = math.Min(1, 2*uSurvival(int(math.Round(u)), n1, n2))
		return res, nil
	}
	res.Method = "Mann-Whitney U (normal approximation)"
	n := float64(n1 + n2)
	var tieTerm float64
	for _, t := range tieGroups {
		tieTerm += float64(t*t*t - t)
	}
	sigma := math.Sqrt(float64(n1*n2) / 12 * ((n + 1) - tieTerm/(n*(n-1))))
	if sigma == 0 {
		// Every value is equal: nothing tells the samples apart.
		res.P = 1
		return res, nil
	}
	z := (u - float64(n1*n2)/2 - 0.5) / sigma
	res.P = math.Min(1, 2*distuv.UnitNormal.Survival(z))
	return res, nil
}

// midranks returns the 1-based ranks of xs, equal values sharing the mean of
// their ranks, and the sizes of the groups of equal values (only groups of
// two or more).
func midranks(xs []float64) (ranks []float64, tieGroups []int) {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	ranks = make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && xs[idx[j]] == xs[idx[i]] {
			j++
		}
		r := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			ranks[idx[k]] = r
		}
		if j-i > 1 {
			tieGroups = append(tieGroups, j-i)
		}
		i = j
	}
	return ranks, tieGroups
}

// uSurvival returns P(U ≥ u) for the U statistic of n1 against n2 values
// without ties under the null hypothesis. It uses the recurrence on the
// largest value: it belongs to the first sample with probability
// n1/(n1+n2), adding n2 to U, or to the second, adding nothing. Working in
// probabilities rather than counts keeps every term positive and in range.
func uSurvival(u, n1, n2 int) float64 {
	if u <= 0 {
		return 1
	}
	if u > n1*n2 {
		return 0
	}
	// prev[j] is the distribution of U for (i-1, j); cur[j] for (i, j).
	prev := make([][]float64, n2+1)
	for j := range prev {
		prev[j] = []float64{1} // i = 0: U is 0
	}
	for i := 1; i <= n1; i++ {
		cur := make([][]float64, n2+1)
		cur[0] = []float64{1} // j = 0: U is 0
		for j := 1; j <= n2; j++ {
			d := make([]float64, i*j+1)
			pa := float64(i) / float64(i+j)
			for k, p := range prev[j] { // largest from sample 1: U += j
				d[k+j] += pa * p
			}
			for k, p := range cur[j-1] { // largest from sample 2
				d[k] += (1 - pa) * p
			}
			cur[j] = d
		}
		prev = cur
	}
	var s float64
	for k := u; k <= n1*n2; k++ {
		s += prev[n2][k]
	}
	return s
}
