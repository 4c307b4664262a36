// Package routing gives every lab host a node address that belongs to no
// link (an IPv4 /32 and an IPv6 /128 on a dummy interface, as netlab's
// loopback pool), and, for `routing = "static"`, the shortest-path static
// routes plain IP would have: the legacy side of a comparison, which does
// not reroute when a link fails. `routing = "none"` leaves routing to the
// software under test (babeld, a new network stack), which announces the
// node addresses itself.
package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Modes of [lab] routing.
const (
	None   = "none"
	Static = "static"
)

// NodeDev is the dummy interface that holds a host's node addresses.
const NodeDev = "node0"

// Host is one lab host and its node addresses.
type Host struct {
	Name         string
	Node4, Node6 netip.Addr
}

// Iface is one host's NIC on a link.
type Iface struct {
	Host         string
	Dev          string // interface name inside the host, e.g. eth1
	Addr4, Addr6 netip.Prefix
}

// Link is a point-to-point link (two ifaces) or a segment (more).
type Link struct {
	Name   string
	Ifaces []Iface
}

// Route is one static route on a host.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
	Dev string
}

// Routes computes, for every host, static routes to every other host's
// node addresses and to every link subnet it is not on, along a shortest
// path by hop count. Ties go to the link that sorts first by name, then to
// the neighbour that does, so the same lab always gets the same routes.
// Pairs of hosts no path joins get no route and are listed in unreachable
// ("a->d").
func Routes(hosts []Host, links []Link) (routes map[string][]Route, unreachable []string, err error) {
	g, err := newGraph(hosts, links)
	if err != nil {
		return nil, nil, err
	}
	out := map[string][]Route{}
	for _, src := range g.names {
		first := g.firstHops(src)
		var rs []Route
		for _, h := range hosts {
			if h.Name == src {
				continue
			}
			hop, ok := first[h.Name]
			if !ok {
				unreachable = append(unreachable, src+"->"+h.Name)
				continue
			}
			for _, a := range []netip.Addr{h.Node4, h.Node6} {
				if r, ok := hop.route(a, netip.PrefixFrom(a, a.BitLen())); ok {
					rs = append(rs, r)
				}
			}
		}
		// Link subnets src is not on: through the first hop toward the
		// nearest host that is.
		for _, l := range g.links {
			if l.has(src) {
				continue
			}
			var best *hop
			bestDist := -1
			for _, ifc := range l.Ifaces {
				hp, ok := first[ifc.Host]
				if !ok {
					continue
				}
				if d := g.dist[src][ifc.Host]; bestDist < 0 || d < bestDist {
					best, bestDist = &hp, d
				}
			}
			if best == nil {
				continue
			}
			for _, p := range l.subnets() {
				if r, ok := best.route(p.Addr(), p); ok {
					rs = append(rs, r)
				}
			}
		}
		out[src] = rs
	}
	return out, unreachable, nil
}

// hop is the first step from a host toward another: the neighbour's
// addresses on the shared link and the local device that reaches it.
type hop struct {
	dev        string
	via4, via6 netip.Addr
}

func (h hop) route(a netip.Addr, to netip.Prefix) (Route, bool) {
	via := h.via4
	if a.Is6() {
		via = h.via6
	}
	if !via.IsValid() || !a.IsValid() {
		return Route{}, false
	}
	return Route{To: to, Via: via, Dev: h.dev}, true
}

type graph struct {
	names []string
	links []Link
	dist  map[string]map[string]int
}

func newGraph(hosts []Host, links []Link) (*graph, error) {
	g := &graph{dist: map[string]map[string]int{}}
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h.Name] {
			return nil, fmt.Errorf("host %s twice", h.Name)
		}
		seen[h.Name] = true
		g.names = append(g.names, h.Name)
	}
	sort.Strings(g.names)
	g.links = slices.Clone(links)
	sort.Slice(g.links, func(i, j int) bool { return g.links[i].Name < g.links[j].Name })
	for _, l := range g.links {
		if len(l.Ifaces) < 2 {
			return nil, fmt.Errorf("link %s has %d hosts; a link joins two or more", l.Name, len(l.Ifaces))
		}
		for _, ifc := range l.Ifaces {
			if !seen[ifc.Host] {
				return nil, fmt.Errorf("link %s: unknown host %s", l.Name, ifc.Host)
			}
		}
	}
	for _, n := range g.names {
		g.dist[n] = g.bfs(n)
	}
	return g, nil
}

func (l Link) has(host string) bool {
	return slices.ContainsFunc(l.Ifaces, func(i Iface) bool { return i.Host == host })
}

func (l Link) iface(host string) (Iface, bool) {
	for _, i := range l.Ifaces {
		if i.Host == host {
			return i, true
		}
	}
	return Iface{}, false
}

func (l Link) subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []netip.Prefix{l.Ifaces[0].Addr4, l.Ifaces[0].Addr6} {
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	return out
}

// neighbours of host in order: by link name, then by host name.
func (g *graph) neighbours(host string) []struct {
	name string
	hop  hop
} {
	var out []struct {
		name string
		hop  hop
	}
	for _, l := range g.links {
		mine, ok := l.iface(host)
		if !ok {
			continue
		}
		others := slices.Clone(l.Ifaces)
		sort.Slice(others, func(i, j int) bool { return others[i].Host < others[j].Host })
		for _, o := range others {
			if o.Host == host {
				continue
			}
			out = append(out, struct {
				name string
				hop  hop
			}{o.Host, hop{dev: mine.Dev, via4: o.Addr4.Addr(), via6: o.Addr6.Addr()}})
		}
	}
	return out
}

func (g *graph) bfs(src string) map[string]int {
	dist := map[string]int{src: 0}
	queue := []string{src}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, nb := range g.neighbours(n) {
			if _, ok := dist[nb.name]; !ok {
				dist[nb.name] = dist[n] + 1
				queue = append(queue, nb.name)
			}
		}
	}
	return dist
}

// firstHops maps every reachable host to the first hop from src toward it.
func (g *graph) firstHops(src string) map[string]hop {
	first := map[string]hop{}
	type item struct {
		name string
		via  hop
	}
	seen := map[string]bool{src: true}
	var queue []item
	for _, nb := range g.neighbours(src) {
		if !seen[nb.name] {
			seen[nb.name] = true
			first[nb.name] = nb.hop
			queue = append(queue, item{nb.name, nb.hop})
		}
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		for _, nb := range g.neighbours(it.name) {
			if !seen[nb.name] {
				seen[nb.name] = true
				first[nb.name] = it.via
				queue = append(queue, item{nb.name, it.via})
			}
		}
	}
	return first
}

// savedSysctls keeps the settings Script changes, as they were, for
// UndoScript (in /run: a reboot brings the host's own values back anyway).
const savedSysctls = "/run/forgelab-routes.sysctl"

var sysctlKeys = []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"}

// UndoScript takes back what Script did: the dummy interface goes (and
// with it the node addresses and the routes through it; routes over the
// lab's links go with their devices) and the settings it changed get their
// old values. An adopted host gets back exactly what it had.
func UndoScript() string {
	return fmt.Sprintf("ip link del %[1]s 2>/dev/null; if [ -e %[2]s ]; then sysctl -q -p %[2]s; rm -f %[2]s; fi; true\n", NodeDev, savedSysctls)
}

// Script returns the shell script that sets up one host: its node
// addresses on the dummy interface, forwarding on (hosts relay for each
// other in both modes), reverse-path filtering off (paths may be
// asymmetric), and the routes. It is idempotent: it runs at every boot.
func Script(h Host, routes []Route) (string, error) {
	if !h.Node4.IsValid() && !h.Node6.IsValid() {
		return "", errors.New("host " + h.Name + " has no node address")
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# forgelab: node addresses and routes of " + h.Name + "\nset -e\n")
	// The values before the first run of this boot, for UndoScript.
	fmt.Fprintf(&b, "[ -e %[1]s ] || sysctl %[2]s > %[1]s\n", savedSysctls, strings.Join(sysctlKeys, " "))
	b.WriteString("sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0\n")
	b.WriteString("ip link show " + NodeDev + " >/dev/null 2>&1 || ip link add " + NodeDev + " type dummy\n")
	b.WriteString("ip link set " + NodeDev + " up\n")
	if h.Node4.IsValid() {
		fmt.Fprintf(&b, "ip addr replace %s/32 dev %s\n", h.Node4, NodeDev)
	}
	if h.Node6.IsValid() {
		fmt.Fprintf(&b, "ip -6 addr replace %s/128 dev %s nodad\n", h.Node6, NodeDev)
	}
	for _, r := range routes {
		fam := ""
		if r.To.Addr().Is6() {
			fam = "-6 "
		}
		fmt.Fprintf(&b, "ip %sroute replace %s via %s dev %s\n", fam, r.To, r.Via, r.Dev)
	}
	return b.String(), nil
}
