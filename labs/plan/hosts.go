package plan

import (
	"fmt"
	"strings"
)

// EtcHosts renders the lines a host gets in /etc/hosts so people and
// programs can use names instead of addresses: "b.ab" is b's address on
// link ab, "b" is b's address on the first link this host shares with b
// (the direct path), or its first data address, and "b.mgmt" is b's
// management address, and "b.node" (and "b.node6") its node addresses,
// which survive a change of path.
func EtcHosts(p *Plan, self string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# forgelab lab %s\n", p.Lab)
	me := p.Host(self)
	for _, h := range p.Hosts {
		if h.Name == self {
			continue
		}
		var direct []string
		for _, n := range h.NICs {
			for _, a := range n.Addresses {
				fmt.Fprintf(&b, "%s\t%s.%s\n", a.Addr(), h.Name, n.Link)
			}
			if direct == nil && me != nil && sharesLink(me, n.Link) {
				direct = addrStrings(n)
			}
		}
		if direct == nil && len(h.NICs) > 0 {
			direct = addrStrings(h.NICs[0])
		}
		for _, a := range direct {
			fmt.Fprintf(&b, "%s\t%s\n", a, h.Name)
		}
		if h.Node4.IsValid() {
			fmt.Fprintf(&b, "%s\t%s.node\n", h.Node4, h.Name)
		}
		if h.Node6.IsValid() {
			fmt.Fprintf(&b, "%s\t%s.node6\n", h.Node6, h.Name)
		}
		if h.MgmtIP.IsValid() {
			if direct == nil {
				fmt.Fprintf(&b, "%s\t%s %s.mgmt\n", h.MgmtIP, h.Name, h.Name)
			} else {
				fmt.Fprintf(&b, "%s\t%s.mgmt\n", h.MgmtIP, h.Name)
			}
		}
	}
	return b.String()
}

func sharesLink(h *HostPlan, link string) bool {
	for _, n := range h.NICs {
		if n.Link == link {
			return true
		}
	}
	return false
}

func addrStrings(n NICPlan) []string {
	var out []string
	for _, a := range n.Addresses {
		out = append(out, a.Addr().String())
	}
	return out
}
