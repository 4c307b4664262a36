package bench

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/telemetry/runs"
	"github.com/forgelab/forgelab/telemetry/stats"
)

var runSeq int // run IDs are per second: each run starts a second later

// makeRun records a bench run of testdata/lab.toml whose workload w on
// host a printed lines.
func makeRun(t *testing.T, root, mode, w string, warmup bool, status runs.Status, lines ...string) string {
	t.Helper()
	lab, err := os.ReadFile("testdata/lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	runSeq++
	rec, err := runs.Create(root, runs.Meta{Lab: "bt", Variant: mode, Scenario: "bench", Start: time.Date(2026, 12, 1, 10, 0, runSeq, 0, time.UTC),
		Bench: &runs.BenchInfo{ID: "b1", Mode: mode, Round: 1, Warmup: warmup}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.SaveLab(lab); err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if err := rec.WorkloadLine(time.Now(), "a", w, runs.Stdout, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(status, ""); err != nil {
		t.Fatal(err)
	}
	return "bt/" + rec.ID()
}

func TestRunValuesAndBaselines(t *testing.T) {
	state := t.TempDir()
	root := runs.Root(state)
	good := makeRun(t, root, "native", "w-native", false, runs.StatusComplete,
		`{"goodput_mbps": 9, "rtt_ms": 4}`, "not json", `{"goodput_mbps": 10.5, "rtt_ms": 3}`)
	missing := makeRun(t, root, "native", "w-native", false, runs.StatusComplete, `{"goodput_mbps": 10}`)
	failed := makeRun(t, root, "native", "w-native", false, runs.StatusFailed, `{"goodput_mbps": 10, "rtt_ms": 3}`)
	warm := makeRun(t, root, "native", "w-native", true, runs.StatusComplete, `{"goodput_mbps": 10, "rtt_ms": 3}`)

	// The last line with the field counts.
	b, err := FromRuns(root, "main", []string{good})
	if err != nil {
		t.Fatal(err)
	}
	want := Samples{
		{Key: Key{Mode: "native", Metric: "goodput_mbps"}, Better: stats.HigherIsBetter, Values: []float64{10.5}, Runs: []string{good}},
		{Key: Key{Mode: "native", Metric: "rtt_ms"}, Better: stats.LowerIsBetter, Values: []float64{3}, Runs: []string{good}},
	}
	if len(b.Samples) != 2 || b.Samples[0].Values[0] != 10.5 || b.Samples[1].Values[0] != 3 || b.Samples[1].Better != stats.LowerIsBetter || b.Lab != "bt" {
		t.Errorf("baseline %+v, want samples %+v", b, want)
	}
	for _, c := range []struct {
		name string
		refs []string
		want string
	}{
		{"missing metric", []string{missing}, `run ` + missing + ` (mode native): no workload reported the metric "rtt_ms" (w-native on a printed goodput_mbps)`},
		{"failed run", []string{failed}, "run " + failed + " is failed: its metrics cannot be trusted"},
		{"warm-up", []string{warm}, "run " + warm + " is a warm-up run: give measured runs only"},
		{"no runs", nil, "no runs given"},
		{"no such run", []string{"bt/20200101T000000Z"}, "run bt/20200101T000000Z: no such run"},
	} {
		if _, err := FromRuns(root, "x", c.refs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %q", c.name, err, c.want)
		}
	}

	s := NewStore(state)
	if _, err := s.Get("main"); !errors.Is(err, ErrNoBaseline) || !strings.Contains(err.Error(), "there are none yet") {
		t.Errorf("missing baseline: %v", err)
	}
	if err := s.Set(b); err != nil {
		t.Fatal(err)
	}
	b2 := *b
	b2.Name = "old"
	if err := s.Set(&b2); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("main")
	if err != nil || len(got.Samples) != 2 || got.Samples[1].Better != stats.LowerIsBetter || strings.Join(got.Runs(), " ") != good {
		t.Fatalf("get: %+v %v", got, err)
	}
	_, err = s.Get("nope")
	if want := `baseline "nope": no such baseline (there are: main, old); make it with ` + "`forgelab bench baseline set nope --from-last`"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("missing baseline: %v\nwant %q", err, want)
	}
	if names, _ := s.Names(); strings.Join(names, " ") != "main old" {
		t.Errorf("names %v", names)
	}
	if err := s.Remove("old"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("old"); !errors.Is(err, ErrNoBaseline) {
		t.Errorf("remove twice: %v", err)
	}
	if _, err := s.Get("../etc"); err == nil || !strings.Contains(err.Error(), "use letters") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := s.Last("x"); err == nil || !strings.Contains(err.Error(), "no bench has ended yet") {
		t.Errorf("no last: %v", err)
	}
	if err := s.SaveLast(b); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Last("fresh"); err != nil || l.Name != "fresh" || len(l.Samples) != 2 {
		t.Errorf("last: %+v %v", l, err)
	}
}
