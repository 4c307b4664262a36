package routing

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func lab(linkSpecs ...string) ([]Host, []Link) {
	names := map[string]bool{}
	var links []Link
	for i, spec := range linkSpecs {
		ends := strings.Split(spec, "")
		l := Link{Name: spec}
		for j, h := range ends {
			names[h] = true
			dev := fmt.Sprintf("eth%d", i+1)
			l.Ifaces = append(l.Ifaces, Iface{Host: h, Dev: dev,
				Addr4: netip.MustParsePrefix(fmt.Sprintf("198.18.%d.%d/24", i, j+1)),
				Addr6: netip.MustParsePrefix(fmt.Sprintf("fd00:%d::%d/64", i, j+1))})
		}
		links = append(links, l)
	}
	var hosts []Host
	for i, n := range []string{"a", "b", "c", "d"} {
		if names[n] {
			hosts = append(hosts, Host{Name: n, Node4: netip.MustParseAddr(fmt.Sprintf("198.19.0.%d", i+1)),
				Node6: netip.MustParseAddr(fmt.Sprintf("fd00:fe::%d", i+1))})
		}
	}
	return hosts, links
}

func show(rs []Route) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s via %s dev %s", r.To, r.Via, r.Dev))
	}
	return strings.Join(out, "\n")
}

func TestRoutes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links []string
		host  string
		want  string
	}{
		{"triangle: every node direct", []string{"ab", "bc", "ca"}, "a",
			"198.19.0.2/32 via 198.18.0.2 dev eth1\nfd00:fe::2/128 via fd00::2 dev eth1\n" +
				"198.19.0.3/32 via 198.18.2.1 dev eth3\nfd00:fe::3/128 via fd00:2::1 dev eth3\n" +
				"198.18.1.0/24 via 198.18.0.2 dev eth1\nfd00:1::/64 via fd00::2 dev eth1"},
		{"line: c through b", []string{"ab", "bc"}, "a",
			"198.19.0.2/32 via 198.18.0.2 dev eth1\nfd00:fe::2/128 via fd00::2 dev eth1\n" +
				"198.19.0.3/32 via 198.18.0.2 dev eth1\nfd00:fe::3/128 via fd00::2 dev eth1\n" +
				"198.18.1.0/24 via 198.18.0.2 dev eth1\nfd00:1::/64 via fd00::2 dev eth1"},
		{"line: the middle host", []string{"ab", "bc"}, "b",
			"198.19.0.1/32 via 198.18.0.1 dev eth1\nfd00:fe::1/128 via fd00::1 dev eth1\n" +
				"198.19.0.3/32 via 198.18.1.2 dev eth2\nfd00:fe::3/128 via fd00:1::2 dev eth2"},
		{"segment", []string{"abc"}, "c",
			"198.19.0.1/32 via 198.18.0.1 dev eth1\nfd00:fe::1/128 via fd00::1 dev eth1\n" +
				"198.19.0.2/32 via 198.18.0.2 dev eth1\nfd00:fe::2/128 via fd00::2 dev eth1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts, links := lab(tc.links...)
			rs, unreachable, err := Routes(hosts, links)
			if err != nil || len(unreachable) > 0 {
				t.Fatal(err, unreachable)
			}
			if got := show(rs[tc.host]); got != tc.want {
				t.Errorf("routes of %s:\n%s\nwant:\n%s", tc.host, got, tc.want)
			}
		})
	}
}

func TestRoutesUnreachableAndBadInput(t *testing.T) {
	hosts, links := lab("ab", "cd")
	_, unreachable, err := Routes(hosts, links)
	if err != nil || strings.Join(unreachable, ",") != "a->c,a->d,b->c,b->d,c->a,c->b,d->a,d->b" {
		t.Errorf("unreachable %v (%v)", unreachable, err)
	}
	hosts, links = lab("ab")
	links[0].Ifaces[1].Host = "x"
	if _, _, err := Routes(hosts, links); err == nil || !strings.Contains(err.Error(), "unknown host x") {
		t.Errorf("unknown host: %v", err)
	}
}

func TestScript(t *testing.T) {
	hosts, links := lab("ab", "bc")
	rs, _, _ := Routes(hosts, links)
	s, err := Script(hosts[0], rs["a"])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ip link show node0 >/dev/null 2>&1 || ip link add node0 type dummy\n",
		"ip addr replace 198.19.0.1/32 dev node0\n",
		"ip -6 addr replace fd00:fe::1/128 dev node0 nodad\n",
		"ip route replace 198.19.0.3/32 via 198.18.0.2 dev eth1\n",
		"ip -6 route replace fd00:fe::3/128 via fd00::2 dev eth1\n",
		"net.ipv4.ip_forward=1",
		"[ -e /run/forgelab-routes.sysctl ] || sysctl net.ipv4.ip_forward",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if u := UndoScript(); !strings.Contains(u, "ip link del node0") || !strings.Contains(u, "sysctl -q -p /run/forgelab-routes.sysctl") {
		t.Errorf("undo script does not take back node0 and the settings:\n%s", u)
	}
	if _, err := Script(Host{Name: "x"}, nil); err == nil {
		t.Error("a host without node addresses made a script")
	}
}
