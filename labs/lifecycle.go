package labs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
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
}

// Netdevs makes and removes host network devices.
type Netdevs interface {
	EnsureBridge(name string) error
	DeleteLink(name string) error
}

// Images is the image store as the orchestrator needs it.
type Images interface {
	Has(name string) bool
	Path(name string) string
	Build(ctx context.Context, name string, progress io.Writer) error
	Recipes() []string
	CreateOverlay(ctx context.Context, base, dst string, sizeBytes int64) error
	WriteSeed(path string, s SeedInput) error
}

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
}

// CreateOptions tune one create.
type CreateOptions struct {
	Accel        hypervisor.Accel
	AccelReason  string
	Parallel     int           // boots at once; 0 = fit the CPUs
	ReadyTimeout time.Duration // per host; 0 = default for the accelerator
	User         string        // login user in the guests
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
// wired. On any failure it removes what it made and returns the error.
func (m *Manager) Create(ctx context.Context, sp *Spec, opts CreateOptions) (st *State, err error) {
	unlock, err := m.Store.Lock(sp.Lab.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
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
	if err := CheckSoftware(sp, lp); err != nil {
		return nil, err
	}

	dir := m.Store.LabDir(sp.Lab.Name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("make state dir: %w", err)
	}
	// The lab dir holds state.json: it is made first and removed last. A
	// dir without state is what a create killed before its first save
	// leaves: nothing was made yet, so it can go.
	if err := os.Mkdir(dir, 0o755); errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(m.Store.statePath(sp.Lab.Name)); errors.Is(serr, os.ErrNotExist) {
			os.RemoveAll(dir)
			err = os.Mkdir(dir, 0o755)
		}
		if err != nil {
			return nil, fmt.Errorf("make lab dir: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("make lab dir: %w", err)
	}
	fabric, fabricReason := m.Fabric.Resolve(lp.Fabric)
	st = &State{
		Lab: sp.Lab.Name, ID: lp.ID, File: sp.File, Phase: PhaseCreating,
		Created: time.Now().UTC(), Accel: string(opts.Accel), AccelReason: opts.AccelReason,
		Fabric: fabric, FabricReason: fabricReason,
		User: opts.User, Plan: lp, Hosts: map[string]*HostState{},
		Resources: []Resource{{Kind: KindDir, Name: dir}},
	}
	rec := m.Store.Recorder(st)
	if err := rec.Update(func(*State) {}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		// Undo on a context that Ctrl-C cannot cancel, with its own limit.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		rec.Update(func(s *State) { s.Phase, s.Error = PhaseFailed, err.Error() })
		m.progress("create failed: removing what was made")
		if cerr := m.teardown(cctx, rec); cerr != nil {
			err = fmt.Errorf("%w\n(cleanup also failed: %v; run `forgelab destroy %s`)", err, cerr, sp.Lab.Name)
		}
	}()

	if err := m.ensureImages(ctx, lp); err != nil {
		return nil, err
	}
	keys, err := m.makeKeys(rec, dir, lp)
	if err != nil {
		return nil, err
	}
	if err := m.makeMgmt(ctx, rec, lp); err != nil {
		return nil, err
	}
	if err := m.prepareTunnels(ctx, rec, lp); err != nil { // physical hosts' links
		return nil, err
	}
	if err := m.prepareFabric(ctx, rec, lp, st.Fabric); err != nil {
		return nil, err
	}
	if err := m.bootAll(ctx, rec, lp, keys, opts); err != nil {
		return nil, err
	}
	if err := m.startShaping(ctx, rec); err != nil {
		return nil, err
	}
	if err := m.setupSoftware(ctx, rec, sp); err != nil {
		return nil, err
	}
	if err := rec.Update(func(s *State) { s.Phase = PhaseReady }); err != nil {
		return nil, err
	}
	return st, nil
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
		if h.Kind == "" || h.Kind == "vm" {
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
		if h.Kind == "physical" {
			continue
		}
		if seen[h.Image] || m.Images.Has(h.Image) {
			seen[h.Image] = true
			continue
		}
		seen[h.Image] = true
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
	unlock, err := m.Store.Lock(name)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.Store.Load(name)
	if err != nil {
		return err
	}
	rec := m.Store.Recorder(st)
	if err := rec.Update(func(s *State) { s.Phase = PhaseDestroying }); err != nil {
		return err
	}
	return m.teardown(ctx, rec)
}

// teardown undoes recorded resources newest first. Domains go first and
// in parallel: they hold the taps and disks everything else refers to.
func (m *Manager) teardown(ctx context.Context, rec *Recorder) error {
	res := rec.Resources()
	var errs []error
	// Shaping first, while the hosts and taps it lives on still exist.
	for _, r := range res {
		if r.Kind == KindShaper {
			if err := m.stopShaping(ctx, rec); err != nil {
				errs = append(errs, err)
			} else {
				rec.Forget(r.Kind, r.Name)
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, r := range res {
		if r.Kind != KindDomain {
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
			rec.Forget(r.Kind, r.Name)
		}(r)
	}
	wg.Wait()
	for i := len(res) - 1; i >= 0; i-- {
		r := res[i]
		var err error
		switch r.Kind {
		case KindDomain, KindShaper:
			continue
		case KindFabricd:
			err = m.Fabric.Stop(ctx, r.Name)
		case KindNetwork:
			err = m.VMs.RemoveNetwork(ctx, r.Name)
		case KindNetdev:
			err = m.Netdevs.DeleteLink(r.Name)
		case KindProcess:
			err = stopProcess(r.Name)
		case KindAdopted:
			err = m.undoAdopted(ctx, rec, r.Name)
		case KindFile:
			if err = os.Remove(r.Name); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		case KindDir:
			// The lab dir is last in the walk; removing it removes the
			// state, so only do it when everything else is gone.
			if len(errs) > 0 {
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
		rec.Forget(r.Kind, r.Name)
	}
	return errors.Join(errs...)
}
