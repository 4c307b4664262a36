package spec

// The lab file: TOML, read by Load/Parse into a Spec. Every key, its
// meaning and its default:
//
//	[lab]
//	name   = "quickstart"   # required. a-z, 0-9, '-'; starts with a letter; at most 32 characters
//	fabric = "auto"         # how links are made: kernel | userspace | guest | auto
//	seed   = 1              # seeds every random choice of a run (impairments, mobility)
//	mgmt   = "10.1.2.0/24"  # IPv4 management network (libvirt NAT); default: derived from the name (see package plan)
//	routing = "none"        # none: the software under test routes (it announces the node addresses);
//	                        # static: forgelab installs shortest-path static routes at create (package routing)
//
//	[defaults]              # for every host of kind "vm" that does not set its own
//	image  = "debian-12"    # image store name
//	cpus   = 1              # 1 to 128
//	memory = "512MiB"       # at least 128MiB, a whole number of MiB
//	disk   = "0"            # disk size, a whole number of MiB; "0": the image's own size
//
//	[[host]]                # at most 100
//	name     = "a"          # required. like the lab name, at most 20 characters
//	kind     = "vm"         # vm | physical
//	image, cpus, memory, disk   # as in [defaults]; vm hosts only
//	position = [0, 0, 0]    # x, y (, z) in metres, for distance-based link quality; default the origin
//	mobility = { model = "linear", to = [-400, 0, 0], start = "10s", duration = "60s" }
//	                        # how the host moves during a run; keys per model in labs/mobility (Config)
//	ssh = { address = "192.0.2.10", user = "root", port = 22, key = "~/.ssh/id_ed25519", agent = false,
//	        known_hosts = "~/.ssh/known_hosts", trust_on_first_use = false }
//	                        # physical hosts only, and required for them: address (IP or DNS name),
//	                        # user (default "root"; others need passwordless sudo), port (22),
//	                        # key (relative to the lab file; default: the agent when SSH_AUTH_SOCK is set,
//	                        # else ~/.ssh/id_ed25519, id_ecdsa, id_rsa), agent (offer the agent's keys too),
//	                        # known_hosts (default ~/.ssh/known_hosts; the lab's own known_hosts is read too),
//	                        # trust_on_first_use (false: an unknown host key is refused, with its fingerprint;
//	                        # true: it is accepted once and saved in the lab's known_hosts)
//
//	[[deploy]], [[service]], [[workload]]: see spec_software.go.
//
//	[[link]]                # at most 100
//	name      = "ab"        # default "<a>-<b>" for two endpoints, "seg<N>" for more (N: the link's index from 0)
//	endpoints = ["a", "b"]  # required. two hosts, or more for a shared segment
//	subnet4   = "10.1.0.0/24"  # /30 or larger; default: from the first pinned IPv4 address, else the pool (package plan)
//	subnet6   = "fd00:1::/64"  # /126 or larger; default: from the first pinned IPv6 address, else the pool
//	addresses = { a = ["10.1.0.5/24", "fd00:1::5/64"] }  # pinned, one per family per host; the others get
//	                        # the lowest free host numbers in endpoint order (.1, .2, ...; ::1, ::2, ...)
//	rate      = "100mbit"   # tc units: bit, kbit, mbit, gbit (bits/s); bps, kbps, mbps (BYTES/s). default: unlimited
//	delay     = "5ms"       # ns, us, ms, s. default 0
//	jitter    = "1ms"       # at most delay. default 0
//	loss      = "0.1%"      # percentages: "0.1%" or a number (0.1 means 0.1 %). default 0
//	duplicate = "0%"
//	reorder   = "0%"        # needs a delay: reordered packets are the ones sent without it
//	corrupt   = "0%"
//	limit     = 1000        # queue limit in packets. default 0: the fabric decides
//	distribution = "normal" # of the jitter: uniform (default), normal, pareto, paretonormal. needs jitter
//	loss_burst = "1% 30%"   # bursty loss instead of loss (Gilbert-Elliott, as tc's "loss gemodel P R 1-H 1-K"):
//	                        # enter the bad state with P, leave it with R, lose 1-H there (default 100%)
//	                        # and 1-K in the good state (default 0%)
//	quality   = "radio"     # instead of the static keys above: the quality follows the distance of the
//	                        # link's hosts during a run, by the model [quality.radio]
//
//	[quality.radio]         # a named quality model; keys per model in labs/quality (Config)
//	model = "ramp"          # range | ramp | mininet-wifi | log-distance | table
//
//	[bench]                 # modes of `forgelab bench` (package labs/bench, docs/bench.md)
//
//	[scenario]              # the lab's own scenario, played by `forgelab run LAB` (labs/scenario)
//	duration = "60s"
//	[[scenario.event]]
//	at = "30s"
//	do = "link.down"
//	link = "ab"
//
// Keys are case-sensitive and unknown keys are errors, so a typo cannot be
// silently ignored.

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/forgelab/forgelab/labs/tomlfile"
	"github.com/forgelab/forgelab/labs/units"
)

// Limits of the lab file. Host and link counts come from the naming scheme
// (two decimal digits in netdev names, see package plan).
const (
	// MaxHosts, MaxLinks and MaxNICs: two decimal digits per index in
	// netdev names (HH, NN in plan's naming scheme; NICs are n01-n99).
	MaxHosts     = 100
	MaxLinks     = 100
	MaxNICs      = 99
	maxLabName   = 32
	maxHostName  = 20
	maxLinkName  = 20
	maxCPUs      = 128
	minMemoryMiB = 128
	MgmtFirst    = 10 // hosts are .10, .11, ... on the mgmt network
)

// Error is one problem in a lab file, at a line (0: the file as a whole).
type Error = tomlfile.Error

// Errors is every problem found in a lab file, in line order, one a line.
type Errors = tomlfile.Errors

// Load reads and checks a lab file. Problems in the file come back as
// Errors, each naming the file, the line and the fix.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lab file: %w", err)
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := checkSources(s); err != nil {
		return nil, err
	}
	if err := checkModels(s, data); err != nil {
		return nil, err
	}
	return s, nil
}

// Parse checks the contents of a lab file; file names it in messages and
// in Spec.File. It returns a Spec with the defaults filled in, or Errors
// listing every problem found.
func Parse(file string, data []byte) (*Spec, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		return nil, tomlfile.SyntaxError(file, err)
	}
	p := &parser{file: file, lines: tomlfile.Scan(string(data))}
	s := p.spec(&table{p: p, m: root})
	p.models(s, data)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	s.File = file
	s.Source = data
	return s, nil
}

// parser collects the problems of one lab file.
type parser struct {
	file  string
	lines tomlfile.KeyLines
	errs  Errors
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// vmResources are the keys [defaults] and vm hosts share.
type vmResources struct {
	image     string
	cpus      int
	memoryMiB int
	diskBytes int64
}

func builtinDefaults() vmResources {
	return vmResources{image: "debian-12", cpus: 1, memoryMiB: 512}
}

func (p *parser) spec(root *table) *Spec {
	s := &Spec{}
	labT := root.sub("lab")
	s.Lab = p.lab(labT)
	def := builtinDefaults()
	if dt := root.sub("defaults"); dt != nil {
		dt.what = "defaults"
		def = dt.vm(def)
		dt.unknownKeys()
	}
	s.Hosts = p.hosts(root.tables("host"), def)
	w := newLabWide(s.Lab.Mgmt, labT)
	s.Links = p.links(root.tables("link"), s.Hosts, w)
	p.software(root, s)
	root.has("quality")               // named quality models: package scenario reads them (models)
	s.Scenario = root.has("scenario") // package scenario reads it (models)
	s.Bench = root.has("bench")       // package labs/bench reads it
	root.unknownKeys()
	p.checkNICs(s)
	if labT != nil && s.Lab.Mgmt.IsValid() {
		if room := MgmtRoom(s.Lab.Mgmt); len(s.Hosts) > room {
			labT.errorf("mgmt", "mgmt %s has room for %d hosts (from .%d up), this lab has %d (use a /24)", s.Lab.Mgmt, room, MgmtFirst, len(s.Hosts))
		}
	}
	return s
}

// MgmtRoom is how many hosts fit on a mgmt network: .10 up to the last
// address before the broadcast address.
func MgmtRoom(p netip.Prefix) int {
	size := 1 << (32 - p.Bits())
	return max(0, size-MgmtFirst-1)
}

func (p *parser) lab(t *table) LabSection {
	lab := LabSection{Fabric: FabricAuto, Seed: 1}
	if t == nil {
		p.errorf(0, `no [lab] table: start the file with [lab] and name = "mylab"`)
		return lab
	}
	t.what = "lab"
	if name, ok := t.required("name", `name = "mylab"`); ok {
		lab.Name = name
		t.checkName("name", name, maxLabName)
	}
	if f, ok := t.str("fabric"); ok {
		lab.Fabric = f
		if !slices.Contains(Fabrics, f) {
			t.errorf("fabric", "fabric %q is not known (use %s)", f, quotedOr(Fabrics))
		}
	}
	if seed, ok := t.integer("seed"); ok {
		lab.Seed = seed
	}
	if s, ok := t.str("mgmt"); ok {
		lab.Mgmt = t.mgmt(s)
	}
	lab.Routing = RoutingNone
	if r, ok := t.str("routing"); ok {
		lab.Routing = r
		if !slices.Contains(Routings, r) {
			t.errorf("routing", "routing %q is not known (use %s)", r, quotedOr(Routings))
		}
	}
	t.unknownKeys()
	return lab
}

// mgmt reads the mgmt prefix; the zero Prefix if it is not usable.
func (t *table) mgmt(s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !p.Addr().Is4():
		t.errorf("mgmt", `mgmt %q is not an IPv4 prefix (write it like "10.213.7.0/24")`, s)
	case p != p.Masked():
		t.errorf("mgmt", "mgmt %q has host bits set (write %q)", s, p.Masked().String())
	case MgmtRoom(p) < 1:
		t.errorf("mgmt", "mgmt %s is too small: hosts start at .%d (use a /24)", p, MgmtFirst)
	default:
		return p
	}
	return netip.Prefix{}
}

// vm reads image, cpus, memory and disk over base.
func (t *table) vm(base vmResources) vmResources {
	r := base
	if s, ok := t.str("image"); ok {
		if strings.TrimSpace(s) == "" {
			t.errorf("image", `image is empty (write image = "debian-12")`)
		}
		r.image = s
	}
	if n, ok := t.integer("cpus"); ok {
		if n < 1 || n > maxCPUs {
			t.errorf("cpus", "cpus must be between 1 and %d, not %d", maxCPUs, n)
		}
		r.cpus = int(n)
	}
	if n, ok := t.size("memory", "512MiB"); ok {
		switch {
		case n%units.MiB != 0:
			t.errorf("memory", "memory %q is not a whole number of MiB (write it like %q)", t.m["memory"], fmt.Sprintf("%dMiB", (n+units.MiB-1)/units.MiB))
		case n < int64(minMemoryMiB)*units.MiB:
			t.errorf("memory", "memory %q is below the minimum of %dMiB", t.m["memory"], minMemoryMiB)
		case n > units.TiB:
			t.errorf("memory", "memory %q is more than 1TiB", t.m["memory"])
		}
		r.memoryMiB = int(n / units.MiB)
	}
	if n, ok := t.size("disk", "8GiB"); ok {
		if n%units.MiB != 0 {
			t.errorf("disk", "disk %q is not a whole number of MiB (write it like %q)", t.m["disk"], fmt.Sprintf("%dMiB", (n+units.MiB-1)/units.MiB))
		}
		r.diskBytes = n
	}
	return r
}

func (p *parser) hosts(ts []*table, def vmResources) []HostSpec {
	if len(ts) == 0 {
		p.errorf(0, `no hosts: add at least one [[host]] with name = "a"`)
	}
	var hosts []HostSpec
	seen := map[string]int{} // name -> line
	for i, t := range ts {
		h := p.host(t, i, def)
		if i == MaxHosts {
			t.errorf("", "a lab has at most %d hosts", MaxHosts)
		}
		if line, dup := seen[h.Name]; dup && h.Name != "" {
			t.errorf("name", "name %q is already used by the host on line %d (host names must be unique)", h.Name, line)
		} else {
			seen[h.Name] = h.Line
		}
		hosts = append(hosts, h)
	}
	return hosts
}

func (p *parser) host(t *table, i int, def vmResources) HostSpec {
	t.what = fmt.Sprintf("host #%d", i+1)
	h := HostSpec{Kind: KindVM, Line: t.line("")}
	if name, ok := t.required("name", fmt.Sprintf(`name = "h%d"`, i+1)); ok {
		t.what = fmt.Sprintf("host %q", name)
		h.Name = name
		t.checkName("name", name, maxHostName)
	}
	if k, ok := t.str("kind"); ok {
		if slices.Contains(Kinds, k) {
			h.Kind = k
		} else {
			t.errorf("kind", "kind %q is not known (use %s)", k, quotedOr(Kinds))
		}
	}
	if pos, ok := t.position("position"); ok {
		h.Position = pos
	}
	h.Mobility = t.has("mobility") // package scenario checks it (models.go)
	if h.Kind == KindPhysical {
		for _, key := range []string{"image", "cpus", "memory", "disk"} {
			if t.has(key) {
				t.errorf(key, "%s is only for kind = %q hosts (remove it)", key, KindVM)
			}
		}
		h.SSH = t.ssh()
	} else {
		r := t.vm(def)
		h.Image, h.CPUs, h.MemoryMiB, h.DiskBytes = r.image, r.cpus, r.memoryMiB, r.diskBytes
		if t.has("ssh") {
			t.errorf("ssh", "ssh is only for kind = %q hosts (forgelab reaches its VMs itself)", KindPhysical)
		}
	}
	t.unknownKeys()
	return h
}

// ssh reads a physical host's ssh table.
func (t *table) ssh() *SSHSpec {
	if !t.has("ssh") {
		t.errorf("", `a physical host needs ssh = { address = "192.0.2.10", user = "root" }`)
		return nil
	}
	st := t.sub("ssh")
	if st == nil {
		return nil
	}
	s := &SSHSpec{Port: 22, User: "root"}
	if a, ok := st.required("address", `address = "192.0.2.10"`); ok {
		s.Address = a
		if msg := sshAddressProblem(a); msg != "" {
			st.errorf("address", "ssh.address %q %s", a, msg)
		}
	}
	if u, ok := st.str("user"); ok {
		s.User = u
		if u == "" {
			st.errorf("user", `ssh.user is empty (leave it out for "root")`)
		}
	}
	if n, ok := st.integer("port"); ok {
		s.Port = int(n)
		if n < 1 || n > 65535 {
			st.errorf("port", "ssh.port must be between 1 and 65535, not %d", n)
		}
	}
	if k, ok := st.str("key"); ok {
		s.Key = k
		if k == "" {
			st.errorf("key", `ssh.key is empty (leave it out to use ssh.agent or ~/.ssh/id_ed25519)`)
		}
	}
	if b, ok := st.boolean("agent"); ok {
		s.Agent = b
	}
	if k, ok := st.str("known_hosts"); ok {
		s.KnownHosts = k
	}
	if b, ok := st.boolean("trust_on_first_use"); ok {
		s.TrustOnFirstUse = b
	}
	st.unknownKeys()
	return s
}

// sshAddressProblem says what is wrong with an ssh address, or "".
func sshAddressProblem(a string) string {
	if _, err := netip.ParseAddr(a); err == nil {
		return ""
	}
	if strings.Contains(a, ":") || strings.Contains(a, "@") {
		return "must be only an IP address or DNS name (put the user in ssh.user and the port in ssh.port)"
	}
	for _, label := range strings.Split(a, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
			strings.ContainsFunc(label, func(r rune) bool { return !isLower(r) && !isDigit(r) && r != '-' && !(r >= 'A' && r <= 'Z') }) {
			return "is not an IP address or DNS name"
		}
	}
	return ""
}

// labWide is what must be unique across the whole lab, filled while links
// are read: link names, subnets and addresses, each with who has it.
type labWide struct {
	links   map[string]int        // link name -> line
	subnets []claim               // in use, including the mgmt network
	addrs   map[netip.Addr]string // address -> "host "a" on link "ab" (line 12)"
}

type claim struct {
	prefix netip.Prefix
	owner  string
}

func newLabWide(mgmt netip.Prefix, labT *table) *labWide {
	w := &labWide{links: map[string]int{}, addrs: map[netip.Addr]string{}}
	if mgmt.IsValid() {
		w.subnets = append(w.subnets, claim{mgmt, fmt.Sprintf("the mgmt network (line %d)", labT.line("mgmt"))})
	}
	return w
}

func (p *parser) links(ts []*table, hosts []HostSpec, w *labWide) []LinkSpec {
	var links []LinkSpec
	for i, t := range ts {
		if i == MaxLinks {
			t.errorf("", "a lab has at most %d links", MaxLinks)
		}
		links = append(links, p.link(t, i, hosts, w))
	}
	return links
}

func (p *parser) link(t *table, i int, hosts []HostSpec, w *labWide) LinkSpec {
	t.what = fmt.Sprintf("link #%d", i+1)
	l := LinkSpec{Line: t.line("")}
	name, named := t.str("name")
	if named {
		t.what = fmt.Sprintf("link %q", name)
		t.checkName("name", name, maxLinkName)
	}
	l.Endpoints = t.endpoints(hosts)
	if !named && len(l.Endpoints) >= 2 {
		name = defaultLinkName(i, l.Endpoints)
		t.what = fmt.Sprintf("link %q", name)
		if len(name) > maxLinkName {
			t.errorf("endpoints", "needs a name: the default %q is longer than %d characters (add name = %q)", name, maxLinkName, sanitizeName(name, maxLinkName))
		}
	}
	l.Name = name
	if line, dup := w.links[name]; dup && name != "" {
		key := "name"
		if !named {
			key = "endpoints"
		}
		t.errorf(key, "name %q is already used by the link on line %d (link names must be unique; add name = \"...\" to one of them)", name, line)
	} else {
		w.links[name] = l.Line
	}
	l.Subnet4 = t.subnet("subnet4", true)
	l.Subnet6 = t.subnet("subnet6", false)
	l.Addresses = t.addresses(l.Endpoints)
	t.pinSubnets(&l)
	t.claim(&l, w)
	l.Quality = t.quality()
	if m, ok := t.str("quality"); ok {
		l.Model = m
		var static []string
		for _, k := range staticQualityKeys {
			if _, set := t.m[k]; set {
				static = append(static, k)
			}
		}
		if len(static) > 0 {
			t.errorf("quality", "quality = %q and %s are both set: a link's quality follows a model or is static, not both (remove %s, or quality)", m, strings.Join(static, ", "), strings.Join(static, ", "))
		}
	}
	t.unknownKeys()
	return l
}

func defaultLinkName(i int, endpoints []string) string {
	if len(endpoints) == 2 {
		return endpoints[0] + "-" + endpoints[1]
	}
	return fmt.Sprintf("seg%d", i)
}

// endpoints reads and checks a link's endpoints; it returns them as
// written, even when some are wrong.
func (t *table) endpoints(hosts []HostSpec) []string {
	eps, ok := t.stringList("endpoints")
	if !ok {
		if !t.has("endpoints") {
			t.errorf("", `endpoints is missing (add endpoints = ["a", "b"])`)
		}
		return nil
	}
	if len(eps) < 2 {
		t.errorf("endpoints", `a link needs at least 2 endpoints, this one has %d (write endpoints = ["a", "b"])`, len(eps))
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	for i, e := range eps {
		switch {
		case !slices.Contains(names, e):
			t.errorf("endpoints", "endpoint %q is not a host of this lab (hosts: %s)", e, strings.Join(names, ", "))
		case slices.Contains(eps[:i], e):
			t.errorf("endpoints", "endpoint %q is listed twice (a host joins a link once)", e)
		}
	}
	return eps
}

// subnet reads subnet4 (v4) or subnet6; the zero Prefix if absent or bad.
func (t *table) subnet(key string, v4 bool) netip.Prefix {
	s, ok := t.str(key)
	if !ok {
		return netip.Prefix{}
	}
	example, family := `"10.1.0.0/24"`, "IPv4"
	if !v4 {
		example, family = `"fd00:1::/64"`, "IPv6"
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		t.errorf(key, "%s %q is not a prefix (write it like %s)", key, s, example)
	case p.Addr().Is4() != v4 || p.Addr().Is4In6():
		t.errorf(key, "%s %q is not an %s prefix (write it like %s)", key, s, family, example)
	case p != p.Masked():
		t.errorf(key, "%s %q has host bits set (write %q)", key, s, p.Masked().String())
	case t.subnetTooSmall(key, p):
	default:
		return p
	}
	return netip.Prefix{}
}

// subnetTooSmall reports a link subnet with no room for two hosts.
func (t *table) subnetTooSmall(key string, p netip.Prefix) bool {
	if p.Addr().Is4() && p.Bits() > 30 {
		t.errorf(key, "subnet4 %s is too small (use /30 or larger)", p)
		return true
	}
	if p.Addr().Is6() && p.Bits() > 126 {
		t.errorf(key, "subnet6 %s is too small (use /126 or larger)", p)
		return true
	}
	return false
}

// addresses reads addresses = { host = ["10.1.0.5/24", ...] } (a single
// string is also accepted).
func (t *table) addresses(endpoints []string) map[string][]netip.Prefix {
	at := t.sub("addresses")
	if at == nil {
		return nil
	}
	out := map[string][]netip.Prefix{}
	for _, host := range slices.Sorted(maps.Keys(at.m)) {
		list, ok := at.stringOrStrings(host)
		if !ok {
			continue
		}
		if !slices.Contains(endpoints, host) {
			at.errorf(host, "addresses: %q is not an endpoint of this link (endpoints: %s)", host, strings.Join(endpoints, ", "))
			continue
		}
		for _, s := range list {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				if a, aerr := netip.ParseAddr(s); aerr == nil {
					at.errorf(host, "address %q of host %q needs its prefix length (write it like %q)", s, host, netip.PrefixFrom(a, defaultBits(a)).String())
				} else {
					at.errorf(host, `address %q of host %q is not an address with prefix length (write it like "10.1.0.5/24" or "fd00:1::5/64")`, s, host)
				}
				continue
			}
			out[host] = append(out[host], p)
		}
	}
	return out
}

func defaultBits(a netip.Addr) int {
	if a.Is4() {
		return 24
	}
	return 64
}

// pinSubnets checks pinned addresses against the link's subnets; a link
// without subnet4 (subnet6) takes it from its first pinned IPv4 (IPv6)
// address.
func (t *table) pinSubnets(l *LinkSpec) {
	families := []struct {
		key    string
		v4     bool
		subnet *netip.Prefix
	}{{"subnet4", true, &l.Subnet4}, {"subnet6", false, &l.Subnet6}}
	for _, f := range families {
		for _, host := range l.Endpoints {
			n := 0
			for _, a := range l.Addresses[host] {
				if a.Addr().Is4() != f.v4 {
					continue
				}
				if n++; n == 2 {
					t.errorf("addresses", "host %q has two %s addresses on this link (pin one per family)", host, familyName(f.v4))
				}
				if !f.subnet.IsValid() && !t.has(f.key) {
					if t.subnetTooSmall("addresses", a.Masked()) {
						continue
					}
					*f.subnet = a.Masked()
				}
				t.checkPinned(host, a, *f.subnet, f.key)
			}
		}
	}
}

func familyName(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}

// checkPinned checks one pinned address against its link subnet.
func (t *table) checkPinned(host string, a, subnet netip.Prefix, key string) {
	switch {
	case !subnet.IsValid():
		// subnet is bad and was reported
	case !subnet.Contains(a.Addr()):
		t.errorf("addresses", "address %q of host %q is outside %s %s (pick one inside it, or change %s)", a, host, key, subnet, key)
	case a.Bits() != subnet.Bits():
		t.errorf("addresses", "address %q of host %q has prefix length /%d but %s is %s (write %q)", a, host, a.Bits(), key, subnet, netip.PrefixFrom(a.Addr(), subnet.Bits()))
	case a.Addr() == subnet.Addr():
		t.errorf("addresses", "address %q of host %q is the network address of %s (pick another)", a, host, subnet)
	case a.Addr().Is4() && a.Addr() == LastAddr(subnet):
		t.errorf("addresses", "address %q of host %q is the broadcast address of %s (pick another)", a, host, subnet)
	}
}

// LastAddr is the highest address of p.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		if bits := p.Bits() - 8*i; bits < 8 {
			b[i] |= 0xff >> max(bits, 0)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// hostRoom is how many hosts a link subnet has addresses for (capped).
func hostRoom(p netip.Prefix) int {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= 20 {
		return 1 << 20
	}
	if p.Addr().Is4() {
		return 1<<hostBits - 2 // network and broadcast
	}
	return 1<<hostBits - 1 // the subnet-router anycast address
}

// claim checks the link's subnets against every other subnet of the lab,
// its room for the endpoints, and its pinned addresses for duplicates.
func (t *table) claim(l *LinkSpec, w *labWide) {
	for _, s := range []struct {
		key    string
		subnet netip.Prefix
	}{{"subnet4", l.Subnet4}, {"subnet6", l.Subnet6}} {
		if !s.subnet.IsValid() {
			continue
		}
		key := s.key
		if !t.has(key) {
			key = "addresses"
		}
		if room := hostRoom(s.subnet); len(l.Endpoints) > room {
			t.errorf(key, "%s %s has room for %d hosts, this link has %d endpoints (use a larger subnet)", s.key, s.subnet, room, len(l.Endpoints))
		}
		for _, c := range w.subnets {
			if c.prefix.Overlaps(s.subnet) {
				t.errorf(key, "%s %s overlaps %s of %s (each link needs its own subnet)", s.key, s.subnet, c.prefix, c.owner)
			}
		}
		w.subnets = append(w.subnets, claim{s.subnet, fmt.Sprintf("link %q (line %d)", l.Name, t.line(key))})
	}
	for _, host := range l.Endpoints {
		for _, a := range l.Addresses[host] {
			if other, dup := w.addrs[a.Addr()]; dup {
				t.errorf("addresses", "address %q of host %q is already used by %s", a.Addr(), host, other)
				continue
			}
			w.addrs[a.Addr()] = fmt.Sprintf("host %q on link %q (line %d)", host, l.Name, t.line("addresses"))
		}
	}
}

// quality reads a link's static impairments.
func (t *table) quality() Quality {
	var q Quality
	if s, ok := t.unitString("rate", "100mbit"); ok {
		n, err := units.ParseRate(s)
		switch {
		case err != nil:
			t.errorf("rate", "rate %v", err)
		case n == 0:
			t.errorf("rate", "rate must be more than 0 (leave rate out for an unlimited link)")
		}
		q.RateBits = n
	}
	q.DelayNs = int64(t.delay("delay"))
	q.JitterNs = int64(t.delay("jitter"))
	q.LossPct = t.percent("loss")
	q.DuplicatePct = t.percent("duplicate")
	q.ReorderPct = t.percent("reorder")
	q.CorruptPct = t.percent("corrupt")
	if n, ok := t.integer("limit"); ok {
		q.Limit = int(n)
		if n < 0 || n > 1<<31-1 {
			t.errorf("limit", "limit must be a number of packets from 0 (the fabric's default) up, not %d", n)
		}
	}
	if d, ok := t.str("distribution"); ok {
		switch {
		case !slices.Contains(units.Distributions, d):
			t.errorf("distribution", "unknown jitter distribution %q (want %s)", d, strings.Join(units.Distributions, ", "))
		case q.JitterNs == 0:
			t.errorf("distribution", `distribution shapes the jitter, and this link has none (add jitter = "2ms", or remove distribution)`)
		}
		q.Distribution = d
	}
	if s, ok := t.str("loss_burst"); ok {
		b, err := units.ParseBurstLoss(s)
		switch {
		case err != nil:
			t.errorf("loss_burst", "%v", err)
		case q.LossPct > 0:
			t.errorf("loss_burst", "loss and loss_burst are both set: random loss or bursty loss, not both (remove one)")
		}
		q.LossBurst = b
	}
	if q.JitterNs > q.DelayNs {
		t.errorf("jitter", "jitter %s is larger than delay %s: packets cannot arrive before they are sent (raise delay or lower jitter)", time.Duration(q.JitterNs), time.Duration(q.DelayNs))
	}
	if q.ReorderPct > 0 && q.DelayNs == 0 {
		t.errorf("reorder", `reorder needs a delay: reordered packets are the ones sent without it (add delay = "10ms")`)
	}
	return q
}

func (t *table) delay(key string) time.Duration {
	s, ok := t.unitString(key, "5ms")
	if !ok {
		return 0
	}
	d, err := units.ParseDelay(s)
	if err != nil {
		t.errorf(key, "%s %v", key, err)
	}
	return d
}

// percent reads "0.1%", "0.1" or 0.1 (all 0.1 %).
func (t *table) percent(key string) float64 {
	v, ok := t.value(key)
	if !ok {
		return 0
	}
	switch v := v.(type) {
	case string:
		p, err := units.ParsePercent(v)
		if err != nil {
			t.errorf(key, "%s %v", key, err)
		}
		return p
	case int64, float64:
		p := toFloat(v)
		if err := units.CheckPercent(p); err != nil {
			t.errorf(key, "%s %v %v", key, v, err)
		}
		return p
	}
	t.errorf(key, `%s must be a percentage like "0.1%%", not %s`, key, describe(v))
	return 0
}

// checkNICs checks that no host is on more links than it can have NICs.
func (p *parser) checkNICs(s *Spec) {
	for _, h := range s.Hosts {
		n := 0
		for _, l := range s.Links {
			if slices.Contains(l.Endpoints, h.Name) {
				n++
			}
		}
		if n > MaxNICs {
			p.errorf(h.Line, "host %q is on %d links; a host can be on at most %d", h.Name, n, MaxNICs)
		}
	}
}

// Names.

// checkName reports a name that cannot become a hostname, a libvirt name
// and part of a netdev name.
func (t *table) checkName(key, name string, maxLen int) {
	if validName(name, maxLen) {
		return
	}
	fix := ""
	if s := sanitizeName(name, maxLen); s != "" {
		fix = fmt.Sprintf(" (try %q)", s)
	}
	if len(name) > maxLen {
		t.errorf(key, "%s %q is longer than %d characters%s", key, name, maxLen, fix)
		return
	}
	t.errorf(key, "%s %q cannot be a hostname and part of device names: use lowercase letters, digits and '-', starting with a letter and not ending with '-'%s", key, name, fix)
}

// validName tells whether name can be a hostname, a libvirt name and part
// of a netdev name.
func validName(name string, maxLen int) bool {
	return name != "" && len(name) <= maxLen && isLower(rune(name[0])) && !strings.HasSuffix(name, "-") &&
		!strings.ContainsFunc(name, func(r rune) bool { return !isLower(r) && !isDigit(r) && r != '-' })
}

// sanitizeName turns name into a valid one, or "" when nothing is left.
func sanitizeName(name string, maxLen int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case isLower(r) || isDigit(r):
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	s := strings.TrimLeftFunc(b.String(), func(r rune) bool { return !isLower(r) })
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	return strings.TrimRight(s, "-")
}

func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// table reads one TOML table: it converts values, reports problems at their
// lines, and remembers every key asked for so that unknownKeys can report
// the others, with the nearest valid key as a suggestion.
//
// (The toml library's MetaData.Undecoded names an unknown key as
// "host.nmae" without saying which [[host]], and its struct decoding
// matches keys case-insensitively, so "Memory" would pass. Reading tables
// by hand gives exact keys and per-table lines.)
type table struct {
	p      *parser
	path   string // position path: "lab", "host[2]", "host[2].ssh"
	what   string // message prefix: `host "b"`; "" at the top level
	prefix string // key prefix in messages: "ssh." in the ssh table
	m      map[string]any
	known  []string
}

func (t *table) line(key string) int {
	return t.p.lines.Find(tomlfile.JoinPath(t.path, key))
}

// errorf reports a problem at key's line ("": the table's own line).
func (t *table) errorf(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if t.what != "" {
		msg = t.what + ": " + msg
	}
	t.p.errorf(t.line(key), "%s", msg)
}

// value returns a key's raw value and marks the key as known.
func (t *table) value(key string) (any, bool) {
	if !slices.Contains(t.known, key) {
		t.known = append(t.known, key)
	}
	v, ok := t.m[key]
	return v, ok
}

func (t *table) has(key string) bool {
	_, ok := t.value(key)
	return ok
}

// label is a key as messages show it.
func (t *table) label(key string) string { return t.prefix + key }

func (t *table) typeError(key, want string, v any) {
	t.errorf(key, "%s must be %s, not %s", t.label(key), want, describe(v))
}

// The typed getters return ok only when the key is present and of the
// right type; a wrong type is reported.

func (t *table) str(key string) (string, bool) {
	v, ok := t.value(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.typeError(key, "a string in quotes", v)
	}
	return s, ok
}

// required is str for a key that must be there; example shows how to add it.
func (t *table) required(key, example string) (string, bool) {
	if !t.has(key) {
		t.errorf("", "%s is missing (add %s)", t.label(key), example)
		return "", false
	}
	return t.str(key)
}

func (t *table) integer(key string) (int64, bool) {
	v, ok := t.value(key)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		if s, isStr := v.(string); isStr {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				t.errorf(key, "%s must be a whole number, not %s (write %s = %s, without quotes)", t.label(key), describe(v), key, s)
				return 0, false
			}
		}
		t.typeError(key, "a whole number", v)
	}
	return n, ok
}

func (t *table) boolean(key string) (bool, bool) {
	v, ok := t.value(key)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		t.typeError(key, "true or false", v)
	}
	return b, ok
}

// stringList reads a list of strings.
func (t *table) stringList(key string) ([]string, bool) {
	v, ok := t.value(key)
	if !ok {
		return nil, false
	}
	list, isList := v.([]any)
	var out []string
	for _, x := range list {
		if s, isStr := x.(string); isStr {
			out = append(out, s)
		}
	}
	if !isList || len(out) != len(list) {
		t.typeError(key, `a list of strings like ["a", "b"]`, v)
		return nil, false
	}
	return out, true
}

// stringOrStrings reads "x" or ["x", "y"].
func (t *table) stringOrStrings(key string) ([]string, bool) {
	if s, isStr := t.m[key].(string); isStr {
		t.value(key)
		return []string{s}, true
	}
	return t.stringList(key)
}

// unitString reads a string with a unit; a bare number gets a hint.
func (t *table) unitString(key, example string) (string, bool) {
	v, ok := t.value(key)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case int64, float64:
		t.errorf(key, "%s %v has no unit (write it like %q)", t.label(key), v, example)
	default:
		t.typeError(key, fmt.Sprintf("a string like %q", example), v)
	}
	return "", false
}

// size reads a size in bytes, like "512MiB".
func (t *table) size(key, example string) (int64, bool) {
	s, ok := t.unitString(key, example)
	if !ok {
		return 0, false
	}
	n, err := units.ParseSize(s)
	if err != nil {
		t.errorf(key, "%s %v", t.label(key), err)
		return 0, false
	}
	return n, true
}

// position reads [x, y] or [x, y, z].
func (t *table) position(key string) ([3]float64, bool) {
	var pos [3]float64
	v, ok := t.value(key)
	if !ok {
		return pos, false
	}
	list, _ := v.([]any)
	if len(list) < 2 || len(list) > 3 {
		t.typeError(key, "a list of 2 or 3 numbers like [0, 0, 0]", v)
		return pos, false
	}
	for i, x := range list {
		switch x.(type) {
		case int64, float64:
			pos[i] = toFloat(x)
		default:
			t.typeError(key, "a list of 2 or 3 numbers like [0, 0, 0]", v)
			return pos, false
		}
	}
	return pos, true
}

// sub returns the table under key, or nil when it is absent or not a table.
func (t *table) sub(key string) *table {
	v, ok := t.value(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.typeError(key, "a table", v)
		return nil
	}
	prefix := t.prefix + key + "."
	if t.path == "" {
		prefix = "" // [lab], [defaults]: keys are shown bare
	}
	return &table{p: t.p, path: tomlfile.JoinPath(t.path, key), what: t.what, prefix: prefix, m: m}
}

// tables returns the array of tables under key ([[host]]).
func (t *table) tables(key string) []*table {
	v, ok := t.value(key)
	if !ok {
		return nil
	}
	elems, ok := tomlfile.Tables(v)
	if !ok {
		t.errorf(key, "%s must be written as [[%s]] tables, not %s", key, key, describe(v))
		return nil
	}
	out := make([]*table, len(elems))
	for i, m := range elems {
		out[i] = &table{p: t.p, path: fmt.Sprintf("%s[%d]", tomlfile.JoinPath(t.path, key), i), what: t.what, m: m}
	}
	return out
}

// unknownKeys reports every key of the table nobody asked for.
func (t *table) unknownKeys() {
	for _, key := range slices.Sorted(maps.Keys(t.m)) {
		if !slices.Contains(t.known, key) {
			t.errorf(key, "unknown key %q%s", t.label(key), suggest(key, t.known))
		}
	}
}

// suggest names the valid key nearest to key, or lists them all.
func suggest(key string, valid []string) string {
	best, bestDist := "", 3
	for _, v := range valid {
		if d := editDistance(strings.ToLower(key), v); d < bestDist {
			best, bestDist = v, d
		}
	}
	if best != "" && (bestDist <= 1 || len(key) > 4) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (valid keys: %s)", strings.Join(valid, ", "))
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a into b (optimal string alignment distance).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64, float64:
		return fmt.Sprintf("the number %v", v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprintf("%v", x)
			if s, ok := x.(string); ok {
				parts[i] = strconv.Quote(s)
			}
		}
		return "the list [" + strings.Join(parts, ", ") + "]"
	case []map[string]any:
		return "a list of tables"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%v", v)
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// CheckLabName says why name cannot be a lab's name, or returns nil. Every
// caller that turns a name from the command line into a path checks it
// first, so "../x" or "a/b" never reaches the file system.
func CheckLabName(name string) error {
	if validName(name, maxLabName) {
		return nil
	}
	return fmt.Errorf("%q is not a lab name: lab names are lowercase letters, digits and '-', start with a letter, and have at most %d characters", name, maxLabName)
}
