package netfabric

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// VXLAN is one end of a unicast VXLAN tunnel: a link's frames to and
// from a host on another machine (an adopted physical host).
type VXLAN struct {
	Name   string
	VNI    uint32
	Local  netip.Addr // zero: the source address the routing table picks towards Remote
	Remote netip.Addr
	Port   int // UDP destination port; 0 is 4789
}

// AddVXLAN makes the device, up, with MTU 1500 (the lab's frames pass
// whole; the outer packets may be fragmented) and no IPv6 of its own, and
// returns the local address it uses. The caller adds it to a bridge or a
// fabric. A device of that name that exists is an error: it is not this
// tunnel.
func AddVXLAN(v VXLAN) (netip.Addr, error) {
	if _, err := netlink.LinkByName(v.Name); err == nil {
		return netip.Addr{}, fmt.Errorf("create vxlan %s: a device of that name exists", v.Name)
	}
	local := v.Local
	if !local.IsValid() {
		routes, err := netlink.RouteGet(v.Remote.AsSlice())
		if err != nil || len(routes) == 0 {
			return netip.Addr{}, fmt.Errorf("create vxlan %s: no route to %s: %v", v.Name, v.Remote, err)
		}
		a, ok := netip.AddrFromSlice(routes[0].Src)
		if !ok {
			return netip.Addr{}, fmt.Errorf("create vxlan %s: no source address towards %s", v.Name, v.Remote)
		}
		local = a.Unmap()
	}
	port := v.Port
	if port == 0 {
		port = 4789
	}
	dev := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: v.Name, MTU: 1500},
		VxlanId:   int(v.VNI),
		SrcAddr:   net.IP(local.AsSlice()),
		Group:     net.IP(v.Remote.AsSlice()),
		Port:      port,
		Learning:  true,
	}
	if err := netlink.LinkAdd(dev); err != nil {
		return netip.Addr{}, fmt.Errorf("create vxlan %s (VNI %d to %s): %w", v.Name, v.VNI, v.Remote, err)
	}
	writeSys(filepath.Join("/proc/sys/net/ipv6/conf", v.Name, "disable_ipv6"), "1")
	if err := netlink.LinkSetUp(dev); err != nil {
		netlink.LinkDel(dev)
		return netip.Addr{}, fmt.Errorf("bring up vxlan %s: %w", v.Name, err)
	}
	return local, nil
}
