package fromlabs_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/backend/fromlabs"
)

// TestReadsState: a lab's saved state becomes a topology; events come
// from its log; a missing lab is ErrNotFound; changes are refused as
// unsupported.
func TestReadsState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := &labs.Store{Dir: dir}
	if err := os.MkdirAll(s.LabDir("l1"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := &labs.State{Lab: "l1", Phase: labs.PhaseReady, Plan: &labs.Plan{
		Lab:  "l1",
		Mgmt: labs.MgmtPlan{Network: "fl-x-mgmt", Prefix: netip.MustParsePrefix("10.1.2.0/24")},
		Hosts: []labs.HostPlan{
			{Name: "a", Position: [3]float64{1, 2, 3}},
			{Name: "b", Kind: "physical"},
		},
		Links: []labs.LinkPlan{{Name: "ab", Endpoints: []string{"a", "b"}}},
	}, Hosts: map[string]*labs.HostState{"a": {Ready: true}}}
	if err := s.Recorder(st).Update(func(*labs.State) {}); err != nil {
		t.Fatal(err)
	}
	log := "2026-01-01T00:00:00Z link set ab from a: loss 1%\n2026-01-01T00:00:01Z heal\n"
	if err := os.WriteFile(filepath.Join(s.LabDir("l1"), labs.EventsFile), []byte(log), 0o644); err != nil {
		t.Fatal(err)
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
	if err != nil || len(evs) != 1 || evs[0].Action != "heal" || next != 2 {
		t.Errorf("Events after 1 = %+v, %d, %v", evs, next, err)
	}
	if _, err := b.Topology(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("missing lab: %v, want ErrNotFound", err)
	}
	if err := b.Heal(ctx, "api", "l1"); !errors.Is(err, backend.ErrUnsupported) {
		t.Errorf("Heal: %v, want ErrUnsupported", err)
	}
}
