package stats

import (
	"encoding/json"
	"strings"
	"testing"
)

// base is 10 runs around 100 with ±0.5 % noise; scaled copies of it, in
// another order, make candidates whose change is known exactly.
var base = []float64{100.2, 99.8, 100.5, 99.6, 100.1, 99.9, 100.4, 99.7, 100.3, 100.0}

func scaled(k float64) []float64 {
	out := make([]float64, len(base))
	for i := range base {
		out[i] = base[(i*3+1)%len(base)] * k // a permutation of base
	}
	return out
}

func TestCompareVerdicts(t *testing.T) {
	same := []float64{100.1, 100.4, 99.7, 100.0, 99.9, 100.3, 99.8, 100.2, 99.6, 100.5}
	tests := []struct {
		name       string
		dir        Direction
		base, cand []float64
		want       Verdict
		change     float64
		reason     string
	}{
		{"same runs", LowerIsBetter, base, same, NoChange, 0, "no significant difference"},
		{"20% slower", LowerIsBetter, base, scaled(1.2), Regression, 0.2, "worse by 20.0 %"},
		{"20% faster", LowerIsBetter, base, scaled(0.8), Improvement, -0.2, "better by 20.0 %"},
		{"7% slower, within tolerance", LowerIsBetter, base, scaled(1.07), NoChange, 0.07, "within the 10 % tolerance"},
		{"3% slower, within noise", LowerIsBetter, base, scaled(1.03), NoChange, 0.03, "within the 5 % noise threshold"},
		{"3% faster, within noise", LowerIsBetter, base, scaled(0.97), NoChange, -0.03, "within the 5 % noise threshold"},
		{"throughput down 20%", HigherIsBetter, base, scaled(0.8), Regression, -0.2, "worse by 20.0 %"},
		{"throughput up 20%", HigherIsBetter, base, scaled(1.2), Improvement, 0.2, "better by 20.0 %"},
		{"throughput down 12%", HigherIsBetter, base, scaled(0.88), Regression, -0.12, "beyond the 10 % tolerance"},
		{"3 runs each", LowerIsBetter, base[:3], scaled(1.5)[:3], Undecidable, 0.5,
			"need at least 5 runs per side to reach p < 0.01, have 3 baseline and 3 candidate runs: run with --runs 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compare(tc.base, tc.cand, DefaultGateOptions(tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			if c.Verdict != tc.want {
				t.Errorf("Verdict = %q (%s), want %q", c.Verdict, c.Reason, tc.want)
			}
			if tc.name != "same runs" && tc.name != "3 runs each" {
				checkNear(t, "Change", c.Change, tc.change, 1e-9)
			}
			if !strings.Contains(c.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", c.Reason, tc.reason)
			}
		})
	}
}

func TestCompareBadInput(t *testing.T) {
	good := DefaultGateOptions(LowerIsBetter)
	noAlpha := good
	noAlpha.Alpha = 0
	tests := []struct {
		name       string
		base, cand []float64
		opt        GateOptions
		want       string
	}{
		{"no direction", base, base, GateOptions{Alpha: 0.01}, "metric direction not set"},
		{"no alpha", base, base, noAlpha, "significance level 0 is not in (0, 1)"},
		{"empty candidate", base, nil, good, "candidate: sample has 0 values"},
		{"zero baseline", []float64{0, 0, 0, 0, 0}, []float64{1, 1, 1, 1, 1}, good, "baseline value is 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compare(tc.base, tc.cand, tc.opt)
			checkErrContains(t, err, tc.want)
		})
	}
}

func TestComparisonLine(t *testing.T) {
	// Medians 100.05 and 120.06, intervals [x(2), x(9)] of 10 runs, which
	// are 0.35 % either side of the median: "0%" as benchstat rounds it.
	// p = 2/C(20,10) = 1.08e-5.
	c, err := Compare(base, scaled(1.2), DefaultGateOptions(LowerIsBetter))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Line("ms"), "100.0ms ± 0%  120.1ms ± 0%  +20.00% (p=0.000 n=10)  regression"; got != want {
		t.Errorf("Line = %q\nwant   %q", got, want)
	}
	c, err = Compare(base, base[:5], DefaultGateOptions(LowerIsBetter))
	if err != nil {
		t.Fatal(err)
	}
	// 5 runs cannot give a 95 % interval (∞, as benchstat); no significant
	// change (~). scipy.stats.permutation_test((base[:5], base), ...) gives
	// p = 1.0 for these: the first five runs sit in the middle of all ten.
	if got, want := c.Line(""), "100.0 ± 0%  100.1 ± ∞  ~ (p=1.000 n=10+5)  no change"; got != want {
		t.Errorf("Line = %q\nwant   %q", got, want)
	}
	c, err = Compare(base[:3], base[3:6], DefaultGateOptions(LowerIsBetter))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Line(""); !strings.Contains(got, "? (p=") || !strings.Contains(got, "need n>=5)  undecidable") {
		t.Errorf("Line = %q, want the undecidable form", got)
	}
}

func TestComparisonJSON(t *testing.T) {
	c, err := Compare(base, scaled(1.2), DefaultGateOptions(HigherIsBetter))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"verdict":"improvement"`, `"direction":"higher is better"`, `"alpha":0.01`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s does not contain %s", b, want)
		}
	}
	var d Direction
	if err := d.UnmarshalText([]byte("lower")); err != nil || d != LowerIsBetter {
		t.Errorf("UnmarshalText(lower) = %v, %v", d, err)
	}
	checkErrContains(t, d.UnmarshalText([]byte("up")), `use "lower" or "higher"`)
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{0.004421, "s", "4.421ms"},
		{940e6, "bit/s", "940.0Mbit/s"},
		{12.5, "%", "12.50%"},
		{-2500, "B", "-2.500kB"},
		{0, "s", "0s"},
		{3.2e-7, "s", "320.0ns"},
	}
	for _, tc := range tests {
		if got := FormatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("FormatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestCompareUnclearHintsAtMoreRuns(t *testing.T) {
	// 5 runs each, candidate 15 % slower on average but noisy: no
	// significance at 0.01, and the reason says more runs may decide.
	b := []float64{100, 90, 110, 95, 105}
	c := []float64{115, 100, 130, 98, 132}
	r, err := Compare(b, c, DefaultGateOptions(LowerIsBetter))
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != NoChange || !strings.Contains(r.Reason, "more runs may decide") {
		t.Errorf("Compare = %q, %q; want no change with a hint to run more", r.Verdict, r.Reason)
	}
}

func TestCompareCarriesRunWarnings(t *testing.T) {
	cand := append([]float64{140}, scaled(1.0)[1:]...) // cold first run
	c, err := Compare(base, cand, DefaultGateOptions(LowerIsBetter))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.BaselineWarnings) != 0 || len(c.CandidateWarnings) == 0 || c.CandidateWarnings[0].Kind != "slow-first-run" {
		t.Errorf("warnings %+v / %+v, want only a slow first run in the candidate", c.BaselineWarnings, c.CandidateWarnings)
	}
}
