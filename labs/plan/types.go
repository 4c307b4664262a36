package plan

import (
	"net/netip"

	"github.com/forgelab/forgelab/labs/spec"
)

// Plan is everything create needs, with every name, MAC and address decided
// up front and deterministically from the Spec (same Spec, same Plan).
type Plan struct {
	Lab    string // lab name
	ID     string // 4 hex chars from the name; in every libvirt object and netdev name
	Fabric string
	Seed   int64
	// Routing is the lab file's [lab] routing: "none" or "static".
	Routing string
	// Nodes: the pools the hosts' node addresses come from.
	Nodes NodePlan
	Mgmt  MgmtPlan
	Hosts []HostPlan
	Links []LinkPlan
}

type MgmtPlan struct {
	Network string       // libvirt network name, "fl-<id>-mgmt"
	Bridge  string       // "fl<id>-m"
	Prefix  netip.Prefix // e.g. 10.213.7.0/24
	Gateway netip.Addr   // .1, the host's address on it
}

// NodePlan is where node addresses come from: one IPv4 /24 and one IPv6
// /64 of the lab that no link and no mgmt network overlaps.
type NodePlan struct {
	Prefix4 netip.Prefix
	Prefix6 netip.Prefix
}

type HostPlan struct {
	Name      string
	Kind      string
	Domain    string // libvirt domain name, "fl-<id>-<host>"
	Image     string
	CPUs      int
	MemoryMiB int
	DiskBytes int64
	Position  [3]float64
	MgmtMAC   string // 52:54:00:xx:xx:xx, deterministic
	MgmtIP    netip.Addr
	MgmtTap   string        // host-side tap of the mgmt NIC, "fl<id>h<HH>m"
	SSH       *spec.SSHSpec // physical hosts only
	NICs      []NICPlan     // data NICs, in link order
	// Node4 and Node6 are the host's node addresses (a /32 and a /128 on
	// its dummy interface node0, package routing): they belong to no
	// link, so a conversation to them survives a change of path.
	Node4 netip.Addr
	Node6 netip.Addr
}

type NICPlan struct {
	Link      string // link name
	Name      string // interface name inside the guest: "eth1", "eth2", ...
	MAC       string
	Tap       string         // host-side tap name, "fl<id>h<NN>n<NN>" (<= 15 chars)
	Addresses []netip.Prefix // IPv4 and IPv6 with prefix length
}

type LinkPlan struct {
	Name      string
	Bridge    string // "fl<id>l<NN>" (<= 15 chars)
	Endpoints []string
	Subnet4   netip.Prefix
	Subnet6   netip.Prefix
	Quality   spec.Quality
}
