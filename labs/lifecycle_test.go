package labs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/userspace"
)

// fakeWorld stands in for libvirt, netlink and the image store, and keeps
// what exists so a test can assert that nothing leaked.
type fakeWorld struct {
	mu        sync.Mutex
	fabricMu  sync.Mutex // one read-modify-write of the fake fabric's file at a time, as an engine serialises
	domains   map[string]hypervisor.DomainConfig
	networks  map[string]hypervisor.NATNetwork
	netdevs   map[string]bool
	failStart string // domain name whose start fails
	failReady string // host that never becomes ready
	otherNets []string
	// What the control path did to running domains.
	states  map[string]string // domain -> state other than running
	nicDown map[string]bool   // "domain/mac" of NICs without carrier
}

func newFakeWorld() *fakeWorld {
	return &fakeWorld{domains: map[string]hypervisor.DomainConfig{}, networks: map[string]hypervisor.NATNetwork{}, netdevs: map[string]bool{},
		states: map[string]string{}, nicDown: map[string]bool{}}
}

func (f *fakeWorld) StartNetwork(ctx context.Context, n hypervisor.NATNetwork) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.networks[n.Name]; ok {
		return fmt.Errorf("define network %s: %w", n.Name, hypervisor.ErrExists)
	}
	f.networks[n.Name] = n
	f.netdevs[n.Bridge] = true
	return nil
}
func (f *fakeWorld) RemoveNetwork(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.networks[name]; ok {
		delete(f.netdevs, n.Bridge)
	}
	delete(f.networks, name)
	return nil
}
func (f *fakeWorld) StartDomain(ctx context.Context, cfg hypervisor.DomainConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cfg.Name == f.failStart {
		return fmt.Errorf("start domain %s: injected failure", cfg.Name)
	}
	if _, ok := f.domains[cfg.Name]; ok {
		return fmt.Errorf("define domain %s: %w", cfg.Name, hypervisor.ErrExists)
	}
	f.domains[cfg.Name] = cfg
	for _, n := range cfg.NICs {
		f.netdevs[n.Tap] = true
	}
	return nil
}
func (f *fakeWorld) RemoveDomain(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cfg, ok := f.domains[name]; ok {
		for _, n := range cfg.NICs {
			delete(f.netdevs, n.Tap)
		}
	}
	delete(f.domains, name)
	return nil
}
func (f *fakeWorld) DomainState(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.domains[name]; ok {
		if s := f.states[name]; s != "" {
			return s, nil
		}
		return "running", nil
	}
	return "absent", nil
}
func (f *fakeWorld) Do(ctx context.Context, name string, a hypervisor.HostAction) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.domains[name]; !ok {
		return fmt.Errorf("look up domain %s: not found", name)
	}
	f.states[name] = map[hypervisor.HostAction]string{
		hypervisor.ActionStop: "shutoff", hypervisor.ActionKill: "shutoff", hypervisor.ActionPause: "paused",
	}[a]
	return nil
}
func (f *fakeWorld) SetNICLink(ctx context.Context, name, mac string, up bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, ok := f.domains[name]
	if !ok {
		return fmt.Errorf("look up domain %s: not found", name)
	}
	if !slices.ContainsFunc(cfg.NICs, func(n hypervisor.NIC) bool { return n.MAC == mac }) {
		return fmt.Errorf("domain %s has no NIC with MAC %s", name, mac)
	}
	f.nicDown[name+"/"+mac] = !up
	return nil
}
func (f *fakeWorld) Console(ctx context.Context, name string, in *os.File, out io.Writer) error {
	return errors.New("no consoles in unit tests")
}
func (f *fakeWorld) NetworkXMLs() ([]string, error) { return f.otherNets, nil }
func (f *fakeWorld) Objects(ctx context.Context) ([]hypervisor.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hypervisor.Object
	for n, cfg := range f.domains {
		out = append(out, hypervisor.Object{Kind: hypervisor.KindDomain, Name: n, Lab: cfg.Lab, LabID: cfg.LabID, StateDir: cfg.StateDir, Active: true})
	}
	for n := range f.networks {
		out = append(out, hypervisor.Object{Kind: hypervisor.KindNetwork, Name: n, Active: true})
	}
	return out, nil
}
func (f *fakeWorld) Links() ([]netfabric.LinkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netfabric.LinkInfo
	for n := range f.netdevs {
		if !strings.HasPrefix(n, "fabricd:") {
			out = append(out, netfabric.LinkInfo{Name: n})
		}
	}
	return out, nil
}
func (f *fakeWorld) NewBridge(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.netdevs[name] {
		return fmt.Errorf("create %s: %w", name, netfabric.ErrExists)
	}
	f.netdevs[name] = true
	return nil
}
func (f *fakeWorld) DeleteLink(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.netdevs, name)
	return nil
}

func (f *fakeWorld) leftovers() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for d := range f.domains {
		out = append(out, "domain "+d)
	}
	for n := range f.networks {
		out = append(out, "network "+n)
	}
	for n := range f.netdevs {
		out = append(out, "netdev "+n)
	}
	return strings.Join(out, ", ")
}

func (f *fakeWorld) Resolve(want string) (string, string) {
	if want == "auto" || want == "" {
		return spec.FabricUserspace, "fake"
	}
	return want, "fake"
}
func (f *fakeWorld) NewTap(name string) error { return f.NewBridge(name) }
func (f *fakeWorld) AddPort(bridge, dev string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.netdevs[bridge] || !f.netdevs[dev] {
		return fmt.Errorf("add %s to %s: missing device", dev, bridge)
	}
	return nil
}
func (f *fakeWorld) Launch(ctx context.Context, dir string, cfg userspace.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.netdevs["fabricd:"+dir] = true
	// As the daemon does: its pid file says it runs.
	return os.WriteFile(filepath.Join(dir, userspace.PIDFile), []byte("1\n"), 0o644)
}
func (f *fakeWorld) Stop(ctx context.Context, dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.netdevs, "fabricd:"+dir)
	return nil
}

type fakeImages struct{}

func (fakeImages) Has(name string) bool    { return name == "debian-12" }
func (fakeImages) Path(name string) string { return "/images/" + name + ".qcow2" }
func (fakeImages) Build(ctx context.Context, name string, w io.Writer) error {
	return errors.New("no builds in unit tests")
}
func (fakeImages) Recipes() []string             { return []string{"debian-12"} }
func (fakeImages) Stale(name string) bool        { return false }
func (fakeImages) DirectBoot(string) *DirectBoot { return nil }
func (fakeImages) Remove(name string) error      { return nil }
func (fakeImages) CreateOverlay(ctx context.Context, base, dst string, size int64) error {
	return os.WriteFile(dst, []byte("overlay of "+base), 0o644)
}
func (fakeImages) WriteSeed(path string, s SeedInput) error {
	return os.WriteFile(path, []byte(s.Hostname), 0o644)
}

func (f *fakeWorld) WaitReady(ctx context.Context, st *State, host string) error {
	if host == f.failReady {
		return errors.New("connection refused")
	}
	return nil
}

func newTestManager(t *testing.T, w *fakeWorld) *Manager {
	t.Helper()
	return &Manager{
		Store: &Store{Dir: t.TempDir()}, VMs: w, Netdevs: w, Fabric: w, Images: fakeImages{}, Waiter: w,
		MemAvailable: func() (int64, error) { return 16384, nil },
		HostPrefixes: func() ([]netip.Prefix, error) { return nil, nil },
	}
}

const threeHosts = `
[lab]
name = "trio"
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
[[link]]
name = "ab"
endpoints = ["a", "b"]
[[link]]
name = "bc"
endpoints = ["b", "c"]
[[link]]
name = "ca"
endpoints = ["c", "a"]
`

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := spec.Parse("trio.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateThenDestroyLeavesNothing(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	st, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != store.PhaseReady || len(w.domains) != 3 || len(w.networks) != 1 {
		t.Fatalf("after create: phase %s, %d domains, %d networks", st.Phase, len(w.domains), len(w.networks))
	}
	// Secrets are private to root.
	fi, err := os.Stat(m.Store.LayoutOf(&State{Lab: "trio"}).Key())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lab key: %v, mode %v", err, fi.Mode())
	}
	if _, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create of the same lab: %v", err)
	}
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatal(err)
	}
	if left := w.leftovers(); left != "" {
		t.Fatalf("leaked after destroy: %s", left)
	}
	if _, err := os.Stat(m.Store.LayoutOf(&State{Lab: "trio"}).Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lab dir still there: %v", err)
	}
	if err := m.Destroy(context.Background(), "trio"); !errors.Is(err, store.ErrNoLab) {
		t.Fatalf("second destroy: %v, want store.ErrNoLab", err)
	}
}

func TestCreateFailureCleansUp(t *testing.T) {
	for _, tc := range []struct {
		name, failStart, failReady, want string
	}{
		{name: "domain start fails", failStart: "", want: "injected failure"},
		{name: "host never ready", failReady: "c", want: "host c: not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWorld()
			m := newTestManager(t, w)
			sp := mustParse(t, threeHosts)
			p, _ := plan.NewPlan(sp)
			if tc.failReady == "" {
				w.failStart = p.Host("b").Domain
			}
			w.failReady = tc.failReady
			_, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG, Parallel: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create error = %v, want %q", err, tc.want)
			}
			if left := w.leftovers(); left != "" {
				t.Fatalf("leaked after failed create: %s", left)
			}
			if names, _ := m.Store.Labs(); len(names) != 0 {
				t.Fatalf("state left for %v", names)
			}
		})
	}
}

func TestCreateRefusesWhatDoesNotFit(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	m.MemAvailable = func() (int64, error) { return 1000, nil }
	_, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err == nil || !strings.Contains(err.Error(), "MiB available") {
		t.Fatalf("err = %v, want a memory error", err)
	}
	if left := w.leftovers(); left != "" {
		t.Fatalf("memory check made things: %s", left)
	}
}

func TestCreateAvoidsTakenMgmtSubnet(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	sp := mustParse(t, threeHosts)
	p, _ := plan.NewPlan(sp)
	taken := p.Mgmt.Prefix
	w.otherNets = []string{fmt.Sprintf(`<network><name>other</name><ip address="%s" netmask="255.255.255.0"/></network>`, taken.Addr().Next())}
	st, err := m.Create(context.Background(), sp, CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	if st.Plan.Mgmt.Prefix.Overlaps(taken) {
		t.Fatalf("mgmt %s overlaps taken %s", st.Plan.Mgmt.Prefix, taken)
	}
	m.Destroy(context.Background(), "trio")
}

// A create killed part-way leaves a state whose resources may or may not
// exist; destroy must remove what exists and not trip on what does not.
func TestDestroyAfterInterruptedCreate(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	sp := mustParse(t, threeHosts)
	p, _ := plan.NewPlan(sp)
	dir := m.Store.LayoutOf(&State{Lab: "trio"}).Dir
	os.MkdirAll(dir, 0o755)
	st := &State{Lab: "trio", ID: p.ID, Phase: store.PhaseCreating, Plan: p, Resources: []Resource{{Kind: store.KindDir, Name: dir}}}
	rec := m.Store.Recorder(st)
	rec.Record(store.KindNetwork, p.Mgmt.Network)
	w.StartNetwork(context.Background(), hypervisor.NATNetwork{Name: p.Mgmt.Network, Bridge: p.Mgmt.Bridge})
	rec.Record(store.KindNetdev, p.Links[0].Bridge)
	w.NewBridge(p.Links[0].Bridge)
	rec.Record(store.KindNetdev, p.Links[1].Bridge) // recorded, never made (killed here)
	rec.Record(store.KindDomain, p.Hosts[0].Domain)
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatal(err)
	}
	if left := w.leftovers(); left != "" {
		t.Fatalf("leaked: %s", left)
	}
}

// A create killed right after making the lab dir, before its first state
// save, must not block the next create.
func TestCreateAfterKillBeforeFirstSave(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	if err := os.MkdirAll(m.Store.LayoutOf(&State{Lab: "trio"}).Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatalf("create over a stateless lab dir: %v", err)
	}
	if err := m.Destroy(context.Background(), "trio"); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkPrefixes(t *testing.T) {
	got := networkPrefixes(`<network><ip address="192.168.122.1" netmask="255.255.255.0"/><ip family="ipv6" address="fd00::1" prefix="64"/><ip address="10.1.2.1" prefix="16"/></network>`)
	want := []netip.Prefix{netip.MustParsePrefix("192.168.122.0/24"), netip.MustParsePrefix("10.1.0.0/16")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Create is a list of named steps: a failure in any of them is reported
// as "step NAME: ...", and everything the steps before it made is gone.
func TestCreateStepFailsLeaveNothing(t *testing.T) {
	names := []string{}
	for _, s := range (&Manager{}).createSteps() {
		names = append(names, s.name)
	}
	if want := "images keys mgmt host-links fabric boot shaping routes software"; strings.Join(names, " ") != want {
		t.Fatalf("steps %v, want %s", names, want)
	}
	for _, fabric := range []string{"kernel", "userspace"} {
		for i, name := range names {
			t.Run(fabric+"/"+name, func(t *testing.T) {
				w := newFakeWorld()
				m, sw := newTestManager(t, w), newFakeSoftware()
				m.Software = sw
				m.Shapers = func(st *State) (netfabric.Shaper, error) {
					return &fakeShaper{w: w, path: filepath.Join(m.Store.LayoutOf(st).Dir, "fake-fabric.json"), links: FabricLinks(st.Plan)}, nil
				}
				// Run the step for real, then fail: what it made must go too.
				m.editSteps = func(steps []createStep) []createStep {
					run := steps[i].run
					steps[i].run = func(ctx context.Context, c *creation) error {
						if err := run(ctx, c); err != nil {
							return err
						}
						return errors.New("injected failure")
					}
					return steps
				}
				src := strings.Replace(softwareLab, `name = "trio"`, "name = \"trio\"\nfabric = \""+fabric+"\"", 1)
				_, err := m.Create(context.Background(), writeSpec(t, src), CreateOptions{Accel: hypervisor.TCG})
				if err == nil || !strings.HasPrefix(err.Error(), "step "+name+": injected failure") {
					t.Fatalf("create: %v, want step %s: injected failure", err, name)
				}
				if left := w.leftovers(); left != "" {
					t.Errorf("leaked: %s", left)
				}
				if alive := sw.helpersAlive(); len(alive) > 0 {
					t.Errorf("helpers still running: %v", alive)
				}
				if names, _ := m.Store.Labs(); len(names) != 0 {
					t.Errorf("state left for %v", names)
				}
				if _, err := os.Stat(m.Store.LayoutOf(&State{Lab: "trio"}).Dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("lab dir left: %v", err)
				}
			})
		}
	}
}

// Each step's time is kept in the state, for inspect and benchmarks.
func TestCreateRecordsStepTimes(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	st, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy(context.Background(), "trio")
	info, err := m.Inspect("trio")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Steps) != 9 || len(info.Steps) != 9 || info.Steps[5].Name != "boot" || info.Steps[5].Error != "" {
		t.Errorf("steps %+v", info.Steps)
	}
}

// staleImages is the image store with debian-12 built by an older recipe:
// it counts removals and builds.
type staleImages struct {
	fakeImages
	removed, built int
}

func (s *staleImages) Stale(name string) bool { return s.removed == 0 }
func (s *staleImages) Remove(name string) error {
	s.removed++
	return nil
}
func (s *staleImages) Build(ctx context.Context, name string, w io.Writer) error {
	s.built++
	return nil
}

// A stale image is rebuilt when no other lab uses it (the lab being made
// does not count: its state is recorded before the images step), and
// kept while another lab's VMs run from it.
func TestCreateRebuildsStaleImageUnlessAnotherLabUsesIt(t *testing.T) {
	w := newFakeWorld()
	m := newTestManager(t, w)
	imgs := &staleImages{}
	m.Images = imgs
	if _, err := m.Create(context.Background(), mustParse(t, threeHosts), CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatal(err)
	}
	if imgs.removed != 1 || imgs.built != 1 {
		t.Fatalf("first lab: image removed %d and built %d times, want 1 and 1", imgs.removed, imgs.built)
	}
	imgs.removed, imgs.built = 0, 0 // stale again (a newer recipe), trio still up
	other := strings.Replace(threeHosts, `name = "trio"`, `name = "duo"`, 1)
	if _, err := m.Create(context.Background(), mustParse(t, other), CreateOptions{Accel: hypervisor.TCG}); err != nil {
		t.Fatal(err)
	}
	if imgs.removed != 0 || imgs.built != 0 {
		t.Errorf("second lab while trio uses the image: removed %d, built %d, want it kept", imgs.removed, imgs.built)
	}
}
