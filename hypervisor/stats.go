package hypervisor

import (
	"context"
	"fmt"

	"libvirt.org/go/libvirt"
)

// DomainStats are one running domain's statistics from libvirt, cumulative
// since it started. A figure libvirt did not report (no balloon driver, a
// counter the device lacks) is absent from Has.
type DomainStats struct {
	Domain string
	// CPUSeconds is the QEMU process's CPU time, every vCPU and its
	// emulator threads (cpu.time).
	CPUSeconds float64
	// BalloonBytes is the guest's memory as the balloon sets it
	// (balloon.current, "actual"); RSSBytes the QEMU process's resident
	// memory on this machine (balloon.rss).
	BalloonBytes uint64
	RSSBytes     uint64
	Blocks       []BlockStats
	NICs         []NICStats
	// Has says which of cpu, balloon, rss were reported.
	Has map[string]bool
}

// BlockStats are one disk's counters; Device is the target (vda).
type BlockStats struct {
	Device                      string
	ReadBytes, WriteBytes       uint64
	ReadRequests, WriteRequests uint64
}

// NICStats are one NIC's counters; Device is the host side (the tap).
type NICStats struct {
	Device               string
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
}

// statsTypes are the groups DomainStats asks for: one call, every domain.
const statsTypes = libvirt.DOMAIN_STATS_CPU_TOTAL | libvirt.DOMAIN_STATS_BALLOON | libvirt.DOMAIN_STATS_BLOCK | libvirt.DOMAIN_STATS_INTERFACE

// DomainStats returns the statistics of the named domains that run, in
// one libvirt call (virConnectGetAllDomainStats); a domain that is absent
// or stopped is left out, not an error (a host the scenario stopped).
func (c *Conn) DomainStats(names []string) ([]DomainStats, error) {
	raw, err := boundedValue(context.Background(), c, "domain statistics", func() ([]namedStats, error) { return c.v.domainStats(names) })
	if err != nil {
		return nil, fmt.Errorf("domain statistics: %w (is libvirtd running? `virsh domstats` shows the same)", err)
	}
	out := make([]DomainStats, 0, len(raw))
	for _, r := range raw {
		out = append(out, statsFrom(r.name, r.stats))
	}
	return out, nil
}

// namedStats is libvirt's record with the domain's name read out (the
// fake has no *libvirt.Domain to read it from).
type namedStats struct {
	name  string
	stats libvirt.DomainStats
}

// statsFrom keeps what forgelab records, and only what libvirt set.
func statsFrom(name string, s libvirt.DomainStats) DomainStats {
	d := DomainStats{Domain: name, Has: map[string]bool{}}
	if s.Cpu != nil && s.Cpu.TimeSet {
		d.CPUSeconds = float64(s.Cpu.Time) / 1e9
		d.Has["cpu"] = true
	}
	if b := s.Balloon; b != nil {
		if b.CurrentSet {
			d.BalloonBytes = b.Current * 1024 // KiB
			d.Has["balloon"] = true
		}
		if b.RssSet {
			d.RSSBytes = b.Rss * 1024
			d.Has["rss"] = true
		}
	}
	for _, b := range s.Block {
		if b.BackingIndexSet && b.BackingIndex > 0 {
			continue // a backing file of a disk already counted
		}
		d.Blocks = append(d.Blocks, BlockStats{Device: b.Name, ReadBytes: b.RdBytes, WriteBytes: b.WrBytes,
			ReadRequests: b.RdReqs, WriteRequests: b.WrReqs})
	}
	for _, n := range s.Net {
		d.NICs = append(d.NICs, NICStats{Device: n.Name, RxBytes: n.RxBytes, TxBytes: n.TxBytes,
			RxPackets: n.RxPkts, TxPackets: n.TxPkts})
	}
	return d
}

// RunningDomains lists the names of every running domain on this
// libvirtd, whoever made it (the quiet-environment check looks for
// domains that are not the lab's).
func (c *Conn) RunningDomains() ([]string, error) {
	names, err := boundedValue(context.Background(), c, "list running domains", c.v.activeDomains)
	if err != nil {
		return nil, fmt.Errorf("list running domains: %w", err)
	}
	return names, nil
}

func (l libvirtConn) domainStats(names []string) ([]namedStats, error) {
	var doms []*libvirt.Domain
	defer func() {
		for _, d := range doms {
			d.Free()
		}
	}()
	for _, n := range names {
		d, err := l.c.LookupDomainByName(n)
		if err != nil {
			if isNotFound(err, libvirt.ERR_NO_DOMAIN) {
				continue
			}
			return nil, err
		}
		if on, _ := d.IsActive(); !on {
			d.Free()
			continue
		}
		doms = append(doms, d)
	}
	if len(doms) == 0 {
		return nil, nil
	}
	all, err := l.c.GetAllDomainStats(doms, statsTypes, 0)
	if err != nil {
		return nil, err
	}
	out := make([]namedStats, 0, len(all))
	for _, s := range all {
		name, err := s.Domain.GetName()
		s.Domain.Free()
		if err != nil {
			return nil, err
		}
		out = append(out, namedStats{name: name, stats: s})
	}
	return out, nil
}

func (l libvirtConn) activeDomains() ([]string, error) {
	doms, err := l.c.ListAllDomains(libvirt.CONNECT_LIST_DOMAINS_ACTIVE)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range doms {
		if n, err := d.GetName(); err == nil {
			out = append(out, n)
		}
		d.Free()
	}
	return out, nil
}
