package kernel

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/forgelab/forgelab/netfabric"
)

// TestEnsureClsact: adding the clsact qdisc is idempotent without asking
// first (asking means dumping every device's qdiscs).
func TestEnsureClsact(t *testing.T) {
	k := newLab(t, "kk", netfabric.Impairment{}, "10.95.0.1", "10.95.0.2")
	tap, err := netlink.LinkByName(k.env.Hosts[1].Dev)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := ensureClsact(tap); err != nil {
			t.Fatalf("ensureClsact #%d: %v", i+1, err)
		}
	}
	if has, err := hasClsact(tap); err != nil || !has {
		t.Fatalf("clsact on %s: %v, %v", tap.Attrs().Name, has, err)
	}
}
