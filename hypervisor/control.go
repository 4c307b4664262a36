package hypervisor

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirtxml"
)

// HostAction is a fault or power action on a VM.
type HostAction string

const (
	ActionStop   HostAction = "stop"   // ACPI power-off, forced after a grace period
	ActionStart  HostAction = "start"  // boot a stopped VM
	ActionKill   HostAction = "kill"   // pull the plug
	ActionPause  HostAction = "pause"  // freeze the vCPUs (the host looks hung)
	ActionResume HostAction = "resume" // thaw
	ActionReboot HostAction = "reboot" // reset, like a watchdog
)

// HostActions lists the actions in a stable order, for help texts.
var HostActions = []HostAction{ActionStop, ActionStart, ActionKill, ActionPause, ActionResume, ActionReboot}

// Do applies a power or fault action to a domain.
func (c *Conn) Do(ctx context.Context, name string, a HostAction) error {
	if a == ActionStop {
		// Its own bounds: each call of the ACPI wait is bounded.
		dom, err := boundedValue(ctx, c, "look up domain "+name, func() (domain, error) { return c.v.lookupDomain(name) })
		if err != nil {
			return fmt.Errorf("look up domain %s: %w", name, err)
		}
		defer dom.free()
		if active, err := boundedValue(ctx, c, "state of domain "+name, func() (bool, error) { return dom.isActive(), nil }); err != nil || !active {
			return err
		}
		return c.shutdown(ctx, name, dom, 30*time.Second)
	}
	return c.bounded(ctx, string(a)+" domain "+name, func() error { return c.do(name, a) })
}

func (c *Conn) do(name string, a HostAction) error {
	dom, err := c.v.lookupDomain(name)
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	defer dom.free()
	switch a {
	case ActionStart:
		if dom.isActive() {
			return nil
		}
		err = dom.create()
	case ActionKill:
		if !dom.isActive() {
			return nil
		}
		err = dom.destroy()
	case ActionPause:
		err = dom.suspend()
	case ActionResume:
		err = dom.resume()
	case ActionReboot:
		err = dom.reset()
	default:
		return fmt.Errorf("unknown host action %q (use %v)", a, HostActions)
	}
	if err != nil {
		return fmt.Errorf("%s domain %s: %w", a, name, err)
	}
	return nil
}

// SetNICLink cuts (up=false) or restores a NIC's carrier, found by MAC. The
// guest sees its link go down, as when a cable is pulled; libvirt does
// this through QEMU's set_link.
func (c *Conn) SetNICLink(ctx context.Context, name, mac string, up bool) error {
	return c.bounded(ctx, "set a NIC link of domain "+name, func() error { return c.setNICLink(name, mac, up) })
}

func (c *Conn) setNICLink(name, mac string, up bool) error {
	dom, err := c.v.lookupDomain(name)
	if err != nil {
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	defer dom.free()
	desc, err := dom.xml()
	if err != nil {
		return fmt.Errorf("read domain %s: %w", name, err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(desc); err != nil {
		return fmt.Errorf("parse domain %s: %w", name, err)
	}
	for _, iface := range d.Devices.Interfaces {
		if iface.MAC == nil || iface.MAC.Address != mac {
			continue
		}
		state := "up"
		if !up {
			state = "down"
		}
		iface.Link = &libvirtxml.DomainInterfaceLink{State: state}
		x, err := iface.Marshal()
		if err != nil {
			return err
		}
		if err := dom.updateLiveDevice(x); err != nil {
			return fmt.Errorf("set link %s of %s %s: %w", mac, name, state, err)
		}
		return nil
	}
	return fmt.Errorf("domain %s has no NIC with MAC %s (was it redefined by hand? `virsh domiflist %s` lists its NICs)", name, mac, name)
}
