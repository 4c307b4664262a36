package guestinit

import (
	"fmt"
	"sort"
	"strings"
)

// networkDir is where the rendered files go: /etc, so they are in place
// before systemd-udevd names the NICs and before systemd-networkd starts,
// and are replaced whole at every boot (stale files of ours are removed).
const (
	networkDir  = "/etc/systemd/network"
	networkFile = "10-guestinit-"
)

// NetworkFiles renders the ethernets as systemd-networkd files: a .link
// file that renames a NIC (set-name, matched by MAC, as netplan does), and
// a .network file per NIC. Keys are file names in networkDir.
func NetworkFiles(n Network) map[string]string {
	files := map[string]string{}
	for i, e := range n.Ethernets {
		base := fmt.Sprintf("%s%02d-%s", networkFile, i, e.Name())
		header := fmt.Sprintf("# forgelab-guestinit: network-config ethernets.%s\n", e.ID)
		if e.SetName != "" || e.MTU != 0 {
			var b strings.Builder
			b.WriteString(header)
			b.WriteString("[Match]\n")
			writeMatch(&b, e)
			b.WriteString("\n[Link]\n")
			if e.SetName != "" {
				fmt.Fprintf(&b, "Name=%s\n", e.SetName)
			}
			if e.MTU != 0 {
				fmt.Fprintf(&b, "MTUBytes=%d\n", e.MTU)
			}
			files[base+".link"] = b.String()
		}

		var b strings.Builder
		b.WriteString(header)
		b.WriteString("[Match]\n")
		if e.SetName != "" {
			fmt.Fprintf(&b, "Name=%s\n", e.SetName)
		} else {
			writeMatch(&b, e)
		}
		if e.Optional {
			b.WriteString("\n[Link]\nRequiredForOnline=no\n")
		}
		b.WriteString("\n[Network]\n")
		switch {
		case e.DHCP4 && e.DHCP6:
			b.WriteString("DHCP=yes\n")
		case e.DHCP4:
			b.WriteString("DHCP=ipv4\n")
		case e.DHCP6:
			b.WriteString("DHCP=ipv6\n")
		}
		fmt.Fprintf(&b, "LinkLocalAddressing=%s\n", linkLocal(e.LinkLocal))
		for _, a := range e.Addresses {
			fmt.Fprintf(&b, "Address=%s\n", a)
		}
		for _, d := range e.DNS {
			fmt.Fprintf(&b, "DNS=%s\n", d)
		}
		if e.DHCP4 || e.DHCP6 {
			// netplan's defaults for DHCP, which cloud-init's images get.
			// UseHostname=false: the seed names the host; taking the DHCP
			// server's name would also start systemd-hostnamed at boot.
			b.WriteString("\n[DHCPv4]\nRouteMetric=100\nUseMTU=true\nUseHostname=false\n")
		}
		for _, r := range e.Routes {
			fmt.Fprintf(&b, "\n[Route]\nDestination=%s\nGateway=%s\n", r.To, r.Via)
		}
		files[base+".network"] = b.String()
	}
	return files
}

func writeMatch(b *strings.Builder, e Ethernet) {
	if e.MatchMAC != "" {
		fmt.Fprintf(b, "MACAddress=%s\n", e.MatchMAC)
	}
	if e.MatchName != "" {
		fmt.Fprintf(b, "OriginalName=%s\n", e.MatchName)
	}
	if e.MatchMAC == "" && e.MatchName == "" {
		fmt.Fprintf(b, "OriginalName=%s\n", e.ID)
	}
}

// linkLocal maps netplan's link-local list to networkd's setting; netplan's
// default is IPv6 only.
func linkLocal(l []string) string {
	if l == nil {
		return "ipv6"
	}
	v4, v6 := false, false
	for _, x := range l {
		v4 = v4 || x == "ipv4"
		v6 = v6 || x == "ipv6"
	}
	switch {
	case v4 && v6:
		return "yes"
	case v4:
		return "ipv4"
	case v6:
		return "ipv6"
	}
	return "no"
}

// EtcHosts returns hosts with the hostname's 127.0.1.1 line put in (or
// replaced), as cloud-init's manage_etc_hosts does on Debian, so the
// hostname resolves without DNS.
func EtcHosts(hosts, hostname, fqdn string) string {
	names := hostname
	if fqdn != "" && fqdn != hostname {
		names = fqdn + " " + hostname
	}
	line := "127.0.1.1\t" + names
	var out []string
	replaced := false
	for _, l := range strings.Split(strings.TrimRight(hosts, "\n"), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" {
			if !replaced {
				out = append(out, line)
				replaced = true
			}
			continue
		}
		out = append(out, l)
	}
	if !replaced {
		// after the localhost lines, as Debian's template has it
		i := 0
		for i < len(out) && strings.HasPrefix(strings.TrimSpace(out[i]), "127.") {
			i++
		}
		out = append(out[:i], append([]string{line}, out[i:]...)...)
	}
	return strings.Join(out, "\n") + "\n"
}

// Sudoers renders the users' sudo rules (cloud-init writes the same file).
func Sudoers(users []User) string {
	var b strings.Builder
	for _, u := range users {
		for _, rule := range u.Sudo {
			if b.Len() == 0 {
				b.WriteString("# forgelab-guestinit: users' sudo rules from the seed\n")
			}
			fmt.Fprintf(&b, "%s %s\n", u.Name, rule)
		}
	}
	return b.String()
}

// sortedKeys returns m's keys in order, so files are written and logged
// in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
