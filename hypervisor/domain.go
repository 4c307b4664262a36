package hypervisor

import (
	"encoding/xml"
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// NIC is one virtio network card of a domain. Exactly one of Network,
// Bridge, Tap or UDP says where it plugs in.
type NIC struct {
	MAC     string
	Network string // libvirt network name (the management NIC)
	Bridge  string // Linux bridge name (kernel fabric)
	Tap     string // host-side device name libvirt gives the tap it makes
	// TapExisting uses a tap forgelab made itself (type='ethernet',
	// managed='no'): the userspace fabric reads its host side.
	TapExisting bool
	UDP         *UDPEndpoint // type='udp' endpoint (userspace fabric over UDP)
}

// UDPEndpoint is a QEMU udp netdev: frames go to Remote from Local.
type UDPEndpoint struct {
	LocalAddr  string
	LocalPort  int
	RemoteAddr string
	RemotePort int
}

// DomainConfig is everything needed to define one lab VM.
type DomainConfig struct {
	Name       string // libvirt domain name, carries the lab's prefix
	Title      string // shown by virsh list --title: "forgelab lab/host"
	Lab, LabID string // written into <metadata> (LabOf reads them back)
	// StateDir is the state directory whose lab owns the domain, also in
	// <metadata>: `forgelab gc` of another state dir leaves it alone.
	StateDir   string
	Accel      Accel
	VCPUs      int
	MemoryMiB  int
	Disk       string // qcow2 overlay
	Seed       string // cloud-init NoCloud ISO
	SerialLog  string // file the serial console is copied to
	NICs       []NIC
	TBCacheMiB int // TCG translation cache; 0 = QEMU default
	// Kernel, Initrd and Cmdline boot the VM's kernel directly (the
	// image's own, kept next to it) instead of through BIOS and the disk's
	// boot loader; empty: boot from the disk.
	Kernel, Initrd, Cmdline string
}

// DomainXML renders cfg as libvirt domain XML.
func DomainXML(cfg DomainConfig) (string, error) {
	if cfg.Name == "" || cfg.Disk == "" {
		return "", fmt.Errorf("domain config needs a name and a disk")
	}
	if (cfg.Kernel == "") != (cfg.Initrd == "") {
		return "", fmt.Errorf("domain %s: direct boot needs both a kernel and an initrd", cfg.Name)
	}
	dom := &libvirtxml.Domain{
		Type:   "qemu",
		Name:   cfg.Name,
		Title:  cfg.Title,
		Memory: &libvirtxml.DomainMemory{Value: uint(cfg.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(cfg.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel:  cfg.Kernel,
			Initrd:  cfg.Initrd,
			Cmdline: cfg.Cmdline,
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    &libvirtxml.DomainDeviceList{},
	}
	if cfg.Lab != "" {
		dom.Metadata = &libvirtxml.DomainMetadata{XML: labMetadataXML(cfg.Lab, cfg.LabID, cfg.StateDir)}
	}
	switch cfg.Accel {
	case KVM:
		dom.Type = "kvm"
		dom.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	default:
		// qemu64, not "max": emulating max's extra features makes a stock
		// Debian guest boot 4-8 s slower under TCG (measured A/B).
		dom.CPU = &libvirtxml.DomainCPU{Mode: "custom", Match: "exact", Model: &libvirtxml.DomainCPUModel{Value: "qemu64"}}
		if cfg.TBCacheMiB > 0 {
			// QEMU's default translation cache makes each TCG guest about
			// 1.3 GiB resident; 128 MiB brings it to about 480 MiB.
			dom.Features.TCG = &libvirtxml.DomainFeatureTCG{
				TBCache: &libvirtxml.DomainFeatureTCGTBCache{Unit: "MiB", Size: uint(cfg.TBCacheMiB)},
			}
		}
	}
	d := dom.Devices
	d.Disks = append(d.Disks, libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Discard: "unmap"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: cfg.Disk}},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		// The seed is a virtio disk too: say which one holds the bootloader.
		Boot: &libvirtxml.DomainDeviceBoot{Order: 1},
	})
	if cfg.Seed != "" {
		d.Disks = append(d.Disks, libvirtxml.DomainDisk{
			Device:   "disk",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: cfg.Seed}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: "vdb", Bus: "virtio"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		})
	}
	for _, n := range cfg.NICs {
		iface, err := nicXML(n)
		if err != nil {
			return "", fmt.Errorf("domain %s: %w", cfg.Name, err)
		}
		d.Interfaces = append(d.Interfaces, iface)
	}
	port := uint(0)
	serial := libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
	}
	if cfg.SerialLog != "" {
		// virtlogd copies everything the guest prints, so the log outlives
		// the domain and can be read while nobody is attached.
		serial.Log = &libvirtxml.DomainChardevLog{File: cfg.SerialLog, Append: "off"}
	}
	d.Serials = []libvirtxml.DomainSerial{serial}
	d.Consoles = []libvirtxml.DomainConsole{{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
	}}
	// A guest without an entropy source can stall at boot waiting for
	// randomness (sshd, Python); virtio-rng removes that wait.
	d.RNGs = []libvirtxml.DomainRNG{{
		Model:   "virtio",
		Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
	}}
	d.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "none"}
	return dom.Marshal()
}

// MetadataNS is the namespace of forgelab's element in a domain's
// <metadata>.
const MetadataNS = "https://github.com/forgelab/forgelab/xmlns/lab/1"

// labMetadata is forgelab's element in a domain's <metadata>: the lab a
// domain belongs to, so a leftover domain is recognisable without the
// lab's state (virsh dumpxml shows it).
type labMetadata struct {
	XMLName xml.Name `xml:"https://github.com/forgelab/forgelab/xmlns/lab/1 lab"`
	Name    string   `xml:"name,attr"`
	ID      string   `xml:"id,attr"`
	// StateDir is absent in domains made before forgelab wrote it.
	StateDir string `xml:"state-dir,attr,omitempty"`
}

// labMetadataXML renders labMetadata with a namespace prefix: libvirt
// keeps a metadata element only with its own namespace, and prints it
// back with the prefix it was given.
func labMetadataXML(lab, id, stateDir string) string {
	var b strings.Builder
	b.WriteString(`<forgelab:lab xmlns:forgelab="` + MetadataNS + `" name="`)
	xml.EscapeText(&b, []byte(lab))
	b.WriteString(`" id="`)
	xml.EscapeText(&b, []byte(id))
	if stateDir != "" {
		b.WriteString(`" state-dir="`)
		xml.EscapeText(&b, []byte(stateDir))
	}
	b.WriteString(`"/>`)
	return b.String()
}

// LabOf reads the lab's name and id from a domain's XML; ok is false for
// a domain forgelab did not make (or made before it wrote metadata).
func LabOf(domainXML string) (lab, id string, ok bool) {
	md, ok := metadataOf(domainXML)
	return md.Name, md.ID, ok
}

func metadataOf(domainXML string) (labMetadata, bool) {
	var d libvirtxml.Domain
	if d.Unmarshal(domainXML) != nil || d.Metadata == nil {
		return labMetadata{}, false
	}
	var md labMetadata
	if xml.Unmarshal([]byte(d.Metadata.XML), &md) != nil || md.Name == "" {
		return labMetadata{}, false
	}
	return md, true
}

func nicXML(n NIC) (libvirtxml.DomainInterface, error) {
	iface := libvirtxml.DomainInterface{
		MAC:   &libvirtxml.DomainInterfaceMAC{Address: n.MAC},
		Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
	}
	if n.Tap != "" {
		iface.Target = &libvirtxml.DomainInterfaceTarget{Dev: n.Tap}
	}
	switch {
	case n.Network != "":
		iface.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}}
	case n.Bridge != "":
		iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}}
	case n.TapExisting:
		iface.Source = &libvirtxml.DomainInterfaceSource{Ethernet: &libvirtxml.DomainInterfaceSourceEthernet{}}
		iface.Target.Managed = "no"
	case n.UDP != nil:
		iface.Source = &libvirtxml.DomainInterfaceSource{UDP: &libvirtxml.DomainInterfaceSourceUDP{
			Address: n.UDP.RemoteAddr, Port: uint(n.UDP.RemotePort),
			Local: &libvirtxml.DomainInterfaceSourceLocal{Address: n.UDP.LocalAddr, Port: uint(n.UDP.LocalPort)},
		}}
	default:
		return iface, fmt.Errorf("NIC %s has no network, bridge, tap or UDP endpoint", n.MAC)
	}
	return iface, nil
}

// NATNetwork is a per-lab libvirt NAT network: forgelab's own path to the
// guests. Static leases mean every address is known before boot.
type NATNetwork struct {
	Name    string
	Bridge  string
	Gateway string // e.g. 10.213.7.1
	Netmask string // e.g. 255.255.255.0
	Domain  string // DNS domain for the hosts, e.g. "quickstart.lab"
	Hosts   []DHCPHost
}

type DHCPHost struct{ MAC, IP, Name string }

// NetworkXML renders n as libvirt network XML.
func NetworkXML(n NATNetwork) (string, error) {
	if n.Name == "" || n.Bridge == "" || n.Gateway == "" {
		return "", fmt.Errorf("network config needs a name, bridge and gateway")
	}
	dhcp := &libvirtxml.NetworkDHCP{}
	for _, h := range n.Hosts {
		dhcp.Hosts = append(dhcp.Hosts, libvirtxml.NetworkDHCPHost{MAC: h.MAC, IP: h.IP, Name: h.Name})
	}
	net := &libvirtxml.Network{
		Name:    n.Name,
		Forward: &libvirtxml.NetworkForward{Mode: "nat"},
		Bridge:  &libvirtxml.NetworkBridge{Name: n.Bridge, STP: "off", Delay: "0"},
		IPs: []libvirtxml.NetworkIP{{
			Address: n.Gateway,
			Netmask: n.Netmask,
			DHCP:    dhcp,
		}},
	}
	if n.Domain != "" {
		net.Domain = &libvirtxml.NetworkDomain{Name: n.Domain, LocalOnly: "yes"}
	}
	return net.Marshal()
}
