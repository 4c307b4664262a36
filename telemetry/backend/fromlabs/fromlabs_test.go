package fromlabs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/backend/fromlabs"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// TestReadsState: a lab's saved state becomes a topology; events come
// from its JSON event log; a missing lab is ErrNotFound; changes go
// through the labs control path and are logged with their source.
func TestReadsState(t *testing.T) {
	ctx := context.Background()
	dir, s := savedLab(t, &store.State{Plan: &labs.Plan{
		Hosts: []labs.HostPlan{
			{Name: "a", Position: [3]float64{1, 2, 3}},
			{Name: "b", Kind: spec.KindPhysical},
		},
		Links: []labs.LinkPlan{{Name: "ab", Endpoints: []string{"a", "b"}}},
	}, Hosts: map[string]*store.HostState{"a": {Ready: true}}})
	for _, e := range []store.Event{{Source: "cli", Action: "link.set", Result: "ok"}, {Source: "cli", Action: "heal", Result: "ok"}} {
		if err := s.AppendEvent("l1", e); err != nil {
			t.Fatal(err)
		}
	}
	b := fromlabs.New(dir)
	ls, err := b.Labs(ctx)
	if err != nil || len(ls) != 1 || ls[0].Name != "l1" || ls[0].Hosts != 2 || ls[0].Links != 1 {
		t.Fatalf("Labs = %+v, %v", ls, err)
	}
	topo, err := b.Topology(ctx, "l1")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Mgmt.Prefix != "10.1.2.0/24" || len(topo.Hosts) != 2 || *topo.Hosts[0].Position != [3]float64{1, 2, 3} ||
		!topo.Hosts[0].Up || topo.Hosts[1].Up || topo.Hosts[0].Kind != "vm" || topo.Hosts[1].Kind != "physical" {
		t.Errorf("Topology = %+v", topo)
	}
	evs, next, err := b.Events(ctx, "l1", 1, 10)
	if err != nil || len(evs) != 1 || evs[0].Action != "heal" || evs[0].Source != "cli" || next != 2 {
		t.Errorf("Events after 1 = %+v, %d, %v", evs, next, err)
	}
	if _, err := b.Topology(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("missing lab: %v, want ErrNotFound", err)
	}
	if err := b.Heal(ctx, "api", "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Heal of a missing lab: %v, want ErrNotFound", err)
	}
	// This lab has no fabric: the change is refused, and logged as the
	// API's.
	if err := b.Heal(ctx, "api", "l1"); err == nil {
		t.Error("Heal of a lab without a fabric succeeded")
	}
	if evs, _, _ := b.Events(ctx, "l1", 2, 10); len(evs) != 1 || evs[0].Source != "api" || evs[0].Action != "heal" || evs[0].Result != "error" {
		t.Errorf("event of the refused heal: %+v", evs)
	}
	// Scenarios: nothing plays; a lab without its lab file, a scenario
	// named by a path and stopping what does not play are the client's
	// mistakes.
	if sc, err := b.Scenario(ctx, "l1"); err != nil || sc.Running {
		t.Errorf("Scenario with no run: %+v, %v", sc, err)
	}
	if err := b.StartScenario(ctx, "api", "l1", ""); !errors.Is(err, backend.ErrBadInput) {
		t.Errorf("StartScenario without a lab file: %v, want ErrBadInput", err)
	}
	if err := b.StartScenario(ctx, "api", "l1", "../etc/passwd"); !errors.Is(err, backend.ErrBadInput) {
		t.Errorf("StartScenario of a path: %v, want ErrBadInput", err)
	}
	if err := b.StopScenario(ctx, "api", "l1"); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("StopScenario with no run: %v, want ErrConflict", err)
	}
	if err := b.StartScenario(ctx, "api", "nope", ""); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("StartScenario of a missing lab: %v, want ErrNotFound", err)
	}
}

// TestRuns: a run recorded by telemetry/runs lists and reads back for a
// replay: positions, link quality, events, and a topology from the series
// when the run has no plan.
func TestRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rec, err := runs.Create(runs.Root(dir), runs.Meta{Lab: "handover", Scenario: "drift"})
	if err != nil {
		t.Fatal(err)
	}
	start := rec.Start()
	for i := range 5 {
		at := start.Add(time.Duration(i) * time.Second)
		rec.Position(at, runs.Position{Host: "a", X: float64(-10 * i)})
		rec.Position(at, runs.Position{Host: "b", X: 100})
		rec.Links(at, netfabric.State{Links: []netfabric.LinkState{{Name: "ab", Up: true, Directions: []netfabric.Direction{
			{From: "a", Quality: netfabric.Impairment{Loss: float64(10 * i)}},
			{From: "b"},
		}}}})
	}
	rec.Event(runs.Event{Time: start.Add(2 * time.Second), Source: runs.SourceScenario, Action: "link.set", Args: map[string]any{"link": "ab"}})
	if err := rec.Close(runs.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}

	b := fromlabs.New(dir)
	list, err := b.Runs(ctx)
	if err != nil || len(list) != 1 || list[0].Lab != "handover" || list[0].Status != "complete" {
		t.Fatalf("Runs = %+v, %v", list, err)
	}
	run, err := b.Run(ctx, "handover", list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string, labels map[string]string) *backend.Series {
		for i, s := range run.Series {
			ok := s.Name == name
			for k, v := range labels {
				ok = ok && s.Labels[k] == v
			}
			if ok {
				return &run.Series[i]
			}
		}
		return nil
	}
	if s := find("forgelab_host_position_meters", map[string]string{"host": "a", "axis": "x"}); s == nil || len(s.V) != 5 || s.V[4] != -40 {
		t.Errorf("position of a: %+v", s)
	}
	if s := find("forgelab_link_loss_ratio", map[string]string{"link": "ab", "from": "a"}); s == nil || s.V[len(s.V)-1] != 0.4 {
		t.Errorf("loss of ab from a: %+v", s)
	}
	if len(run.Events) != 1 || run.Events[0].Action != "link.set" {
		t.Errorf("events: %+v", run.Events)
	}
	if run.Topology == nil || len(run.Topology.Hosts) != 2 || len(run.Topology.Links) != 1 || len(run.Topology.Links[0].Endpoints) != 2 {
		t.Errorf("topology from the series: %+v", run.Topology)
	}
	for _, c := range []struct {
		lab, id string
		want    error
	}{
		{"handover", "20990101T000000Z-0000", backend.ErrNotFound},
		{"..", "x", backend.ErrBadInput},
	} {
		if _, err := b.Run(ctx, c.lab, c.id); !errors.Is(err, c.want) {
			t.Errorf("Run(%q, %q) = %v, want %v", c.lab, c.id, err, c.want)
		}
	}
}

// TestRunPaths: Alice's route, as her JSON lines record it (device, next
// hop, Bob's address), becomes a path over the plan's links, one entry
// each time it changes.
func TestRunPaths(t *testing.T) {
	pre := netip.MustParsePrefix
	nic := func(link, dev, addr string) labs.NICPlan {
		return labs.NICPlan{Link: link, Name: dev, Addresses: []netip.Prefix{pre(addr)}}
	}
	plan := labs.Plan{Lab: "tri",
		Hosts: []labs.HostPlan{
			{Name: "a", Node4: netip.MustParseAddr("10.255.0.1"), NICs: []labs.NICPlan{nic("ab", "eth1", "10.0.1.1/30"), nic("ca", "eth2", "10.0.3.2/30")}},
			{Name: "b", Node4: netip.MustParseAddr("10.255.0.2"), NICs: []labs.NICPlan{nic("ab", "eth1", "10.0.1.2/30"), nic("bc", "eth2", "10.0.2.1/30")}},
			{Name: "c", Node4: netip.MustParseAddr("10.255.0.3"), NICs: []labs.NICPlan{nic("bc", "eth1", "10.0.2.2/30"), nic("ca", "eth2", "10.0.3.1/30")}},
		},
		Links: []labs.LinkPlan{{Name: "ab", Endpoints: []string{"a", "b"}}, {Name: "bc", Endpoints: []string{"b", "c"}}, {Name: "ca", Endpoints: []string{"c", "a"}}},
	}
	dir := t.TempDir()
	rec, err := runs.Create(runs.Root(dir), runs.Meta{Lab: "tri"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(plan)
	if err := rec.SavePlan(data); err != nil {
		t.Fatal(err)
	}
	start := rec.Start()
	for i, line := range []string{
		`{"dev":"eth1","via":"10.0.1.2","to":"10.255.0.2"}`, // direct over ab
		`{"dev":"eth1","via":"10.0.1.2","to":"10.255.0.2"}`, // the same: no new entry
		`{"dev":"eth2","via":"10.0.3.1","to":"10.255.0.2"}`, // over c
		`{"dev":"","via":"","to":"10.255.0.2"}`,             // no route
		`{"dev":"eth1","via":"","to":"10.255.0.2"}`,         // direct, no gateway
		`{"delivered":5}`,                          // no route fields
		`{"dev":"eth1","via":"","to":"192.0.2.1"}`, // a peer outside the lab
	} {
		if err := rec.WorkloadLine(start.Add(time.Duration(i)*time.Second), "a", "alice", runs.Stdout, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(runs.StatusComplete, ""); err != nil {
		t.Fatal(err)
	}
	list, err := fromlabs.New(dir).Runs(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("Runs = %+v, %v", list, err)
	}
	run, err := fromlabs.New(dir).Run(context.Background(), "tri", list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range run.Paths {
		got = append(got, fmt.Sprintf("%.0f %s %v %v", p.T, p.Name, p.Hosts, p.Links))
	}
	want := []string{
		"0 alice→b [a b] [ab]",
		"2 alice→b [a c b] [ca bc]",
		"3 alice→b [] []",
		"4 alice→b [a b] [ab]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// savedLab saves st as the ready lab l1 (management 10.1.2.0/24) in a
// new state dir.
func savedLab(t *testing.T, st *store.State) (string, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	s := &store.Store{Dir: dir}
	l, _ := s.Lab("l1")
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st.Lab, st.Phase = "l1", store.PhaseReady
	st.Plan.Lab = "l1"
	st.Plan.Mgmt = labs.MgmtPlan{Network: "fl-x-mgmt", Prefix: netip.MustParsePrefix("10.1.2.0/24")}
	if err := s.Recorder(st).Update(func(*store.State) {}); err != nil {
		t.Fatal(err)
	}
	return dir, s
}
