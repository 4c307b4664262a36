package fromlabs

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/forgelab/forgelab/labs"
	"github.com/forgelab/forgelab/telemetry/backend"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// runPaths are the routes a run's workloads recorded: a workload whose
// JSON lines carry "to" (the peer's address) and "dev" and "via" (its
// kernel's route to it: device and next hop, "" when direct), as the
// handover demo's Alice prints once a second. The run records the first
// hop only; from there to the peer the path is the fewest hops over the
// lab's links (in the demo's triangle, the only one). A line whose route
// names no data link (the management NIC, no route) ends the path until
// one does again.
func runPaths(r *runs.Run, p *labs.Plan) ([]backend.RunPath, error) {
	var out []backend.RunPath
	for _, f := range r.Workloads() {
		recs, err := r.Workload(f.Host, f.Name)
		if err != nil {
			return nil, fmt.Errorf("workload %s on %s: %w", f.Name, f.Host, err)
		}
		last := map[string]string{} // conversation name → its path, to keep changes only
		for _, rec := range recs {
			to, _ := rec.Fields["to"].(string)
			dev, _ := rec.Fields["dev"].(string)
			via, _ := rec.Fields["via"].(string)
			peer := hostWithAddr(p, to, "")
			if peer == "" || peer == f.Host {
				continue // not a route record, or to an address outside the lab
			}
			path := routePath(p, f.Host, peer, dev, via)
			path.Name = f.Name + "→" + peer
			key := fmt.Sprint(path.Hosts, path.Links)
			if k, seen := last[path.Name]; seen && k == key {
				continue
			}
			last[path.Name] = key
			out = append(out, backend.RunPath{T: rec.T, Path: path})
		}
	}
	slices.SortStableFunc(out, func(a, b backend.RunPath) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	})
	return out, nil
}

// routePath is the path from host src to peer whose first hop leaves on
// device dev toward next hop via; no hosts when dev is on no data link.
func routePath(p *labs.Plan, src, peer, dev, via string) backend.Path {
	var link *labs.LinkPlan
	for _, h := range p.Hosts {
		for _, n := range h.NICs {
			if h.Name == src && n.Name == dev {
				link = findPlanLink(p, n.Link)
			}
		}
	}
	if link == nil {
		return backend.Path{}
	}
	next := hostWithAddr(p, via, link.Name)
	switch {
	case next != "":
	case slices.Contains(link.Endpoints, peer):
		next = peer // directly on the link
	case len(link.Endpoints) == 2:
		next = link.Endpoints[0]
		if next == src {
			next = link.Endpoints[1]
		}
	default:
		return backend.Path{}
	}
	path := backend.Path{Hosts: []string{src, next}, Links: []string{link.Name}}
	if next == peer {
		return path
	}
	hosts, links := fewestHops(p, next, peer, src)
	if hosts == nil {
		return backend.Path{}
	}
	path.Hosts = append(path.Hosts, hosts[1:]...)
	path.Links = append(path.Links, links...)
	return path
}

// hostWithAddr is the host that has addr as its node address or (on link,
// or any link for "") a NIC address.
func hostWithAddr(p *labs.Plan, addr, link string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	for _, h := range p.Hosts {
		if link == "" && (h.Node4 == a || h.Node6 == a) {
			return h.Name
		}
		for _, n := range h.NICs {
			if link != "" && n.Link != link {
				continue
			}
			for _, pre := range n.Addresses {
				if pre.Addr() == a {
					return h.Name
				}
			}
		}
	}
	return ""
}

func findPlanLink(p *labs.Plan, name string) *labs.LinkPlan {
	for i := range p.Links {
		if p.Links[i].Name == name {
			return &p.Links[i]
		}
	}
	return nil
}

// fewestHops is a shortest path (by hops, links in plan order) from one
// host to another that does not pass avoid; nil when there is none.
func fewestHops(p *labs.Plan, from, to, avoid string) (hosts, links []string) {
	type step struct{ host, link string }
	prev := map[string]step{from: {}}
	queue := []string{from}
	for len(queue) > 0 && prev[to] == (step{}) && to != from {
		h := queue[0]
		queue = queue[1:]
		for _, l := range p.Links {
			if !slices.Contains(l.Endpoints, h) {
				continue
			}
			for _, e := range l.Endpoints {
				if _, seen := prev[e]; seen || e == avoid {
					continue
				}
				prev[e] = step{h, l.Name}
				queue = append(queue, e)
			}
		}
	}
	if _, ok := prev[to]; !ok {
		return nil, nil
	}
	for h := to; h != from; h = prev[h].host {
		hosts = append(hosts, h)
		links = append(links, prev[h].link)
	}
	hosts = append(hosts, from)
	slices.Reverse(hosts)
	slices.Reverse(links)
	return hosts, links
}
