package labs

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// A lab whose ab follows the distance of a (moving away) and b, with a
// scenario of its own and a workload that starts with each run.
const runLab = `
[lab]
name = "mover"
fabric = "kernel"

[[host]]
name = "a"
mobility = { model = "linear", to = [-400, 0, 0], duration = "2s" }

[[host]]
name = "b"
position = [100, 0, 0]

[[host]]
name = "c"

[[link]]
name = "ab"
endpoints = ["a", "b"]
quality = "radio"

[[link]]
name = "bc"
endpoints = ["b", "c"]
delay = "5ms"

[[link]]
name = "ca"
endpoints = ["c", "a"]

[quality.radio]
model = "ramp"
loss_range = 200
max_range = 400

[[workload]]
name = "alice"
host = "a"
command = "alice --to {{ node \"b\" }}"
start = "run"

[scenario]
duration = "2s"
[[scenario.event]]
at = "500ms"
do = "link.set"
link = "bc"
loss = "10%"
[[scenario.event]]
at = "600ms"
do = "marker"
label = "half way"
`

func newRunLab(t *testing.T) (*Manager, *fakeSoftware) {
	t.Helper()
	m, w, sw := newSoftwareManager(t)
	m.Shapers = func(st *State) (netfabric.Shaper, error) {
		return &fakeShaper{w: w, path: filepath.Join(m.Store.LayoutOf(st).Dir, "fake-fabric.json"), links: FabricLinks(st.Plan)}, nil
	}
	if _, err := m.Create(context.Background(), writeSpec(t, runLab), CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Destroy(context.Background(), "mover") })
	return m, sw
}

func qualityOf(t *testing.T, m *Manager, link, from string) netfabric.Impairment {
	t.Helper()
	cur, err := m.ShowLinks(context.Background(), "mover")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cur.Links {
		for _, d := range l.Directions {
			if l.Name == link && d.From == from {
				return d.Quality
			}
		}
	}
	t.Fatalf("no direction %s from %s", link, from)
	return netfabric.Impairment{}
}

// checkDeclared: every link is back at the lab file's quality.
func checkDeclared(t *testing.T, m *Manager) {
	t.Helper()
	want := map[string]netfabric.Impairment{"ab": {}, "bc": {Delay: 5 * time.Millisecond}, "ca": {}}
	for link, q := range want {
		for _, from := range map[string][]string{"ab": {"a", "b"}, "bc": {"b", "c"}, "ca": {"c", "a"}}[link] {
			if got := qualityOf(t, m, link, from); got != q {
				t.Errorf("%s from %s: %+v, want the declared %+v", link, from, got, q)
			}
		}
	}
}

// A whole run on the fake lab: the quality of ab follows a's movement
// through the control path, the scenario and a change from another
// terminal are recorded, every series is in the folder, and at the end
// every link is back to what the lab file declares.
func TestRunRecordsAndResets(t *testing.T) {
	m, sw := newRunLab(t)
	ctx := context.Background()
	go func() {
		time.Sleep(800 * time.Millisecond) // another terminal, during the run
		m.SetLink(ctx, SourceCLI, "mover", "ca", "", QualityChange{Delay: ptr(30 * time.Millisecond)})
	}()
	var status strings.Builder
	rep, err := m.Run(ctx, "mover", RunOptions{Variant: "test", Status: &syncWriter{b: &status}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != runs.StatusComplete || rep.Applied < 3 || rep.Failed != 0 {
		t.Fatalf("report %+v", rep)
	}
	checkDeclared(t, m)
	if _, err := os.Stat(filepath.Join(m.Store.LayoutOf(&State{Lab: "mover"}).Dir, "run.current")); !os.IsNotExist(err) {
		t.Errorf("run.current left behind: %v", err)
	}
	if len(sw.events("workload alice@a")) != 1 {
		t.Errorf("alice did not run on a: %v", sw.log)
	}

	run, err := runs.Open(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Meta.Status != runs.StatusComplete || run.Meta.Variant != "test" || run.Meta.Fingerprint.LabSHA256 == "" {
		t.Errorf("meta %+v", run.Meta)
	}
	pos, err := run.Positions()
	if err != nil || len(pos) < 3*15 { // 3 hosts at 10 Hz for 2 s
		t.Errorf("positions: %d rows, %v", len(pos), err)
	}
	links, err := run.Links()
	if err != nil || len(links) < 6 {
		t.Errorf("links: %d rows, %v", len(links), err)
	}
	hosts, err := run.Hosts()
	if err != nil || len(hosts) < 3 {
		t.Errorf("hosts: %d rows, %v", len(hosts), err)
	}
	evs, err := run.Events()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Source+" "+e.Action] = true
	}
	for _, want := range []string{"forgelab run.start", "scenario link.set", "scenario marker", "cli link.set", "forgelab run.reset", "forgelab run.end", "forgelab workload.end"} {
		if !seen[want] {
			t.Errorf("no %q event in %v", want, slices.Sorted(maps.Keys(seen)))
		}
	}
	recs, err := run.Workload("a", "alice")
	if err != nil || len(recs) != 1 {
		t.Errorf("alice's metrics: %v, %v", recs, err)
	}
	if !strings.Contains(status.String(), "ab: ") {
		t.Errorf("status shows no link:\n%s", status.String())
	}
}

// Ctrl-C: the run stops, the links go back, the run is incomplete.
func TestRunCancelled(t *testing.T) {
	m, _ := newRunLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	rep, err := m.Run(ctx, "mover", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != runs.StatusIncomplete {
		t.Errorf("status %s (%s), want incomplete", rep.Status, rep.Reason)
	}
	checkDeclared(t, m)
}

// A runner killed mid-run leaves run.current: the next change through
// the control path puts the links back first, and the run folder reads
// as incomplete.
func TestRunKilledRecovers(t *testing.T) {
	m, _ := newRunLab(t)
	ctx := context.Background()
	if _, err := m.SetLink(ctx, SourceScenario, "mover", "bc", "", QualityChange{Loss: ptr(50.0)}); err != nil {
		t.Fatal(err)
	}
	// What a killed runner leaves: a marker whose process is gone.
	rec, err := runs.Create(runs.Root(m.Store.Dir), runs.Meta{Lab: "mover"})
	if err != nil {
		t.Fatal(err)
	}
	dead := runs.Process{PID: 1 << 22, BootID: "gone"}
	mk, _ := json.Marshal(runMarker{Dir: rec.Dir(), Recorder: dead})
	l := m.Store.LayoutOf(&State{Lab: "mover"})
	if err := os.WriteFile(l.RunFile(), mk, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.LinkUpDown(ctx, SourceCLI, "mover", "ca", true); err != nil {
		t.Fatal(err)
	}
	checkDeclared(t, m)
	if _, err := os.Stat(l.RunFile()); !os.IsNotExist(err) {
		t.Errorf("run.current still there: %v", err)
	}
	evs, _ := m.Store.Events("mover")
	if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Action == ActionRunRecover && e.Source == "forgelab" }) {
		t.Errorf("no run.recover event: %+v", evs)
	}
}

// Bad runs are refused before anything is recorded.
func TestRunRefuses(t *testing.T) {
	m, _ := newRunLab(t)
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("duration = \"10s\"\n[[event]]\nat = \"1s\"\ndo = \"link.down\"\nlink = \"zz\"\n"), 0o644)
	tests := []struct {
		name string
		o    RunOptions
		want string
	}{
		{"unknown link", RunOptions{Scenario: bad}, `bad.toml:5: event 1: link "zz" is not in the lab`},
		{"missing file", RunOptions{Scenario: "/nonexistent.toml"}, "read scenario"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Run(context.Background(), "mover", tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	if list, _ := runs.List(runs.Root(m.Store.Dir), "mover"); len(list) != 0 {
		t.Errorf("refused runs left folders: %v", list)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Putting a link back to its declared quality (end of a run, link.reset)
// brings back a declared bursty loss and jitter distribution too.
func TestFullChangeKeepsBurstLossAndDistribution(t *testing.T) {
	declared := netfabric.Impairment{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Distribution: "pareto",
		GE: netfabric.GilbertElliott{P: 1, R: 30, OneMinusH: 100}}
	now := netfabric.Impairment{Loss: 40, Delay: time.Second}
	if got := fullChange(declared).apply(now); got != declared {
		t.Errorf("reset to %+v gave %+v", declared, got)
	}
}
