package labs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/scenario"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
)

// fakeShaper keeps its state in a file of the lab dir and reads, changes
// and writes it whole, as the kernel shaper does, so changes from
// concurrent callers race as they would between processes. Each
// direction it has shaped is a "qdisc:<tap>" in the fake world, so a
// change that lands after destroy shows as a leftover.
type fakeShaper struct {
	w     *fakeWorld
	path  string
	links netfabric.Links
	// slow widens the window between reading and writing the state.
	slow time.Duration
}

type fakeFabricState struct {
	Quality map[string]netfabric.Impairment `json:"quality"` // "link/from"
	Down    map[string]bool                 `json:"down"`
	Groups  [][]string                      `json:"groups"`
}

func (s *fakeShaper) load() (fakeFabricState, error) {
	fs := fakeFabricState{Quality: map[string]netfabric.Impairment{}, Down: map[string]bool{}}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return fs, nil
	}
	if err != nil {
		return fs, err
	}
	return fs, json.Unmarshal(data, &fs)
}

// save replaces the file whole, so a reader never sees half of it.
func (s *fakeShaper) save(fs fakeFabricState) error {
	data, _ := json.Marshal(fs)
	f, err := os.CreateTemp(filepath.Dir(s.path), ".fake-fabric-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.path)
}

func (s *fakeShaper) qdisc(link, from string, on bool) error {
	l, err := s.links.Find(link)
	if err != nil {
		return err
	}
	ep, err := l.Endpoint(from)
	if err != nil {
		return err
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if on {
		s.w.netdevs["qdisc:"+ep.Tap] = true
	} else {
		delete(s.w.netdevs, "qdisc:"+ep.Tap)
	}
	return nil
}

func (s *fakeShaper) Name() string { return "fake" }

func (s *fakeShaper) Setup(ctx context.Context) error {
	fs, err := s.load()
	if err != nil {
		return err
	}
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			fs.Quality[l.Name+"/"+e.Host] = l.Quality
			if err := s.qdisc(l.Name, e.Host, true); err != nil {
				return err
			}
		}
	}
	return s.save(fs)
}

func (s *fakeShaper) Set(ctx context.Context, link, from string, q netfabric.Impairment) error {
	if from == "" { // every direction, as the shapers' Set takes it
		l, err := s.links.Find(link)
		if err != nil {
			return err
		}
		for _, e := range l.Endpoints {
			if err := s.Set(ctx, link, e.Host, q); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.qdisc(link, from, true); err != nil {
		return err
	}
	s.w.fabricMu.Lock()
	defer s.w.fabricMu.Unlock()
	fs, err := s.load()
	if err != nil {
		return err
	}
	time.Sleep(s.slow)
	fs.Quality[link+"/"+from] = q
	return s.save(fs)
}

func (s *fakeShaper) SetUp(ctx context.Context, link string, up bool) error {
	if _, err := s.links.Find(link); err != nil {
		return err
	}
	s.w.fabricMu.Lock()
	defer s.w.fabricMu.Unlock()
	fs, err := s.load()
	if err != nil {
		return err
	}
	fs.Down[link] = !up
	return s.save(fs)
}

func (s *fakeShaper) Partition(ctx context.Context, groups [][]string) error {
	s.w.fabricMu.Lock()
	defer s.w.fabricMu.Unlock()
	fs, err := s.load()
	if err != nil {
		return err
	}
	fs.Groups = groups
	return s.save(fs)
}

func (s *fakeShaper) Heal(ctx context.Context) error { return s.Partition(ctx, nil) }

func (s *fakeShaper) Show(ctx context.Context) (netfabric.State, error) {
	fs, err := s.load()
	if err != nil {
		return netfabric.State{}, err
	}
	time.Sleep(s.slow) // a caller that merges into what it read races here
	out := netfabric.State{Shaper: "fake", Groups: fs.Groups}
	for _, l := range s.links {
		ls := netfabric.LinkState{Name: l.Name, Up: !fs.Down[l.Name]}
		for _, e := range l.Endpoints {
			ls.Directions = append(ls.Directions, netfabric.Direction{From: e.Host, Quality: fs.Quality[l.Name+"/"+e.Host]})
		}
		out.Links = append(out.Links, ls)
	}
	return out, nil
}

func (s *fakeShaper) Teardown(ctx context.Context) error {
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			s.qdisc(l.Name, e.Host, false)
		}
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// newControlLab creates the three-host lab on the kernel fabric (so
// shaping is set up after boot and torn down by destroy) with a fake
// shaper whose reads and writes are slow enough to race.
func newControlLab(t *testing.T) (*Manager, *fakeWorld) {
	t.Helper()
	w := newFakeWorld()
	m := newTestManager(t, w)
	m.Shapers = func(st *State) (netfabric.Shaper, error) {
		return &fakeShaper{w: w, path: filepath.Join(m.Store.LayoutOf(st).Dir, "fake-fabric.json"), links: FabricLinks(st.Plan), slow: 20 * time.Millisecond}, nil
	}
	src := strings.Replace(threeHosts, `name = "trio"`, "name = \"trio\"\nfabric = \"kernel\"", 1)
	if _, err := m.Create(context.Background(), mustParse(t, src), CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatal(err)
	}
	return m, w
}

func ptr[T any](v T) *T { return &v }

func quality(t *testing.T, m *Manager, link, from string) netfabric.Impairment {
	t.Helper()
	cur, err := m.ShowLinks(context.Background(), "trio")
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

// Two changes of different fields of one link, at the same time, both
// take effect: each is merged into the quality under the lab's lock.
// (Merged without the lock, as `link set` did before the control path,
// the second write loses the first change.)
func TestControlConcurrentLinkSet(t *testing.T) {
	m, _ := newControlLab(t)
	defer m.Destroy(context.Background(), "trio")
	ctx := context.Background()
	changes := []QualityChange{{Delay: ptr(30 * time.Millisecond)}, {Loss: ptr(20.0)}, {RateBits: ptr(int64(10e6))}}
	var wg sync.WaitGroup
	errs := make([]error, len(changes))
	for i, c := range changes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.SetLink(ctx, SourceCLI, "trio", "ab", "", c)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	want := netfabric.Impairment{Delay: 30 * time.Millisecond, Loss: 20, RateBits: 10e6}
	for _, from := range []string{"a", "b"} {
		if got := quality(t, m, "ab", from); got != want {
			t.Errorf("ab from %s: %v, want %v", from, got, want)
		}
	}
}

// A link change racing destroy either lands before destroy (which then
// removes it) or finds the lab gone: never a qdisc left behind.
func TestControlLinkSetRacingDestroy(t *testing.T) {
	for i := range 5 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			m, w := newControlLab(t)
			ctx := context.Background()
			var wg sync.WaitGroup
			var setErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				for {
					if _, setErr = m.SetLink(ctx, SourceCLI, "trio", "bc", "c", QualityChange{Delay: ptr(time.Duration(i+1) * time.Millisecond)}); setErr != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 15 * time.Millisecond)
				if err := m.Destroy(ctx, "trio"); err != nil {
					t.Errorf("destroy: %v", err)
				}
			}()
			wg.Wait()
			if !errors.Is(setErr, store.ErrNoLab) && !strings.Contains(fmt.Sprint(setErr), "busy") {
				t.Errorf("link set after destroy: %v, want no such lab, or busy", setErr)
			}
			if left := w.leftovers(); left != "" {
				t.Errorf("leaked: %s", left)
			}
		})
	}
}

// Every change, made or refused, is one JSON line in events.jsonl with
// its source, action, arguments and result.
func TestControlEventLog(t *testing.T) {
	m, w := newControlLab(t)
	defer m.Destroy(context.Background(), "trio")
	ctx := context.Background()
	p := mustPlan(t, m)
	steps := []struct {
		action string
		do     func() error
		ok     bool
	}{
		{ActionLinkSet, func() error {
			_, err := m.SetLink(ctx, SourceScenario, "trio", "ab", "a", QualityChange{Delay: ptr(5 * time.Millisecond)})
			return err
		}, true},
		{ActionLinkDown, func() error { return m.LinkUpDown(ctx, SourceScenario, "trio", "ab", false) }, true},
		{ActionLinkUp, func() error { return m.LinkUpDown(ctx, SourceScenario, "trio", "ab", true) }, true},
		{ActionPartition, func() error { return m.Partition(ctx, SourceScenario, "trio", [][]string{{"a"}, {"b", "c"}}) }, true},
		{ActionHeal, func() error { return m.Heal(ctx, SourceScenario, "trio") }, true},
		{"host.pause", func() error { return m.HostAction(ctx, SourceScenario, "trio", "b", hypervisor.ActionPause) }, true},
		{ActionNICDown, func() error { return m.SetNIC(ctx, SourceScenario, "trio", "b", "bc", false) }, true},
		{ActionLinkSet, func() error {
			_, err := m.SetLink(ctx, SourceScenario, "trio", "ab", "", QualityChange{Loss: ptr(150.0)})
			return err
		}, false},
		{ActionReseed, func() error { _, err := m.Reseed(ctx, SourceScenario, "trio"); return err }, false},
	}
	for _, s := range steps {
		if err := s.do(); (err == nil) != s.ok {
			t.Fatalf("%s: err %v, want ok %v", s.action, err, s.ok)
		}
	}
	if st, _ := w.DomainState(p.Host("b").Domain); st != "paused" {
		t.Errorf("b is %s after host pause", st)
	}
	if !w.nicDown[p.Host("b").Domain+"/"+p.Host("b").NICs[1].MAC] {
		t.Errorf("b's NIC on bc has carrier after nic down: %v", w.nicDown)
	}
	f, err := os.Open(m.Store.LayoutOf(&State{Lab: "trio"}).Events())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		lines = append(lines, e)
	}
	if len(lines) != len(steps) {
		t.Fatalf("%d event lines for %d changes", len(lines), len(steps))
	}
	for i, s := range steps {
		e := lines[i]
		want := map[bool]string{true: "ok", false: "error"}[s.ok]
		if e["source"] != "scenario" || e["action"] != s.action || e["result"] != want || e["time"] == nil {
			t.Errorf("event %d: %v, want %s %s", i, e, s.action, want)
		}
	}
	args := lines[0]["args"].(map[string]any)
	if args["link"] != "ab" || args["from"] != "a" || args["change"].(map[string]any)["delay_ns"] != 5e6 || args["set"] == nil {
		t.Errorf("link.set args: %v", args)
	}
	if lines[6]["args"].(map[string]any)["mac"] != p.Host("b").NICs[1].MAC {
		t.Errorf("nic.down args: %v", lines[6]["args"])
	}
}

func mustPlan(t *testing.T, m *Manager) *Plan {
	t.Helper()
	st, err := m.Store.Load("trio")
	if err != nil {
		t.Fatal(err)
	}
	return st.Plan
}

// A change the control path refuses changes nothing, and says why.
func TestControlRefuses(t *testing.T) {
	m, w := newControlLab(t)
	defer m.Destroy(context.Background(), "trio")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"unknown link", func() error {
			_, err := m.SetLink(ctx, SourceCLI, "trio", "zz", "", QualityChange{Delay: ptr(time.Millisecond)})
			return err
		}, `no link "zz"`},
		{"endpoint not on link", func() error {
			_, err := m.SetLink(ctx, SourceCLI, "trio", "ab", "c", QualityChange{Delay: ptr(time.Millisecond)})
			return err
		}, `no endpoint "c"`},
		{"bad quality", func() error {
			_, err := m.SetLink(ctx, SourceCLI, "trio", "ab", "", QualityChange{Delay: ptr(-time.Millisecond)})
			return err
		}, "link ab"},
		{"partition with a stranger", func() error { return m.Partition(ctx, SourceCLI, "trio", [][]string{{"a"}, {"zz"}}) }, `no host "zz"`},
		{"partition of one group", func() error { return m.Partition(ctx, SourceCLI, "trio", [][]string{{"a", "b"}}) }, "two groups"},
		{"link down on unknown link", func() error { return m.LinkUpDown(ctx, SourceCLI, "trio", "zz", false) }, `no link "zz"`},
		{"host action on a stranger", func() error { return m.HostAction(ctx, SourceCLI, "trio", "zz", hypervisor.ActionKill) }, `no VM "zz"`},
		{"unknown host action", func() error { return m.HostAction(ctx, SourceCLI, "trio", "a", "explode") }, "unknown host action"},
		{"nic not on link", func() error { return m.SetNIC(ctx, SourceCLI, "trio", "a", "bc", false) }, `no NIC on link "bc"`},
		{"reseed unsupported", func() error { _, err := m.Reseed(ctx, SourceCLI, "trio"); return err }, `fabric = "userspace"`},
		{"capture unsupported", func() error { return m.Capture(ctx, SourceCLI, "trio", "ab", nil) }, `fabric = "userspace"`},
		{"bad lab name", func() error { return m.Heal(ctx, SourceCLI, "../trio") }, "not a lab name"},
		{"no such lab", func() error { return m.Heal(ctx, SourceCLI, "nosuch") }, "no such lab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := m.ShowLinks(ctx, "trio")
			w.mu.Lock()
			states := fmt.Sprint(w.states, w.nicDown)
			w.mu.Unlock()
			err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(tc.name, "unsupported") && !errors.Is(err, netfabric.ErrUnsupported) {
				t.Errorf("%v is not netfabric.ErrUnsupported", err)
			}
			after, _ := m.ShowLinks(ctx, "trio")
			w.mu.Lock()
			defer w.mu.Unlock()
			if fmt.Sprint(before) != fmt.Sprint(after) || states != fmt.Sprint(w.states, w.nicDown) {
				t.Errorf("a refused change changed the lab")
			}
		})
	}
}

// The control path refuses a lab that is not ready (being created,
// failed, being destroyed).
func TestControlNeedsReadyLab(t *testing.T) {
	m, _ := newControlLab(t)
	defer m.Destroy(context.Background(), "trio")
	st, _ := m.Store.Load("trio")
	m.Store.Recorder(st).Update(func(s *State) { s.Phase = store.PhaseDestroying })
	if err := m.Heal(context.Background(), SourceCLI, "trio"); err == nil || !strings.Contains(err.Error(), "destroying, not ready") {
		t.Fatalf("heal of a lab being destroyed: %v", err)
	}
}

// A scenario's actions go through the same control path, logged with
// source "scenario".
func TestScenarioExecutor(t *testing.T) {
	m, _ := newControlLab(t)
	defer m.Destroy(context.Background(), "trio")
	ctx := context.Background()
	ex := ScenarioExecutor{M: m, Lab: "trio"}
	for _, a := range []scenario.Action{
		{Kind: scenario.LinkSet, Link: "ab", Patch: scenario.Patch{Loss: ptr(10.0)}},
		{Kind: scenario.LinkSet, Link: "ab", Sender: "b", Patch: scenario.Patch{Delay: ptr(20 * time.Millisecond)}},
		{Kind: scenario.Partition, Groups: [][]string{{"a"}, {"b", "c"}}},
		{Kind: scenario.Heal},
		{Kind: scenario.HostPause, Host: "c"},
		{Kind: scenario.HostResume, Host: "c"},
		{Kind: scenario.NICDown, Host: "a", Link: "ab"},
		{Kind: scenario.LinkReset, Link: "ab", Sender: "b"},
	} {
		if err := ex.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if got := quality(t, m, "ab", "a"); got != (netfabric.Impairment{Loss: 10}) {
		t.Errorf("ab from a: %v", got)
	}
	if got := quality(t, m, "ab", "b"); !got.IsZero() {
		t.Errorf("ab from b after reset: %v", got)
	}
	if err := ex.Do(ctx, scenario.Action{Kind: scenario.Marker, Label: "x"}); err != nil {
		t.Errorf("marker: %v (a marker changes nothing)", err)
	}
	if err := ex.Do(ctx, scenario.Action{Kind: scenario.WorkStart, Workload: "w", File: "s.toml", Line: 7}); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "s.toml:7") {
		t.Errorf("workload.start outside a run: %v", err)
	}
	events, err := m.Store.Events("trio")
	if err != nil || len(events) != 8 {
		t.Fatalf("%d events, %v", len(events), err)
	}
	for _, e := range events {
		if e.Source != "scenario" || e.Result != store.ResultOK {
			t.Errorf("event %+v", e)
		}
	}
}

// Every kind and fabric the lab file admits has its type, chosen in one
// map each.
func TestKindsAndFabricsAreTypes(t *testing.T) {
	for _, k := range spec.Kinds {
		if _, ok := hostKinds[k]; !ok {
			t.Errorf("host kind %q has no type in hostKinds", k)
		}
	}
	for _, f := range spec.Fabrics {
		if _, err := fabricOf(f); err != nil && f != spec.FabricAuto {
			t.Errorf("fabric %q: %v", f, err)
		}
	}
	if _, err := fabricOf("carrier-pigeon"); err == nil || !strings.Contains(err.Error(), "guest, kernel, userspace") {
		t.Errorf("unknown fabric: %v", err)
	}
	if !kindNamed("").madeHere() || kindNamed(spec.KindPhysical).madeHere() {
		t.Error("a host of no kind is a VM, made here; a physical one is not")
	}
}
