package labs

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/guest"
	"github.com/forgelab/forgelab/netfabric/kernel"
	"github.com/forgelab/forgelab/netfabric/userspace"
	"github.com/forgelab/forgelab/provision"
)

// Fabric is the part of the link fabric the orchestrator needs; tests
// replace it with a fake. netfabric.Shaper does the shaping itself.
type Fabric interface {
	// Resolve turns "auto" into a concrete fabric and says why.
	Resolve(want string) (string, string)
	// NewTap makes a tap that must not exist yet (else an error wrapping
	// netfabric.ErrExists).
	NewTap(name string) error
	AddPort(bridge, dev string) error
	// Launch starts the userspace fabric daemon for a lab.
	Launch(ctx context.Context, dir string, cfg userspace.Config) error
	Stop(ctx context.Context, dir string) error
}

// hostFabric is the real Fabric of this machine.
type hostFabric struct{ exe string }

func (hostFabric) Resolve(want string) (string, string) {
	if _, ok := fabrics[want]; ok {
		return want, "chosen in the lab file"
	}
	if err := kernel.HasNetem(); err != nil {
		return spec.FabricUserspace, fmt.Sprintf("auto: the host kernel cannot shape with netem (%v), so forgelab's userspace engine forwards and shapes the links", err)
	}
	return spec.FabricKernel, "auto: the host kernel has sch_netem, so links are Linux bridges shaped by netem"
}

func (hostFabric) NewTap(name string) error         { return netfabric.NewTap(name) }
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
		// netfabric's field names; the lab file's loss_burst in tc's order.
		Distribution: q.Distribution,
		GE:           netfabric.GilbertElliott{P: q.LossBurst[0], R: q.LossBurst[1], OneMinusH: q.LossBurst[2], OneMinusK: q.LossBurst[3]},
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

// fabricBackend is one way of making and shaping a lab's links. Each
// fabric of the lab file is one type, chosen in the fabrics map: nothing
// else in the orchestrator switches on the fabric's name.
type fabricBackend interface {
	// prepare makes what the VMs' data NICs plug into (beyond the taps),
	// before any VM starts.
	prepare(ctx context.Context, m *Manager, rec *Recorder, p *Plan) error
	// shaper is the running lab's shaper, usable from any process.
	shaper(m *Manager, st *State) (netfabric.Shaper, error)
	// shapedAtStart reports whether prepare already applied the links'
	// declared quality (no Setup after boot, no Teardown before destroy).
	shapedAtStart() bool
	// teardownMayFail reports whether a failed Teardown only warns: the
	// guest fabric's shaping lives in VMs that destroy removes anyway.
	teardownMayFail() bool
}

// fabrics maps the lab file's fabric names to their backends.
var fabrics = map[string]fabricBackend{
	spec.FabricKernel:    kernelFabric{},
	spec.FabricUserspace: userspaceFabric{},
	spec.FabricGuest:     guestFabric{},
}

func fabricOf(name string) (fabricBackend, error) {
	if f, ok := fabrics[name]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("unknown fabric %q (this forgelab knows %s)", name, strings.Join(slices.Sorted(maps.Keys(fabrics)), ", "))
}

// bridgeLinks joins each link's taps in a Linux bridge: the host side of
// the kernel and guest fabrics.
func bridgeLinks(m *Manager, rec *Recorder, p *Plan) error {
	links := FabricLinks(p)
	for i, l := range p.Links {
		if err := rec.Record(store.KindNetdev, l.Bridge); err != nil {
			return err
		}
		if err := m.Netdevs.NewBridge(l.Bridge); err != nil {
			return notMade(rec, store.KindNetdev, l.Bridge, fmt.Errorf("link %s: %w", l.Name, err))
		}
		for _, ep := range links[i].Endpoints {
			if ep.Tap == "" {
				continue
			}
			if err := m.Fabric.AddPort(l.Bridge, ep.Tap); err != nil {
				return fmt.Errorf("link %s: %w", l.Name, err)
			}
		}
	}
	return nil
}

// kernelFabric: Linux bridges, shaped by netem qdiscs on the taps.
type kernelFabric struct{}

func (kernelFabric) prepare(ctx context.Context, m *Manager, rec *Recorder, p *Plan) error {
	return bridgeLinks(m, rec, p)
}

func (kernelFabric) shaper(m *Manager, st *State) (netfabric.Shaper, error) {
	return kernel.New(FabricLinks(st.Plan), st.Plan.Seed, m.Store.LayoutOf(st).KernelFabric())
}

func (kernelFabric) shapedAtStart() bool   { return false }
func (kernelFabric) teardownMayFail() bool { return false }

// guestFabric: Linux bridges on this machine, shaped by tc inside the
// hosts.
type guestFabric struct{}

func (guestFabric) prepare(ctx context.Context, m *Manager, rec *Recorder, p *Plan) error {
	return bridgeLinks(m, rec, p)
}

func (guestFabric) shaper(m *Manager, st *State) (netfabric.Shaper, error) {
	links := FabricLinks(st.Plan)
	g, err := guest.New(links, sshRunner{m.Store, st}, m.Store.LayoutOf(st).GuestFabric())
	if err != nil {
		return nil, err
	}
	return guestShaper{g, links}, nil
}

func (guestFabric) shapedAtStart() bool   { return false }
func (guestFabric) teardownMayFail() bool { return true }

// userspaceFabric: forgelab's engine forwards and shapes every link; it
// runs as a daemon per lab and shapes from its config from the start.
type userspaceFabric struct{}

func (userspaceFabric) prepare(ctx context.Context, m *Manager, rec *Recorder, p *Plan) error {
	if len(p.Links) == 0 {
		return nil
	}
	dir := m.Store.LayoutOf(rec.State()).Dir
	if err := rec.Record(store.KindFabricd, dir); err != nil {
		return err
	}
	m.progress("link fabric: userspace engine (seed %d)", p.Seed)
	if err := m.Fabric.Launch(ctx, dir, userspace.Config{Seed: p.Seed, Links: FabricLinks(p)}); err != nil {
		return fmt.Errorf("start the link fabric: %w", err)
	}
	return nil
}

func (userspaceFabric) shaper(m *Manager, st *State) (netfabric.Shaper, error) {
	return userspace.NewClient(m.Store.LayoutOf(st).FabricSocket()), nil
}

func (userspaceFabric) shapedAtStart() bool   { return true }
func (userspaceFabric) teardownMayFail() bool { return false }

// prepareFabric makes what the VMs' data NICs plug into, before any VM
// starts: a persistent tap per NIC (they outlive VM restarts, so shaping
// and captures stay put), then what the lab's fabric needs.
func (m *Manager) prepareFabric(ctx context.Context, rec *Recorder, p *Plan, fabric string) error {
	fb, err := fabricOf(fabric)
	if err != nil {
		return err
	}
	for _, h := range p.Hosts {
		if !kindOf(h).madeHere() {
			continue
		}
		for _, n := range h.NICs {
			if err := rec.Record(store.KindNetdev, n.Tap); err != nil {
				return err
			}
			if err := m.Fabric.NewTap(n.Tap); err != nil {
				return notMade(rec, store.KindNetdev, n.Tap, fmt.Errorf("host %s: %w", h.Name, err))
			}
		}
	}
	return fb.prepare(ctx, m, rec, p)
}

// startShaping applies the links' declared quality once the hosts are up
// (kernel: qdiscs on taps; guest: tc inside the hosts).
func (m *Manager) startShaping(ctx context.Context, rec *Recorder) error {
	st := rec.State()
	fb, err := fabricOf(st.Fabric)
	if err != nil {
		return err
	}
	if fb.shapedAtStart() || len(st.Plan.Links) == 0 {
		return nil
	}
	s, err := m.shaper(st)
	if err != nil {
		return err
	}
	if err := rec.Record(store.KindShaper, st.Fabric); err != nil {
		return err
	}
	if err := s.Setup(ctx); err != nil {
		return fmt.Errorf("shape links (%s): %w", st.Fabric, err)
	}
	return nil
}

// shaper returns the running lab's shaper, for runtime changes from any
// process: the userspace one talks to the fabric daemon's socket, the
// others keep their state in a file in the lab dir.
func (m *Manager) shaper(st *State) (netfabric.Shaper, error) {
	if st.Plan == nil || st.Fabric == "" {
		return nil, fmt.Errorf("lab %s has no link fabric yet (phase %s)", st.Lab, st.Phase)
	}
	fb, err := fabricOf(st.Fabric)
	if err != nil {
		return nil, err
	}
	if m.Shapers != nil {
		return m.Shapers(st)
	}
	return fb.shaper(m, st)
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
	c, err := dial(ctx, r.store, r.st, host)
	if err != nil {
		return "", err
	}
	defer c.Close()
	out, err := c.Output(ctx, "sudo -n sh -c "+provision.ShellQuote(cmd))
	return string(out), err
}

// stopShaping undoes shaping; where the fabric allows (guest), a host
// that is already gone has nothing left to undo, so errors only warn.
func (m *Manager) stopShaping(ctx context.Context, rec *Recorder) error {
	st := rec.State()
	fb, err := fabricOf(st.Fabric)
	if err != nil {
		return err
	}
	s, err := m.shaper(st)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.Teardown(tctx)
	if err != nil && fb.teardownMayFail() {
		m.progress("warning: %s shaping not undone (%v); the VMs are removed anyway", st.Fabric, err)
		return nil
	}
	return err
}
