package fromlabs_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/backend/fromlabs"
)

// DomainStats asks libvirt for the lab's VMs only (not its physical
// hosts) and names each by its host.
func TestDomainStats(t *testing.T) {
	dir, _ := savedLab(t, &store.State{Plan: &labs.Plan{
		Hosts: []labs.HostPlan{
			{Name: "a", Domain: "fl-x-a"},
			{Name: "p", Kind: spec.KindPhysical},
		},
	}})
	var asked []string
	b := fromlabs.New(dir)
	b.Stats = func(names []string) ([]hypervisor.DomainStats, error) {
		asked = names
		return []hypervisor.DomainStats{{Domain: "fl-x-a", CPUSeconds: 3.5, BalloonBytes: 512 << 20, RSSBytes: 400 << 20,
			Blocks: []hypervisor.BlockStats{{Device: "vda", ReadBytes: 1, WriteBytes: 2, ReadRequests: 3, WriteRequests: 4}},
			NICs:   []hypervisor.NICStats{{Device: "vnet0", RxBytes: 5, TxBytes: 6, RxPackets: 7, TxPackets: 8}}}}, nil
	}
	got, err := b.DomainStats(context.Background(), "l1")
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.DomainStats{{Host: "a", Domain: "fl-x-a", CPUSeconds: 3.5, MemoryBytes: 512 << 20, RSSBytes: 400 << 20,
		Blocks: []backend.BlockStats{{Device: "vda", ReadBytes: 1, WriteBytes: 2, ReadRequests: 3, WriteRequests: 4}},
		NICs:   []backend.NICStats{{Device: "vnet0", RxBytes: 5, TxBytes: 6, RxPackets: 7, TxPackets: 8}}}}
	if !reflect.DeepEqual(asked, []string{"fl-x-a"}) || !reflect.DeepEqual(got, want) {
		t.Errorf("asked %v; DomainStats =\n%+v\nwant\n%+v", asked, got, want)
	}
	if ps, err := b.Processes(context.Background(), "l1"); err != nil || len(ps) != 0 {
		t.Errorf("Processes with no run playing = %v, %v", ps, err)
	}
}
