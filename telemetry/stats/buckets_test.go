package stats

import (
	"testing"
)

func TestBuckets(t *testing.T) {
	// Goodput (Mbit/s) sampled while the loss on a link (%) varied.
	var obs []Observation
	add := func(loss float64, vs ...float64) {
		for _, v := range vs {
			obs = append(obs, Observation{Condition: loss, Value: v})
		}
	}
	add(0.2, 100, 98, 102, 99, 101, 100) // median 100
	add(0.9, 97, 103)                    // same bucket: median of 8 is 100
	add(3, 90, 92, 91, 89, 93, 90, 91)   // median 91
	add(7, 60, 58, 62, 61, 59, 60)       // median 60
	add(10, 60)                          // the top edge belongs to the last bucket
	add(12, 1)                           // outside
	add(-1, 1)                           // outside

	tests := []struct {
		name   string
		dir    Direction
		best   int
		ofBest []float64
	}{
		{"goodput, higher is better", HigherIsBetter, 0, []float64{1, 0.91, 0.6}},
		// Read as latency: the 5-10 bucket is best and the others are
		// 1.67 and 1.52 times it.
		{"as latency, lower is better", LowerIsBetter, 2, []float64{100.0 / 60, 91.0 / 60, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bt, err := Buckets(obs, []float64{0, 1, 5, 10}, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if bt.Outside != 2 || bt.Best != tc.best || len(bt.Buckets) != 3 {
				t.Fatalf("Outside %d Best %d buckets %d, want 2, %d, 3", bt.Outside, bt.Best, len(bt.Buckets), tc.best)
			}
			wantN := []int{8, 7, 7}
			wantMed := []float64{100, 91, 60}
			wantLabel := []string{"0-1", "1-5", "5-10"}
			for i, b := range bt.Buckets {
				if b.N != wantN[i] || b.Label != wantLabel[i] {
					t.Errorf("bucket %d: N %d label %q, want %d %q", i, b.N, b.Label, wantN[i], wantLabel[i])
				}
				checkNear(t, "median", b.Summary.Median, wantMed[i], 1e-12)
				checkNear(t, "OfBest", b.OfBest, tc.ofBest[i], 1e-12)
			}
			// With 8 values [x(2), x(7)] covers only 1-2·9/256 = 93 %, so
			// the 95 % interval is [min, max] = [97, 103] at 1-2/256.
			checkNear(t, "Lo", bt.Buckets[0].Summary.Lo, 97, 0)
			checkNear(t, "Hi", bt.Buckets[0].Summary.Hi, 103, 0)
			checkNear(t, "Confidence", bt.Buckets[0].Summary.Confidence, 1-2.0/256, 1e-12)
		})
	}
}

func TestBucketsEmptyAndBadInput(t *testing.T) {
	bt, err := Buckets([]Observation{{Condition: 0.5, Value: 10}}, []float64{0, 1, 5}, HigherIsBetter)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Buckets[1].N != 0 || bt.Buckets[1].OfBest != 0 || bt.Buckets[0].OfBest != 1 {
		t.Errorf("buckets %+v, want an empty second bucket", bt.Buckets)
	}
	bt, err = Buckets(nil, []float64{0, 1}, HigherIsBetter)
	if err != nil || bt.Best != -1 {
		t.Errorf("no observations: Best %d, err %v; want -1, nil", bt.Best, err)
	}
	tests := []struct {
		name  string
		edges []float64
		dir   Direction
		want  string
	}{
		{"one edge", []float64{1}, HigherIsBetter, "need at least 2"},
		{"unsorted", []float64{0, 5, 1}, HigherIsBetter, "edge 2 (1) is not above edge 1 (5)"},
		{"no direction", []float64{0, 1}, 0, "metric direction not set"},
	}
	for _, tc := range tests {
		_, err := Buckets(nil, tc.edges, tc.dir)
		checkErrContains(t, err, tc.want)
	}
}
