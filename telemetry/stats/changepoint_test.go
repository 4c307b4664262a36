package stats

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Reference: the energy statistic by brute force in numpy, straight from
// its definition (Matteson and James 2014, eq. 3 with alpha = 1):
//
//	from itertools import combinations
//	def Q(x, y):
//	    m, k = len(x), len(y)
//	    between = np.abs(np.subtract.outer(x, y)).sum()
//	    wx = sum(abs(a-b) for a, b in combinations(x, 2))
//	    wy = sum(abs(a-b) for a, b in combinations(y, 2))
//	    return m*k/(m+k) * (2*between/(m*k) - wx/(m*(m-1)/2) - wy/(k*(k-1)/2))
//	y = [10.2, 9.8, 10.5, 10.1, 9.7, 10.4, 12.9, 13.4, 12.6, 13.1, 13.3, 12.8]
//	print([(t, Q(np.array(y[:t]), np.array(y[t:]))) for t in range(3, len(y)-2)])
func TestEnergyProfileAgainstNumpy(t *testing.T) {
	y := []float64{10.2, 9.8, 10.5, 10.1, 9.7, 10.4, 12.9, 13.4, 12.6, 13.1, 13.3, 12.8}
	want := map[int]float64{3: 4.254166666666667, 4: 6.988888888888891, 5: 10.961111111111112,
		6: 15.080000000000005, 7: 10.502777777777775, 8: 6.657142857142858, 9: 4.941666666666668}
	q := energyProfile(y, 3)
	for tau, w := range want {
		checkNear(t, "Q", q[tau], w, 1e-12)
	}
	tau, best := bestSplit(y, 3)
	if tau != 6 {
		t.Errorf("bestSplit = %d, want 6", tau)
	}
	checkNear(t, "best Q", best, 15.080000000000005, 1e-12)
	if tau, _ := bestSplit(y, 7); tau != -1 {
		t.Errorf("bestSplit with min size 7 on 12 points = %d, want -1", tau)
	}
}

// series returns Gaussian noise (sd 1) around the given levels, n points
// each, from a fixed seed.
func series(seed uint64, n int, levels ...float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 2))
	var ys []float64
	for _, l := range levels {
		for i := 0; i < n; i++ {
			ys = append(ys, l+rng.NormFloat64())
		}
	}
	return ys
}

func TestChangePoints(t *testing.T) {
	// A throughput series dropping from 940 to 700 and back, with noise.
	drop := series(7, 30, 940, 700, 940)
	for i := range drop {
		drop[i] += 20 * (drop[i] - float64(int(drop[i]))) // some extra jitter
	}
	tests := []struct {
		name    string
		ys      []float64
		want    []int
		before  []float64 // means, ±0.5
		after   []float64
		maxSize int
	}{
		{"one step", series(1, 40, 10, 14), []int{40}, []float64{10}, []float64{14}, 0},
		{"two steps", series(2, 30, 10, 14, 8), []int{30, 60}, []float64{10, 14}, []float64{14, 8}, 0},
		{"stationary noise", series(3, 80, 10), nil, nil, nil, 0},
		{"too short for 6 per side", []float64{1, 1, 1, 1, 1, 9, 9, 9, 9, 9}, nil, nil, nil, 0},
		{"shortest detectable", []float64{1, 1.1, 0.9, 1, 1.05, 0.95, 9, 9.1, 8.9, 9, 9.05, 8.95}, []int{6}, []float64{1}, []float64{9}, 0},
		{"Max limits the count", series(2, 30, 10, 14, 8), []int{60}, []float64{12}, []float64{8}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := DefaultChangePointOptions()
			opt.Max = tc.maxSize
			cps, err := ChangePoints(tc.ys, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(cps) != len(tc.want) {
				t.Fatalf("change points %+v, want at %v", cps, tc.want)
			}
			for i, cp := range cps {
				// One sample of slack: with noise of sd 1 a point at the
				// edge can belong to either side (series(2, ...)[60] is 9.87,
				// between the levels 14 and 8).
				if d := cp.Index - tc.want[i]; d < -1 || d > 1 {
					t.Errorf("change point %d at %d, want %d±1", i, cp.Index, tc.want[i])
				}
				// Steps of 4 sd beat every permutation, and the p-value
				// counts the observed split: (0+1)/(199+1).
				checkNear(t, "P", cp.P, 1.0/200, 1e-15)
				checkNear(t, "MeanBefore", cp.MeanBefore, tc.before[i], 0.5)
				checkNear(t, "MeanAfter", cp.MeanAfter, tc.after[i], 0.5)
			}
		})
	}
	cps, err := ChangePoints(drop, DefaultChangePointOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Index < 29 || cps[0].Index > 31 || cps[1].Index < 59 || cps[1].Index > 61 || cps[0].Change > -0.2 || cps[1].Change < 0.2 {
		t.Errorf("throughput drop: %+v, want a drop at 30 and a recovery at 60", cps)
	}
	_, err = ChangePoints([]float64{1, 2, 3}, ChangePointOptions{})
	checkErrContains(t, err, "start from stats.DefaultChangePointOptions")
}

func TestChangePointsSeeded(t *testing.T) {
	ys := series(4, 20, 10, 11.2)
	a, _ := ChangePoints(ys, DefaultChangePointOptions())
	b, _ := ChangePoints(ys, DefaultChangePointOptions())
	if len(a) != len(b) || (len(a) > 0 && a[0].P != b[0].P) {
		t.Errorf("same seed gave %+v then %+v", a, b)
	}
}

func TestChangePointsLongSeriesReduced(t *testing.T) {
	// An hour of 1 s throughput samples with a drop at 1800 s: reduced to
	// 500 blocks of 7.2 samples, the change point is found within a block.
	ys := series(9, 1800, 940, 900)
	for i := range ys {
		ys[i] += 5 * float64(i%3) // a little structure within blocks
	}
	start := time.Now()
	cps, err := ChangePoints(ys[:3600], DefaultChangePointOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ChangePoints on 3600 samples took %v", d)
	}
	if len(cps) != 1 || cps[0].Index < 1800-8 || cps[0].Index > 1800+8 {
		t.Fatalf("change points %+v, want one at 1800 ± a block", cps)
	}
	checkNear(t, "MeanBefore", cps[0].MeanBefore, 945, 1)
	checkNear(t, "MeanAfter", cps[0].MeanAfter, 905, 1)
}
