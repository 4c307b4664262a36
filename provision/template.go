package provision

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/template"
)

// Facts is what a template knows about the lab, seen from one host. The
// orchestrator fills it from the lab's plan.
type Facts struct {
	Lab   string
	Seed  int64
	Coord string               // base URL of the lab's coordination service as this host reaches it ("" if none)
	Host  HostFacts            // the host the text is rendered for
	Hosts map[string]HostFacts // every host of the lab, this one included
}

// HostFacts describes one host.
type HostFacts struct {
	Name     string
	Mgmt     netip.Addr // address on the management network
	Position [3]float64
	Links    []LinkFacts // data links, in lab order
	// Node4 and Node6 are the host's node addresses: on no link, so they
	// stay the same whichever path reaches the host.
	Node4, Node6 netip.Addr
}

// LinkFacts is one data link as one host sees it.
type LinkFacts struct {
	Name      string
	Peers     []string       // the other hosts on the link
	Addresses []netip.Prefix // this host's addresses on it, with prefix length
}

// Addresses lists the host's data addresses on every link, in link order.
func (h HostFacts) Addresses() []netip.Prefix {
	var out []netip.Prefix
	for _, l := range h.Links {
		out = append(out, l.Addresses...)
	}
	return out
}

// Peers lists, sorted and once each, the hosts that share a link with this
// host: {{ join .Peers "," }}.
func (f Facts) Peers() []string { return f.Host.peers("") }

// Name is the host's name: {{ .Name }}.
func (f Facts) Name() string { return f.Host.Name }

func (h HostFacts) peers(link string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range h.Links {
		if link != "" && l.Name != link {
			continue
		}
		for _, p := range l.Peers {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (h HostFacts) linkNames() string {
	names := make([]string, len(h.Links))
	for i, l := range h.Links {
		names[i] = l.Name
	}
	return strings.Join(names, ", ")
}

// Render executes text as a Go template over f. name says where the text
// comes from ("service web command", "build/app.conf"); errors carry it.
// Rendering is strict: a missing field, map key or host is an error, never
// "<no value>".
//
// Functions, besides text/template's own:
//
//	ip "b"            first IPv4 address of host b on a data link
//	ip "b" "ab"       host b's IPv4 address on link ab
//	ip6 "b" ["ab"]    the same for IPv6
//	mgmt "b"          host b's management address
//	node "b"          host b's node address (IPv4 /32 on no link); node6 "b" the IPv6 one
//	peers ["ab"]      this host's neighbours (on link ab), sorted
//	join LIST SEP     strings.Join
func Render(name, text string, f Facts) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(f)).Parse(text)
	if err != nil {
		return "", err // "template: NAME:LINE: ..." already names it
	}
	var b strings.Builder
	if err := t.Execute(&b, f); err != nil {
		return "", err
	}
	return b.String(), nil
}

func templateFuncs(f Facts) template.FuncMap {
	host := func(fn, name string) (HostFacts, error) {
		if h, ok := f.Hosts[name]; ok {
			return h, nil
		}
		if name == f.Host.Name {
			return f.Host, nil
		}
		names := make([]string, 0, len(f.Hosts))
		for n := range f.Hosts {
			names = append(names, n)
		}
		sort.Strings(names)
		return HostFacts{}, fmt.Errorf("%s %q: no host %q in lab %s (hosts: %s)", fn, name, name, f.Lab, strings.Join(names, ", "))
	}
	addr := func(fn string, want func(netip.Addr) bool) func(string, ...string) (string, error) {
		return func(name string, link ...string) (string, error) {
			if len(link) > 1 {
				return "", fmt.Errorf("%s takes a host and at most one link", fn)
			}
			h, err := host(fn, name)
			if err != nil {
				return "", err
			}
			found := false
			for _, l := range h.Links {
				if len(link) == 1 && l.Name != link[0] {
					continue
				}
				found = true
				for _, a := range l.Addresses {
					if want(a.Addr()) {
						return a.Addr().String(), nil
					}
				}
			}
			if len(link) == 1 {
				if !found {
					return "", fmt.Errorf("%s %q %q: host %s is not on link %s (its links: %s)", fn, name, link[0], name, link[0], h.linkNames())
				}
				return "", fmt.Errorf("%s %q %q: host %s has no %s address on link %s", fn, name, link[0], name, fn, link[0])
			}
			return "", fmt.Errorf("%s %q: host %s has no %s address on any data link", fn, name, name, fn)
		}
	}
	node := func(fn string, get func(HostFacts) netip.Addr) func(string) (string, error) {
		return func(name string) (string, error) {
			h, err := host(fn, name)
			if err != nil {
				return "", err
			}
			if !get(h).IsValid() {
				return "", fmt.Errorf("%s %q: host %s has no node address", fn, name, name)
			}
			return get(h).String(), nil
		}
	}
	return template.FuncMap{
		"ip":    addr("ip", netip.Addr.Is4),
		"ip6":   addr("ip6", func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }),
		"node":  node("node", func(h HostFacts) netip.Addr { return h.Node4 }),
		"node6": node("node6", func(h HostFacts) netip.Addr { return h.Node6 }),
		"mgmt": func(name string) (string, error) {
			h, err := host("mgmt", name)
			if err != nil {
				return "", err
			}
			if !h.Mgmt.IsValid() {
				return "", fmt.Errorf("mgmt %q: host %s has no management address", name, name)
			}
			return h.Mgmt.String(), nil
		},
		"peers": func(link ...string) ([]string, error) {
			switch len(link) {
			case 0:
				return f.Host.peers(""), nil
			case 1:
				for _, l := range f.Host.Links {
					if l.Name == link[0] {
						return f.Host.peers(link[0]), nil
					}
				}
				return nil, fmt.Errorf("peers %q: host %s is not on link %s (its links: %s)", link[0], f.Host.Name, link[0], f.Host.linkNames())
			default:
				return nil, fmt.Errorf("peers takes at most one link")
			}
		},
		"join": func(list []string, sep string) string { return strings.Join(list, sep) },
	}
}
