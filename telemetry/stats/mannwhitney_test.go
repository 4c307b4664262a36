package stats

import "testing"

// Reference: scipy 1.10 (Debian python3-scipy):
//
//	from scipy import stats
//	e = stats.mannwhitneyu(base, cand, alternative='two-sided', method='exact')
//	s = stats.mannwhitneyu(base, cand, alternative='two-sided', method='asymptotic')
//	print(e.statistic, e.pvalue, s.pvalue)
//
// The 20v25 samples: rng = np.random.default_rng(3);
// np.round(rng.normal(50, 3, 20), 3), np.round(rng.normal(52, 3, 25), 3).
func TestMannWhitneyUAgainstScipy(t *testing.T) {
	tests := []struct {
		name         string
		base, cand   []float64
		u            float64
		exact, asymp float64 // exact < 0: ties, exact not applicable
	}{
		{"3v3", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.1, 0.08085559837005224},
		{"5v5", []float64{10.1, 10.3, 9.8, 10.0, 10.2}, []float64{11.0, 11.3, 10.9, 11.2, 11.1},
			0, 0.007936507936507936, 0.012185780355344813},
		{"7v8", []float64{101, 98, 103, 99, 100, 102, 97}, []float64{104.5, 99.5, 106, 103.5, 101.5, 105, 102.5, 100.5},
			10, 0.04009324009324009, 0.04284360182801645},
		{"interleaved 6v6", []float64{1.1, 2.3, 3.2, 4.8, 5.1, 6.6}, []float64{1.5, 2.1, 3.9, 4.2, 5.7, 6.3}, 18, 1, 1},
		{"20v25",
			[]float64{56.123, 42.333, 51.254, 48.297, 48.642, 49.353, 43.94, 49.304, 47.404, 59.969, 50.677, 48.942, 49.156, 47.996, 46.835, 48.828, 51.446, 49.284, 52.873, 49.401},
			[]float64{52.073, 56.637, 53.635, 50.484, 51.451, 53.622, 57.805, 51.191, 51.269, 55.007, 49.341, 51.125, 54.648, 53.741, 52.275, 54.01, 43.516, 55.064, 49.121, 46.994, 52.829, 54.102, 50.666, 48.771, 52.078},
			127, 0.004376393040421956, 0.0051404643990352415},
		{"6v6 ties", []float64{12.1, 11.8, 12.5, 12.0, 11.9, 12.3}, []float64{12.2, 12.6, 12.4, 12.9, 12.1, 12.7},
			5.5, -1, 0.054241117559770936},
		{"7v8 ties", []float64{101, 98, 103, 99, 100, 102, 97}, []float64{104, 99, 106, 103, 101, 105, 102, 100},
			12.5, -1, 0.08120887152819865},
		{"all equal", []float64{3, 3, 3}, []float64{3, 3, 3, 3}, 6, -1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := MannWhitneyU(tc.base, tc.cand, MWAsymptotic)
			if err != nil {
				t.Fatal(err)
			}
			checkNear(t, "U", a.Statistic, tc.u, 1e-12)
			checkNear(t, "asymptotic P", a.P, tc.asymp, 1e-12)
			auto, err := MannWhitneyU(tc.base, tc.cand, MWAuto)
			if err != nil {
				t.Fatal(err)
			}
			if tc.exact < 0 {
				if _, err := MannWhitneyU(tc.base, tc.cand, MWExact); err == nil {
					t.Error("MWExact accepted samples with ties")
				}
				if auto.Exact || auto.P != a.P {
					t.Errorf("MWAuto with ties = %+v, want the normal approximation", auto)
				}
				return
			}
			e, err := MannWhitneyU(tc.base, tc.cand, MWExact)
			if err != nil {
				t.Fatal(err)
			}
			checkNear(t, "exact P", e.P, tc.exact, 1e-12)
			if !auto.Exact || auto.P != e.P {
				t.Errorf("MWAuto without ties = %+v, want the exact test", auto)
			}
		})
	}
}

func TestMannWhitneyUMinP(t *testing.T) {
	// Fully separated samples reach exactly MinPValue.
	for n := 2; n <= 7; n++ {
		var a, b []float64
		for i := 0; i < n; i++ {
			a = append(a, float64(i))
			b = append(b, float64(100+i))
		}
		r, err := MannWhitneyU(a, b, MWExact)
		if err != nil {
			t.Fatal(err)
		}
		checkNear(t, "P", r.P, MinPValue(n, n), 1e-12)
	}
}
