// Package netfabric makes and shapes the links between lab hosts.
package netfabric

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vishvananda/netlink"
)

// ErrExists says a network device of that name exists already.
var ErrExists = errors.New("a network device of that name already exists")

// NewBridge is EnsureBridge for a bridge that must not exist yet: create
// makes its devices with it, so it never adopts, and later removes, a
// device it did not make.
func NewBridge(name string) error {
	if _, err := netlink.LinkByName(name); err == nil {
		return fmt.Errorf("create bridge %s: %w", name, ErrExists)
	}
	return EnsureBridge(name)
}

// NewTap is EnsureTap for a tap that must not exist yet (see NewBridge).
func NewTap(name string) error {
	if _, err := netlink.LinkByName(name); err == nil {
		return fmt.Errorf("create tap %s: %w", name, ErrExists)
	}
	return EnsureTap(name)
}

// addErr wraps LinkAdd's error; one made meanwhile by someone else is
// ErrExists.
func addErr(what, name string, err error) error {
	if errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("create %s %s: %w", what, name, ErrExists)
	}
	return fmt.Errorf("create %s %s: %w", what, name, err)
}

// EnsureBridge makes a plain Linux bridge for one lab link or segment and
// brings it up. It is idempotent: an existing bridge of that name is kept.
func EnsureBridge(name string) error {
	if l, err := netlink.LinkByName(name); err == nil {
		if l.Type() != "bridge" {
			return fmt.Errorf("create bridge %s: a %s device of that name exists", name, l.Type())
		}
		return netlink.LinkSetUp(l)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: 1500}}
	if err := netlink.LinkAdd(br); err != nil {
		return addErr("bridge", name, err)
	}
	// The host takes no part in a lab link: no IPv6 autoconf on the bridge,
	// and no forwarding delay so a new port passes frames at once.
	writeSys(filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6"), "1")
	writeSys(filepath.Join("/sys/class/net", name, "bridge/forward_delay"), "0")
	if err := DisableBridgeNetfilter(name); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", name, err)
	}
	return nil
}

// DisableBridgeNetfilter turns off iptables/nftables calls for one bridge.
// With br_netfilter loaded (Docker, firewalld) a host firewall would
// otherwise drop lab traffic forwarded across the bridge.
func DisableBridgeNetfilter(name string) error {
	for _, f := range []string{"nf_call_iptables", "nf_call_ip6tables", "nf_call_arptables"} {
		p := filepath.Join("/sys/class/net", name, "bridge", f)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue // br_netfilter not loaded: nothing to turn off
		}
		if err := os.WriteFile(p, []byte("0"), 0); err != nil {
			return fmt.Errorf("bridge %s: turn off %s: %w", name, f, err)
		}
	}
	return nil
}

// DeleteLink removes a netdev by name; a missing one is not an error, so
// destroy can run any number of times.
func DeleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// LinkExists reports whether a netdev of that name exists.
func LinkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

func writeSys(path, value string) {
	// Best effort: these knobs tune behaviour but their absence is harmless.
	_ = os.WriteFile(path, []byte(value), 0)
}

// LinkInfo is one netdev of this machine: its name and kind (bridge, tuntap,
// veth, vxlan, ifb, ...).
type LinkInfo struct{ Name, Type string }

// ListLinks lists every netdev of this machine's network namespace, so
// create can check its planned names and gc can find leftovers.
func ListLinks() ([]LinkInfo, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list network devices: %w", err)
	}
	out := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		out = append(out, LinkInfo{Name: l.Attrs().Name, Type: l.Type()})
	}
	return out, nil
}
