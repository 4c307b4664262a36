package stats

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Reference: the worked example "A Mann-Kendall Example (By Hand)" of
// Holy Cross (mathcs.holycross.edu/~little/Montserrat/MannKendallByHand.txt)
// gives for the first series S = 54, V = (14)(13)(33)/18 - (2)(1)(9)/18,
// Z = 2.9058 and a one-sided p of about .0018 (so two-sided 0.0037). The
// other values come from this Python (numpy, scipy 1.10), a plain
// transcription of Gilbert (1987); scipy.stats.kendalltau(range(n), y)
// agrees on S through tau:
//
//	def mk(y):
//	    y = np.asarray(y, float); n = len(y)
//	    s = sum(np.sign(y[j]-y[i]) for i in range(n-1) for j in range(i+1, n))
//	    _, t = np.unique(y, return_counts=True)
//	    var = (n*(n-1)*(2*n+5) - np.sum(t*(t-1)*(2*t+5))) / 18
//	    z = (s-1)/np.sqrt(var) if s > 0 else (s+1)/np.sqrt(var) if s < 0 else 0.0
//	    return s, var, z, 2*stats.norm.sf(abs(z))
func TestMannKendall(t *testing.T) {
	tests := []struct {
		name       string
		ys         []float64
		s, v, z, p float64
	}{
		{"Holy Cross worked example", []float64{12.9, 14.8, 13.2, 15.7, 13.8, 15.6, 12.9, 11.0, 17.3, 15.9, 19.0, 18.3, 20.1, 21.7},
			54, 14.0*13*33/18 - 2.0*1*9/18, 2.905836845996537, 0.003662723762882436},
		{"decreasing with ties", []float64{5.0, 4.8, 4.8, 4.9, 4.5, 4.6, 4.5, 4.5, 4.2, 4.3, 4.0, 4.1},
			-52, 208, -3.536213750935836, 0.00040590612363629737},
		{"flat", []float64{3.1, 2.9, 3.0, 3.2, 2.8, 3.1, 3.0, 2.9, 3.2, 3.0},
			1, 118.33333333333333, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := MannKendall(tc.ys)
			if err != nil {
				t.Fatal(err)
			}
			checkNear(t, "S", r.S, tc.s, 0)
			checkNear(t, "Var", r.Var, tc.v, 1e-12)
			checkNear(t, "Z", r.Z, tc.z, 1e-12)
			checkNear(t, "P", r.P, tc.p, 1e-9)
		})
	}
	// The worked example rounds: Z 2.9058, one-sided p about .0018.
	r, _ := MannKendall(tests[0].ys)
	checkNear(t, "Z (as published)", r.Z, 2.9058, 5e-5)
	checkNear(t, "one-sided p (as published)", r.P/2, 0.0018, 5e-5)

	_, err := MannKendall([]float64{1, 2})
	checkErrContains(t, err, "need at least 3")
}

// Reference: scipy 1.10, r = stats.theilslopes(y, x, alpha=conf) gives
// (slope, intercept, low, high); x = np.arange(len(y)) for the series.
func TestTheilSenAgainstScipy(t *testing.T) {
	idx := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i)
		}
		return xs
	}
	tests := []struct {
		name                    string
		xs, ys                  []float64
		conf                    float64
		slope, icept, low, high float64
	}{
		{"Holy Cross series", idx(14), []float64{12.9, 14.8, 13.2, 15.7, 13.8, 15.6, 12.9, 11.0, 17.3, 15.9, 19.0, 18.3, 20.1, 21.7}, 0.95,
			0.566666666666667, 11.966666666666663, 0.3250000000000002, 0.8666666666666666},
		{"decreasing with ties", idx(12), []float64{5.0, 4.8, 4.8, 4.9, 4.5, 4.6, 4.5, 4.5, 4.2, 4.3, 4.0, 4.1}, 0.95,
			-0.08333333333333333, 4.958333333333333, -0.10000000000000009, -0.0625},
		{"flat", idx(10), []float64{3.1, 2.9, 3.0, 3.2, 2.8, 3.1, 3.0, 2.9, 3.2, 3.0}, 0.95,
			0, 3, -0.050000000000000044, 0.040000000000000036},
		{"ties in x, 90%", []float64{0, 1, 2, 2, 4, 5, 7, 8, 8, 10}, []float64{1.0, 1.4, 2.1, 1.9, 3.2, 3.0, 4.4, 5.1, 4.7, 6.0}, 0.90,
			0.5, 0.8500000000000001, 0.4500000000000002, 0.55},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := TheilSen(tc.xs, tc.ys, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			checkNear(t, "Slope", r.Slope, tc.slope, 1e-12)
			checkNear(t, "Intercept", r.Intercept, tc.icept, 1e-12)
			checkNear(t, "Lo", r.Lo, tc.low, 1e-12)
			checkNear(t, "Hi", r.Hi, tc.high, 1e-12)
		})
	}
	_, err := TheilSen([]float64{1, 1, 1}, []float64{1, 2, 3}, 0.95)
	checkErrContains(t, err, "all x values are equal")
	_, err = TheilSen([]float64{1, 2}, []float64{1, 2, 3}, 0.95)
	checkErrContains(t, err, "got 2 x and 3 y values")
}

// soak returns a series of n samples around level with Gaussian noise of
// the given relative size, growing by growth (relative to level) over the
// series, plus an AR(1) wobble to look like a sampled metric.
func soak(seed uint64, n int, level, noise, growth float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	ys := make([]float64, n)
	ar := 0.0
	for i := range ys {
		ar = 0.6*ar + rng.NormFloat64()
		ys[i] = level * (1 + growth*float64(i)/float64(n-1) + noise*ar)
	}
	return ys
}

func TestTrend(t *testing.T) {
	tests := []struct {
		name   string
		ys     []float64
		dir    TrendDirection
		sig    bool
		change float64 // expected Change, ±0.03
		reason string
	}{
		{"leak: RSS +30 % over 600 samples", soak(1, 600, 200e6, 0.02, 0.30), Increasing, true, 0.30, "increasing by +"},
		{"no leak", soak(2, 600, 200e6, 0.02, 0), NoTrend, false, 0, "no significant trend"},
		{"throughput degrades 20 %", soak(3, 300, 940, 0.03, -0.20), Decreasing, true, -0.20, "decreasing by -"},
		{"tiny drift is not a leak", soak(4, 2000, 100, 0.002, 0.02), Increasing, false, 0.02, "under the 5 % minimum"},
		// The fitted line runs below zero (-157 % of its start); a series
		// that never does cannot lose more than all of it.
		{"goodput falls to nothing", fallsToZero(), Decreasing, true, -1, "decreasing by -100.0 %"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Trend(tc.ys, DefaultTrendOptions())
			if err != nil {
				t.Fatal(err)
			}
			if r.Direction != tc.dir || r.Significant != tc.sig {
				t.Errorf("Trend = %s, significant %v (%s), want %s, %v", r.Direction, r.Significant, r.Reason, tc.dir, tc.sig)
			}
			checkNear(t, "Change", r.Change, tc.change, 0.03)
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", r.Reason, tc.reason)
			}
		})
	}
	_, err := Trend([]float64{1, 2, 3}, DefaultTrendOptions())
	checkErrContains(t, err, "need at least 10")
	_, err = Trend(soak(1, 20, 1, 0.1, 0), TrendOptions{})
	checkErrContains(t, err, "start from stats.DefaultTrendOptions")
}

func TestTrendLongSeriesIsFast(t *testing.T) {
	// A day of 1 s samples: the reduction to 200 block medians keeps the
	// O(n²) tests cheap.
	ys := soak(5, 86400, 1000, 0.01, 0.1)
	start := time.Now()
	r, err := Trend(ys, DefaultTrendOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Trend on %d samples took %v", len(ys), d)
	}
	if !r.Significant || r.Direction != Increasing || math.Abs(r.Change-0.1) > 0.02 {
		t.Errorf("Trend = %+v, want +10 %% increasing", r)
	}
}

// fallsToZero is 100 falling evenly to 0 over 60 samples, then 40 zeros.
func fallsToZero() []float64 {
	var ys []float64
	for i := 0; i < 60; i++ {
		ys = append(ys, 100-float64(i)*100/59)
	}
	return append(ys, make([]float64, 40)...)
}
