package labs

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/bench"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// The fake lab's workloads print {"delivery": 1, "host": H}.
const benchLab = `
[lab]
name = "benchy"
fabric = "kernel"

[[host]]
name = "a"

[[host]]
name = "b"

[[link]]
name = "ab"
endpoints = ["a", "b"]
delay = "2ms"

[[workload]]
name = "w1"
host = "a"
command = "w1"
start = "bench"

[[workload]]
name = "w2"
host = "b"
command = "w2"
start = "bench"

[bench]
runs = 2
warmup = 1
timeout = "20s"

[[bench.mode]]
name = "native"
workloads = ["w1"]
metrics = { delivery = "higher" }

[[bench.mode]]
name = "reference"
workloads = ["w2"]
metrics = { delivery = "higher" }

[[bench.point]]
name = "slow"
link = "ab"
delay = "30ms"
loss = "1%"
`

// A whole bench on the fake lab: it makes the lab, plays warm-up and
// measured runs interleaved, each a recorded run of its mode at the
// point's quality, starting from the declared state, and keeps the
// samples as the last bench.
func TestBenchInterleavesAndResets(t *testing.T) {
	m, w, _ := newSoftwareManager(t)
	m.Shapers = func(st *State) (netfabric.Shaper, error) {
		return &fakeShaper{w: w, path: filepath.Join(m.Store.LayoutOf(st).Dir, "fake-fabric.json"), links: FabricLinks(st.Plan)}, nil
	}
	sp := writeSpec(t, benchLab)
	pb, err := PrepareBench(m.Store.Dir, BenchOptions{File: sp.File, Warmup: -1, Noise: -1, Tolerance: -1})
	if err != nil {
		t.Fatal(err)
	}
	pb.SetCreate(CreateOptions{Accel: hypervisor.TCG})
	t.Cleanup(func() { m.Destroy(context.Background(), "benchy") })
	var progress strings.Builder
	pb.o.Progress = &progress
	rep, err := m.Bench(context.Background(), pb)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 2 || len(rep.Samples[0].Values) != 2 || rep.Samples[0].Key != (bench.Key{Mode: "native", Point: "slow", Metric: "delivery"}) || rep.ExitCode() != 0 {
		t.Errorf("samples %+v exit %d", rep.Samples, rep.ExitCode())
	}
	list, err := runs.List(runs.Root(m.Store.Dir), "benchy")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for i := len(list) - 1; i >= 0; i-- { // oldest first
		r, err := runs.Open(list[i].Dir)
		if err != nil {
			t.Fatal(err)
		}
		b := r.Meta.Bench
		if b == nil || r.Meta.Status != runs.StatusComplete || r.Meta.Variant != b.Mode || b.Point != "slow" {
			t.Fatalf("run %s: %+v bench %+v", r.Name(), r.Meta, b)
		}
		w := ""
		if b.Warmup {
			w = "w"
		}
		order = append(order, w+b.Mode)
		// The point's quality on ab during the run.
		links, err := r.Links()
		if err != nil || len(links) == 0 {
			t.Fatalf("run %s links: %v", r.Name(), err)
		}
		if l := links[0]; l.Link != "ab" || math.Abs(l.DelaySeconds-0.030) > 1e-9 || math.Abs(l.LossRatio-0.01) > 1e-9 {
			t.Errorf("run %s: ab at %+v, want the point's 30ms and 1%%", r.Name(), l)
		}
	}
	if got := strings.Join(order, " "); got != "wnative wreference native reference native reference" {
		t.Errorf("order %s", got)
	}
	if !strings.Contains(progress.String(), "6/6 run reference at slow round 2: delivery=1") {
		t.Errorf("progress:\n%s", progress.String())
	}
	events, err := m.Store.Events("benchy")
	if err != nil {
		t.Fatal(err)
	}
	resets := 0
	for _, e := range events {
		if e.Action == ActionBenchReset && e.Result == "ok" {
			resets++
		}
	}
	if resets != 6 {
		t.Errorf("%d bench.reset events, want one per run (6)", resets)
	}
	cur, err := m.ShowLinks(context.Background(), "benchy")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cur.Links {
		for _, d := range l.Directions {
			if d.Quality != (netfabric.Impairment{Delay: 2 * time.Millisecond}) {
				t.Errorf("ab from %s after the bench: %+v, want the declared 2ms", d.From, d.Quality)
			}
		}
	}
	last, err := bench.NewStore(m.Store.Dir).Last("x")
	if err != nil || len(last.Samples) != 2 {
		t.Errorf("last bench: %+v %v", last, err)
	}

	// A metric no workload prints stops the bench at its first run.
	bad := writeSpec(t, strings.Replace(benchLab, `metrics = { delivery = "higher" }`, `metrics = { delivery = "higher", rtt_ms = "lower" }`, 1))
	pb, err = PrepareBench(m.Store.Dir, BenchOptions{File: bad.File, Warmup: -1, Noise: -1, Tolerance: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Bench(context.Background(), pb)
	if err == nil || !strings.Contains(err.Error(), `(mode native): no workload reported the metric "rtt_ms" (w1 on a printed delivery, host)`) {
		t.Errorf("missing metric: %v", err)
	}
}
