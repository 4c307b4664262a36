package fromlabs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// The series a replay loads: positions and link quality for the topology
// at any moment, and what a person most often charts. Others stay in the
// run folder for `forgelab runs show` and compare.
var replaySeries = []string{
	"forgelab_host_position_meters", "forgelab_host_up",
	"forgelab_link_up", "forgelab_link_loss_ratio", "forgelab_link_rate_bytes_per_second",
	"forgelab_link_delay_seconds", "forgelab_link_tx_bytes_total", "forgelab_link_dropped_packets_total",
	"libvirt_domain_info_cpu_time_seconds_total", runs.MetricWorkloadValue, runs.MetricScenarioEvents,
}

// maxPoints bounds each series sent to a page: a long run at 10 Hz would
// otherwise be megabytes of JSON for a slider a few hundred pixels wide.
const maxPoints = 2000

// Runs lists the recorded runs of every lab, newest first.
func (b *Backend) Runs(ctx context.Context) ([]backend.RunSummary, error) {
	list, err := runs.List(runs.Root(b.Store.Dir), "")
	if err != nil {
		return nil, err
	}
	out := make([]backend.RunSummary, 0, len(list))
	for _, s := range list {
		out = append(out, backend.RunSummary{Lab: s.Lab, ID: s.ID, Scenario: s.Scenario, Variant: s.Variant,
			Start: s.Start, End: s.End, Status: string(s.Status)})
	}
	return out, nil
}

// Run reads one run for a replay.
func (b *Backend) Run(ctx context.Context, lab, id string) (*backend.Run, error) {
	dir, err := runs.Resolve(runs.Root(b.Store.Dir), lab+"/"+id)
	if errors.Is(err, runs.ErrNoRun) {
		return nil, fmt.Errorf("%w: %w", backend.ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", backend.ErrBadInput, err) // a name that is no run name
	}
	r, err := runs.Open(dir)
	if err != nil {
		return nil, err
	}
	m := r.Meta
	out := &backend.Run{RunSummary: backend.RunSummary{Lab: m.Lab, ID: m.ID, Scenario: m.Scenario, Variant: m.Variant,
		Start: m.Start, End: m.End, Status: string(m.Status)}}
	for _, name := range replaySeries {
		ss, err := r.Select(name)
		if err != nil {
			continue // not recorded in this run
		}
		for _, s := range ss {
			out.Series = append(out.Series, thin(backend.Series{Name: s.Name, Labels: s.Labels, T: s.T, V: s.V}))
		}
	}
	evs, err := r.Events()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("events of run %s/%s: %w", lab, id, err)
	}
	for i, e := range evs {
		out.Events = append(out.Events, backend.Event{Seq: int64(i + 1), Time: e.Time, Source: e.Source,
			Action: e.Action, Args: e.Args, Result: e.Result, Error: e.Error})
	}
	plan := readPlan(dir)
	out.Topology = runTopology(plan, m.Lab, out.Series)
	if plan != nil {
		if out.Paths, err = runPaths(r, plan); err != nil {
			return nil, fmt.Errorf("routes of run %s/%s: %w", lab, id, err)
		}
	}
	return out, nil
}

// thin keeps at most maxPoints samples, evenly spaced, the last one kept.
func thin(s backend.Series) backend.Series {
	n := len(s.T)
	if n <= maxPoints {
		return s
	}
	step := float64(n-1) / float64(maxPoints-1)
	t, v := make([]float64, maxPoints), make([]float64, maxPoints)
	for i := range maxPoints {
		j := int(float64(i) * step)
		t[i], v[i] = s.T[j], s.V[j]
	}
	s.T, s.V = t, v
	return s
}

// readPlan is the run's copy of its lab's plan, nil when it has none (a
// run imported from elsewhere may not).
func readPlan(dir string) *labs.Plan {
	data, err := os.ReadFile(filepath.Join(dir, runs.PlanFile))
	if err != nil {
		return nil
	}
	var p labs.Plan
	if json.Unmarshal(data, &p) != nil || len(p.Hosts) == 0 {
		return nil
	}
	return &p
}

// runTopology is the lab as the run's plan.json describes it, or, without
// one, as its series name hosts and links (endpoints: the hosts that sent).
func runTopology(p *labs.Plan, lab string, series []backend.Series) *backend.Topology {
	t := &backend.Topology{Lab: lab, Phase: "recorded"}
	if p != nil {
		t.Mgmt = backend.Mgmt{Name: p.Mgmt.Network, Prefix: p.Mgmt.Prefix.String()}
		for _, h := range p.Hosts {
			pos := h.Position
			kind := h.Kind
			if kind == "" {
				kind = "vm"
			}
			t.Hosts = append(t.Hosts, backend.Host{Name: h.Name, Kind: kind, Position: &pos, Up: true, State: "running"})
		}
		for _, l := range p.Links {
			t.Links = append(t.Links, backend.Link{Name: l.Name, Endpoints: l.Endpoints})
		}
		return t
	}
	hosts := map[string]bool{}
	ends := map[string][]string{}
	for _, s := range series {
		if h := s.Labels["host"]; h != "" {
			hosts[h] = true
		}
		if l := s.Labels["link"]; l != "" {
			if from := s.Labels["from"]; from != "" && !slices.Contains(ends[l], from) {
				ends[l] = append(ends[l], from)
				hosts[from] = true
			} else if _, ok := ends[l]; !ok {
				ends[l] = nil
			}
		}
	}
	for _, h := range sortedKeys(hosts) {
		t.Hosts = append(t.Hosts, backend.Host{Name: h, Kind: "vm", Up: true, State: "running"})
	}
	for _, l := range sortedKeys(ends) {
		e := ends[l]
		sort.Strings(e)
		t.Links = append(t.Links, backend.Link{Name: l, Endpoints: e})
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var _ backend.Runs = (*Backend)(nil)
