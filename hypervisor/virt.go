package hypervisor

import (
	"time"

	"libvirt.org/go/libvirt"
)

// virt is the part of libvirt Conn uses (as virter's LibvirtConnection):
// the real one wraps *libvirt.Connect, tests use a fake that keeps maps
// of domains and networks. A lookup of something absent returns a
// libvirt.Error with ERR_NO_DOMAIN or ERR_NO_NETWORK, as libvirt does.
type virt interface {
	defineDomain(xml string) (domain, error)
	lookupDomain(name string) (domain, error)
	defineNetwork(xml string) (network, error)
	lookupNetwork(name string) (network, error)
	networkXMLs() ([]string, error)
	// domainXMLs and networkList list every domain and network (inactive
	// ones too) with their XML and whether they run.
	domainXMLs() ([]listed, error)
	networkList() ([]listed, error)
	// domainStats are the statistics of those of the named domains that
	// run; activeDomains the names of every running domain.
	domainStats(names []string) ([]namedStats, error)
	activeDomains() ([]string, error)
	close() error
}

// domain is one libvirt domain.
type domain interface {
	create() error
	destroy() error
	undefine() error
	isActive() bool
	state() (libvirt.DomainState, error)
	shutdown() error
	suspend() error
	resume() error
	reset() error
	xml() (string, error)
	updateLiveDevice(xml string) error
	free()
}

// network is one libvirt network.
type network interface {
	create() error
	destroy() error
	undefine() error
	isActive() bool
	free()
}

// clock is time as Shutdown sees it; tests move it by hand.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// libvirtConn is virt over a real libvirt connection.
type libvirtConn struct{ c *libvirt.Connect }

func (l libvirtConn) defineDomain(xml string) (domain, error) {
	d, err := l.c.DomainDefineXML(xml)
	if err != nil {
		return nil, err
	}
	return libvirtDomain{d}, nil
}

func (l libvirtConn) lookupDomain(name string) (domain, error) {
	d, err := l.c.LookupDomainByName(name)
	if err != nil {
		return nil, err
	}
	return libvirtDomain{d}, nil
}

func (l libvirtConn) defineNetwork(xml string) (network, error) {
	n, err := l.c.NetworkDefineXML(xml)
	if err != nil {
		return nil, err
	}
	return libvirtNetwork{n}, nil
}

func (l libvirtConn) lookupNetwork(name string) (network, error) {
	n, err := l.c.LookupNetworkByName(name)
	if err != nil {
		return nil, err
	}
	return libvirtNetwork{n}, nil
}

func (l libvirtConn) networkXMLs() ([]string, error) {
	nets, err := l.c.ListAllNetworks(0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nets {
		if x, err := n.GetXMLDesc(0); err == nil {
			out = append(out, x)
		}
		n.Free()
	}
	return out, nil
}

func (l libvirtConn) domainXMLs() ([]listed, error) {
	doms, err := l.c.ListAllDomains(0)
	if err != nil {
		return nil, err
	}
	var out []listed
	for _, d := range doms {
		if x, err := d.GetXMLDesc(0); err == nil {
			a, _ := d.IsActive()
			out = append(out, listed{x, a})
		}
		d.Free()
	}
	return out, nil
}

func (l libvirtConn) networkList() ([]listed, error) {
	nets, err := l.c.ListAllNetworks(0)
	if err != nil {
		return nil, err
	}
	var out []listed
	for _, n := range nets {
		if x, err := n.GetXMLDesc(0); err == nil {
			a, _ := n.IsActive()
			out = append(out, listed{x, a})
		}
		n.Free()
	}
	return out, nil
}

func (l libvirtConn) close() error {
	_, err := l.c.Close()
	return err
}

type libvirtDomain struct{ d *libvirt.Domain }

func (d libvirtDomain) create() error  { return d.d.Create() }
func (d libvirtDomain) destroy() error { return d.d.Destroy() }
func (d libvirtDomain) undefine() error {
	return d.d.UndefineFlags(libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.DOMAIN_UNDEFINE_NVRAM)
}
func (d libvirtDomain) isActive() bool { a, _ := d.d.IsActive(); return a }
func (d libvirtDomain) state() (libvirt.DomainState, error) {
	st, _, err := d.d.GetState()
	return st, err
}
func (d libvirtDomain) shutdown() error      { return d.d.Shutdown() }
func (d libvirtDomain) suspend() error       { return d.d.Suspend() }
func (d libvirtDomain) resume() error        { return d.d.Resume() }
func (d libvirtDomain) reset() error         { return d.d.Reset(0) }
func (d libvirtDomain) xml() (string, error) { return d.d.GetXMLDesc(0) }
func (d libvirtDomain) updateLiveDevice(xml string) error {
	return d.d.UpdateDeviceFlags(xml, libvirt.DOMAIN_DEVICE_MODIFY_LIVE)
}
func (d libvirtDomain) free() { d.d.Free() }

type libvirtNetwork struct{ n *libvirt.Network }

func (n libvirtNetwork) create() error   { return n.n.Create() }
func (n libvirtNetwork) destroy() error  { return n.n.Destroy() }
func (n libvirtNetwork) undefine() error { return n.n.Undefine() }
func (n libvirtNetwork) isActive() bool  { a, _ := n.n.IsActive(); return a }
func (n libvirtNetwork) free()           { n.n.Free() }
