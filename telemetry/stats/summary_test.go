package stats

import (
	"math"
	"strings"
	"testing"
)

// Reference: order-statistic CI of the median as in Lehmann (1975) and R's
// asbio::ci.median, computed with scipy 1.10 (Debian python3-scipy):
//
//	import numpy as np; from scipy import stats
//	def ci(x, conf=0.95):
//	    x = np.sort(x); n = len(x)
//	    L = int(stats.binom.ppf((1-conf)/2, n, 0.5))
//	    return x[L-1], x[n-L], 1-2*stats.binom.cdf(L-1, n, 0.5), np.median(x), np.mean(x), np.std(x, ddof=1)
//
// and for n = 5 at 95 % (where L = 0), [min, max] with 1 - 2·0.5**5.
// testdata/reference.py reruns every reference of these tests.
func TestSummarizeAgainstScipy(t *testing.T) {
	seq := func(lo, hi int) []float64 {
		var xs []float64
		for i := lo; i <= hi; i++ {
			xs = append(xs, float64(i))
		}
		return xs
	}
	tests := []struct {
		name                        string
		xs                          []float64
		conf                        float64
		lo, hi, cov, med, mean, std float64
		warn                        bool
	}{
		{"n=10", []float64{3.2, 1.5, 4.8, 2.2, 5.9, 3.3, 4.1, 2.7, 3.8, 4.4}, 0.95,
			2.2, 4.8, 0.978515625, 3.55, 3.5900000000000007, 1.2948187346325954, false},
		{"n=20", []float64{10, 12, 11, 13, 15, 14, 9, 16, 8, 17, 12.5, 11.5, 13.5, 10.5, 14.5, 9.5, 15.5, 8.5, 16.5, 7.5}, 0.95,
			10, 14.5, 0.9586105346679688, 12.25, 12.25, 2.958039891549808, false},
		{"n=6 is the smallest for 95%", []float64{2, 1, 3, 5, 4, 6}, 0.95,
			1, 6, 0.96875, 3.5, 3.5, 1.8708286933869707, false},
		{"n=5 cannot reach 95%", []float64{2, 1, 3, 5, 4}, 0.95,
			1, 5, 0.9375, 3, 3, 1.5811388300841898, true},
		{"n=100 at 99%", seq(1, 100), 0.99,
			37, 64, 0.9933628794840739, 50.5, 50.5, 29.011491975882016, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := SummarizeAt(tc.xs, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			checkNear(t, "Lo", s.Lo, tc.lo, 1e-12)
			checkNear(t, "Hi", s.Hi, tc.hi, 1e-12)
			checkNear(t, "Confidence", s.Confidence, tc.cov, 1e-9)
			checkNear(t, "Median", s.Median, tc.med, 1e-12)
			checkNear(t, "Mean", s.Mean, tc.mean, 1e-12)
			checkNear(t, "StdDev", s.StdDev, tc.std, 1e-12)
			if s.N != len(tc.xs) {
				t.Errorf("N = %d, want %d", s.N, len(tc.xs))
			}
			if got := s.Warning != ""; got != tc.warn {
				t.Errorf("Warning = %q, want a warning: %v", s.Warning, tc.warn)
			}
			if tc.warn && !strings.Contains(s.Warning, "need at least 6 samples") {
				t.Errorf("Warning %q does not say how many samples are needed", s.Warning)
			}
		})
	}
}

func TestSummarizeSingleValue(t *testing.T) {
	s, err := Summarize([]float64{7})
	if err != nil {
		t.Fatal(err)
	}
	if s.Mean != 7 || s.Median != 7 || s.StdDev != 0 || s.Lo != 7 || s.Hi != 7 || s.Warning == "" {
		t.Errorf("Summarize([7]) = %+v", s)
	}
}

func TestSummarizeBadInput(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want string
	}{
		{"empty", nil, "has 0 values, need at least 1"},
		{"NaN", []float64{1, math.NaN()}, "value 1 is NaN: drop failed runs"},
		{"Inf", []float64{math.Inf(1)}, "value 0 is +Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Summarize(tc.xs)
			checkErrContains(t, err, tc.want)
		})
	}
	_, _, _, err := MedianCI([]float64{1, 2}, 1.5)
	checkErrContains(t, err, "not in (0, 1)")
}

func TestRelativeChange(t *testing.T) {
	tests := []struct{ base, cand, want float64 }{
		{100, 110, 0.10},
		{100, 80, -0.20},
		{-50, -40, 0.20}, // less negative is up
	}
	for _, tc := range tests {
		got, err := RelativeChange(tc.base, tc.cand)
		if err != nil {
			t.Fatal(err)
		}
		checkNear(t, "RelativeChange", got, tc.want, 1e-12)
	}
	_, err := RelativeChange(0, 1)
	checkErrContains(t, err, "baseline value is 0")
}

func TestMedianCILongSeries(t *testing.T) {
	// A day of 1 s samples, valued by rank so that the interval's ends
	// are their own ranks. scipy 1.10 as in TestSummarizeAgainstScipy:
	// L = binom.ppf(0.025, 86400, 0.5) = 42912, [x(42912), x(43489)],
	// coverage 0.9503537406392965.
	xs := make([]float64, 86400)
	for i := range xs {
		xs[len(xs)-1-i] = float64(i + 1)
	}
	lo, hi, cov, err := MedianCI(xs, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	checkNear(t, "lo", lo, 42912, 0)
	checkNear(t, "hi", hi, 43489, 0)
	checkNear(t, "coverage", cov, 0.9503537406392965, 1e-9)
}
