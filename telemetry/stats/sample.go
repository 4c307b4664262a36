package stats

import (
	"fmt"
	"math"
	"slices"
)

// Direction says which way a metric gets better. The zero value is invalid
// on purpose: a verdict on a metric whose direction nobody stated would be
// a guess.
type Direction int

const (
	// LowerIsBetter is for latencies, run times, memory use.
	LowerIsBetter Direction = iota + 1
	// HigherIsBetter is for throughput, goodput, delivery ratio.
	HigherIsBetter
)

// String returns "lower is better" or "higher is better".
func (d Direction) String() string {
	switch d {
	case LowerIsBetter:
		return "lower is better"
	case HigherIsBetter:
		return "higher is better"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// MarshalText writes "lower is better" or "higher is better", so that JSON
// reports say which way the metric goes.
func (d Direction) MarshalText() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return []byte(d.String()), nil
}

// UnmarshalText reads what MarshalText writes, and also "lower" or
// "higher".
func (d *Direction) UnmarshalText(b []byte) error {
	switch string(b) {
	case "lower is better", "lower":
		*d = LowerIsBetter
	case "higher is better", "higher":
		*d = HigherIsBetter
	default:
		return fmt.Errorf("metric direction %q unknown: use \"lower\" or \"higher\"", b)
	}
	return nil
}

func (d Direction) check() error {
	if d != LowerIsBetter && d != HigherIsBetter {
		return fmt.Errorf("metric direction not set: say whether lower or higher is better (stats.LowerIsBetter or stats.HigherIsBetter)")
	}
	return nil
}

// checkSample returns an error when xs is shorter than min or holds a value
// that is not a finite number; name says which sample in the message.
func checkSample(name string, xs []float64, min int) error {
	if len(xs) < min {
		return fmt.Errorf("%s has %d values, need at least %d: record more runs", name, len(xs), min)
	}
	for i, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s value %d is %v: drop failed runs or missing samples before computing statistics", name, i, x)
		}
	}
	return nil
}

// sorted returns a sorted copy of xs.
func sorted(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

// medianSorted returns the median of a sorted, non-empty slice: the middle
// value, or the mean of the two middle values for an even length.
func medianSorted(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Median returns the median of xs (the mean of the two middle values when
// len(xs) is even). It returns an error for an empty sample or one holding
// NaN or ±Inf.
func Median(xs []float64) (float64, error) {
	if err := checkSample("sample", xs, 1); err != nil {
		return 0, err
	}
	return medianSorted(sorted(xs)), nil
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// RelativeChange returns (candidate-baseline)/|baseline|, so +0.10 means
// the candidate is 10 % above the baseline whatever the baseline's sign. It
// returns an error when baseline is 0, where a relative change means nothing.
func RelativeChange(baseline, candidate float64) (float64, error) {
	if baseline == 0 {
		return 0, fmt.Errorf("baseline value is 0, so a relative change is undefined: compare absolute values instead")
	}
	return (candidate - baseline) / math.Abs(baseline), nil
}
