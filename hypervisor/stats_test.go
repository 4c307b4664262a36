package hypervisor

import (
	"context"
	"reflect"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

// libvirt's records become forgelab's units, and only what libvirt set
// counts as known.
func TestStatsFrom(t *testing.T) {
	tests := []struct {
		name string
		in   libvirt.DomainStats
		want DomainStats
	}{
		{"everything", libvirt.DomainStats{
			Cpu:     &libvirt.DomainStatsCPU{TimeSet: true, Time: 12_500_000_000},
			Balloon: &libvirt.DomainStatsBalloon{CurrentSet: true, Current: 524288, RssSet: true, Rss: 491520},
			Block: []libvirt.DomainStatsBlock{
				{Name: "vda", RdBytes: 1000, WrBytes: 2000, RdReqs: 3, WrReqs: 4},
				{Name: "vda", BackingIndexSet: true, BackingIndex: 1, RdBytes: 99}, // the base image under the overlay
				{Name: "vdb", RdBytes: 10, WrBytes: 20, RdReqs: 1, WrReqs: 2},
			},
			Net: []libvirt.DomainStatsNet{{Name: "vnet0", RxBytes: 5, TxBytes: 6, RxPkts: 7, TxPkts: 8}},
		}, DomainStats{Domain: "d", CPUSeconds: 12.5, BalloonBytes: 512 << 20, RSSBytes: 480 << 20,
			Blocks: []BlockStats{{"vda", 1000, 2000, 3, 4}, {"vdb", 10, 20, 1, 2}},
			NICs:   []NICStats{{"vnet0", 5, 6, 7, 8}},
			Has:    map[string]bool{"cpu": true, "balloon": true, "rss": true}}},
		{"no balloon driver", libvirt.DomainStats{Cpu: &libvirt.DomainStatsCPU{TimeSet: true, Time: 1e9}},
			DomainStats{Domain: "d", CPUSeconds: 1, Has: map[string]bool{"cpu": true}}},
		{"nothing", libvirt.DomainStats{}, DomainStats{Domain: "d", Has: map[string]bool{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statsFrom("d", tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("statsFrom:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Stopped and absent domains are left out, not errors: a scenario may
// have stopped a host.
func TestDomainStatsSkipsStoppedDomains(t *testing.T) {
	c, v, _ := newFakeConn()
	ctx := context.Background()
	for _, n := range []string{"fl-1a2b-a", "fl-1a2b-b"} {
		if err := c.StartDomain(ctx, testDomain(n)); err != nil {
			t.Fatal(err)
		}
	}
	v.stats = map[string]libvirt.DomainStats{"fl-1a2b-a": {Cpu: &libvirt.DomainStatsCPU{TimeSet: true, Time: 2e9}}}
	if err := c.Shutdown(ctx, "fl-1a2b-b", time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := c.DomainStats([]string{"fl-1a2b-a", "fl-1a2b-b", "fl-gone"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Domain != "fl-1a2b-a" || got[0].CPUSeconds != 2 {
		t.Errorf("DomainStats = %+v, want only fl-1a2b-a with 2 CPU seconds", got)
	}
	running, err := c.RunningDomains()
	if err != nil || !reflect.DeepEqual(running, []string{"fl-1a2b-a"}) {
		t.Errorf("RunningDomains = %v, %v; want [fl-1a2b-a]", running, err)
	}
}
