package hypervisor

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// QEMUGroup is the group QEMU runs as under this libvirt (libvirt's DAC
// base label: libvirt-qemu on Debian, qemu:///system). libvirt chowns a
// domain's disks and cdroms to that user and group while it runs, and
// back afterwards, but not the directories above them: a lab directory
// closed to everyone else must still let this group through. ok is false
// when libvirt does no DAC labelling (a session daemon: QEMU runs as the
// caller).
func (c *Conn) QEMUGroup() (gid int, ok bool, err error) {
	if c.raw == nil {
		return 0, false, nil
	}
	x, err := c.raw.GetCapabilities()
	if err != nil {
		return 0, false, fmt.Errorf("libvirt capabilities: %w", err)
	}
	return dacGroup(x)
}

// dacGroup reads the group of the DAC base label ("+UID:+GID") for qemu
// or kvm domains from a capabilities document.
func dacGroup(capsXML string) (int, bool, error) {
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return 0, false, fmt.Errorf("libvirt capabilities: %w", err)
	}
	for _, m := range caps.Host.SecModel {
		if m.Name != "dac" {
			continue
		}
		for _, l := range m.Labels {
			if l.Type != "qemu" && l.Type != "kvm" {
				continue
			}
			_, g, found := strings.Cut(l.Value, ":")
			gid, err := strconv.Atoi(strings.TrimPrefix(g, "+"))
			if !found || err != nil || gid < 0 {
				return 0, false, fmt.Errorf("libvirt capabilities: DAC base label %q is not +UID:+GID", l.Value)
			}
			return gid, true, nil
		}
	}
	return 0, false, nil
}
