package labs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/guest"
	"github.com/forgelab/forgelab/netfabric/kernel"
	"github.com/forgelab/forgelab/netfabric/userspace"
	"github.com/forgelab/forgelab/provision"
)

// Fabrics, as the lab file names them.
const (
	FabricKernel    = "kernel"
	FabricUserspace = "userspace"
	FabricGuest     = "guest"
	FabricAuto      = "auto"
)

// Resource kinds of the link fabric.
const (
	KindFabricd = "fabricd" // the userspace fabric daemon (Name: the lab dir)
	KindShaper  = "shaper"  // kernel or guest shaping set up on links (Name: the fabric)
)

// Files in the lab dir that belong to the fabric.
const (
	kernelFabricFile = "kernel-fabric.json"
	guestFabricFile  = "guest-fabric.json"
	EventsFile       = "events.log"
)

// Fabric is the part of the link fabric the orchestrator needs; tests
// replace it with a fake. netfabric.Shaper does the shaping itself.
type Fabric interface {
	// Resolve turns "auto" into a concrete fabric and says why.
	Resolve(want string) (string, string)
	EnsureTap(name string) error
	AddPort(bridge, dev string) error
	// Launch starts the userspace fabric daemon for a lab.
	Launch(ctx context.Context, dir string, cfg userspace.Config) error
	Stop(ctx context.Context, dir string) error
}

// hostFabric is the real Fabric of this machine.
type hostFabric struct{ exe string }

func (hostFabric) Resolve(want string) (string, string) {
	switch want {
	case FabricKernel, FabricUserspace, FabricGuest:
		return want, "chosen in the lab file"
	}
	if err := kernel.HasNetem(); err != nil {
		return FabricUserspace, fmt.Sprintf("auto: the host kernel cannot shape with netem (%v), so forgelab's userspace engine forwards and shapes the links", err)
	}
	return FabricKernel, "auto: the host kernel has sch_netem, so links are Linux bridges shaped by netem"
}

func (hostFabric) EnsureTap(name string) error      { return netfabric.EnsureTap(name) }
func (hostFabric) AddPort(bridge, dev string) error { return netfabric.AddPort(bridge, dev) }

func (f hostFabric) Launch(ctx context.Context, dir string, cfg userspace.Config) error {
	c, err := userspace.Launch(ctx, []string{f.exe, "fabricd"}, dir, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

func (hostFabric) Stop(ctx context.Context, dir string) error { return userspace.Stop(ctx, dir) }

// impairment converts a lab file's quality into the fabric's terms.
func impairment(q Quality) netfabric.Impairment {
	return netfabric.Impairment{
		RateBits:  q.RateBits,
		Delay:     time.Duration(q.DelayNs),
		Jitter:    time.Duration(q.JitterNs),
		Loss:      q.LossPct,
		Duplicate: q.DuplicatePct,
		Reorder:   q.ReorderPct,
		Corrupt:   q.CorruptPct,
		Limit:     q.Limit,
	}
}

// FabricLinks is the plan's links as the shapers see them.
func FabricLinks(p *Plan) netfabric.Links {
	var links netfabric.Links
	for _, l := range p.Links {
		fl := netfabric.Link{Name: l.Name, Bridge: l.Bridge, Quality: impairment(l.Quality)}
		for _, host := range l.Endpoints {
			h := p.Host(host)
			for _, n := range h.NICs {
				if n.Link == l.Name {
					fl.Endpoints = append(fl.Endpoints, netfabric.Endpoint{Host: host, Tap: n.Tap, MAC: n.MAC, Iface: n.Name})
				}
			}
		}
		links = append(links, fl)
	}
	return links
}

// prepareFabric makes what the VMs' data NICs plug into, before any VM
// starts: a persistent tap per NIC, and bridges (kernel) or the fabric
// daemon (userspace).
func (m *Manager) prepareFabric(ctx context.Context, rec *Recorder, p *Plan, fabric string) error {
	for _, h := range p.Hosts {
		if h.Kind == "physical" {
			continue
		}
		for _, n := range h.NICs {
			if err := rec.Record(KindNetdev, n.Tap); err != nil {
				return err
			}
			if err := m.Fabric.EnsureTap(n.Tap); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
	}
	switch fabric {
	case FabricKernel, FabricGuest:
		// Guest shaping happens inside the hosts; the host side is a plain
		// bridge per link either way.
		for _, l := range p.Links {
			if err := rec.Record(KindNetdev, l.Bridge); err != nil {
				return err
			}
			if err := m.Netdevs.EnsureBridge(l.Bridge); err != nil {
				return fmt.Errorf("link %s: %w", l.Name, err)
			}
			for _, e := range FabricLinks(p) {
				if e.Name != l.Name {
					continue
				}
				for _, ep := range e.Endpoints {
					if ep.Tap == "" {
						continue
					}
					if err := m.Fabric.AddPort(l.Bridge, ep.Tap); err != nil {
						return fmt.Errorf("link %s: %w", l.Name, err)
					}
				}
			}
		}
	case FabricUserspace:
		if len(p.Links) == 0 {
			return nil
		}
		dir := m.Store.LabDir(p.Lab)
		if err := rec.Record(KindFabricd, dir); err != nil {
			return err
		}
		m.progress("link fabric: userspace engine (seed %d)", p.Seed)
		if err := m.Fabric.Launch(ctx, dir, userspace.Config{Seed: p.Seed, Links: FabricLinks(p)}); err != nil {
			return fmt.Errorf("start the link fabric: %w", err)
		}
	default:
		return fmt.Errorf("unknown fabric %q", fabric)
	}
	return nil
}

// startShaping applies the links' declared quality once the hosts are up
// (kernel: qdiscs on taps; guest: tc inside the hosts). The userspace
// engine already shapes from its config.
func (m *Manager) startShaping(ctx context.Context, rec *Recorder) error {
	st := rec.state
	if st.Fabric == FabricUserspace || len(st.Plan.Links) == 0 {
		return nil
	}
	s, err := m.Shaper(st)
	if err != nil {
		return err
	}
	if err := rec.Record(KindShaper, st.Fabric); err != nil {
		return err
	}
	if err := s.Setup(ctx); err != nil {
		return fmt.Errorf("shape links (%s): %w", st.Fabric, err)
	}
	return nil
}

// Shaper returns the running lab's shaper, for runtime changes from any
// process: the userspace one talks to the fabric daemon's socket, the
// others keep their state in a file in the lab dir.
func (m *Manager) Shaper(st *State) (netfabric.Shaper, error) {
	dir := m.Store.LabDir(st.Lab)
	links := FabricLinks(st.Plan)
	switch st.Fabric {
	case FabricUserspace:
		return userspace.NewClient(filepath.Join(dir, userspace.SocketFile)), nil
	case FabricKernel:
		return kernel.New(links, st.Plan.Seed, filepath.Join(dir, kernelFabricFile))
	case FabricGuest:
		g, err := guest.New(links, sshRunner{m.Store, st}, filepath.Join(dir, guestFabricFile))
		if err != nil {
			return nil, err
		}
		return guestShaper{g, links}, nil
	}
	return nil, fmt.Errorf("lab %s has no link fabric (%q)", st.Lab, st.Fabric)
}

// guestShaper adds capture to the guest fabric: shaping happens inside the
// hosts, but every link still crosses a bridge on this machine.
type guestShaper struct {
	*guest.Shaper
	links netfabric.Links
}

func (g guestShaper) Capture(ctx context.Context, link string, w io.Writer) error {
	return kernel.CaptureBridge(ctx, g.links, link, w)
}

// sshRunner runs guest-shaper commands as root inside lab hosts.
type sshRunner struct {
	store *Store
	st    *State
}

func (r sshRunner) Run(ctx context.Context, host, cmd string) (string, error) {
	c, err := r.store.Dial(ctx, r.st, host)
	if err != nil {
		return "", err
	}
	defer c.Close()
	out, err := c.Output(ctx, "sudo -n sh -c "+provision.ShellQuote(cmd))
	return string(out), err
}

// stopShaping undoes shaping; for the guest fabric a host that is already
// gone has nothing left to undo, so its errors only warn.
func (m *Manager) stopShaping(ctx context.Context, rec *Recorder) error {
	st := rec.state
	s, err := m.Shaper(st)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.Teardown(tctx)
	if err != nil && st.Fabric == FabricGuest {
		m.progress("warning: guest shaping not undone (%v); the VMs are removed anyway", err)
		return nil
	}
	return err
}

// LogEvent appends a timestamped line to the lab's event log.
func (s *Store) LogEvent(lab, format string, args ...any) error {
	f, err := os.OpenFile(filepath.Join(s.LabDir(lab), EventsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
	return err
}
