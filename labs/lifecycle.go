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
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
)

// VMs is the part of libvirt the orchestrator uses; *hypervisor.Conn
// implements it, tests use a fake.
type VMs interface {
	StartNetwork(ctx context.Context, n hypervisor.NATNetwork) error
	RemoveNetwork(ctx context.Context, name string) error
	StartDomain(ctx context.Context, cfg hypervisor.DomainConfig) error
	RemoveDomain(ctx context.Context, name string) error
	DomainState(name string) (string, error)
	NetworkXMLs() ([]string, error)
	// Objects lists every domain and network with its owner as far as
	// libvirt knows it (create checks its names against them, gc looks
	// for leftovers).
	Objects(ctx context.Context) ([]hypervisor.Object, error)
	// Do applies a power or fault action to a domain; SetNICLink cuts or
	// restores the carrier of its NIC with that MAC; Console attaches in
	// and out to its serial console until ctx ends or the user leaves.
	Do(ctx context.Context, name string, a hypervisor.HostAction) error
	SetNICLink(ctx context.Context, name, mac string, up bool) error
	Console(ctx context.Context, name string, in *os.File, out io.Writer) error
}

// Netdevs makes and removes host network devices.
type Netdevs interface {
	// NewBridge makes a bridge that must not exist yet (else an error
	// wrapping netfabric.ErrExists).
	NewBridge(name string) error
	DeleteLink(name string) error
	// Links lists every netdev of this machine.
	Links() ([]netfabric.LinkInfo, error)
}

// Images is the image store as the orchestrator needs it.
type Images interface {
	Has(name string) bool
	// Stale: built by an older version of its recipe.
	Stale(name string) bool
	Remove(name string) error
	Path(name string) string
	// DirectBoot is the image's kernel to boot directly; nil: boot the disk.
	DirectBoot(name string) *DirectBoot
	Build(ctx context.Context, name string, progress io.Writer) error
	Recipes() []string
	CreateOverlay(ctx context.Context, base, dst string, sizeBytes int64) error
	WriteSeed(path string, s SeedInput) error
}

// DirectBoot is a kernel, initramfs and command line a VM starts with.
type DirectBoot struct{ Kernel, Initrd, Cmdline string }

// SeedInput is what the orchestrator knows about one VM's first boot; the
// image layer turns it into cloud-init documents.
type SeedInput struct {
	InstanceID, Hostname, User, Password string
	AuthorizedKeys                       []string
	HostKeyPrivate, HostKeyPublic        string
	EtcHosts                             string
	NICs                                 []SeedNIC
}

type SeedNIC struct {
	Name, MAC string
	DHCP4     bool
	Addresses []string
	// Gateway4 and Nameservers: the management NIC's way out.
	Gateway4    string
	Nameservers []string
	// Primary: the NIC forgelab reaches the guest through.
	Primary bool
}

// Waiter waits until a host answers SSH and runs a command.
type Waiter interface {
	WaitReady(ctx context.Context, st *State, host string) error
}

// Manager creates, inspects and destroys labs.
type Manager struct {
	Store   *Store
	VMs     VMs
	Netdevs Netdevs
	Fabric  Fabric
	Images  Images
	Waiter  Waiter
	// Progress receives one line per step for people; nil discards.
	Progress io.Writer
	// MemAvailable reports free memory in MiB; nil reads /proc/meminfo.
	MemAvailable func() (int64, error)
	// HostPrefixes lists prefixes already in use on this machine (other
	// than libvirt networks); nil reads the host's interfaces.
	HostPrefixes func() ([]netip.Prefix, error)
	// Software reaches hosts for deploys, services and workloads, and
	// starts the lab's helpers; nil: SSHSoftware.
	Software Software
	// Shapers returns a running lab's shaper; nil: the lab's fabric
	// backend makes it. Tests put a fake here.
	Shapers func(st *State) (netfabric.Shaper, error)
	// Registry is the machine's list of state dirs (store.Register):
	// create adds this one, gc reads it. "": none (tests).
	Registry string
	// editSteps, when set, changes the list of create steps (tests fail
	// each in turn).
	editSteps func([]createStep) []createStep
}

// CreateOptions tune one create.
type CreateOptions struct {
	Accel        hypervisor.Accel
	AccelReason  string
	Parallel     int           // boots at once; 0 = fit the CPUs
	ReadyTimeout time.Duration // per host; 0 = default for the accelerator
	User         string        // login user in the guests
	// DiskBoot boots every VM through BIOS and its disk's boot loader even
	// when the image keeps its kernel for direct boot (a kernel upgraded
	// inside the guest, or the plain boot as a baseline).
	DiskBoot bool
}

const (
	guestUser      = "lab"
	tcgTBCacheMiB  = 128
	tcgOverheadMiB = tcgTBCacheMiB + 96
	kvmOverheadMiB = 64
)

func (m *Manager) progress(format string, args ...any) {
	if m.Progress != nil {
		fmt.Fprintf(m.Progress, format+"\n", args...)
	}
}

// Create brings a lab up: every host booted and answering SSH, every link
// wired. It checks everything it can first, then runs the create steps in
// order; on any failure it removes what it made and returns the error.
func (m *Manager) Create(ctx context.Context, sp *Spec, opts CreateOptions) (st *State, err error) {
	l, err := m.Store.Lab(sp.Lab.Name)
	if err != nil {
		return nil, err
	}
	unlock, err := m.Store.Lock(ctx, sp.Lab.Name, "create")
	if err != nil {
		return nil, err
	}
	defer unlock()
	// checks: nothing is made before they pass.
	if old, err := m.Store.Load(sp.Lab.Name); err == nil {
		return nil, fmt.Errorf("lab %s already exists (created from %s, %s): run `forgelab destroy %s` first", old.Lab, old.File, old.Phase, old.Lab)
	}
	if opts.User == "" {
		opts.User = guestUser
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
		if opts.Accel == hypervisor.TCG {
			opts.ReadyTimeout = 6 * time.Minute
		}
	}
	if err := m.checkMemory(sp, opts.Accel); err != nil {
		return nil, err
	}
	lp, err := m.plan(sp)
	if err != nil {
		return nil, err
	}
	if err := m.checkIDFree(lp); err != nil {
		return nil, err
	}
	if err := m.checkNamesFree(ctx, lp); err != nil {
		return nil, err
	}
	if err := CheckSoftware(sp, lp); err != nil {
		return nil, err
	}
	fabric, fabricReason := m.Fabric.Resolve(lp.Fabric)
	if _, err := fabricOf(fabric); err != nil {
		return nil, err
	}
	// end checks

	if m.Registry != "" {
		// Before anything exists: gc of another state dir must know this one.
		if err := store.Register(m.Registry, m.Store.Dir); err != nil {
			return nil, err
		}
	}
	if err := m.makeLabDir(l); err != nil {
		return nil, err
	}
	st = &State{
		Lab: sp.Lab.Name, ID: lp.ID, File: sp.File, Phase: store.PhaseCreating,
		Created: time.Now().UTC(), Accel: string(opts.Accel), AccelReason: opts.AccelReason,
		Fabric: fabric, FabricReason: fabricReason,
		User: opts.User, Spec: sp, Plan: lp, Hosts: map[string]*HostState{},
		Resources: []Resource{{Kind: store.KindDir, Name: l.Dir}},
	}
	rec := m.Store.Recorder(st)
	if err := rec.Update(func(*State) {}); err != nil {
		os.RemoveAll(l.Dir)
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		// Undo on a context that Ctrl-C cannot cancel, with its own limit.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if uerr := rec.Update(func(s *State) { s.Phase, s.Error = store.PhaseFailed, err.Error() }); uerr != nil {
			err = fmt.Errorf("%w\n(recording the failure in the lab's state also failed: %v)", err, uerr)
		}
		m.progress("create failed: removing what was made")
		if cerr := m.teardown(cctx, rec); cerr != nil {
			err = fmt.Errorf("%w\n(cleanup also failed: %v; run `forgelab destroy %s`)", err, cerr, sp.Lab.Name)
		}
	}()
	if len(sp.Source) > 0 {
		// The lab file as created: run plays this copy, not a file edited since.
		if err := os.WriteFile(l.LabFile(), sp.Source, 0o600); err != nil {
			return nil, fmt.Errorf("keep a copy of the lab file: %w", err)
		}
	}
	c := &creation{rec: rec, spec: sp, plan: lp, layout: l, opts: opts}
	if err := m.runSteps(ctx, c); err != nil {
		return nil, err
	}
	if err := rec.Update(func(s *State) { s.Phase = store.PhaseReady }); err != nil {
		return nil, err
	}
	return st, nil
}

// makeLabDir makes the lab's directory. It holds state.json: it is made
// first and removed last. A directory without state is what a create
// killed before its first save leaves: nothing was made yet, so it can go.
//
// It holds secrets (the lab's key, the seeds with the console password
// and host keys, the coordination token, workload env values), so no one
// but its owner reads it. QEMU runs as a user of its own and opens disks
// and seeds by path; libvirt chowns those files to that user while the
// VM runs (DAC relabelling), but not the directories above them, so the
// directory lets QEMU's group through (0710) when there is one.
func (m *Manager) makeLabDir(l store.Layout) error {
	if err := os.MkdirAll(filepath.Dir(l.Dir), 0o755); err != nil {
		return fmt.Errorf("make state dir: %w", err)
	}
	gid := -1
	if q, ok := m.VMs.(qemuGroup); ok {
		g, found, err := q.QEMUGroup()
		if err != nil {
			return fmt.Errorf("make lab dir: %w", err)
		}
		if found && g != os.Getegid() {
			gid = g
		}
	}
	err := os.Mkdir(l.Dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(l.State()); errors.Is(serr, os.ErrNotExist) {
			os.RemoveAll(l.Dir)
			err = os.Mkdir(l.Dir, 0o700)
		}
	}
	if err == nil && gid >= 0 {
		if err = os.Chown(l.Dir, -1, gid); err == nil {
			err = os.Chmod(l.Dir, 0o710)
		}
	}
	if err != nil {
		return fmt.Errorf("make lab dir: %w", err)
	}
	return nil
}

// qemuGroup is the part of VMs that knows the group QEMU runs as
// (*hypervisor.Conn has it; without it the lab dir stays 0700).
type qemuGroup interface {
	QEMUGroup() (gid int, ok bool, err error)
}

// creation is what the steps of one create share.
type creation struct {
	rec    *Recorder
	spec   *Spec
	plan   *Plan
	layout store.Layout
	opts   CreateOptions
	keys   *labKeys // made by the "keys" step
}

// createStep is one named step of create. Each step records what it
// makes in the state before making it, so the undo finds everything.
type createStep struct {
	name string
	run  func(ctx context.Context, c *creation) error
}

// createSteps is create, in order (as firecracker-go-sdk's handler
// lists): a new capability is a new step here.
func (m *Manager) createSteps() []createStep {
	return []createStep{
		{"images", func(ctx context.Context, c *creation) error { return m.ensureImages(ctx, c.plan) }},
		{"keys", func(ctx context.Context, c *creation) (err error) {
			c.keys, err = m.makeKeys(c.rec, c.layout, c.plan)
			return err
		}},
		{"mgmt", func(ctx context.Context, c *creation) error { return m.makeMgmt(ctx, c.rec, c.plan) }},
		{"host-links", func(ctx context.Context, c *creation) error {
			for i, h := range c.plan.Hosts {
				if err := kindOf(h).prepareLinks(ctx, m, c.rec, i); err != nil {
					return err
				}
			}
			return nil
		}},
		{"fabric", func(ctx context.Context, c *creation) error {
			return m.prepareFabric(ctx, c.rec, c.plan, c.rec.State().Fabric)
		}},
		{"boot", func(ctx context.Context, c *creation) error { return m.bootAll(ctx, c.rec, c.plan, c.keys, c.opts) }},
		{"shaping", func(ctx context.Context, c *creation) error { return m.startShaping(ctx, c.rec) }},
		{"routes", func(ctx context.Context, c *creation) error { return m.installRoutes(ctx, c.rec, c.spec) }},
		{"software", func(ctx context.Context, c *creation) error { return m.setupSoftware(ctx, c.rec, c.spec) }},
	}
}

// runSteps runs the create steps in order, says which one runs, and
// records how long each took in the state (inspect shows it, benchmarks
// read it). An error is wrapped as "step NAME: ...".
func (m *Manager) runSteps(ctx context.Context, c *creation) error {
	steps := m.createSteps()
	if m.editSteps != nil {
		steps = m.editSteps(steps)
	}
	for i, s := range steps {
		m.progress("[%d/%d] %s", i+1, len(steps), s.name)
		start := time.Now()
		err := s.run(ctx, c)
		t := store.StepTime{Name: s.name, Duration: time.Since(start).Round(time.Millisecond)}
		if err != nil {
			t.Error = err.Error()
		}
		if uerr := c.rec.Update(func(st *State) { st.Steps = append(st.Steps, t) }); uerr != nil && err == nil {
			err = uerr
		}
		if err != nil {
			return fmt.Errorf("step %s: %w", s.name, err)
		}
	}
	return nil
}

func (m *Manager) checkIDFree(p *Plan) error {
	names, err := m.Store.Labs()
	if err != nil {
		return err
	}
	for _, n := range names {
		other, err := m.Store.Load(n)
		if err == nil && other.ID == p.ID {
			return fmt.Errorf("lab %s has the same short id %s as lab %s: rename one of them", p.Lab, p.ID, other.Lab)
		}
	}
	return nil
}

// checkMemory refuses a lab that would not fit in the host's free memory,
// before anything is made.
func (m *Manager) checkMemory(sp *Spec, accel hypervisor.Accel) error {
	overhead := int64(kvmOverheadMiB)
	if accel == hypervisor.TCG {
		overhead = tcgOverheadMiB
	}
	var need int64
	for _, h := range sp.Hosts {
		if kindNamed(h.Kind).madeHere() {
			need += int64(h.MemoryMiB) + overhead
		}
	}
	avail := m.MemAvailable
	if avail == nil {
		avail = memAvailableMiB
	}
	have, err := avail()
	if err != nil {
		return fmt.Errorf("read free memory: %w", err)
	}
	if need > have {
		return fmt.Errorf("lab %s needs about %d MiB for its VMs (memory plus QEMU overhead), but this machine has %d MiB available: lower memory in [defaults] or per host, use fewer hosts, or destroy other labs", sp.Lab.Name, need, have)
	}
	return nil
}

func memAvailableMiB() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); err == nil {
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}

func (m *Manager) ensureImages(ctx context.Context, p *Plan) error {
	seen := map[string]bool{}
	for _, h := range p.Hosts {
		if !kindOf(h).madeHere() {
			continue
		}
		if seen[h.Image] {
			continue
		}
		seen[h.Image] = true
		if m.Images.Has(h.Image) {
			if !m.Images.Stale(h.Image) {
				continue
			}
			// The lab being made is recorded already; it is no user yet.
			users := slices.DeleteFunc(m.Store.LabsUsingImage(h.Image), func(n string) bool { return n == p.Lab })
			if len(users) > 0 {
				m.progress("image %s was built by an older forgelab recipe (slower boots); labs %v use it, so it stays: destroy them and run `forgelab image build --force %s`",
					h.Image, users, h.Image)
				continue
			}
			m.progress("image %s was built by an older forgelab recipe: rebuilding it", h.Image)
			if err := m.Images.Remove(h.Image); err != nil {
				return fmt.Errorf("rebuild stale image %s: %w", h.Image, err)
			}
		}
		if !contains(m.Images.Recipes(), h.Image) {
			return fmt.Errorf("host %s: image %q is not in the image store: import it with `forgelab image import %s FILE`, or use one of the built-in recipes (%s)", h.Name, h.Image, h.Image, strings.Join(m.Images.Recipes(), ", "))
		}
		m.progress("image %s is missing: building it from Debian packages (a few minutes, once)", h.Image)
		if err := m.Images.Build(ctx, h.Image, m.Progress); err != nil {
			return fmt.Errorf("build image %s: %w", h.Image, err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Destroy removes a lab from its saved state. It is idempotent and works
// on a lab whose create was killed at any point.
func (m *Manager) Destroy(ctx context.Context, name string) error {
	// A run playing on the lab ends first, as with Ctrl-C: it puts its
	// links back under the lab's lock, which destroy is about to hold.
	if st, err := m.Store.Load(name); err == nil {
		if mk, ok := readRunMarker(m.Store.LayoutOf(st)); ok && mk.Recorder.Alive() {
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := stopRunner(sctx, mk.Recorder)
			cancel()
			m.note(name, SourceForgelab, ActionRunStop, map[string]any{"run": mk.Dir, "pid": mk.Recorder.PID, "why": "destroy"}, err)
		}
	}
	unlock, err := m.Store.Lock(ctx, name, "destroy")
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.Store.Load(name)
	if errors.Is(err, store.ErrNoLab) {
		return err
	}
	if err != nil {
		// Damaged state: what it recorded is unknown, so sweep its id.
		return m.destroyBroken(ctx, name, err)
	}
	rec := m.Store.Recorder(st)
	if err := rec.Update(func(s *State) { s.Phase = store.PhaseDestroying }); err != nil {
		return err
	}
	return m.teardown(ctx, rec)
}

// teardown undoes recorded resources newest first. Domains go first and
// in parallel: they hold the taps and disks everything else refers to.
func (m *Manager) teardown(ctx context.Context, rec *Recorder) error {
	res := rec.Resources()
	var errs []error
	// A record that cannot be dropped (the state cannot be written) only
	// makes the next destroy find the object gone; it is reported, and
	// the lab dir stays so that destroy can run again.
	var forgetErr error
	var forgetMu sync.Mutex
	forget := func(r Resource) {
		if err := rec.Forget(r.Kind, r.Name); err != nil {
			forgetMu.Lock()
			if forgetErr == nil {
				forgetErr = err
			}
			forgetMu.Unlock()
		}
	}
	// Shaping first, while the hosts and taps it lives on still exist.
	for _, r := range res {
		if r.Kind == store.KindShaper {
			if err := m.stopShaping(ctx, rec); err != nil {
				errs = append(errs, err)
			} else {
				forget(r)
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	// A recorded domain whose metadata names another lab or state dir was
	// never made by this lab (a create that met another lab's domain):
	// it stays.
	var objs []hypervisor.Object
	if slices.ContainsFunc(res, func(r Resource) bool { return r.Kind == store.KindDomain }) {
		var err error
		if objs, err = m.VMs.Objects(ctx); err != nil {
			return fmt.Errorf("list domains before removing them: %w", err)
		}
	}
	for _, r := range res {
		if r.Kind != store.KindDomain {
			continue
		}
		if owner, ok := m.notOurs(objs, rec.State(), r.Name); ok {
			m.progress("domain %s belongs to %s, not to this lab: left alone", r.Name, owner)
			forget(r)
			continue
		}
		wg.Add(1)
		go func(r Resource) {
			defer wg.Done()
			err := m.VMs.RemoveDomain(ctx, r.Name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			forget(r)
		}(r)
	}
	wg.Wait()
	for i := len(res) - 1; i >= 0; i-- {
		r := res[i]
		var err error
		switch r.Kind {
		case store.KindDomain, store.KindShaper:
			continue
		case store.KindFabricd:
			err = m.Fabric.Stop(ctx, r.Name)
		case store.KindNetwork:
			err = m.VMs.RemoveNetwork(ctx, r.Name)
		case store.KindNetdev:
			err = m.Netdevs.DeleteLink(r.Name)
		case store.KindProcess:
			// Only the helper the pid file recorded: after a reboot its
			// number may be another process's. Older pid files hold a bare
			// pid; their helpers had the pid file's path in their argv.
			err = proc.Stop(context.WithoutCancel(ctx), r.Name, proc.StopOptions{LegacyMark: r.Name})
		case store.KindAdopted:
			err = m.undoAdopted(ctx, rec, r.Name)
		case store.KindFile:
			if err = os.Remove(r.Name); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		case store.KindDir:
			// The lab dir is last in the walk; removing it removes the
			// state, so only do it when everything else is gone.
			if len(errs) > 0 || forgetErr != nil {
				continue
			}
			err = os.RemoveAll(r.Name)
			if err == nil {
				continue // the state file went with it
			}
		default:
			err = fmt.Errorf("unknown resource kind %q", r.Kind)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		forget(r)
	}
	if forgetErr != nil {
		errs = append(errs, fmt.Errorf("update the lab's state: %w (the lab directory stays: run destroy again)", forgetErr))
	}
	return errors.Join(errs...)
}
