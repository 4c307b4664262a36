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

// The redirect has a fixed handle, so adding it where it is fails rather
// than stacking a second filter (a fast path that misjudged the layout
// then takes the careful one).
func TestAddRedirectRefusesASecond(t *testing.T) {
	k := newLab(t, "kf", netfabric.Impairment{RateBits: 10e6}, "10.89.0.1", "10.89.0.2")
	tap, err := netlink.LinkByName(k.env.Hosts[0].Dev)
	if err != nil {
		t.Fatal(err)
	}
	ifb, err := netlink.LinkByName(k.env.Hosts[0].Dev + "i")
	if err != nil {
		t.Fatal(err)
	}
	if err := addRedirect(conn{}, tap, ifb); err == nil {
		t.Error("a second redirect was added")
	}
	fs, err := netlink.FilterList(tap, netlink.HANDLE_MIN_INGRESS)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.Attrs().Priority == prioRedirect {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d redirect filters, want 1", n)
	}
	if !k.reach(t, 0, 1) || !k.reach(t, 1, 0) {
		t.Error("ping lost on a shaped link")
	}
}
