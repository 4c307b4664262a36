// Package fromlabs is a backend.Backend over the labs package: lab state
// from the state directory, link states from each lab's fabric, changes
// through the labs control path (validated, serialised with the CLI's and
// the scenarios', and logged with the caller's source in the lab's JSON
// event log), the recorded runs of telemetry/runs (runs.go), and libvirt's
// domain statistics of the lab's VMs. Workload values and the scenario
// clock are still to come.
package fromlabs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// Backend reads and changes the labs under one state directory.
type Backend struct {
	Store *store.Store
	// LibvirtURI is where host actions and statistics go; "" is the system
	// libvirtd.
	LibvirtURI string
	// Stats reads domain statistics; nil: a libvirt connection to
	// LibvirtURI, opened on first use and kept (the UI asks several times
	// a second).
	Stats func(domains []string) ([]hypervisor.DomainStats, error)
	// Forgelab is the forgelab binary a scenario started from serve runs
	// in (`forgelab run`, a process of its own); "" is this program.
	Forgelab string

	statsMu   sync.Mutex
	statsConn *hypervisor.Conn
}

// New reads the labs under stateDir.
func New(stateDir string) *Backend { return &Backend{Store: &store.Store{Dir: stateDir}} }

// control is the labs control path for link changes and runs (no libvirt
// needed).
func (b *Backend) control() *labs.Manager { return &labs.Manager{Store: b.Store} }

func (b *Backend) load(lab string) (*store.State, error) {
	st, err := b.Store.Load(lab)
	if errors.Is(err, store.ErrNoLab) {
		return nil, fmt.Errorf("%w: %w", backend.ErrNotFound, err)
	}
	return st, err
}

// notFound marks a lab that does not exist as backend.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, store.ErrNoLab) {
		return fmt.Errorf("%w: %w", backend.ErrNotFound, err)
	}
	return err
}

// Labs lists every lab; one whose state cannot be read is listed as
// broken rather than hiding the others.
func (b *Backend) Labs(ctx context.Context) ([]backend.LabSummary, error) {
	entries, err := b.Store.List()
	if err != nil {
		return nil, err
	}
	var out []backend.LabSummary
	for _, e := range entries {
		st := e.State
		if st == nil {
			out = append(out, backend.LabSummary{Name: e.Name, Phase: e.Phase()})
			continue
		}
		s := backend.LabSummary{Name: e.Name, Phase: st.Phase, Fabric: st.Fabric, Created: st.Created}
		if st.Plan != nil {
			s.Hosts, s.Links = len(st.Plan.Hosts), len(st.Plan.Links)
		}
		out = append(out, s)
	}
	return out, nil
}

// Topology is the lab's plan: positions are those of the lab file (the
// moving positions of a running scenario come with the scenario runner).
func (b *Backend) Topology(ctx context.Context, lab string) (*backend.Topology, error) {
	st, err := b.load(lab)
	if err != nil {
		return nil, err
	}
	t := &backend.Topology{Lab: st.Lab, Phase: st.Phase}
	p := st.Plan
	if p == nil {
		return t, nil
	}
	t.Mgmt = backend.Mgmt{Name: p.Mgmt.Network, Prefix: p.Mgmt.Prefix.String()}
	placed := false
	for _, h := range p.Hosts {
		placed = placed || h.Position != [3]float64{}
	}
	for _, h := range p.Hosts {
		bh := backend.Host{Name: h.Name, Kind: h.Kind, State: "unknown", MgmtIP: h.MgmtIP.String()}
		if bh.Kind == "" {
			bh.Kind = spec.KindVM
		}
		if placed {
			pos := h.Position
			bh.Position = &pos
		}
		if hs := st.Hosts[h.Name]; hs != nil && st.Phase == store.PhaseReady {
			bh.Up = hs.Ready
			if hs.Ready {
				bh.State = "running"
			}
		}
		t.Hosts = append(t.Hosts, bh)
	}
	for _, l := range p.Links {
		t.Links = append(t.Links, backend.Link{Name: l.Name, Endpoints: l.Endpoints})
	}
	return t, nil
}

// Links asks the lab's fabric, as `forgelab link show` does.
func (b *Backend) Links(ctx context.Context, lab string) (netfabric.State, error) {
	st, err := b.load(lab)
	if err != nil {
		return netfabric.State{}, err
	}
	if st.Plan == nil || st.Phase != store.PhaseReady {
		return netfabric.State{}, nil
	}
	return b.control().ShowLinks(ctx, lab)
}

// DomainStats are libvirt's statistics of the lab's running VMs, named
// as the run's hosts.csv names them.
func (b *Backend) DomainStats(ctx context.Context, lab string) ([]backend.DomainStats, error) {
	st, err := b.load(lab)
	if err != nil || st.Plan == nil || st.Phase != store.PhaseReady {
		return nil, err
	}
	hostOf := map[string]string{}
	var names []string
	for _, h := range st.Plan.Hosts {
		if h.Domain != "" && h.Kind != spec.KindPhysical {
			names = append(names, h.Domain)
			hostOf[h.Domain] = h.Name
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	raw, err := b.domainStats(names)
	if err != nil {
		return nil, err
	}
	out := make([]backend.DomainStats, 0, len(raw))
	for _, d := range raw {
		s := backend.DomainStats{Host: hostOf[d.Domain], Domain: d.Domain, CPUSeconds: d.CPUSeconds, MemoryBytes: d.BalloonBytes, RSSBytes: d.RSSBytes}
		for _, k := range d.Blocks {
			s.Blocks = append(s.Blocks, backend.BlockStats{Device: k.Device, ReadBytes: k.ReadBytes, WriteBytes: k.WriteBytes, ReadRequests: k.ReadRequests, WriteRequests: k.WriteRequests})
		}
		for _, n := range d.NICs {
			s.NICs = append(s.NICs, backend.NICStats{Device: n.Device, RxBytes: n.RxBytes, TxBytes: n.TxBytes, RxPackets: n.RxPackets, TxPackets: n.TxPackets})
		}
		out = append(out, s)
	}
	return out, nil
}

func (b *Backend) domainStats(names []string) ([]hypervisor.DomainStats, error) {
	if b.Stats != nil {
		return b.Stats(names)
	}
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	if b.statsConn == nil {
		c, err := hypervisor.Connect(b.LibvirtURI)
		if err != nil {
			return nil, err
		}
		b.statsConn = c
	}
	out, err := b.statsConn.DomainStats(names)
	if err != nil {
		// libvirtd restarted, perhaps: a new connection next time.
		b.statsConn.Close()
		b.statsConn = nil
	}
	return out, err
}

func (b *Backend) Workloads(ctx context.Context, lab string) ([]backend.WorkloadValue, error) {
	_, err := b.load(lab)
	return nil, err
}

// Processes are the latest samples of the run playing on the lab, if it
// samples processes.
func (b *Backend) Processes(ctx context.Context, lab string) ([]backend.ProcessStats, error) {
	st, err := b.load(lab)
	if err != nil {
		return nil, err
	}
	dir, ok := labs.CurrentRun(b.Store, st)
	if !ok {
		return nil, nil
	}
	r, err := runs.Open(dir)
	if err != nil {
		return nil, nil // the run ended meanwhile
	}
	rows, err := r.Processes()
	if err != nil || len(rows) == 0 {
		return nil, nil
	}
	// The latest sample of each host's processes.
	last := map[string]float64{}
	for _, p := range rows {
		last[p.Host] = max(last[p.Host], p.T)
	}
	var out []backend.ProcessStats
	for _, p := range rows {
		if p.T == last[p.Host] {
			out = append(out, backend.ProcessStats{Host: p.Host, Process: p.Process, Kind: p.Kind, Processes: p.Processes,
				RSSBytes: p.RSSBytes, OpenFDs: p.OpenFDs, CPUSeconds: p.CPUSeconds})
		}
	}
	return out, nil
}

// Scenario is the run playing on the lab, whoever started it: its
// scenario's name and clock from the run folder's run.json.
func (b *Backend) Scenario(ctx context.Context, lab string) (backend.ScenarioStatus, error) {
	st, err := b.load(lab)
	if err != nil {
		return backend.ScenarioStatus{}, err
	}
	dir, ok := labs.CurrentRun(b.Store, st)
	if !ok {
		return backend.ScenarioStatus{}, nil
	}
	r, err := runs.Open(dir)
	if err != nil {
		return backend.ScenarioStatus{}, nil // the run ended meanwhile
	}
	return backend.ScenarioStatus{Running: true, Name: r.Meta.Scenario, Clock: time.Since(r.Meta.Start)}, nil
}

// Events reads the lab's event log (events.jsonl); the cursor is the
// line number.
func (b *Backend) Events(ctx context.Context, lab string, after int64, limit int) ([]backend.Event, int64, error) {
	if _, err := b.load(lab); err != nil {
		return nil, after, err
	}
	events, err := b.Store.Events(lab)
	if err != nil {
		return nil, after, err
	}
	var out []backend.Event
	next := after
	for i, e := range events {
		n := int64(i + 1)
		if n <= after || (limit > 0 && len(out) >= limit) {
			continue
		}
		out = append(out, backend.Event{Seq: n, Time: e.Time, Source: e.Source, Action: e.Action, Args: e.Args, Result: e.Result, Error: e.Error})
		next = n
	}
	return out, next, nil
}

func (b *Backend) SetLink(ctx context.Context, source, lab, link, from string, c backend.QualityChange) error {
	_, err := b.control().SetLink(ctx, labs.Source(source), lab, link, from, labs.QualityChange{
		Clear: c.Clear, RateBits: c.RateBits, Delay: c.Delay, Jitter: c.Jitter, Distribution: c.Distribution,
		Loss: c.Loss, Duplicate: c.Duplicate, Reorder: c.Reorder, Corrupt: c.Corrupt, Limit: c.Limit,
	})
	return notFound(err)
}

func (b *Backend) SetLinkUp(ctx context.Context, source, lab, link string, up bool) error {
	return notFound(b.control().LinkUpDown(ctx, labs.Source(source), lab, link, up))
}

func (b *Backend) Partition(ctx context.Context, source, lab string, groups [][]string) error {
	return notFound(b.control().Partition(ctx, labs.Source(source), lab, groups))
}

func (b *Backend) Heal(ctx context.Context, source, lab string) error {
	return notFound(b.control().Heal(ctx, labs.Source(source), lab))
}

// HostAction connects to libvirt for the one call.
func (b *Backend) HostAction(ctx context.Context, source, lab, host, action string) error {
	if _, err := b.load(lab); err != nil {
		return err
	}
	m, conn, err := labs.Open(b.Store.Dir, b.LibvirtURI, io.Discard)
	if err != nil {
		return err
	}
	defer conn.Close()
	return notFound(m.HostAction(ctx, labs.Source(source), lab, host, hypervisor.HostAction(action)))
}

// StartScenario plays a scenario in a `forgelab run` of its own: the run
// outlives the request and records its folder as one started at a
// terminal.
func (b *Backend) StartScenario(ctx context.Context, source, lab, scenario string) error {
	if _, err := b.load(lab); err != nil {
		return err
	}
	exe := b.Forgelab
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find the forgelab binary to run the scenario in: %w", err)
		}
	}
	_, err := b.control().StartRun(ctx, labs.Source(source), exe, lab, scenario)
	return runError(err)
}

// StopScenario ends the lab's run, whoever started it.
func (b *Backend) StopScenario(ctx context.Context, source, lab string) error {
	if _, err := b.load(lab); err != nil {
		return err
	}
	return runError(b.control().StopRun(ctx, labs.Source(source), lab))
}

// runError marks a run's refusals as the client's mistake.
func runError(err error) error {
	switch {
	case errors.Is(err, labs.ErrBadScenario):
		return fmt.Errorf("%w: %w", backend.ErrBadInput, err)
	case errors.Is(err, labs.ErrRunActive), errors.Is(err, labs.ErrNoRun), errors.Is(err, labs.ErrNotReady):
		return fmt.Errorf("%w: %w", backend.ErrConflict, err)
	}
	return notFound(err)
}

var _ backend.Backend = (*Backend)(nil)
