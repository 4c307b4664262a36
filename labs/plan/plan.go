package plan

// Planning decides every name, MAC and address of a lab from its Spec
// alone: the same Spec gives the same Plan, byte for byte.
//
// Names (id: the first 4 hex characters of sha256(lab name)):
//
//	libvirt domain   fl-<id>-<host>
//	mgmt network     fl-<id>-mgmt, on bridge fl<id>-m
//	link bridge      fl<id>l<NN>        NN: link index, 00-99
//	mgmt tap         fl<id>h<HH>m       HH: host index 00-99
//	data tap         fl<id>h<HH>n<NN>   NN: NIC index 01-99, the NIC eth<NN>
//
// All netdev names fit Linux's 15 characters (fl<id>h<HH>n<NN> is 12).
//
// Addresses:
//
//	mgmt     Spec.Lab.Mgmt, else 10.(200 + b2%50).(b3).0/24 from bytes 2 and 3
//	         of sha256(lab name), moved up past any link subnet it would
//	         overlap. Gateway .1; host i gets .10+i (physical hosts leave theirs unused).
//	subnet4  links without one take, in link order, the next /24 of
//	         198.18.0.0/15 (RFC 2544's benchmarking range: not routed on the
//	         internet and rarely used on LANs) that overlaps nothing the file
//	         set. With no subnets in the file, link N gets 198.18.N.0/24.
//	subnet6  likewise from fd00:f1:<id>::/48 (ULA), /64s: link N gets
//	         fd00:f1:<id>:<N in hex>::/64.
//	on links pinned addresses stay; every other endpoint gets the lowest free
//	         host number in endpoint order: .1, .2, ... and ::1, ::2, ...
//
//	node     every host's node addresses (package routing): host i gets .1+i of
//	         10.254.<b1>.0/24 (byte 1 of sha256(lab name)), moved up past any link
//	         subnet or the mgmt network it would overlap, and ::1+i of
//	         fd00:f1:<id>:ffff::/64 (moved down likewise): outside every link.
//
// MACs: 52:54:00 followed by the first 3 bytes of sha256("<lab>/<host>/<nic
// index>") (index 0: the mgmt NIC), re-hashed until unique in the lab.
//
// Physical hosts get no domain, mgmt tap or MAC; each of their NICs is a
// VXLAN tunnel fl<id>h<HH>v<NN> to this machine, its name the NIC's Name
// (on the host) and Tap (here), see labs/physical.go.

import (
	"github.com/forgelab/forgelab/labs/spec"

	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Limits of the naming scheme: two decimal digits per index.
// (spec.MaxHosts, MaxLinks and MaxNICs are the others; the lab file
// refuses more.)
const (
	maxNetdev = 15  // Linux: IFNAMSIZ - 1
	pool4Size = 512 // /24s in 198.18.0.0/15
)

// IDOf is the short id of a lab name (4 hex digits): every libvirt object
// of the lab is named "fl-<id>-...", every netdev "fl<id>...".
func IDOf(lab string) string {
	sum := sha256.Sum256([]byte(lab))
	return hex.EncodeToString(sum[:2])
}

// IDOfObject is the lab id in the name of a forgelab object of that kind
// (a domain, network or netdev), ok false for a name forgelab does not make.
func IDOfObject(kind, name string) (id string, ok bool) {
	var rest string
	switch kind {
	case "domain", "network":
		if !strings.HasPrefix(name, "fl-") || len(name) < 8 || name[7] != '-' {
			return "", false
		}
		rest = name[3:7]
	default:
		if !strings.HasPrefix(name, "fl") || len(name) < 7 {
			return "", false
		}
		rest = name[2:6]
	}
	for _, c := range rest {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return rest, true
}

// NewPlan decides every name, MAC and address of the lab. It expects a
// Spec from spec.Load or spec.Parse, and re-checks only what would make a wrong name
// or address. (Not "Plan": the type has that name.)
func NewPlan(s *spec.Spec) (*Plan, error) {
	if len(s.Hosts) > spec.MaxHosts {
		return nil, fmt.Errorf("plan lab %s: %d hosts, at most %d fit the naming scheme", s.Lab.Name, len(s.Hosts), spec.MaxHosts)
	}
	if len(s.Links) > spec.MaxLinks {
		return nil, fmt.Errorf("plan lab %s: %d links, at most %d fit the naming scheme", s.Lab.Name, len(s.Links), spec.MaxLinks)
	}
	sum := sha256.Sum256([]byte(s.Lab.Name))
	p := &Plan{Lab: s.Lab.Name, ID: IDOf(s.Lab.Name), Fabric: s.Lab.Fabric, Seed: s.Lab.Seed, Routing: s.Lab.Routing}
	if p.Routing == "" {
		p.Routing = spec.RoutingNone
	}
	if p.Fabric == "" {
		p.Fabric = "auto"
	}
	var err error
	if p.Mgmt, err = planMgmt(s, p.ID, sum); err != nil {
		return nil, fmt.Errorf("plan lab %s: %w", s.Lab.Name, err)
	}
	if p.Links, err = planLinks(s, p.ID, p.Mgmt.Prefix); err != nil {
		return nil, fmt.Errorf("plan lab %s: %w", s.Lab.Name, err)
	}
	if p.Nodes, err = planNodes(p, sum); err != nil {
		return nil, fmt.Errorf("plan lab %s: %w", s.Lab.Name, err)
	}
	if p.Hosts, err = planHosts(s, p); err != nil {
		return nil, fmt.Errorf("plan lab %s: %w", s.Lab.Name, err)
	}
	if err := p.checkNetdevNames(); err != nil {
		return nil, fmt.Errorf("plan lab %s: %w", s.Lab.Name, err)
	}
	return p, nil
}

// Host returns the plan of the named host, or nil.
func (p *Plan) Host(name string) *HostPlan {
	for i := range p.Hosts {
		if p.Hosts[i].Name == name {
			return &p.Hosts[i]
		}
	}
	return nil
}

// Link returns the plan of the named link, or nil.
func (p *Plan) Link(name string) *LinkPlan {
	for i := range p.Links {
		if p.Links[i].Name == name {
			return &p.Links[i]
		}
	}
	return nil
}

func planMgmt(s *spec.Spec, id string, sum [32]byte) (MgmtPlan, error) {
	m := MgmtPlan{Network: "fl-" + id + "-mgmt", Bridge: "fl" + id + "-m", Prefix: s.Lab.Mgmt}
	if !m.Prefix.IsValid() {
		var err error
		if m.Prefix, err = deriveMgmt(sum, explicitSubnets(s)); err != nil {
			return m, err
		}
	}
	if !m.Prefix.Addr().Is4() || spec.MgmtRoom(m.Prefix) < len(s.Hosts) {
		return m, fmt.Errorf("mgmt %s has no room for %d hosts from .%d up", m.Prefix, len(s.Hosts), spec.MgmtFirst)
	}
	m.Gateway = m.Prefix.Addr().Next()
	return m, nil
}

// deriveMgmt picks 10.(200 + b2%50).(b3).0/24, moving up while it would
// overlap a subnet the lab file set.
func deriveMgmt(sum [32]byte, taken []netip.Prefix) (netip.Prefix, error) {
	second, third := 200+int(sum[2])%50, int(sum[3])
	for range 50 * 256 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(second), byte(third), 0}), 24)
		if !overlapsAny(p, taken) {
			return p, nil
		}
		if third++; third == 256 {
			third, second = 0, 200+(second-200+1)%50
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free mgmt /24 in 10.200.0.0-10.249.255.0: set mgmt in [lab]")
}

// explicitSubnets are the link subnets the lab file set (or implied by
// pinned addresses).
func explicitSubnets(s *spec.Spec) []netip.Prefix {
	var out []netip.Prefix
	for _, l := range s.Links {
		for _, p := range []netip.Prefix{l.Subnet4, l.Subnet6} {
			if p.IsValid() {
				out = append(out, p)
			}
		}
	}
	return out
}

func overlapsAny(p netip.Prefix, list []netip.Prefix) bool {
	return slices.ContainsFunc(list, p.Overlaps)
}

func planLinks(s *spec.Spec, id string, mgmt netip.Prefix) ([]LinkPlan, error) {
	taken := append(explicitSubnets(s), mgmt)
	next4, next6 := 0, 0
	var links []LinkPlan
	for i, l := range s.Links {
		lp := LinkPlan{
			Name:      l.Name,
			Bridge:    fmt.Sprintf("fl%sl%02d", id, i),
			Endpoints: slices.Clone(l.Endpoints),
			Subnet4:   l.Subnet4,
			Subnet6:   l.Subnet6,
			Quality:   l.Quality,
		}
		var err error
		if !lp.Subnet4.IsValid() {
			if lp.Subnet4, next4, err = allocate(pool4, next4, pool4Size, &taken); err != nil {
				return nil, fmt.Errorf("link %s: %w", l.Name, err)
			}
		}
		if !lp.Subnet6.IsValid() {
			ula := func(n int) netip.Prefix { return pool6(id, n) }
			if lp.Subnet6, next6, err = allocate(ula, next6, 1<<16, &taken); err != nil {
				return nil, fmt.Errorf("link %s: %w", l.Name, err)
			}
		}
		links = append(links, lp)
	}
	return links, nil
}

// allocate takes the first subnet pool(n), n >= next, that overlaps
// nothing taken, and returns it with the next n to try.
func allocate(pool func(int) netip.Prefix, next, size int, taken *[]netip.Prefix) (netip.Prefix, int, error) {
	for n := next; n < size; n++ {
		if p := pool(n); !overlapsAny(p, *taken) {
			*taken = append(*taken, p)
			return p, n + 1, nil
		}
	}
	return netip.Prefix{}, size, fmt.Errorf("the default subnet pool %s is used up: set subnet4/subnet6 on the link", pool(0))
}

// pool4 is the n-th /24 of 198.18.0.0/15.
func pool4(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n>>8), byte(n), 0}), 24)
}

// pool6 is fd00:f1:<id>:<n>::/64.
func pool6(id string, n int) netip.Prefix {
	b, _ := hex.DecodeString(id)
	a := [16]byte{0xfd, 0x00, 0x00, 0xf1, b[0], b[1], byte(n >> 8), byte(n)}
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// planNodes picks the node address pools: the first /24 from
// 10.254.<b1>.0 up, and the first /64 from fd00:f1:<id>:ffff:: down, that
// overlap no link subnet and no mgmt network.
func planNodes(p *Plan, sum [32]byte) (NodePlan, error) {
	taken := []netip.Prefix{p.Mgmt.Prefix}
	for _, l := range p.Links {
		taken = append(taken, l.Subnet4, l.Subnet6)
	}
	var n NodePlan
	for i := range 256 * 256 {
		v := (int(sum[1]) + i) % (256 * 256)
		q := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 254 + byte(v>>8)%2, byte(v), 0}), 24)
		if !overlapsAny(q, taken) {
			n.Prefix4 = q
			break
		}
	}
	for i := range 1 << 16 {
		if q := pool6(p.ID, 0xffff-i); !overlapsAny(q, taken) {
			n.Prefix6 = q
			break
		}
	}
	if !n.Prefix4.IsValid() || !n.Prefix6.IsValid() {
		return n, fmt.Errorf("no free node address pool: the link subnets cover 10.254.0.0/15 or fd00:f1:%s::/48", p.ID)
	}
	return n, nil
}

func planHosts(s *spec.Spec, p *Plan) ([]HostPlan, error) {
	macs := macAllocator{lab: s.Lab.Name, used: map[string]bool{}}
	addrs, err := linkAddresses(s, p.Links)
	if err != nil {
		return nil, err
	}
	var hosts []HostPlan
	for hi, h := range s.Hosts {
		hp := HostPlan{
			Name: h.Name, Kind: h.Kind, Image: h.Image, CPUs: h.CPUs,
			MemoryMiB: h.MemoryMiB, DiskBytes: h.DiskBytes, Position: h.Position, SSH: h.SSH,
			Node4: addrAdd(p.Nodes.Prefix4.Addr(), 1+hi),
			Node6: addrAdd(p.Nodes.Prefix6.Addr(), 1+hi),
		}
		vm := h.Kind != spec.KindPhysical
		if vm {
			hp.Domain = fmt.Sprintf("fl-%s-%s", p.ID, h.Name)
			hp.MgmtMAC = macs.next(h.Name, 0)
			hp.MgmtIP = addrAdd(p.Mgmt.Prefix.Addr(), spec.MgmtFirst+hi)
			hp.MgmtTap = fmt.Sprintf("fl%sh%02dm", p.ID, hi)
		}
		for li, l := range p.Links {
			if !slices.Contains(l.Endpoints, h.Name) {
				continue
			}
			n := len(hp.NICs) + 1
			if n > spec.MaxNICs {
				return nil, fmt.Errorf("host %s is on more than %d links", h.Name, spec.MaxNICs)
			}
			nic := NICPlan{Link: l.Name, Addresses: addrs[li][h.Name]}
			if vm {
				nic.Name = fmt.Sprintf("eth%d", n)
				nic.MAC = macs.next(h.Name, n)
				nic.Tap = tapName(p.ID, hi, n)
			} else {
				// A physical host's NIC is a VXLAN tunnel of that name on
				// both ends (labs/physical.go): the lab's end is its "tap".
				nic.Name = vxlanName(p.ID, hi, n)
				nic.Tap = nic.Name
			}
			hp.NICs = append(hp.NICs, nic)
		}
		hosts = append(hosts, hp)
	}
	return hosts, nil
}

func vxlanName(id string, host, nic int) string {
	return fmt.Sprintf("fl%sh%02dv%02d", id, host, nic)
}

func tapName(id string, host, nic int) string {
	return fmt.Sprintf("fl%sh%02dn%02d", id, host, nic)
}

// linkAddresses gives every endpoint of every link its addresses (IPv4,
// then IPv6): pinned ones, else the lowest free host numbers in endpoint
// order. Result: link index -> host -> addresses.
func linkAddresses(s *spec.Spec, links []LinkPlan) ([]map[string][]netip.Prefix, error) {
	hosts := map[string]bool{}
	for _, h := range s.Hosts {
		hosts[h.Name] = true
	}
	out := make([]map[string][]netip.Prefix, len(links))
	for i, l := range links {
		out[i] = map[string][]netip.Prefix{}
		for _, subnet := range []netip.Prefix{l.Subnet4, l.Subnet6} {
			pinned := pinnedIn(s.Links[i].Addresses, subnet.Addr().Is4())
			got, err := assign(subnet, l.Endpoints, pinned)
			if err != nil {
				return nil, fmt.Errorf("link %s: %w", l.Name, err)
			}
			for _, h := range l.Endpoints {
				if !hosts[h] {
					return nil, fmt.Errorf("link %s: endpoint %q is not a host of the lab", l.Name, h)
				}
				out[i][h] = append(out[i][h], got[h])
			}
		}
	}
	return out, nil
}

// pinnedIn picks each host's first pinned address of one family.
func pinnedIn(addrs map[string][]netip.Prefix, v4 bool) map[string]netip.Prefix {
	out := map[string]netip.Prefix{}
	for h, list := range addrs {
		for _, a := range list {
			if _, done := out[h]; !done && a.Addr().Is4() == v4 {
				out[h] = a
			}
		}
	}
	return out
}

// assign gives each endpoint its pinned address or the lowest free one.
func assign(subnet netip.Prefix, endpoints []string, pinned map[string]netip.Prefix) (map[string]netip.Prefix, error) {
	used := map[netip.Addr]bool{}
	for _, a := range pinned {
		used[a.Addr()] = true
	}
	out := map[string]netip.Prefix{}
	next := subnet.Addr().Next()
	for _, h := range endpoints {
		if a, ok := pinned[h]; ok {
			out[h] = a
			continue
		}
		for used[next] {
			next = next.Next()
		}
		if !subnet.Contains(next) || (next.Is4() && next == spec.LastAddr(subnet)) {
			return nil, fmt.Errorf("subnet %s has no address left for %s", subnet, h)
		}
		out[h] = netip.PrefixFrom(next, subnet.Bits())
		used[next] = true
	}
	return out, nil
}

// addrAdd returns a + n (n small and non-negative).
func addrAdd(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

// macAllocator hands out deterministic MACs, unique within one lab.
type macAllocator struct {
	lab  string
	used map[string]bool
}

func (m *macAllocator) next(host string, nic int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", m.lab, host, nic))
	for {
		mac := fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])
		if !m.used[mac] {
			m.used[mac] = true
			return mac
		}
		sum = sha256.Sum256(sum[:])
	}
}

// checkNetdevNames asserts every netdev name fits Linux's limit.
func (p *Plan) checkNetdevNames() error {
	names := []string{p.Mgmt.Bridge}
	for _, l := range p.Links {
		names = append(names, l.Bridge)
	}
	for _, h := range p.Hosts {
		names = append(names, h.MgmtTap)
		for _, n := range h.NICs {
			names = append(names, n.Tap)
		}
	}
	for _, n := range names {
		if len(n) > maxNetdev {
			return fmt.Errorf("netdev name %q is longer than %d characters", n, maxNetdev)
		}
	}
	return nil
}
