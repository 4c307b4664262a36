// Package fromlabs is a read-only backend.Backend over today's labs
// package: lab state from the state directory, link states from each
// lab's fabric, and the recorded runs of telemetry/runs (runs.go). Changes answer backend.ErrUnsupported until the labs
// control path (one API for every caller, with a source and a JSON event
// log) is wired in its place; libvirt statistics, workload values and the
// scenario clock arrive with it.
package fromlabs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
)

// Backend reads the labs under one state directory.
type Backend struct {
	Store *labs.Store
}

// New reads the labs under stateDir.
func New(stateDir string) *Backend { return &Backend{Store: &labs.Store{Dir: stateDir}} }

func (b *Backend) load(lab string) (*labs.State, error) {
	st, err := b.Store.Load(lab)
	if errors.Is(err, labs.ErrNoLab) {
		return nil, fmt.Errorf("%w: %w", backend.ErrNotFound, err)
	}
	return st, err
}

// Labs lists every lab with state; a damaged one is listed as such rather
// than hiding the others.
func (b *Backend) Labs(ctx context.Context) ([]backend.LabSummary, error) {
	names, err := b.Store.Labs()
	if err != nil {
		return nil, fmt.Errorf("list labs in %s: %w", b.Store.Dir, err)
	}
	var out []backend.LabSummary
	for _, n := range names {
		st, err := b.Store.Load(n)
		if err != nil {
			out = append(out, backend.LabSummary{Name: n, Phase: "damaged"})
			continue
		}
		s := backend.LabSummary{Name: n, Phase: st.Phase, Fabric: st.Fabric, Created: st.Created}
		if st.Plan != nil {
			s.Hosts, s.Links = len(st.Plan.Hosts), len(st.Plan.Links)
		}
		out = append(out, s)
	}
	return out, nil
}

// Topology is the lab's plan: positions are those of the lab file (the
// moving positions of a running scenario come with the control path).
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
			bh.Kind = "vm"
		}
		if placed {
			pos := h.Position
			bh.Position = &pos
		}
		if hs := st.Hosts[h.Name]; hs != nil && st.Phase == labs.PhaseReady {
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
	if st.Plan == nil || st.Phase != labs.PhaseReady {
		return netfabric.State{}, nil
	}
	sh, err := (&labs.Manager{Store: b.Store}).Shaper(st)
	if err != nil {
		return netfabric.State{}, err
	}
	return sh.Show(ctx)
}

func (b *Backend) DomainStats(ctx context.Context, lab string) ([]backend.DomainStats, error) {
	_, err := b.load(lab)
	return nil, err
}

func (b *Backend) Workloads(ctx context.Context, lab string) ([]backend.WorkloadValue, error) {
	_, err := b.load(lab)
	return nil, err
}

func (b *Backend) Scenario(ctx context.Context, lab string) (backend.ScenarioStatus, error) {
	_, err := b.load(lab)
	return backend.ScenarioStatus{}, err
}

// Events reads today's text event log ("<RFC 3339 time> <what>" a line);
// the cursor is the line number.
func (b *Backend) Events(ctx context.Context, lab string, after int64, limit int) ([]backend.Event, int64, error) {
	if _, err := b.load(lab); err != nil {
		return nil, after, err
	}
	f, err := os.Open(filepath.Join(b.Store.LabDir(lab), labs.EventsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, after, nil
	}
	if err != nil {
		return nil, after, err
	}
	defer f.Close()
	var out []backend.Event
	next := after
	sc := bufio.NewScanner(f)
	for n := int64(1); sc.Scan(); n++ {
		if n <= after || (limit > 0 && len(out) >= limit) {
			continue
		}
		ts, what, _ := strings.Cut(sc.Text(), " ")
		t, _ := time.Parse(time.RFC3339Nano, ts)
		action, _, _ := strings.Cut(what, " ")
		out = append(out, backend.Event{Seq: n, Time: t, Action: action, Args: map[string]any{"text": what}, Result: "ok"})
		next = n
	}
	return out, next, sc.Err()
}

var errReadOnly = fmt.Errorf("%w: serve cannot change labs until the labs control path is wired in; use the forgelab CLI (forgelab link set, partition, heal, host) meanwhile", backend.ErrUnsupported)

func (b *Backend) SetLink(ctx context.Context, source, lab, link, from string, c backend.QualityChange) error {
	return errReadOnly
}
func (b *Backend) SetLinkUp(ctx context.Context, source, lab, link string, up bool) error {
	return errReadOnly
}
func (b *Backend) Partition(ctx context.Context, source, lab string, groups [][]string) error {
	return errReadOnly
}
func (b *Backend) Heal(ctx context.Context, source, lab string) error { return errReadOnly }
func (b *Backend) HostAction(ctx context.Context, source, lab, host, action string) error {
	return errReadOnly
}
func (b *Backend) StartScenario(ctx context.Context, source, lab, scenario string) error {
	return errReadOnly
}
func (b *Backend) StopScenario(ctx context.Context, source, lab string) error { return errReadOnly }

var _ backend.Backend = (*Backend)(nil)
