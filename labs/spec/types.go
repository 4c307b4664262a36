package spec

import "net/netip"

// Spec is a lab file as the user wrote it, after defaults are applied and it
// has been validated. Load returns it; Plan turns it into concrete names.
type Spec struct {
	File string // path it was loaded from, for error messages
	// Source is the file's contents as parsed: create keeps a copy in the
	// lab directory, so a run plays what was created, not a file edited
	// since. Not saved in the state (the copy is).
	Source []byte `json:"-"`
	Lab    LabSection
	Hosts  []HostSpec
	Links  []LinkSpec
	// Software: [[deploy]], [[service]], [[workload]] (software_types.go).
	Deploys   []DeploySpec
	Services  []ServiceSpec
	Workloads []WorkloadSpec
	// Scenario: the file has a [scenario] section (forgelab run plays it
	// when no scenario file is given).
	Scenario bool
	// Bench: the file has a [bench] section (package labs/bench reads it).
	Bench bool
}

type LabSection struct {
	Name   string
	Fabric string // one of Fabrics ("" means FabricAuto)
	Seed   int64
	// Mgmt is the IPv4 prefix of the management network (libvirt NAT, DHCP
	// with static leases). Zero value: Plan picks one derived from the name.
	Mgmt netip.Prefix
	// Routing is RoutingNone (the default: the software under test routes)
	// or RoutingStatic (forgelab installs shortest-path static routes).
	Routing string
}

type HostSpec struct {
	Name      string
	Kind      string // KindVM (the default) or KindPhysical
	Image     string // image store name, e.g. "debian-12"
	CPUs      int
	MemoryMiB int
	DiskBytes int64 // virtual size of the VM's disk; 0 means the image's own size
	Position  [3]float64
	// Mobility: the host has a mobility table; package scenario reads it
	// (ParseModels), this package only checks it.
	Mobility bool
	Line     int // line of the [[host]] header in File
	// SSH is how forgelab reaches a physical host; nil for VMs.
	SSH *SSHSpec
}

// SSHSpec is the ssh table of a physical host.
type SSHSpec struct {
	Address         string // IP address or DNS name, no port
	Port            int    // default 22
	User            string // default "root"
	Key             string // private key file as written ("~/..." unexpanded); "" = agent / default keys
	Agent           bool   // offer the keys of the ssh-agent at SSH_AUTH_SOCK
	KnownHosts      string // known_hosts file as written; "" = the provisioner's default
	TrustOnFirstUse bool   // accept and record an unknown host key on first contact
}

type LinkSpec struct {
	Name      string
	Endpoints []string     // two hosts: point-to-point; more: a shared segment
	Subnet4   netip.Prefix // zero: Plan allocates
	Subnet6   netip.Prefix // zero: Plan allocates
	// Addresses pins a host's address on this link (host name -> addresses,
	// with prefix length). Unpinned hosts get the next free ones.
	Addresses map[string][]netip.Prefix
	Quality   Quality // static impairments declared in the lab file
	// Model names a [quality.NAME] table: the link's quality follows the
	// distance of its hosts during a run. "" for a link of static quality.
	Model string
	Line  int
}

// Quality is a link's impairment as declared; zero values mean "none".
// The fabric turns it into a netfabric.Impairment (labs/fabric.go).
type Quality struct {
	RateBits int64 // bits per second, 0 = unlimited
	DelayNs  int64
	JitterNs int64
	LossPct  float64
	// Also percentages, 0-100, and netem's queue limit.
	DuplicatePct float64
	ReorderPct   float64 // needs DelayNs > 0: reordered packets skip the delay
	CorruptPct   float64
	Limit        int // queue limit in packets, 0 = the fabric's default
	// Distribution of the jitter: "" (uniform), uniform, normal, pareto,
	// paretonormal.
	Distribution string `json:",omitempty"`
	// LossBurst is a Gilbert-Elliott bursty loss model instead of LossPct:
	// P, R, 1-H, 1-K in percent (units.ParseBurstLoss); zero: none.
	LossBurst [4]float64 `json:",omitzero"`
}
