// Package comparetest records small run folders for compare's and the
// report's tests: two variants of one scenario in which the loss on link
// ab steps through each default bucket (0, 3, 7 %, then down), 15 s each,
// with a marker at each step. Variant "good" reroutes and keeps most of
// its delivery; "plain" does not. Every number is set, so tests can
// check the figures compare derives.
package comparetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/forgelab/forgelab/telemetry/runs"
)

// T0 is the start of every fixture run (no monotonic reading: t is exact).
var T0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(secs float64) time.Time { return T0.Add(time.Duration(secs * float64(time.Second))) }

// phase of the fixture scenario: the loss on ab from a time on, and what
// each variant's alice reports then.
type phase struct {
	from     float64
	lossAB   float64 // percent; 100 with down
	down     bool
	delivery map[string]float64 // by variant
	rtt      map[string]float64 // by variant; 0: no echo, no rtt field
	dev      map[string]string  // by variant
	recv     map[string]float64 // bob's received per second
}

// The fixture scenario (60 s), with the loss on ab stepping through each
// default bucket, 15 s each, markers at each step. "good" reroutes, so it
// keeps most of its delivery; "plain" does not.
var phases = []phase{
	{0, 0, false, map[string]float64{"good": 1, "plain": 1}, map[string]float64{"good": 10, "plain": 10}, map[string]string{"good": "eth1", "plain": "eth1"}, map[string]float64{"good": 100, "plain": 100}},
	{15, 3, false, map[string]float64{"good": 0.96, "plain": 0.9}, map[string]float64{"good": 12, "plain": 11}, map[string]string{"good": "eth1", "plain": "eth1"}, map[string]float64{"good": 97, "plain": 95}},
	{30, 7, false, map[string]float64{"good": 0.95, "plain": 0.6}, map[string]float64{"good": 15, "plain": 14}, map[string]string{"good": "eth2", "plain": "eth1"}, map[string]float64{"good": 96, "plain": 80}},
	{45, 100, true, map[string]float64{"good": 0.9, "plain": 0}, map[string]float64{"good": 20, "plain": 0}, map[string]string{"good": "eth2", "plain": "eth1"}, map[string]float64{"good": 94, "plain": 0}},
}

var Markers = []string{"ab lossy", "ab worse", "ab down"}

const Plan = `{"Hosts": [{"Name": "a", "Kind": "vm"}, {"Name": "b", "Kind": "vm"}, {"Name": "c", "Kind": "vm"}],
 "Links": [{"Name": "ab", "Endpoints": ["a", "b"]}, {"Name": "bc", "Endpoints": ["b", "c"]}, {"Name": "ca", "Endpoints": ["c", "a"]}]}`

// Run is what WriteRun records; the zero value is a complete run
// of the fixture scenario.
type Run struct {
	Lab, ID, Variant string
	Scenario         string // default "drift"
	Plan             string // default Plan (hosts a, b, c; links ab, bc, ca)
	Kernel           string // default "6.1.0-test"
	Status           runs.Status
	Until            float64 // last second recorded (default 60)
	NoAlice          bool    // no workload alice: a run that lacks her metrics
}

func phaseAt(t float64) phase {
	p := phases[0]
	for _, q := range phases {
		if t >= q.from {
			p = q
		}
	}
	return p
}

// WriteRun records a fixture run under root and returns its folder.
func WriteRun(t testing.TB, root string, f Run) *runs.Run {
	t.Helper()
	if f.Scenario == "" {
		f.Scenario = "drift"
	}
	if f.Plan == "" {
		f.Plan = Plan
	}
	if f.Kernel == "" {
		f.Kernel = "6.1.0-test"
	}
	if f.Status == "" {
		f.Status = runs.StatusComplete
	}
	if f.Until == 0 {
		f.Until = 60
	}
	fp := runs.Fingerprint{Kernel: f.Kernel, CPUModel: "Test CPU", Cores: 2, MemoryBytes: 1 << 30, Accel: "tcg",
		Version: "v0.0.0-test", Commit: "abc123", GoVersion: "go1.26", Images: []runs.Image{{Name: "debian-12", Digest: "sha256:0123"}}, Seed: 42}
	rec, err := runs.Create(root, runs.Meta{Lab: f.Lab, ID: f.ID, Scenario: f.Scenario, Variant: f.Variant, Start: T0, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rec.SavePlan([]byte(f.Plan)))
	must(rec.SaveScenario([]byte("duration = \"60s\"\n")))
	must(rec.Event(runs.Event{Time: at(0), Source: runs.SourceForgelab, Action: "run.start"}))
	for i, m := range Markers {
		secs := phases[i+1].from
		if secs > f.Until {
			break
		}
		must(rec.Event(runs.Event{Time: at(secs), Source: runs.SourceScenario, Action: "marker",
			Args: map[string]any{"action": fmt.Sprintf("%gs marker %q", secs, m)}}))
	}
	// Link samples each second, both directions; ca stays clean. The tx
	// counters grow by the traffic each link carried.
	var txAB, txCA float64
	for s := 0.0; s <= f.Until; s++ {
		p := phaseAt(s)
		up := 1.0
		if p.down {
			up = 0
		}
		if f.Variant == "good" && p.dev["good"] == "eth2" {
			txCA += 20000
		} else if !p.down {
			txAB += 20000
		}
		for _, from := range []string{"a", "b"} {
			must(rec.LinkSample(at(s), runs.LinkSample{Link: "ab", From: from, Up: up, LossRatio: p.lossAB / 100, TxBytes: txAB / 2,
				RxPackets: math.NaN(), RxBytes: math.NaN(), TxPackets: math.NaN(), DroppedLoss: math.NaN(), DroppedQueue: math.NaN(),
				DroppedDown: math.NaN(), DroppedPartition: math.NaN(), DroppedError: math.NaN(), DroppedOverrun: math.NaN(), QueuedPackets: math.NaN()}))
		}
		for _, from := range []string{"c", "a"} {
			must(rec.LinkSample(at(s), runs.LinkSample{Link: "ca", From: from, Up: 1, TxBytes: txCA / 2,
				RxPackets: math.NaN(), RxBytes: math.NaN(), TxPackets: math.NaN(), DroppedLoss: math.NaN(), DroppedQueue: math.NaN(),
				DroppedDown: math.NaN(), DroppedPartition: math.NaN(), DroppedError: math.NaN(), DroppedOverrun: math.NaN(), QueuedPackets: math.NaN()}))
		}
	}
	// Workload lines half a second after each link sample, so no sample
	// sits on a step of the condition.
	for s := 0.5; s < f.Until; s++ {
		p := phaseAt(s)
		if !f.NoAlice {
			line := fmt.Sprintf(`{"role":"alice","sent":100,"delivery":%g,"dev":%q`, p.delivery[f.Variant], p.dev[f.Variant])
			if r := p.rtt[f.Variant]; r > 0 {
				line += fmt.Sprintf(`,"rtt_p50_ms":%g`, r)
			}
			must(rec.WorkloadLine(at(s), "a", "alice", runs.Stdout, []byte(line+"}")))
		}
		must(rec.WorkloadLine(at(s), "b", "bob", runs.Stdout, []byte(fmt.Sprintf(`{"role":"bob","received":%g}`, p.recv[f.Variant]))))
	}
	must(rec.Event(runs.Event{Time: at(f.Until + 0.25), Source: runs.SourceForgelab, Action: "run.end"}))
	reason := ""
	if f.Status != runs.StatusComplete {
		reason = "stopped by Ctrl-C"
	}
	must(rec.Close(f.Status, reason))
	r, err := runs.Open(rec.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Pair records the two variants under a new root.
func Pair(t testing.TB) (root string, good, plain *runs.Run) {
	t.Helper()
	root = t.TempDir()
	good = WriteRun(t, root, Run{Lab: "fx-good", ID: "20261201T120000Z-0001", Variant: "good"})
	plain = WriteRun(t, root, Run{Lab: "fx-plain", ID: "20261201T121000Z-0002", Variant: "plain"})
	return root, good, plain
}
