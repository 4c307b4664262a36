package plan

import (
	"github.com/forgelab/forgelab/labs/spec"

	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
)

var updatePlanGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

func parseFile(t *testing.T, path string) *spec.Spec {
	t.Helper()
	s, err := spec.Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return s
}

func planFile(t *testing.T, path string) *Plan {
	t.Helper()
	p, err := NewPlan(parseFile(t, path))
	if err != nil {
		t.Fatalf("plan %s: %v", path, err)
	}
	return p
}

func TestPlanGolden(t *testing.T) {
	got, err := json.MarshalIndent(planFile(t, "../spec/testdata/quickstart.toml"), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/quickstart.plan.golden"
	if *updatePlanGolden {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./labs -run TestPlanGolden -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plan differs from %s (rerun with -update if the change is intended):\n%s", golden, got)
	}
}

// bigLab is a lab at the limits: 100 hosts, a chain of 99 links and one
// segment joining every host.
func bigLab() string {
	var b strings.Builder
	b.WriteString("[lab]\nname = \"big\"\n")
	var all []string
	for i := range spec.MaxHosts {
		fmt.Fprintf(&b, "[[host]]\nname = \"h%02d\"\nmemory = \"128MiB\"\n", i)
		all = append(all, fmt.Sprintf("%q", fmt.Sprintf("h%02d", i)))
	}
	for i := range spec.MaxHosts - 1 {
		fmt.Fprintf(&b, "[[link]]\nendpoints = [\"h%02d\", \"h%02d\"]\n", i, i+1)
	}
	fmt.Fprintf(&b, "[[link]]\nendpoints = [%s]\n", strings.Join(all, ", "))
	return b.String()
}

// planSources are the labs the property tests run over.
func planSources(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{"big.toml": []byte(bigLab())}
	for _, f := range []string{"../spec/testdata/quickstart.toml", "../spec/testdata/full.toml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = data
	}
	return out
}

func TestPlanDeterministic(t *testing.T) {
	for name, data := range planSources(t) {
		var plans [2][]byte
		for i := range plans {
			s, err := spec.Parse(name, data)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			if plans[i], err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(plans[0], plans[1]) {
			t.Errorf("%s: two plans of the same file differ", name)
		}
	}
}

// TestPlanUnique checks, for every lab: names, MACs and addresses are
// unique, netdev names fit 15 characters and carry the lab id, and every
// address sits in its subnet.
func TestPlanUnique(t *testing.T) {
	for name, data := range planSources(t) {
		s, err := spec.Parse(name, data)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPlan(s)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{} // value -> what has it
		unique := func(kind, value, owner string) {
			if value == "" {
				return
			}
			if other, dup := seen[kind+" "+value]; dup {
				t.Errorf("%s: %s %s used by %s and %s", name, kind, value, other, owner)
			}
			seen[kind+" "+value] = owner
		}
		netdev := func(n, owner string) {
			if n == "" {
				return
			}
			unique("netdev", n, owner)
			if len(n) > maxNetdev || !strings.HasPrefix(n, "fl"+p.ID) {
				t.Errorf("%s: netdev %q of %s is longer than %d or lacks the prefix fl%s", name, n, owner, maxNetdev, p.ID)
			}
		}
		netdev(p.Mgmt.Bridge, "mgmt")
		for _, l := range p.Links {
			unique("link", l.Name, l.Name)
			netdev(l.Bridge, l.Name)
			unique("subnet", l.Subnet4.String(), l.Name)
			unique("subnet", l.Subnet6.String(), l.Name)
			if l.Subnet4.Overlaps(p.Mgmt.Prefix) {
				t.Errorf("%s: link %s subnet %s overlaps mgmt %s", name, l.Name, l.Subnet4, p.Mgmt.Prefix)
			}
		}
		for _, h := range p.Hosts {
			unique("domain", h.Domain, h.Name)
			unique("mac", h.MgmtMAC, h.Name)
			netdev(h.MgmtTap, h.Name)
			if h.Kind == "vm" && !p.Mgmt.Prefix.Contains(h.MgmtIP) {
				t.Errorf("%s: %s mgmt ip %s outside %s", name, h.Name, h.MgmtIP, p.Mgmt.Prefix)
			}
			if h.MgmtIP.IsValid() {
				unique("ip", h.MgmtIP.String(), h.Name)
			}
			for i, n := range h.NICs {
				owner := h.Name + "/" + n.Link
				unique("mac", n.MAC, owner)
				netdev(n.Tap, owner)
				if h.Kind == "vm" && n.Name != fmt.Sprintf("eth%d", i+1) {
					t.Errorf("%s: %s nic %d is named %s", name, h.Name, i, n.Name)
				}
				l := p.Link(n.Link)
				if len(n.Addresses) != 2 {
					t.Errorf("%s: %s has addresses %v, want IPv4 and IPv6", name, owner, n.Addresses)
				}
				for _, a := range n.Addresses {
					unique("ip", a.Addr().String(), owner)
					if a.Masked() != l.Subnet4 && a.Masked() != l.Subnet6 {
						t.Errorf("%s: %s address %s is not in %s or %s", name, owner, a, l.Subnet4, l.Subnet6)
					}
				}
			}
		}
		for _, m := range strings.Fields("mac domain netdev ip") {
			if !hasKind(seen, m) {
				t.Errorf("%s: checked no %s", name, m)
			}
		}
	}
}

func hasKind(seen map[string]string, kind string) bool {
	for k := range seen {
		if strings.HasPrefix(k, kind+" ") {
			return true
		}
	}
	return false
}

func TestPlanPinnedAndPhysical(t *testing.T) {
	p := planFile(t, "../spec/testdata/full.toml")
	if p.Mgmt.Prefix != netip.MustParsePrefix("10.77.3.0/24") || p.Mgmt.Gateway != netip.MustParseAddr("10.77.3.1") {
		t.Errorf("mgmt = %+v, want the file's 10.77.3.0/24", p.Mgmt)
	}
	nic := func(host, link string) []string {
		for _, n := range p.Host(host).NICs {
			if n.Link == link {
				var out []string
				for _, a := range n.Addresses {
					out = append(out, a.String())
				}
				return out
			}
		}
		t.Fatalf("%s has no NIC on %s", host, link)
		return nil
	}
	tests := []struct {
		host, link string
		want       []string
	}{
		{"a", "ab", []string{"10.1.0.5/24", "fd00:1::5/64"}}, // pinned
		{"b", "ab", []string{"10.1.0.1/24", "fd00:1::1/64"}},
		{"a", "seg1", []string{"192.168.7.1/24", "fd00:f1:" + p.ID + "::1/64"}},
		{"b", "seg1", []string{"192.168.7.20/24", "fd00:f1:" + p.ID + "::2/64"}}, // v4 pinned
		{"edge1", "seg1", []string{"192.168.7.2/24", "fd00:f1:" + p.ID + "::3/64"}},
		{"b", "b-edge2", []string{"198.18.0.1/24", "fd00:f1:" + p.ID + ":1::1/64"}},
	}
	for _, tt := range tests {
		if got := nic(tt.host, tt.link); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s on %s: %v, want %v", tt.host, tt.link, got, tt.want)
		}
	}
	e := p.Host("edge1")
	if e.Domain != "" || e.MgmtMAC != "" || e.MgmtTap != "" || e.MgmtIP.IsValid() || e.NICs[0].Tap != "fl"+p.ID+"h02v01" || e.NICs[0].Name != e.NICs[0].Tap || e.SSH == nil || e.SSH.Port != 2222 {
		t.Errorf("physical host plan = %+v, want no domain, MAC, mgmt tap or mgmt IP, a VXLAN as its NIC, and its ssh", e)
	}
	if a := p.Host("a"); a.MgmtIP != netip.MustParseAddr("10.77.3.10") || a.Domain != "fl-"+p.ID+"-a" {
		t.Errorf("host a = %+v", a)
	}
}

func TestPlanHelpers(t *testing.T) {
	p := planFile(t, "../spec/testdata/quickstart.toml")
	if h := p.Host("b"); h == nil || h.Name != "b" || h != &p.Hosts[1] {
		t.Errorf("Host(b) = %+v", h)
	}
	if l := p.Link("ca"); l == nil || l.Bridge != "fl"+p.ID+"l02" {
		t.Errorf("Link(ca) = %+v", l)
	}
	if p.Host("z") != nil || p.Link("zz") != nil {
		t.Error("unknown names should give nil")
	}
}

func TestPlanSubnetPool(t *testing.T) {
	// Links 0 and 1 take from the pool; link 2 sets 198.18.1.0/24, so link 1
	// skips it. Link 3's pinned IPv6 address takes pool6's second /64.
	src := `[lab]
name = "pool"
[[host]]
name = "a"
[[host]]
name = "b"
[[link]]
name = "l0"
endpoints = ["a", "b"]
[[link]]
name = "l1"
endpoints = ["a", "b"]
[[link]]
name = "l2"
endpoints = ["a", "b"]
subnet4 = "198.18.1.0/24"
[[link]]
name = "l3"
endpoints = ["a", "b"]
addresses = { a = "fd00:f1:%s:1::9/64" }
`
	p0, err := NewPlan(parseSource(t, fmt.Sprintf(src, "0")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(parseSource(t, fmt.Sprintf(src, p0.ID)))
	if err != nil {
		t.Fatal(err)
	}
	ula := func(n string) string { return "fd00:f1:" + p.ID + n + "::/64" }
	want := []string{
		"198.18.0.0/24 " + ula(""),
		"198.18.2.0/24 " + ula(":2"),
		"198.18.1.0/24 " + ula(":3"),
		"198.18.3.0/24 " + ula(":1"),
	}
	for i, l := range p.Links {
		if got := l.Subnet4.String() + " " + l.Subnet6.String(); got != want[i] {
			t.Errorf("link %s subnets %s, want %s", l.Name, got, want[i])
		}
	}
}

func parseSource(t *testing.T, src string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlanMgmt(t *testing.T) {
	s := parseSource(t, "[lab]\nname = \"m\"\n[[host]]\nname = \"a\"\n")
	p, err := NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	derived := p.Mgmt.Prefix
	if b := derived.Addr().As4(); b[0] != 10 || b[1] < 200 || b[1] >= 250 || derived.Bits() != 24 {
		t.Fatalf("derived mgmt %s is not 10.200-249.x.0/24", derived)
	}
	if p.Mgmt.Network != "fl-"+p.ID+"-mgmt" || p.Mgmt.Bridge != "fl"+p.ID+"-m" || p.Mgmt.Gateway != derived.Addr().Next() {
		t.Errorf("mgmt = %+v", p.Mgmt)
	}
	// A link that uses the derived prefix pushes mgmt to the next /24.
	s = parseSource(t, fmt.Sprintf("[lab]\nname = \"m\"\n[[host]]\nname = \"a\"\n[[host]]\nname = \"b\"\n[[link]]\nendpoints = [\"a\", \"b\"]\nsubnet4 = %q\n", derived))
	p, err = NewPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mgmt.Prefix == derived || p.Mgmt.Prefix.Overlaps(derived) {
		t.Errorf("mgmt %s still overlaps link subnet %s", p.Mgmt.Prefix, derived)
	}
	// The orchestrator may set another prefix after probing the host.
	s.Lab.Mgmt = netip.MustParsePrefix("10.9.8.0/24")
	if p, err = NewPlan(s); err != nil || p.Hosts[1].MgmtIP != netip.MustParseAddr("10.9.8.11") {
		t.Errorf("plan with mgmt 10.9.8.0/24: host b at %v, %v", p.Hosts[1].MgmtIP, err)
	}
}

func TestPlanLimits(t *testing.T) {
	big := parseSource(t, bigLab())
	if _, err := NewPlan(big); err != nil {
		t.Fatalf("a lab at the limits: %v", err)
	}
	tooManyLinks := *big
	tooManyLinks.Links = append(big.Links, spec.LinkSpec{Name: "extra", Endpoints: []string{"h00", "h01"}})
	if _, err := NewPlan(&tooManyLinks); err == nil || !strings.Contains(err.Error(), "101 links, at most 100") {
		t.Errorf("101 links: %v", err)
	}
	tooManyHosts := *big
	tooManyHosts.Hosts = append(big.Hosts, spec.HostSpec{Name: "h100", Kind: "vm"})
	if _, err := NewPlan(&tooManyHosts); err == nil || !strings.Contains(err.Error(), "101 hosts, at most 100") {
		t.Errorf("101 hosts: %v", err)
	}
	// The file gets the same limits, with lines.
	src := strings.Replace(bigLab(), "[[link]]", "[[host]]\nname = \"extra\"\n[[link]]", 1)
	if _, err := spec.Parse("big.toml", []byte(src)); err == nil || !strings.Contains(err.Error(), `big.toml:303: host "extra": a lab has at most 100 hosts`) {
		t.Errorf("101 hosts in a file: %v", err)
	}
	var busy strings.Builder
	busy.WriteString("[lab]\nname = \"busy\"\n[[host]]\nname = \"a\"\n[[host]]\nname = \"b\"\n")
	for range spec.MaxNICs + 1 {
		busy.WriteString("[[link]]\nendpoints = [\"a\", \"b\"]\n")
	}
	_, err := spec.Parse("busy.toml", []byte(busy.String()))
	if err == nil || !strings.Contains(err.Error(), `busy.toml:3: host "a" is on 100 links; a host can be on at most 99`) {
		t.Errorf("100 NICs: %v", err)
	}
}

func TestPlanMACs(t *testing.T) {
	m := macAllocator{lab: "x", used: map[string]bool{}}
	first := m.next("a", 0)
	// The same input again collides with the first and is re-hashed.
	second := m.next("a", 0)
	if first == second || !strings.HasPrefix(first, "52:54:00:") || !strings.HasPrefix(second, "52:54:00:") || len(second) != 17 {
		t.Errorf("MACs %s, %s: want two different 52:54:00 MACs", first, second)
	}
	again := macAllocator{lab: "x", used: map[string]bool{}}
	if again.next("a", 0) != first || again.next("a", 0) != second {
		t.Error("MAC allocation is not deterministic")
	}
}

// Node addresses come from a pool no link and no mgmt network overlaps:
// a link that takes the pool's first choice pushes it up.
func TestPlanNodes(t *testing.T) {
	lab := func(extra string) *Plan {
		s, err := spec.Parse("lab.toml", []byte(`
[lab]
name = "n"
mgmt = "10.9.9.0/24"
[[host]]
name = "a"
[[host]]
name = "b"
[[link]]
endpoints = ["a", "b"]
`+extra))
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPlan(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	free := lab("")
	tests := []struct {
		name         string
		p            *Plan
		pool4, pool6 string
	}{
		{"free", free, free.Nodes.Prefix4.String(), "fd00:f1:" + free.ID + ":ffff::/64"},
		{"pushed", lab(`subnet4 = "` + free.Nodes.Prefix4.String() + `"` + "\n" + `subnet6 = "fd00:f1:` + free.ID + `:ffff::/64"`),
			netip.PrefixFrom(addrAdd(free.Nodes.Prefix4.Addr(), 256), 24).String(), "fd00:f1:" + free.ID + ":fffe::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Nodes.Prefix4.String(); got != tt.pool4 {
				t.Errorf("pool4 %s, want %s", got, tt.pool4)
			}
			if got := tt.p.Nodes.Prefix6.String(); got != tt.pool6 {
				t.Errorf("pool6 %s, want %s", got, tt.pool6)
			}
			for i, h := range tt.p.Hosts {
				if !tt.p.Nodes.Prefix4.Contains(h.Node4) || !tt.p.Nodes.Prefix6.Contains(h.Node6) {
					t.Errorf("host %s: node %s %s outside the pools", h.Name, h.Node4, h.Node6)
				}
				if want := addrAdd(tt.p.Nodes.Prefix4.Addr(), i+1); h.Node4 != want {
					t.Errorf("host %s: node4 %s, want %s", h.Name, h.Node4, want)
				}
				for _, l := range tt.p.Links {
					if l.Subnet4.Contains(h.Node4) || l.Subnet6.Contains(h.Node6) {
						t.Errorf("host %s: node address on link %s", h.Name, l.Name)
					}
				}
			}
			if strings.Count(EtcHosts(tt.p, "a"), "b.node") != 2 {
				t.Errorf("/etc/hosts of a lacks b.node and b.node6:\n%s", EtcHosts(tt.p, "a"))
			}
		})
	}
}
