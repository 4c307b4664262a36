package labs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/store"
)

// A name the lab would use that already exists (another state dir's lab,
// a leftover, an id collision) refuses create before anything is made,
// says which object and whose it seems to be, and leaves it alone.
func TestCreateRefusesNamesInUse(t *testing.T) {
	id := plan.IDOf("trio")
	cases := []struct {
		name  string
		setup func(w *fakeWorld)
		want  []string // in the error
		still func(w *fakeWorld) bool
	}{
		{"network", func(w *fakeWorld) {
			w.networks["fl-"+id+"-mgmt"] = hypervisor.NATNetwork{Name: "fl-" + id + "-mgmt", Bridge: "virbr9"}
		}, []string{"libvirt network fl-" + id + "-mgmt", "owner unknown", "gc --id " + id},
			func(w *fakeWorld) bool { _, ok := w.networks["fl-"+id+"-mgmt"]; return ok }},
		{"domain of another state dir", func(w *fakeWorld) {
			w.domains["fl-"+id+"-a"] = hypervisor.DomainConfig{Name: "fl-" + id + "-a", Lab: "trio", LabID: id, StateDir: "/var/tmp/other"}
		}, []string{"libvirt domain fl-" + id + "-a", "lab trio of state dir /var/tmp/other"},
			func(w *fakeWorld) bool { _, ok := w.domains["fl-"+id+"-a"]; return ok }},
		{"ifb of a shaper", func(w *fakeWorld) { w.netdevs["fl"+id+"h00n01i"] = true },
			[]string{"netdev fl" + id + "h00n01i"},
			func(w *fakeWorld) bool { return w.netdevs["fl"+id+"h00n01i"] }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newFakeWorld()
			c.setup(w)
			m := newTestManager(t, w)
			_, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
			if err == nil {
				t.Fatal("create went ahead over an object it did not make")
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
			if !c.still(w) {
				t.Error("create removed an object it did not make")
			}
			if len(w.domains) > 1 || len(w.networks) > 1 {
				t.Errorf("create made something: %s", w.leftovers())
			}
		})
	}
}

// A domain recorded in a lab's state whose metadata names another lab is
// not removed by destroy (it was never this lab's).
func TestDestroyLeavesAnotherLabsDomain(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	st, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	dom := st.Plan.Hosts[0].Domain
	w.domains[dom] = hypervisor.DomainConfig{Name: dom, Lab: "other", LabID: st.ID, StateDir: "/elsewhere"}
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.domains[dom]; !ok {
		t.Error("destroy removed a domain whose metadata names another lab")
	}
}

// A state write that fails stops create at the step that could not
// record what it was about to make (keys), not some steps later.
func TestCreateStopsWhenStateCannotBeWritten(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	m.editSteps = func(steps []createStep) []createStep {
		keys := steps[1]
		steps[1].run = func(ctx context.Context, c *creation) error {
			// A directory where the state's temporary file goes: every
			// save fails, even as root.
			if err := os.Mkdir(c.layout.State()+".tmp", 0o755); err != nil {
				return err
			}
			return keys.run(ctx, c)
		}
		return steps
	}
	_, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err == nil || !strings.Contains(err.Error(), "step keys: record file") || !strings.Contains(err.Error(), "destroy would not find it") {
		t.Fatalf("create with a state that cannot be written: %v, want step keys to stop at its first record", err)
	}
	if left := w.leftovers(); left != "" {
		t.Errorf("left behind: %s", left)
	}
	if _, err := os.Stat(m.Store.LayoutOf(&State{Lab: "trio"}).Key()); err == nil {
		t.Error("the lab key was written although its record was not")
	}
}

// gc finds objects with the prefix whose lab has no state (deleted by
// hand, or damaged), leaves those of labs in this state dir and in the
// other state dirs it knows, removes only with Remove, and only the ids
// asked for.
func TestGC(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	m.Registry = filepath.Join(t.TempDir(), "state-dirs")
	// A lab alive in this state dir.
	live, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	// A lab alive in another registered state dir (made by another Manager).
	other := newTestManager(t, w)
	other.Registry = m.Registry
	otherSt, err := other.Create(context.Background(), mustParse(t, strings.Replace(threeHosts, `"trio"`, `"duo"`, 1)), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	// Orphans of id 0bad: state dir gone.
	w.domains["fl-0bad-a"] = hypervisor.DomainConfig{Name: "fl-0bad-a", Lab: "gone", LabID: "0bad", StateDir: "/nonexistent"}
	w.networks["fl-0bad-mgmt"] = hypervisor.NATNetwork{Name: "fl-0bad-mgmt", Bridge: "fl0bad-m"}
	w.netdevs["fl0bad-m"] = true
	w.netdevs["fl0badh00n01"] = true
	// Orphans of id 0bee, which gc is not asked about.
	w.netdevs["fl0beel00"] = true
	// Not forgelab's.
	w.netdevs["flannel.1"] = true
	w.domains["fl-x-y"] = hypervisor.DomainConfig{Name: "fl-x-y"}
	// A lab whose state is damaged.
	broken := "broken"
	bl, _ := m.Store.Lab(broken)
	os.MkdirAll(bl.Dir, 0o755)
	os.WriteFile(bl.State(), []byte("{not json"), 0o644)
	bid := plan.IDOf(broken)
	w.netdevs["fl"+bid+"l00"] = true

	rep, err := m.GC(context.Background(), GCOptions{IDs: []string{"0bad", bid}})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, o := range rep.Orphans {
		found = append(found, o.Kind+" "+o.Name)
	}
	want := []string{"domain fl-0bad-a", "netdev fl0bad-m", "netdev fl0badh00n01", "network fl-0bad-mgmt", "netdev fl" + bid + "l00", "dir " + bl.Dir}
	for _, s := range want {
		if !strings.Contains(strings.Join(found, "\n"), s) {
			t.Errorf("gc did not list %s; it listed %v", s, found)
		}
	}
	if len(found) != len(want) {
		t.Errorf("gc listed %v, want %v", found, want)
	}
	if _, ok := w.domains["fl-0bad-a"]; !ok {
		t.Fatal("gc without Remove removed something")
	}
	if _, err := m.GC(context.Background(), GCOptions{IDs: []string{"0bad", bid}, Remove: true}); err != nil {
		t.Fatal(err)
	}
	left := w.leftovers()
	for _, gone := range []string{"fl-0bad-a", "fl-0bad-mgmt", "fl0bad-m", "fl0badh00n01", "fl" + bid + "l00"} {
		if strings.Contains(left, gone+",") || strings.HasSuffix(left, gone) {
			t.Errorf("%s survived gc --yes", gone)
		}
	}
	if _, err := os.Stat(bl.Dir); err == nil {
		t.Error("the damaged lab's directory survived gc --yes")
	}
	for _, kept := range []string{"fl0beel00", "flannel.1", "fl-x-y", live.Plan.Hosts[0].Domain, live.Plan.Mgmt.Network, otherSt.Plan.Hosts[0].Domain, otherSt.Plan.Hosts[0].NICs[0].Tap} {
		if !strings.Contains(left, kept) {
			t.Errorf("gc removed %s, which it was not to touch", kept)
		}
	}
}

// destroy of a lab whose state.json is damaged removes what its id left
// (today it fails: "state ... is damaged").
func TestDestroyDamagedState(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	st, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	l := m.Store.LayoutOf(st)
	if err := os.WriteFile(l.State(), []byte("{\"lab\": tru"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatalf("destroy of a lab with damaged state: %v", err)
	}
	if left := w.leftovers(); left != "" {
		t.Errorf("left behind: %s", left)
	}
	if _, err := os.Stat(l.Dir); err == nil {
		t.Error("the lab directory survived")
	}
	if _, err := m.Store.Load("trio"); err == nil {
		t.Error("the lab still loads")
	}
}

var _ = store.KindDir

// An object that appears after the name check and before create makes it
// (another process won the race) is not adopted and not removed by the
// undo: the make call fails with ErrExists and its record is dropped.
func TestCreateRaceLeavesTheOtherObject(t *testing.T) {
	id := plan.IDOf("trio")
	cases := []struct {
		before string // step before which the object appears
		put    func(w *fakeWorld)
		still  func(w *fakeWorld) bool
	}{
		{"mgmt", func(w *fakeWorld) {
			w.networks["fl-"+id+"-mgmt"] = hypervisor.NATNetwork{Name: "fl-" + id + "-mgmt", Bridge: "fl" + id + "-m"}
			w.netdevs["fl"+id+"-m"] = true
		}, func(w *fakeWorld) bool { _, ok := w.networks["fl-"+id+"-mgmt"]; return ok && w.netdevs["fl"+id+"-m"] }},
		{"fabric", func(w *fakeWorld) { w.netdevs["fl"+id+"h00n01"] = true },
			func(w *fakeWorld) bool { return w.netdevs["fl"+id+"h00n01"] }},
		{"boot", func(w *fakeWorld) {
			w.domains["fl-"+id+"-b"] = hypervisor.DomainConfig{Name: "fl-" + id + "-b"}
		}, func(w *fakeWorld) bool { _, ok := w.domains["fl-"+id+"-b"]; return ok }},
	}
	for _, c := range cases {
		t.Run(c.before, func(t *testing.T) {
			w := newFakeWorld()
			m := newTestManager(t, w)
			m.editSteps = func(steps []createStep) []createStep {
				for i, s := range steps {
					if s.name == c.before {
						run := s.run
						steps[i].run = func(ctx context.Context, cr *creation) error { c.put(w); return run(ctx, cr) }
					}
				}
				return steps
			}
			_, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
			if err == nil || !strings.Contains(err.Error(), "it is not this lab's, so it stays") {
				t.Fatalf("create over an object that appeared meanwhile: %v", err)
			}
			if !c.still(w) {
				t.Error("create's undo removed an object it did not make")
			}
		})
	}
}
