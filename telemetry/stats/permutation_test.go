package stats

import (
	"testing"
)

// Reference: scipy 1.10 (Debian python3-scipy), exact enumeration:
//
//	import numpy as np; from scipy import stats
//	st = lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis)
//	r = stats.permutation_test((cand, base), st, vectorized=True,
//	        permutation_type='independent', alternative='two-sided', n_resamples=np.inf)
//	print(r.statistic, r.pvalue)
func TestPermutationTestExactAgainstScipy(t *testing.T) {
	tests := []struct {
		name       string
		base, cand []float64
		stat, p    float64
	}{
		{"3v3 fully separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 3.0, 0.1},
		{"5v5 separated", []float64{10.1, 10.3, 9.8, 10.0, 10.2}, []float64{11.0, 11.3, 10.9, 11.2, 11.1},
			1.0199999999999996, 0.007936507936507936},
		{"6v6 with a tie", []float64{12.1, 11.8, 12.5, 12.0, 11.9, 12.3}, []float64{12.2, 12.6, 12.4, 12.9, 12.1, 12.7},
			0.38333333333333286, 0.05627705627705628},
		{"7v8", []float64{101, 98, 103, 99, 100, 102, 97}, []float64{104, 99, 106, 103, 101, 105, 102, 100},
			2.5, 0.07552447552447553},
		{"4v4 same", []float64{5.0, 5.2, 4.9, 5.1}, []float64{5.1, 4.8, 5.2, 5.0}, -0.025000000000000355, 1.0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := PermutationTest(tc.base, tc.cand, PermutationOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Exact {
				t.Errorf("Exact = false, want exact enumeration (%s)", r.Method)
			}
			checkNear(t, "Statistic", r.Statistic, tc.stat, 1e-9)
			checkNear(t, "P", r.P, tc.p, 1e-12)
		})
	}
}

// Reference: scipy 1.10 Monte Carlo with many more resamples than ours, so
// its error (±0.0006 at 2σ) is small next to our tolerance:
//
//	rng = np.random.default_rng(7)
//	base = np.round(rng.normal(100, 5, 15), 1); cand = np.round(rng.normal(106, 5, 15), 1)
//	r = stats.permutation_test((cand, base), st, vectorized=True, permutation_type='independent',
//	        alternative='two-sided', n_resamples=400000, batch=20000, random_state=1)
//	# statistic 3.2466666666666555, pvalue 0.03603990990022525
//
// C(30,15) = 155117520 splits, too many to enumerate, so ours resamples
// 9999 times; its two-sided p has a standard error near 0.0027 here.
func TestPermutationTestMonteCarloAgainstScipy(t *testing.T) {
	base := []float64{100.0, 101.5, 98.6, 95.5, 97.7, 95.0, 100.3, 106.7, 97.5, 96.9, 102.4, 101.8, 100.5, 95.3, 99.9}
	cand := []float64{109.5, 99.3, 103.7, 96.5, 99.6, 96.8, 104.8, 99.7, 107.4, 106.8, 105.1, 93.4, 103.3, 105.8, 106.6}
	for _, seed := range []uint64{0, 1, 2} {
		r, err := PermutationTest(base, cand, PermutationOptions{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if r.Exact {
			t.Fatalf("Exact = true for C(30,15) splits, want Monte Carlo")
		}
		checkNear(t, "Statistic", r.Statistic, 3.2466666666666555, 1e-9)
		checkNear(t, "P", r.P, 0.03603990990022525, 0.01)
		again, _ := PermutationTest(base, cand, PermutationOptions{Seed: seed})
		if again.P != r.P {
			t.Errorf("seed %d: p %v then %v, want the same p for the same seed", seed, r.P, again.P)
		}
	}
}

func TestPermutationTestForcedMonteCarloMatchesExact(t *testing.T) {
	// With enumeration disabled, the Monte Carlo estimate of the 7v8 case
	// must land near the exact p = 0.0755 (SE of the doubled p ≈ 0.004).
	base := []float64{101, 98, 103, 99, 100, 102, 97}
	cand := []float64{104, 99, 106, 103, 101, 105, 102, 100}
	r, err := PermutationTest(base, cand, PermutationOptions{MaxExact: 1, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	if r.Exact {
		t.Fatal("Exact = true with MaxExact 1")
	}
	checkNear(t, "P", r.P, 0.07552447552447553, 0.015)
}

func TestMinPValueAndRuns(t *testing.T) {
	tests := []struct {
		n, m int
		want float64
	}{
		{3, 3, 0.1}, // 2/20, the example of the brief
		{4, 4, 2.0 / 70},
		{5, 5, 2.0 / 252},
		{1, 1, 1},
		{2, 10, 2.0 / 66},
	}
	for _, tc := range tests {
		checkNear(t, "MinPValue", MinPValue(tc.n, tc.m), tc.want, 1e-15)
	}
	// benchstat's table of minimum U-test p-values gives the same
	// thresholds: 4 samples for 0.05, 5 for 0.01.
	runs := []struct {
		alpha float64
		want  int
	}{{0.05, 4}, {0.01, 5}, {0.005, 6}, {0.001, 7}, {0.5, 2}}
	for _, tc := range runs {
		if got := MinRunsPerSide(tc.alpha); got != tc.want {
			t.Errorf("MinRunsPerSide(%v) = %d, want %d", tc.alpha, got, tc.want)
		}
	}
}

func TestEnoughRuns(t *testing.T) {
	if err := EnoughRuns(5, 5, 0.01); err != nil {
		t.Errorf("EnoughRuns(5, 5, 0.01) = %v, want nil", err)
	}
	err := EnoughRuns(3, 3, 0.01)
	checkErrContains(t, err, "need at least 5 runs per side to reach p < 0.01, have 3 baseline and 3 candidate runs: run with --runs 5")
	err = EnoughRuns(4, 4, 0)
	checkErrContains(t, err, "significance level 0 is not in (0, 1)")
}

func TestPermutationTestBadInput(t *testing.T) {
	_, err := PermutationTest(nil, []float64{1}, PermutationOptions{})
	checkErrContains(t, err, "baseline has 0 values")
	_, err = PermutationTest([]float64{1}, []float64{1}, PermutationOptions{Resamples: -1})
	checkErrContains(t, err, "must not be negative")
}

func TestPermutationTestLargeLevelSmallDifferences(t *testing.T) {
	// Values near 1e9 that differ by 1e-4: the tolerance for rounding must
	// follow the spread, not the level, or every split would look tied
	// with the observed one and p would be 1.
	var a, b []float64
	for i := 1; i <= 5; i++ {
		a = append(a, 1e9+1e-4*float64(i))
		b = append(b, 1e9+1e-4*float64(i+5))
	}
	r, err := PermutationTest(a, b, PermutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkNear(t, "P", r.P, 2.0/252, 1e-12)
	checkNear(t, "Statistic", r.Statistic, 5e-4, 1e-3)
}

func TestPermutationTestMonteCarloNeverZero(t *testing.T) {
	// 15 against 15 fully separated: no random split is as extreme as the
	// observed one, and the Monte Carlo p counts the observed split among
	// the draws, 2·(0+1)/(R+1), rather than claiming p = 0.
	var a, b []float64
	for i := 0; i < 15; i++ {
		a = append(a, float64(i))
		b = append(b, float64(100+i))
	}
	for _, pair := range [][2][]float64{{a, b}, {b, a}} { // both tails
		r, err := PermutationTest(pair[0], pair[1], PermutationOptions{Resamples: 999})
		if err != nil {
			t.Fatal(err)
		}
		checkNear(t, "P", r.P, 2.0/1000, 1e-15)
	}
}
