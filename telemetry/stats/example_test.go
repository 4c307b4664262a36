package stats_test

import (
	"fmt"

	"github.com/forgelab/forgelab/telemetry/stats"
)

// A regression gate as `forgelab bench --baseline` applies it: run times of
// a build against those of the baseline.
func ExampleCompare() {
	baseline := []float64{1.02, 0.98, 1.01, 0.99, 1.00, 1.03}
	candidate := []float64{1.23, 1.19, 1.22, 1.20, 1.24, 1.21}
	if err := stats.EnoughRuns(len(baseline), len(candidate), 0.01); err != nil {
		fmt.Println(err)
		return
	}
	c, err := stats.Compare(baseline, candidate, stats.DefaultGateOptions(stats.LowerIsBetter))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Line("s"))
	fmt.Println(c.Reason)
	// Output:
	// 1.005s ± 2%  1.215s ± 2%  +20.90% (p=0.002 n=6)  regression
	// worse by 20.9 % (p=0.00216), beyond the 10 % tolerance
}

// Too few runs: the gate says how many it needs before any run is spent.
func ExampleEnoughRuns() {
	fmt.Println(stats.EnoughRuns(3, 3, 0.01))
	// Output:
	// need at least 5 runs per side to reach p < 0.01, have 3 baseline and 3 candidate runs: run with --runs 5
}

// "With 5-10 % loss, it kept 60 % of its goodput."
func ExampleBuckets() {
	obs := []stats.Observation{
		{Condition: 0.1, Value: 100}, {Condition: 0.5, Value: 98}, {Condition: 0.8, Value: 102},
		{Condition: 2, Value: 91}, {Condition: 4, Value: 89}, {Condition: 3, Value: 90},
		{Condition: 6, Value: 61}, {Condition: 8, Value: 59}, {Condition: 9, Value: 60},
	}
	t, err := stats.Buckets(obs, []float64{0, 1, 5, 10}, stats.HigherIsBetter)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range t.Buckets {
		fmt.Printf("with %s %% loss it kept %.0f %% of its goodput (median %.0f, n=%d)\n", b.Label, 100*b.OfBest, b.Summary.Median, b.N)
	}
	// Output:
	// with 0-1 % loss it kept 100 % of its goodput (median 100, n=3)
	// with 1-5 % loss it kept 90 % of its goodput (median 90, n=3)
	// with 5-10 % loss it kept 60 % of its goodput (median 60, n=3)
}

// Leak detection on a soak run's memory samples.
func ExampleTrend() {
	rss := make([]float64, 120)
	for i := range rss {
		rss[i] = 200 + 0.5*float64(i) + float64(i%7) // +0.5 MB per sample, with a wobble
	}
	r, err := stats.Trend(rss, stats.DefaultTrendOptions())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Direction, r.Significant)
	// Output:
	// increasing true
}
