package stats

import (
	"strings"
	"testing"
)

// Reference: numpy, Iglewicz-Hoaglin modified Z-scores:
//
//	x = np.array(xs); med = np.median(x); mad = np.median(np.abs(x - med))
//	print(list(0.6745 * (x - med) / mad))
//	# MAD = 0: (x - med) / (1.253314 * np.mean(np.abs(x - med)))
//
// The first two samples are hyperfine's outlier_detection.rs test cases.
func TestModifiedZScoresAgainstNumpy(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want []float64
	}{
		{"one outlier", []float64{0.5, 0.30, 0.29, 0.31, 0.30},
			[]float64{13.489999999999988, 0, -0.6745, 0.6745, 0}},
		{"two added outliers",
			[]float64{2.33269488, 1.42195907, -0.57527698, -0.31293437, 2.2948158, 0.75813273, -1.0712388, -0.96394741, -1.15897446, 1.10976285, 20.0, -500.0},
			[]float64{1.1417140747436945, 0.6489402670675312, -0.43170859111956483, -0.28976230392415664, 1.1212187584533753, 0.28976230392415664, -0.7000597329324687, -0.6420073469379306, -0.7475310575169071, 0.48001957856237065, 10.70100132332457, -270.6565308808883}},
		{"MAD is 0", []float64{10, 10, 10, 10, 10, 10, 10, 100},
			[]float64{0, 0, 0, 0, 0, 0, 0, 6.383077185765099}},
		{"all equal", []float64{4, 4, 4}, []float64{0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ModifiedZScores(tc.xs)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				checkNear(t, "z", z[i], tc.want[i], 1e-9)
			}
		})
	}
}

func TestOutliers(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want []int
	}{
		// hyperfine's expectations, which hold at our stricter cutoff too.
		{"too small", []float64{1000, 0}, nil},
		{"low variance", []float64{-0.2, 0, 0.2}, nil},
		{"one", []float64{-0.2, 0, 0.2, 4}, []int{3}},
		{"normal sample", []float64{2.33269488, 1.42195907, -0.57527698, -0.31293437, 2.2948158, 0.75813273, -1.0712388, -0.96394741, -1.15897446, 1.10976285}, nil},
		{"MAD 0, one", []float64{10, 10, 10, 10, 10, 10, 10, 100}, []int{7}},
		{"MAD 0, two", []float64{10, 10, 10, 10, 10, 10, 10, 100, 100}, []int{7, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Outliers(tc.xs, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, o := range out {
				got = append(got, o.Index)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("outliers at %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("outliers at %v, want %v", got, tc.want)
				}
			}
		})
	}
	if _, err := Outliers([]float64{1, 2, 3}, -1); err == nil {
		t.Error("negative cutoff accepted")
	}
}

func TestRunWarnings(t *testing.T) {
	tests := []struct {
		name  string
		xs    []float64
		dir   Direction
		kinds []string
		text  string
	}{
		{"quiet", []float64{10.1, 10.0, 10.2, 9.9, 10.0, 10.1}, LowerIsBetter, nil, ""},
		{"slow first run (time)", []float64{11.5, 10.0, 10.2, 9.9, 10.0, 10.1, 10.1, 9.9, 10.0, 10.1}, LowerIsBetter,
			[]string{"slow-first-run"}, "add warm-up runs"},
		{"low first run (throughput)", []float64{800, 940, 945, 938, 942, 941, 939, 944, 940, 943}, HigherIsBetter,
			[]string{"slow-first-run"}, "add warm-up runs"},
		{"fast first run is an outlier, not slow", []float64{8.5, 10.0, 10.2, 9.9, 10.0, 10.1, 10.1, 9.9, 10.0, 10.1}, LowerIsBetter,
			[]string{"outliers"}, "#1 (8.5)"},
		{"outlier later", []float64{10.0, 10.2, 9.9, 10.0, 11.5, 10.1, 10.1, 9.9, 10.0, 10.1}, LowerIsBetter,
			[]string{"outliers"}, "#5 (11.5)"},
		// pyperf: stdev ≥ 10 % of the mean, min or max ≥ 50 % from the mean.
		{"unstable spread", []float64{8, 12, 9, 11, 10, 13, 7}, LowerIsBetter,
			[]string{"unstable"}, "the standard deviation (2.16) is 22 % of the mean (10)"},
		{"slow first, unstable", []float64{40, 10, 10.2, 9.9, 10, 10.1, 10.1}, LowerIsBetter,
			[]string{"slow-first-run", "unstable"}, "the maximum (40) is 179 % greater than the mean (14.33)"},
		{"too few runs", []float64{1, 100}, LowerIsBetter, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, err := RunWarnings(tc.xs, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			var kinds, msgs []string
			for _, w := range ws {
				kinds = append(kinds, w.Kind)
				msgs = append(msgs, w.Message)
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") {
				t.Fatalf("warnings %v (%q), want %v", kinds, msgs, tc.kinds)
			}
			if tc.text != "" && !strings.Contains(strings.Join(msgs, "\n"), tc.text) {
				t.Errorf("messages %q do not contain %q", msgs, tc.text)
			}
		})
	}
	_, err := RunWarnings([]float64{1, 2, 3}, 0)
	checkErrContains(t, err, "metric direction not set")
}

func TestInstabilityThresholds(t *testing.T) {
	// Mean 100: max 150 is exactly 50 % above (pyperf warns at >= 50 %).
	if r := Instability([]float64{75, 75, 100, 100, 150}); len(r) == 0 || !strings.Contains(strings.Join(r, ";"), "maximum (150) is 50 % greater") {
		t.Errorf("Instability = %q, want the maximum flagged", r)
	}
	if r := Instability([]float64{99, 100, 101}); len(r) != 0 {
		t.Errorf("Instability of a tight sample = %q, want none", r)
	}
}
