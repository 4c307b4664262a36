package labs

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	linkq "github.com/forgelab/forgelab/labs/quality"
	"github.com/forgelab/forgelab/labs/scenario"
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

// schedShaper is the fake fabric with a timed schedule of its own (a
// netfabric.Player standing in for the userspace engine's): one Player
// per lab, as there is one engine.
type schedShaper struct {
	*fakeShaper
	*netfabric.Player
}

func newScheduleLab(t *testing.T) (*Manager, *netfabric.Player) {
	t.Helper()
	m, _ := newRunLab(t)
	fake := m.Shapers
	st, err := m.Store.Load("mover")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := fake(st)
	if err != nil {
		t.Fatal(err)
	}
	player := netfabric.NewPlayer(sh, nil)
	m.Shapers = func(st *State) (netfabric.Shaper, error) {
		sh, err := fake(st)
		if err != nil {
			return nil, err
		}
		return schedShaper{sh.(*fakeShaper), player}, nil
	}
	return m, player
}

// On a shaper with a Scheduler the run hands over the whole quality
// timeline as one logged schedule: no SetLink per change in the lab's
// log, yet every applied change is in the run's events and link samples,
// and the run ends with the links declared.
func TestRunHandsScheduleToShaper(t *testing.T) {
	m, player := newScheduleLab(t)
	ctx := context.Background()
	go func() {
		time.Sleep(800 * time.Millisecond) // another terminal, during the run
		m.SetLink(ctx, SourceCLI, "mover", "ca", "", QualityChange{Delay: ptr(30 * time.Millisecond)})
	}()
	rep, err := m.Run(ctx, "mover", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := player.ScheduleStatus(ctx, 0)
	if rep.Status != runs.StatusComplete || rep.Applied < 3 || rep.Applied != st.Applied || rep.Failed != 0 {
		t.Fatalf("report %+v, schedule %s: %d of %d applied", rep, st.State, st.Applied, st.Changes)
	}
	checkDeclared(t, m)
	evs, _ := m.Store.Events("mover")
	var schedules, abSets int
	for _, e := range evs {
		switch {
		case e.Action == ActionLinkSchedule && e.Source == "scenario" && e.Result == store.ResultOK:
			schedules++
			if e.Args["for"] != "run "+rep.ID {
				t.Errorf("schedule logged for %v, want run %s", e.Args["for"], rep.ID)
			}
		case e.Action == ActionLinkSet && e.Args["link"] == "ab":
			abSets++
		}
	}
	if schedules != 1 || abSets != 0 {
		t.Errorf("lab log: %d schedules, %d link.set of ab; want 1 and 0 (the shaper applies them)", schedules, abSets)
	}
	run, err := runs.Open(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	revs, _ := run.Events()
	var applied int
	var sawCLI bool
	for _, e := range revs {
		if e.Source == "scenario" && e.Action == ActionLinkSet && e.Args["link"] == "ab" {
			applied++
			if _, ok := e.Args["late_s"]; !ok {
				t.Errorf("applied change without its lateness: %+v", e)
			}
		}
		sawCLI = sawCLI || (e.Source == "cli" && e.Action == ActionLinkSet)
	}
	if applied != rep.Applied || !sawCLI {
		t.Errorf("run events: %d applied changes of ab (want %d), cli change seen %v", applied, rep.Applied, sawCLI)
	}
	if links, err := run.Links(); err != nil || len(links) < 6*3 {
		t.Errorf("links: %d rows, %v", len(links), err)
	}
}

// Ctrl-C mid-run: the schedule is cancelled before the reset, so no
// change of it lands on the declared links afterwards.
func TestRunCancelsScheduleBeforeReset(t *testing.T) {
	m, player := newScheduleLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	rep, err := m.Run(ctx, "mover", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := player.ScheduleStatus(context.Background(), 0)
	if rep.Status != runs.StatusIncomplete || st.State != netfabric.ScheduleCancelled {
		t.Fatalf("run %s, schedule %s; want incomplete and cancelled", rep.Status, st.State)
	}
	time.Sleep(500 * time.Millisecond) // past changes that were pending
	checkDeclared(t, m)
}

// A runner killed while the shaper plays its schedule: the next command
// cancels the schedule and puts the links back.
func TestRunKilledCancelsSchedule(t *testing.T) {
	m, player := newScheduleLab(t)
	ctx := context.Background()
	lossy := netfabric.Impairment{Loss: 50}
	if err := m.ScheduleLinks(ctx, SourceScenario, "mover", "run x", time.Now(), []netfabric.TimedChange{
		{At: 0, Link: "ab", Quality: &lossy}, {At: 400 * time.Millisecond, Link: "ab", Quality: &lossy},
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	mk, _ := json.Marshal(runMarker{Dir: t.TempDir(), Recorder: runs.Process{PID: 1 << 22, BootID: "gone"}})
	l := m.Store.LayoutOf(&State{Lab: "mover"})
	if err := os.WriteFile(l.RunFile(), mk, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.LinkUpDown(ctx, SourceCLI, "mover", "ca", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	checkDeclared(t, m)
	if st, _ := player.ScheduleStatus(ctx, 0); st.State != netfabric.ScheduleCancelled || st.Applied != 1 {
		t.Errorf("schedule %s with %d applied (%s), want cancelled after 1", st.State, st.Applied, st.Error)
	}
}

// A bad schedule is refused whole, and logged as a failed change.
func TestScheduleLinksRefuses(t *testing.T) {
	m, _ := newScheduleLab(t)
	q := netfabric.Impairment{Loss: 150}
	for _, tt := range []struct {
		name string
		c    netfabric.TimedChange
		want string
	}{
		{"unknown link", netfabric.TimedChange{Link: "zz", Quality: &netfabric.Impairment{}}, `no link "zz"`},
		{"bad quality", netfabric.TimedChange{Link: "ab", Quality: &q}, "loss"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := m.ScheduleLinks(context.Background(), SourceAPI, "mover", "test", time.Now(), []netfabric.TimedChange{tt.c})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	checkDeclared(t, m)
}

// On a shaper without a Scheduler, ScheduleLinks says so and logs nothing.
func TestScheduleLinksUnsupported(t *testing.T) {
	m, _ := newRunLab(t)
	err := m.ScheduleLinks(context.Background(), SourceScenario, "mover", "test", time.Now(), nil)
	if !errors.Is(err, netfabric.ErrUnsupported) {
		t.Errorf("error %v, want ErrUnsupported", err)
	}
	evs, _ := m.Store.Events("mover")
	if slices.ContainsFunc(evs, func(e store.Event) bool { return e.Action == ActionLinkSchedule }) {
		t.Errorf("an unsupported schedule was logged")
	}
}

// The live status shows a link as the shaper has it, at the hosts'
// current distance: a link taken down shows down, not the last quality
// the run applied, and one out of range shows how far apart its hosts
// are now, not where its quality last changed.
func TestLiveStatusShowsLinksAsTheyAre(t *testing.T) {
	p := &runPlan{tl: &scenario.Timeline{Duration: time.Minute}, links: []linkq.Link{{Name: "ab", Endpoints: []string{"a", "b"}}, {Name: "bc", Endpoints: []string{"b", "c"}}}}
	s := newLiveStatus(p)
	s.link(linkq.Change{Link: "ab", Distance: 100, Quality: netfabric.Impairment{Delay: 5 * time.Millisecond}}, nil)
	s.link(linkq.Change{Link: "bc", Distance: 350, Quality: netfabric.Impairment{Down: true}}, nil)
	s.positions(10*time.Second, []runs.Position{{Host: "a", X: 0}, {Host: "b", X: 120}, {Host: "c", X: 620}})
	if got := s.String(); !strings.Contains(got, "ab: 120m loss 0.0% delay 5ms") || !strings.Contains(got, "bc: 500m down") {
		t.Errorf("status before the shaper is read:\n%s", got)
	}
	s.links(netfabric.State{Links: []netfabric.LinkState{
		{Name: "ab", Up: false, Directions: []netfabric.Direction{{From: "a", Quality: netfabric.Impairment{Delay: 5 * time.Millisecond}}, {From: "b"}}},
		{Name: "bc", Up: true, Directions: []netfabric.Direction{{From: "b", Quality: netfabric.Impairment{Down: true}}, {From: "c", Quality: netfabric.Impairment{Loss: 2}}}},
	}})
	got := s.String()
	for _, want := range []string{"ab: 120m down\n", "bc: 500m from b: down; from c: loss 2.0% delay 0s\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	s.link(linkq.Change{Link: "ab"}, errors.New("refused"))
	if got := s.String(); !strings.Contains(got, "ab: 120m down (last change failed: refused)") {
		t.Errorf("failed change not shown:\n%s", got)
	}
}

// The scenario's exec action: the command runs on its host through the
// control path (logged with the source), the timeline does not wait for
// it, and its output and exit code are in the run folder.
func TestRunExec(t *testing.T) {
	m, sw := newRunLab(t)
	file := filepath.Join(t.TempDir(), "exec.toml")
	os.WriteFile(file, []byte("duration = \"1s\"\n\n[[event]]\nat = \"100ms\"\ndo = \"exec\"\nhost = \"b\"\ncommand = \"ping -c 1 {{ node \\\"a\\\" }}\"\n"), 0o644)
	rep, err := m.Run(context.Background(), "mover", RunOptions{Scenario: file})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != runs.StatusComplete {
		t.Fatalf("run %s: %s", rep.Status, rep.Reason)
	}
	if got := sw.events("workload exec@b"); len(got) != 1 {
		t.Errorf("exec ran %d times on b: %v", len(got), sw.log)
	}
	evs, _ := m.Store.Events("mover")
	i := slices.IndexFunc(evs, func(e store.Event) bool { return e.Action == ActionExec })
	if i < 0 || evs[i].Source != "scenario" || evs[i].Args["host"] != "b" || evs[i].Result != store.ResultOK {
		t.Fatalf("lab log has no exec of the scenario on b: %+v", evs)
	}
	run, err := runs.Open(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	revs, _ := run.Events()
	j := slices.IndexFunc(revs, func(e runs.Event) bool { return e.Action == "exec.end" })
	if j < 0 || revs[j].Error != "" || revs[j].Args["exit_code"] != 0.0 || revs[j].Args["output"] != "exec-3-100ms" {
		t.Fatalf("no clean exec.end in the run's events: %+v", revs)
	}
	out, err := os.ReadFile(filepath.Join(rep.Dir, "workloads", "b-exec-3-100ms.stdout"))
	if err != nil || !strings.Contains(string(out), "starting") {
		t.Errorf("exec output in the run folder: %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(m.Store.LayoutOf(&State{Lab: "mover"}).Dir, "exec", rep.ID)); !os.IsNotExist(err) {
		t.Errorf("exec's scratch output left in the lab dir: %v", err)
	}
}

// exec on a host the lab does not have: refused with the scenario's file
// and line before the run starts; through the control path directly,
// refused and logged.
func TestExecUnknownHost(t *testing.T) {
	m, sw := newRunLab(t)
	file := filepath.Join(t.TempDir(), "exec.toml")
	os.WriteFile(file, []byte("duration = \"1s\"\n\n[[event]]\nat = \"100ms\"\ndo = \"exec\"\nhost = \"zz\"\ncommand = \"true\"\n"), 0o644)
	_, err := m.Run(context.Background(), "mover", RunOptions{Scenario: file})
	if err == nil || !strings.Contains(err.Error(), "exec.toml:6") || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("run: %v, want exec.toml:6 naming host zz", err)
	}
	_, err = m.Exec(context.Background(), SourceCLI, "mover", "zz", "true", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `no host "zz" (hosts: a, b, c)`) {
		t.Errorf("Exec: %v", err)
	}
	if got := sw.events("workload exec"); len(got) != 0 {
		t.Errorf("exec ran: %v", got)
	}
	evs, _ := m.Store.Events("mover")
	if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Action == ActionExec && e.Result == store.ResultError }) {
		t.Errorf("refused exec not logged: %+v", evs)
	}
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
