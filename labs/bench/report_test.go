package bench

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/telemetry/stats"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name + ".golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func series(mode, point, metric string, d stats.Direction, vs ...float64) Series {
	s := Series{Key: Key{Mode: mode, Point: point, Metric: metric}, Better: d, Values: vs}
	for range vs {
		s.Runs = append(s.Runs, "lab/x")
	}
	return s
}

var (
	buildA = []float64{100, 102, 99, 101, 100.5}
	buildB = []float64{80, 81.5, 79, 80.5, 82} // 20 % less goodput
	rttA   = []float64{3.0, 3.1, 2.9, 3.0, 3.05}
)

func baseline() *Baseline {
	return &Baseline{Name: "main", Lab: "tb", Samples: Samples{
		series("native", "loss1", "goodput_mbps", stats.HigherIsBetter, 101, 99.5, 100, 100.5, 99),
		series("native", "loss1", "rtt_ms", stats.LowerIsBetter, 3.0, 3.05, 2.95, 3.0, 3.1),
	}}
}

var gate = Gate{Noise: DefaultNoise, Tolerance: DefaultTolerance}

// Build A against a baseline of build A: no regression, exit 0; build B,
// 20 % less goodput: a regression, exit 3; the report as benchstat and
// hyperfine write theirs (golden files).
func TestJudgeBaseline(t *testing.T) {
	for _, c := range []struct {
		name    string
		goodput []float64
		exit    int
	}{{"same", buildA, ExitOK}, {"slower", buildB, ExitRegression}} {
		t.Run(c.name, func(t *testing.T) {
			r := &Report{Bench: "20261202T010000Z", Lab: "tb", Runs: 5, Samples: Samples{
				series("native", "loss1", "goodput_mbps", stats.HigherIsBetter, c.goodput...),
				series("native", "loss1", "rtt_ms", stats.LowerIsBetter, rttA...),
			}}
			if err := Judge(r, baseline(), gate); err != nil {
				t.Fatal(err)
			}
			if r.ExitCode() != c.exit {
				t.Errorf("exit code %d, want %d", r.ExitCode(), c.exit)
			}
			var b bytes.Buffer
			r.Print(&b)
			golden(t, "report-"+c.name, b.String())
		})
	}
}

// Modes against the reference mode, at each point, metric by metric of
// the same name; warnings for a slow first run and an outlier.
func TestJudgeReference(t *testing.T) {
	r := &Report{Bench: "20261202T010000Z", Lab: "tb", Runs: 6, Samples: Samples{
		series("native", "", "goodput_mbps", stats.HigherIsBetter, 80, 95, 96, 94, 95.5, 95),
		series("native", "", "retransmits", stats.LowerIsBetter, 10, 11, 9, 10, 60, 10),
		series("reference", "", "goodput_mbps", stats.HigherIsBetter, 100, 101, 99, 100, 100.5, 99.5),
	}}
	g := gate
	g.Reference = "reference"
	if err := Judge(r, nil, g); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 1 || r.Rows[0].Against != "reference reference" || r.Rows[0].Comparison.Verdict != stats.NoChange {
		t.Errorf("rows %+v", r.Rows)
	}
	var b bytes.Buffer
	r.Print(&b)
	golden(t, "report-reference", b.String())

	// A count that was 0 in the baseline is not judged, but said.
	r = &Report{Samples: Samples{series("native", "", "retransmits", stats.LowerIsBetter, 0, 0, 0, 0, 0)}}
	zero := &Baseline{Name: "z", Samples: Samples{series("native", "", "retransmits", stats.LowerIsBetter, 0, 0, 0, 0, 0)}}
	if err := Judge(r, zero, gate); err != nil || len(r.Rows) != 0 || len(r.Warnings) != 0 {
		t.Errorf("zero against zero: %v %+v", err, r)
	}
	r = &Report{Samples: Samples{series("native", "", "retransmits", stats.LowerIsBetter, 0, 2, 1, 0, 3)}}
	if err := Judge(r, zero, gate); err != nil || len(r.Warnings) != 2 || !strings.Contains(r.Warnings[1], "native retransmits: 0 in every run of baseline z, now up to 3.000 (median 1.000): not judged") {
		t.Errorf("zero baseline: %v %q", err, r.Warnings)
	}

	// No metric in common: said, with what the reference has.
	r = &Report{Samples: Samples{series("native", "", "mbps", stats.HigherIsBetter, buildA...), series("reference", "", "goodput_mbps", stats.HigherIsBetter, buildA...)}}
	err := Judge(r, nil, g)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "no mode shares a metric name with the reference mode reference (its metrics: reference goodput_mbps)") {
		t.Errorf("no common metric: %v", err)
	}
	// A baseline of other metrics.
	r = &Report{Samples: Samples{series("native", "", "mbps", stats.HigherIsBetter, buildA...)}}
	err = Judge(r, baseline(), gate)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "baseline main (lab tb) has none of this bench's metrics (it has: native loss1 goodput_mbps, native loss1 rtt_ms)") {
		t.Errorf("other metrics: %v", err)
	}
}

// Too few runs are refused before anything runs, with the number needed.
func TestRunsNeeded(t *testing.T) {
	b5 := baseline()
	b3 := &Baseline{Name: "small", Samples: Samples{series("native", "", "x", stats.HigherIsBetter, 1, 2, 3)}}
	b1 := &Baseline{Name: "one", Samples: Samples{series("native", "", "x", stats.HigherIsBetter, 1)}}
	for _, c := range []struct {
		n    int
		base *Baseline
		ref  bool
		want string // "" for nil
	}{
		{5, b5, false, ""},
		{5, nil, true, ""},
		{3, nil, false, ""},
		{4, b5, false, "--runs 4 is too few to decide at p < 0.01 against baseline main (5 runs per metric): the permutation test needs at least 5 runs on this side (5 per side when both have the same number); run with --runs 5"},
		{3, nil, true, "--runs 3 is too few to compare modes with the reference at p < 0.01: need 5 runs per mode (--runs 5)"},
		{5, b3, false, "against baseline small (3 runs per metric): the permutation test needs at least 9 runs on this side"},
		{9, b3, false, ""},
		{50, b1, false, "baseline one has only 1 run(s) per metric: too few to decide at p < 0.01 against a reasonable number of new runs; set it again from a bench with --runs 5 or more"},
	} {
		err := RunsNeeded(c.n, c.base, c.ref)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("n=%d: %v", c.n, err)
		case c.want != "" && (!errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("n=%d: got %v\nwant %q", c.n, err, c.want)
		}
	}
}
