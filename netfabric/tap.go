package netfabric

import (
	"fmt"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// EnsureTap makes a persistent tap device for a VM NIC, up and without
// IPv6 of its own, so the host never talks on a lab link. It is
// idempotent. The VM attaches to it as libvirt
// <interface type='ethernet'><target dev='NAME' managed='no'/>: the
// kernel fabric makes it a bridge port, the userspace fabric reads it
// through AF_PACKET. A tap made here outlives VM restarts (libvirt's own
// taps do not), so shaping set on it stays; delete it with DeleteLink.
func EnsureTap(name string) error {
	if l, err := netlink.LinkByName(name); err == nil {
		if _, ok := l.(*netlink.Tuntap); !ok {
			return fmt.Errorf("create tap %s: a %s device of that name exists", name, l.Type())
		}
	} else {
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: name, MTU: 1500, TxQLen: 1000},
			Mode:      netlink.TUNTAP_MODE_TAP,
			// Single queue, no packet info, virtio-net headers: what QEMU's
			// virtio NIC opens it with (a mismatch in multi-queue fails).
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_ONE_QUEUE,
		}
		if err := netlink.LinkAdd(tap); err != nil {
			return addErr("tap", name, err)
		}
		for _, f := range tap.Fds {
			f.Close() // persistent: the device stays without an open fd
		}
	}
	writeSys(filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6"), "1")
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up tap %s: %w", name, err)
	}
	return nil
}

// AddPort makes dev (a VM's tap) a port of bridge, for the kernel fabric.
// It is idempotent.
func AddPort(bridge, dev string) error {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("port %s: %w", dev, err)
	}
	if l.Attrs().MasterIndex == br.Attrs().Index {
		return nil
	}
	if err := netlink.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("add %s to bridge %s: %w", dev, bridge, err)
	}
	return nil
}
