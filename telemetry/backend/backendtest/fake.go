// Package backendtest is a fake backend.Backend for tests of the server,
// the collector and the web UI: labs held in memory, every control call
// recorded with its source, counters that advance on each read.
package backendtest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
)

// Call is one control call the fake received.
type Call struct {
	Source string
	Lab    string
	Action string
	Args   map[string]any
}

// Fake is an in-memory backend. The zero value is not usable: use New.
type Fake struct {
	mu     sync.Mutex
	labs   map[string]*lab
	calls  []Call
	runs   []*backend.Run
	now    func() time.Time
	failOn string // action that fails with a non-input error (5xx tests)
	reads  map[string]int
}

type lab struct {
	topo      backend.Topology
	links     netfabric.State
	stats     []backend.DomainStats
	workloads []backend.WorkloadValue
	processes []backend.ProcessStats
	scenario  backend.ScenarioStatus
	started   time.Time
	events    []backend.Event
}

// New returns a fake holding the lab "demo" (DemoTopology) and one
// recorded run of it.
func New() *Fake {
	f := &Fake{labs: map[string]*lab{}, now: time.Now, reads: map[string]int{}}
	f.AddLab(DemoTopology("demo"))
	f.runs = append(f.runs, DemoRun("demo", "20260101-000000", 30*time.Second))
	return f
}

// DemoTopology is a small lab: four hosts in a line at known positions,
// three point-to-point links, a segment joining b, c and d.
func DemoTopology(name string) backend.Topology {
	pos := func(x, y, z float64) *[3]float64 { return &[3]float64{x, y, z} }
	return backend.Topology{
		Lab: name, Phase: "ready",
		Mgmt: backend.Mgmt{Name: "fl-ab12-mgmt", Prefix: "10.213.7.0/24"},
		Hosts: []backend.Host{
			{Name: "a", Kind: "vm", Position: pos(0, 0, 0), State: "running", Up: true, MgmtIP: "10.213.7.10"},
			{Name: "b", Kind: "vm", Position: pos(100, 0, 0), State: "running", Up: true, MgmtIP: "10.213.7.11"},
			{Name: "c", Kind: "vm", Position: pos(200, 50, 10), State: "running", Up: true, MgmtIP: "10.213.7.12"},
			{Name: "d", Kind: spec.KindPhysical, Position: pos(300, -50, 0), State: "running", Up: true, MgmtIP: "10.213.7.13"},
		},
		Links: []backend.Link{
			{Name: "ab", Endpoints: []string{"a", "b"}},
			{Name: "bc", Endpoints: []string{"b", "c"}},
			{Name: "cd", Endpoints: []string{"c", "d"}},
			{Name: "seg", Endpoints: []string{"b", "c", "d"}},
		},
	}
}

// AddLab adds (or replaces) a lab; its links start perfect.
func (f *Fake) AddLab(t backend.Topology) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &lab{topo: t, started: f.now(), links: netfabric.State{Shaper: "fake"}}
	for _, ln := range t.Links {
		ls := netfabric.LinkState{Name: ln.Name, Up: true}
		for _, e := range ln.Endpoints {
			ls.Directions = append(ls.Directions, netfabric.Direction{From: e, Counters: &netfabric.Counters{}})
		}
		l.links.Links = append(l.links.Links, ls)
	}
	for _, h := range t.Hosts {
		if h.Kind != "vm" {
			continue
		}
		l.stats = append(l.stats, backend.DomainStats{
			Host: h.Name, Domain: "fl-ab12-" + h.Name, CPUSeconds: 1.5, MemoryBytes: 512 << 20, RSSBytes: 480 << 20,
			Blocks: []backend.BlockStats{{Device: "vda", ReadBytes: 1 << 20, ReadRequests: 10}},
			NICs:   []backend.NICStats{{Device: "fl" + h.Name + "n1", RxBytes: 1000, RxPackets: 10}},
		})
	}
	if len(t.Hosts) > 0 {
		l.workloads = []backend.WorkloadValue{{Host: t.Hosts[0].Name, Workload: "alice", Field: "bits_per_second", Value: 1e6}}
		l.processes = []backend.ProcessStats{{Host: t.Hosts[0].Name, Process: "alice", Kind: "workload", Processes: 2, RSSBytes: 8 << 20, OpenFDs: 7, CPUSeconds: 0.5}}
	}
	l.scenario = backend.ScenarioStatus{Running: true, Name: "handover", Applied: map[string]uint64{"link.set": 1}}
	f.labs[t.Lab] = l
}

// RemoveLab drops a lab, as destroy would.
func (f *Fake) RemoveLab(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.labs, name)
}

// Calls returns the control calls received so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Reads counts the reads of one kind so far: "links", "topology".
func (f *Fake) Reads(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[kind]
}

// FailOn makes every later call of action fail as a backend failure.
func (f *Fake) FailOn(action string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOn = action
}

// SetQuality changes a direction's quality behind the server's back, as
// the CLI would.
func (f *Fake) SetQuality(labName, link, from string, q netfabric.Impairment) error {
	return f.SetLink(context.Background(), "cli", labName, link, from, backend.QualityChange{
		Clear: true, RateBits: &q.RateBits, Delay: &q.Delay, Jitter: &q.Jitter, Loss: &q.Loss,
	})
}

// Move sets a host's position, as mobility would.
func (f *Fake) Move(labName, host string, pos [3]float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(labName)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(l.topo.Hosts, func(h backend.Host) bool { return h.Name == host })
	if i < 0 {
		return fmt.Errorf("%w: host %q", backend.ErrNotFound, host)
	}
	l.topo.Hosts[i].Position = &pos
	return nil
}

func (f *Fake) lab(name string) (*lab, error) {
	l, ok := f.labs[name]
	if !ok {
		return nil, fmt.Errorf("%w: lab %q", backend.ErrNotFound, name)
	}
	return l, nil
}

func (f *Fake) Labs(ctx context.Context) ([]backend.LabSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []backend.LabSummary
	for _, l := range f.labs {
		out = append(out, backend.LabSummary{Name: l.topo.Lab, Phase: l.topo.Phase, Fabric: "fake",
			Created: l.started, Hosts: len(l.topo.Hosts), Links: len(l.topo.Links)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Fake) Topology(ctx context.Context, name string) (*backend.Topology, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads["topology"]++
	l, err := f.lab(name)
	if err != nil {
		return nil, err
	}
	t := l.topo
	t.Hosts = slices.Clone(t.Hosts)
	for i, h := range t.Hosts {
		if h.Position != nil {
			p := *h.Position
			t.Hosts[i].Position = &p
		}
	}
	t.Links = slices.Clone(t.Links)
	return &t, nil
}

// Links advances every up direction's counters a little on each read, so
// rates are never flat.
func (f *Fake) Links(ctx context.Context, name string) (netfabric.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads["links"]++
	l, err := f.lab(name)
	if err != nil {
		return netfabric.State{}, err
	}
	out := netfabric.State{Shaper: l.links.Shaper, Groups: slices.Clone(l.links.Groups)}
	for i := range l.links.Links {
		ls := &l.links.Links[i]
		cp := netfabric.LinkState{Name: ls.Name, Up: ls.Up}
		for j := range ls.Directions {
			d := &ls.Directions[j]
			if ls.Up {
				d.Counters.RxPackets += 100
				d.Counters.RxBytes += 100 * 1200
				lost := uint64(d.Quality.Loss)
				d.Counters.DropLoss += lost
				d.Counters.TxPackets += 100 - lost
				d.Counters.TxBytes += (100 - lost) * 1200
			}
			c := *d.Counters
			cp.Directions = append(cp.Directions, netfabric.Direction{From: d.From, Quality: d.Quality, Changed: d.Changed, Counters: &c})
		}
		out.Links = append(out.Links, cp)
	}
	return out, nil
}

// Paths: Alice on a talks to Bob on c over ab and bc; while bc is down
// her packets take the segment.
func (f *Fake) Paths(ctx context.Context, name string) ([]backend.Path, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return nil, err
	}
	if _, err := l.link("bc"); err != nil {
		return nil, nil // not the demo lab's shape
	}
	if bc, _ := l.link("bc"); !bc.Up {
		return []backend.Path{{Name: "alice→bob", Hosts: []string{"a", "b", "c"}, Links: []string{"ab", "seg"}}}, nil
	}
	return []backend.Path{{Name: "alice→bob", Hosts: []string{"a", "b", "c"}, Links: []string{"ab", "bc"}}}, nil
}

func (f *Fake) DomainStats(ctx context.Context, name string) ([]backend.DomainStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return nil, err
	}
	for i := range l.stats {
		l.stats[i].CPUSeconds += 0.05
	}
	return slices.Clone(l.stats), nil
}

func (f *Fake) Workloads(ctx context.Context, name string) ([]backend.WorkloadValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.workloads), nil
}

func (f *Fake) Processes(ctx context.Context, name string) ([]backend.ProcessStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.processes), nil
}

func (f *Fake) Scenario(ctx context.Context, name string) (backend.ScenarioStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return backend.ScenarioStatus{}, err
	}
	s := l.scenario
	if s.Running {
		s.Clock = f.now().Sub(l.started)
	}
	return s, nil
}

func (f *Fake) Events(ctx context.Context, name string, after int64, limit int) ([]backend.Event, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return nil, after, err
	}
	var out []backend.Event
	for _, e := range l.events {
		if e.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	next := after
	if len(out) > 0 {
		next = out[len(out)-1].Seq
	}
	return out, next, nil
}

// change is the fake's control path: check, apply, record, log an event.
func (f *Fake) change(source, name, action string, args map[string]any, apply func(*lab) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.lab(name)
	if err != nil {
		return err
	}
	if action == f.failOn {
		return fmt.Errorf("%s: the fake fails as asked", action)
	}
	if err := apply(l); err != nil {
		return err
	}
	f.calls = append(f.calls, Call{Source: source, Lab: name, Action: action, Args: args})
	l.events = append(l.events, backend.Event{Seq: int64(len(l.events) + 1), Time: f.now().UTC(),
		Source: source, Action: action, Args: args, Result: "ok"})
	return nil
}

func (l *lab) link(name string) (*netfabric.LinkState, error) {
	for i := range l.links.Links {
		if l.links.Links[i].Name == name {
			return &l.links.Links[i], nil
		}
	}
	return nil, fmt.Errorf("%w: lab %s has no link %q", backend.ErrNotFound, l.topo.Lab, name)
}

func (f *Fake) SetLink(ctx context.Context, source, name, link, from string, c backend.QualityChange) error {
	args := map[string]any{"link": link, "from": from, "change": c}
	return f.change(source, name, "link.set", args, func(l *lab) error {
		ls, err := l.link(link)
		if err != nil {
			return err
		}
		var idx []int
		for i, d := range ls.Directions {
			if from == "" || d.From == from {
				q := c.Apply(d.Quality)
				if err := q.Validate(); err != nil {
					return fmt.Errorf("%w: link %s: %v", backend.ErrBadInput, link, err)
				}
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return fmt.Errorf("%w: link %s has no endpoint %q", backend.ErrNotFound, link, from)
		}
		for _, i := range idx {
			ls.Directions[i].Quality = c.Apply(ls.Directions[i].Quality)
			ls.Directions[i].Changed = f.now()
		}
		return nil
	})
}

func (f *Fake) SetLinkUp(ctx context.Context, source, name, link string, up bool) error {
	action := map[bool]string{true: "link.up", false: "link.down"}[up]
	return f.change(source, name, action, map[string]any{"link": link}, func(l *lab) error {
		ls, err := l.link(link)
		if err != nil {
			return err
		}
		ls.Up = up
		return nil
	})
}

func (f *Fake) Partition(ctx context.Context, source, name string, groups [][]string) error {
	return f.change(source, name, "partition", map[string]any{"groups": groups}, func(l *lab) error {
		if len(groups) < 2 {
			return fmt.Errorf("%w: a partition needs at least two groups, got %d", backend.ErrBadInput, len(groups))
		}
		for _, g := range groups {
			for _, h := range g {
				if !slices.ContainsFunc(l.topo.Hosts, func(x backend.Host) bool { return x.Name == h }) {
					return fmt.Errorf("%w: lab %s has no host %q", backend.ErrNotFound, l.topo.Lab, h)
				}
			}
		}
		l.links.Groups = groups
		return nil
	})
}

func (f *Fake) Heal(ctx context.Context, source, name string) error {
	return f.change(source, name, "heal", nil, func(l *lab) error {
		l.links.Groups = nil
		return nil
	})
}

func (f *Fake) HostAction(ctx context.Context, source, name, host, action string) error {
	return f.change(source, name, "host."+action, map[string]any{"host": host}, func(l *lab) error {
		if !slices.Contains(backend.HostActions, action) {
			return fmt.Errorf("%w: unknown host action %q (use %v)", backend.ErrBadInput, action, backend.HostActions)
		}
		i := slices.IndexFunc(l.topo.Hosts, func(h backend.Host) bool { return h.Name == host })
		if i < 0 || l.topo.Hosts[i].Kind != "vm" {
			return fmt.Errorf("%w: lab %s has no VM %q", backend.ErrNotFound, l.topo.Lab, host)
		}
		h := &l.topo.Hosts[i]
		switch action {
		case "pause":
			h.State, h.Up = "paused", false
		case "kill", "stop":
			h.State, h.Up = "shut off", false
		default:
			h.State, h.Up = "running", true
		}
		return nil
	})
}

func (f *Fake) StartScenario(ctx context.Context, source, name, scenario string) error {
	return f.change(source, name, "scenario.start", map[string]any{"scenario": scenario}, func(l *lab) error {
		if l.scenario.Running {
			return fmt.Errorf("%w: scenario %s is already running: stop it first", backend.ErrConflict, l.scenario.Name)
		}
		l.scenario.Running, l.scenario.Name, l.started = true, scenario, f.now()
		return nil
	})
}

func (f *Fake) StopScenario(ctx context.Context, source, name string) error {
	return f.change(source, name, "scenario.stop", nil, func(l *lab) error {
		l.scenario.Running = false
		return nil
	})
}

func (f *Fake) Runs(ctx context.Context) ([]backend.RunSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []backend.RunSummary
	for _, r := range f.runs {
		out = append(out, r.RunSummary)
	}
	return out, nil
}

func (f *Fake) Run(ctx context.Context, labName, id string) (*backend.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		if r.Lab == labName && r.ID == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: run %s/%s", backend.ErrNotFound, labName, id)
}

// DemoRun is a recorded run of DemoTopology: host a drives away from b
// while ab's loss grows, sampled every second.
func DemoRun(labName, id string, d time.Duration) *backend.Run {
	topo := DemoTopology(labName)
	r := &backend.Run{
		RunSummary: backend.RunSummary{Lab: labName, ID: id, Scenario: "handover", Status: "complete",
			Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)},
		Topology: &topo,
	}
	series := func(name string, labels map[string]string, f func(t float64) float64) {
		s := backend.Series{Name: name, Labels: labels}
		for t := 0.0; t <= d.Seconds(); t++ {
			s.T = append(s.T, t)
			s.V = append(s.V, f(t))
		}
		r.Series = append(r.Series, s)
	}
	for _, h := range topo.Hosts {
		for i, axis := range []string{"x", "y", "z"} {
			p0 := h.Position[i]
			moving := h.Name == "a" && axis == "x"
			series("forgelab_host_position_meters", map[string]string{"lab": labName, "host": h.Name, "axis": axis},
				func(t float64) float64 {
					if moving {
						return p0 - 10*t
					}
					return p0
				})
		}
	}
	for _, from := range []string{"a", "b"} {
		series("forgelab_link_loss_ratio", map[string]string{"lab": labName, "link": "ab", "from": from},
			func(t float64) float64 { return min(1, t/d.Seconds()) })
	}
	// 10 Mbit/s and 5 ms on ab, as a radio model sets them.
	series("forgelab_link_rate_bytes_per_second", map[string]string{"lab": labName, "link": "ab", "from": "a"},
		func(float64) float64 { return 1.25e6 })
	series("forgelab_link_delay_seconds", map[string]string{"lab": labName, "link": "ab", "from": "a"},
		func(float64) float64 { return 0.005 })
	series("forgelab_link_up", map[string]string{"lab": labName, "link": "ab"},
		func(t float64) float64 { return map[bool]float64{true: 1, false: 0}[t < 0.9*d.Seconds()] })
	r.Events = []backend.Event{{Seq: 1, Time: r.Start.Add(d * 9 / 10), Source: "scenario", Action: "link.down", Args: map[string]any{"link": "ab"}, Result: "ok"}}
	// Alice on a talks to Carol on c over ab and bc until ab goes down.
	r.Paths = []backend.RunPath{
		{T: 0, Path: backend.Path{Name: "alice→c", Hosts: []string{"a", "b", "c"}, Links: []string{"ab", "bc"}}},
		{T: 0.9 * d.Seconds(), Path: backend.Path{Name: "alice→c"}},
	}
	return r
}

// LargeTopology is a lab of n hosts on a grid 50 m apart and m links: a
// ring through every host first, then chords chosen deterministically
// (the same n and m give the same lab).
func LargeTopology(name string, n, m int) backend.Topology {
	t := backend.Topology{Lab: name, Phase: "ready", Mgmt: backend.Mgmt{Name: "fl-big-mgmt", Prefix: "10.200.0.0/24"}}
	side := 1
	for side*side < n {
		side++
	}
	for i := range n {
		pos := [3]float64{float64(i%side) * 50, float64(i/side) * 50, 0}
		t.Hosts = append(t.Hosts, backend.Host{Name: fmt.Sprintf("h%02d", i), Kind: "vm", Position: &pos, State: "running", Up: true})
	}
	seen := map[[2]int]bool{}
	add := func(a, b int) {
		if a == b || seen[[2]int{a, b}] || seen[[2]int{b, a}] || len(t.Links) >= m {
			return
		}
		seen[[2]int{a, b}] = true
		t.Links = append(t.Links, backend.Link{Name: fmt.Sprintf("l%03d", len(t.Links)), Endpoints: []string{t.Hosts[a].Name, t.Hosts[b].Name}})
	}
	for i := range n {
		add(i, (i+1)%n)
	}
	for k := 1; len(t.Links) < m && k < n*n; k++ {
		add((k*7)%n, (k*13+5)%n)
	}
	return t
}
