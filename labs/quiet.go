package labs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/telemetry/quiet"
)

// runningDomainLister is an optional capability of VMs: every running
// domain on the machine (*hypervisor.Conn has it).
type runningDomainLister interface {
	RunningDomains() ([]string, error)
}

// CheckQuiet checks that the machine and the lab's hosts are quiet enough
// to measure on (telemetry/quiet): the entry point for `forgelab run
// --quiet` and for benchmarks. window is how long processes' CPU is
// watched (0: 2 s).
func (m *Manager) CheckQuiet(ctx context.Context, lab string, window time.Duration) (quiet.Report, error) {
	st, err := m.Store.Load(lab)
	if err != nil {
		return quiet.Report{}, err
	}
	if st.Phase != store.PhaseReady || st.Plan == nil {
		return quiet.Report{}, fmt.Errorf("lab %s is %s, not ready: nothing to check (forgelab inspect %s says more)", lab, st.Phase, lab)
	}
	in := quiet.Inputs{Window: window, OwnPIDs: []int{os.Getpid()}}
	if l, ok := m.VMs.(runningDomainLister); ok {
		in.RunningDomains = l.RunningDomains
	}
	for _, h := range st.Plan.Hosts {
		if kindOf(h).madeHere() {
			in.OwnDomains = append(in.OwnDomains, h.Domain)
			if pid, err := hypervisor.DomainPID(h.Domain); err == nil {
				in.OwnPIDs = append(in.OwnPIDs, pid)
			}
		}
	}
	l := m.Store.LayoutOf(st)
	// The lab's helpers (coordd, the runner, the fabric engine) write pid
	// files in its directory: their CPU is the lab's, when the process is
	// still the one recorded.
	pidFiles, _ := filepath.Glob(filepath.Join(l.Dir, "*.pid"))
	for _, f := range append([]string{l.CoordPID(), l.RunnerPID()}, pidFiles...) {
		if r, err := proc.ReadFile(f); err == nil && r.Matches(f) {
			in.OwnPIDs = append(in.OwnPIDs, r.PID)
		}
	}
	if entries, err := m.Store.List(); err == nil {
		for _, e := range entries {
			if e.Name != lab && e.State != nil && e.State.Phase == store.PhaseReady {
				in.OtherLabs = append(in.OtherLabs, e.Name)
			}
		}
	}
	var conns []Remote
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, h := range st.Plan.Hosts {
		name := h.Name
		c, err := m.software().Connect(ctx, st, name)
		if err != nil {
			in.Guests = append(in.Guests, quiet.Guest{Name: name, Run: func(context.Context, string) ([]byte, error) { return nil, err }})
			continue
		}
		conns = append(conns, c)
		rr, ok := c.(rootRunner)
		if !ok {
			continue
		}
		g := quiet.Guest{Name: name, Run: rr.RootOutput}
		if h := st.Plan.Host(name); !kindOf(*h).madeHere() {
			for _, n := range h.NICs {
				g.LabIfaces = append(g.LabIfaces, n.Name)
			}
			g.LabSent = func(ctx context.Context) (uint64, error) { return m.deliveredTo(ctx, st, name) }
		}
		in.Guests = append(in.Guests, g)
	}
	return quiet.Check(ctx, in)
}

// deliveredTo counts the packets the lab's fabric has delivered to host
// so far: what the other hosts of its links sent that reached a receiver.
// On a segment of more than two hosts that counts the copies to the
// others too, so the quiet check errs towards calling a host quiet.
func (m *Manager) deliveredTo(ctx context.Context, st *State, host string) (uint64, error) {
	sh, err := m.shaper(st)
	if err != nil {
		return 0, err
	}
	fs, err := sh.Show(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, l := range fs.Links {
		if pl := st.Plan.Link(l.Name); pl == nil || !slices.Contains(pl.Endpoints, host) {
			continue
		}
		for _, d := range l.Directions {
			if d.From == host {
				continue
			}
			if d.Counters == nil {
				return 0, fmt.Errorf("%w: the %s fabric does not count packets", errors.ErrUnsupported, fs.Shaper)
			}
			n += d.Counters.TxPackets
		}
	}
	return n, nil
}

// ErrNoisy is returned by Run when a quiet run was asked for and the
// check saw noise.
var ErrNoisy = errors.New("the machine is not quiet")
