// Package guestinit applies a cloud-init NoCloud seed inside a guest without
// cloud-init: the hostname, users and their SSH keys, the SSH host keys,
// files, and the network (network-config version 2 rendered as
// systemd-networkd files). The debian-12 image runs it before ssh.service in
// place of cloud-init, whose Python costs most of a boot under emulation
// (cloud-init-local, cloud-init and cloud-final took 55 of 62 s here).
//
// It reads the same three documents cloud-init reads, so a lab's seed works
// unchanged on images with stock cloud-init. It implements the subset of
// cloud-config that a lab needs and reports every other key as ignored, so
// a seed that asks for more is never silently half-applied.
package guestinit

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Seed is what the three NoCloud documents say, as far as guestinit acts on it.
type Seed struct {
	InstanceID string
	Hostname   string
	// FQDN is the hostname with its domain, when the seed gives one.
	FQDN string
	// ManageEtcHosts: "" (leave /etc/hosts alone), "localhost" or "template"
	// (both: a 127.0.1.1 line for the hostname, as cloud-init's Debian template).
	ManageEtcHosts string
	Users          []User
	// HostKeys maps a key type (ed25519, rsa, ecdsa) to its private and public halves.
	HostKeys       map[string]HostKey
	DeleteHostKeys bool
	Files          []File
	Network        Network
	// Ignored lists the cloud-config keys (and values) this package does
	// not act on, for the console log.
	Ignored []string
}

// User is one entry of cloud-config's users list.
type User struct {
	Name              string
	Gecos             string
	Shell             string
	Groups            []string
	Sudo              []string
	LockPasswd        bool
	PlainTextPasswd   string
	HashedPasswd      string
	SSHAuthorizedKeys []string
}

// HostKey is an SSH host key pair in OpenSSH formats.
type HostKey struct{ Private, Public string }

// File is one write_files entry.
type File struct {
	Path        string
	Content     string
	Permissions uint32
	Owner       string
	Append      bool
}

// Network is a network-config version 2 document's ethernets.
type Network struct {
	Ethernets []Ethernet
}

// Ethernet configures one NIC.
type Ethernet struct {
	// ID is the key in the ethernets map.
	ID        string
	MatchMAC  string
	MatchName string
	SetName   string
	DHCP4     bool
	DHCP6     bool
	Addresses []netip.Prefix
	Routes    []Route
	DNS       []netip.Addr
	Optional  bool
	// LinkLocal: nil for the default (IPv6 only, as netplan), empty for none.
	LinkLocal []string
	MTU       int
}

// Route is a static route.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// Name is the interface name the NIC ends up with.
func (e Ethernet) Name() string {
	if e.SetName != "" {
		return e.SetName
	}
	if e.MatchName != "" {
		return e.MatchName
	}
	return e.ID
}

// Parse reads the three NoCloud documents. networkConfig may be empty (no
// network configuration: the image's default applies). Every problem is
// reported at once, each naming its document.
func Parse(metaData, userData, networkConfig []byte) (Seed, error) {
	var s Seed
	var errs []error
	if err := s.parseMetaData(metaData); err != nil {
		errs = append(errs, fmt.Errorf("meta-data: %w", err))
	}
	if err := s.parseUserData(userData); err != nil {
		errs = append(errs, fmt.Errorf("user-data: %w", err))
	}
	if len(bytes.TrimSpace(networkConfig)) > 0 {
		n, err := parseNetwork(networkConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("network-config: %w", err))
		}
		s.Network = n
	}
	if s.Hostname == "" {
		s.Hostname = "localhost"
	}
	return s, errors.Join(errs...)
}

func (s *Seed) parseMetaData(b []byte) error {
	var md struct {
		InstanceID    string `yaml:"instance-id"`
		LocalHostname string `yaml:"local-hostname"`
		Hostname      string `yaml:"hostname"`
	}
	if err := yaml.Unmarshal(b, &md); err != nil {
		return err
	}
	if md.InstanceID == "" {
		return errors.New("no instance-id")
	}
	s.InstanceID = md.InstanceID
	s.Hostname = md.LocalHostname
	if s.Hostname == "" {
		s.Hostname = md.Hostname
	}
	return nil
}

// cloudConfig is the part of cloud-config guestinit acts on. Values whose
// YAML type varies (sudo, groups, manage_etc_hosts) are nodes.
type cloudConfig struct {
	Hostname         string            `yaml:"hostname"`
	FQDN             string            `yaml:"fqdn"`
	PreserveHostname bool              `yaml:"preserve_hostname"`
	ManageEtcHosts   yaml.Node         `yaml:"manage_etc_hosts"`
	Users            []yaml.Node       `yaml:"users"`
	SSHKeys          map[string]string `yaml:"ssh_keys"`
	SSHDeleteKeys    bool              `yaml:"ssh_deletekeys"`
	WriteFiles       []struct {
		Path        string `yaml:"path"`
		Content     string `yaml:"content"`
		Permissions string `yaml:"permissions"`
		Owner       string `yaml:"owner"`
		Append      bool   `yaml:"append"`
		Encoding    string `yaml:"encoding"`
	} `yaml:"write_files"`
}

// handled are the cloud-config keys guestinit reads, and those whose
// effect the image already has (so they are not reported as ignored).
var handled = map[string]bool{
	"hostname": true, "fqdn": true, "preserve_hostname": true, "manage_etc_hosts": true,
	"users": true, "ssh_keys": true, "ssh_deletekeys": true, "write_files": true,
	// the image already behaves so: no root login, keys only, C.UTF-8, no key publishing
	"disable_root": true, "ssh_pwauth": true, "locale": true, "ssh_publish_hostkeys": true,
}

func (s *Seed) parseUserData(b []byte) error {
	if !bytes.HasPrefix(b, []byte("#cloud-config")) {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		return errors.New("not a #cloud-config document (scripts and MIME multi-part need cloud-init: use the debian-12-cloud-init image)")
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return err
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !handled[k] {
			s.Ignored = append(s.Ignored, k)
		}
	}
	var cc cloudConfig
	if err := yaml.Unmarshal(b, &cc); err != nil {
		return err
	}
	var errs []error
	if cc.Hostname != "" && !cc.PreserveHostname {
		s.Hostname = cc.Hostname
	}
	if cc.FQDN != "" {
		s.FQDN = cc.FQDN
		if cc.Hostname == "" {
			s.Hostname, _, _ = strings.Cut(cc.FQDN, ".")
		}
	}
	if !cc.ManageEtcHosts.IsZero() {
		switch v := cc.ManageEtcHosts.Value; {
		case v == "localhost" || v == "template":
			s.ManageEtcHosts = v
		case v == "true" || v == "True":
			s.ManageEtcHosts = "template"
		case v == "false" || v == "False":
		default:
			errs = append(errs, fmt.Errorf("manage_etc_hosts %q: want true, false, localhost or template", v))
		}
	}
	for i, n := range cc.Users {
		u, err := parseUser(&n)
		if err != nil {
			errs = append(errs, fmt.Errorf("users[%d]: %w", i, err))
			continue
		}
		if u.Name != "" {
			s.Users = append(s.Users, u)
		}
	}
	for k, v := range cc.SSHKeys {
		typ, half, ok := strings.Cut(k, "_")
		if !ok || (half != "private" && half != "public") || (typ != "ed25519" && typ != "rsa" && typ != "ecdsa") {
			errs = append(errs, fmt.Errorf("ssh_keys: %s: want {ed25519,rsa,ecdsa}_{private,public}", k))
			continue
		}
		if s.HostKeys == nil {
			s.HostKeys = map[string]HostKey{}
		}
		hk := s.HostKeys[typ]
		if half == "private" {
			hk.Private = v
		} else {
			hk.Public = strings.TrimSpace(v)
		}
		s.HostKeys[typ] = hk
	}
	for typ, hk := range s.HostKeys {
		if hk.Private == "" || hk.Public == "" {
			errs = append(errs, fmt.Errorf("ssh_keys: %s: give both %[1]s_private and %[1]s_public", typ))
		}
	}
	s.DeleteHostKeys = cc.SSHDeleteKeys
	for i, f := range cc.WriteFiles {
		if !strings.HasPrefix(f.Path, "/") || strings.Contains("/"+f.Path+"/", "/../") {
			errs = append(errs, fmt.Errorf("write_files[%d]: path %q: want an absolute path without ..", i, f.Path))
			continue
		}
		if f.Encoding != "" && f.Encoding != "text/plain" {
			errs = append(errs, fmt.Errorf("write_files[%d]: encoding %q is not supported by guestinit (plain text only)", i, f.Encoding))
			continue
		}
		perm := uint32(0o644)
		if f.Permissions != "" {
			var p uint32
			if _, err := fmt.Sscanf(f.Permissions, "%o", &p); err != nil || p > 0o7777 {
				errs = append(errs, fmt.Errorf("write_files[%d]: permissions %q: want octal like '0644'", i, f.Permissions))
				continue
			}
			perm = p
		}
		s.Files = append(s.Files, File{Path: f.Path, Content: f.Content, Permissions: perm, Owner: f.Owner, Append: f.Append})
	}
	return errors.Join(errs...)
}

func parseUser(n *yaml.Node) (User, error) {
	if n.Kind == yaml.ScalarNode {
		// "default": the distribution's default user, which this image does not have.
		return User{}, nil
	}
	var u struct {
		Name              string    `yaml:"name"`
		Gecos             string    `yaml:"gecos"`
		Shell             string    `yaml:"shell"`
		Groups            yaml.Node `yaml:"groups"`
		Sudo              yaml.Node `yaml:"sudo"`
		LockPasswd        *bool     `yaml:"lock_passwd"`
		PlainTextPasswd   string    `yaml:"plain_text_passwd"`
		Passwd            string    `yaml:"passwd"`
		HashedPasswd      string    `yaml:"hashed_passwd"`
		SSHAuthorizedKeys []string  `yaml:"ssh_authorized_keys"`
	}
	if err := n.Decode(&u); err != nil {
		return User{}, err
	}
	if u.Name == "" || strings.ContainsAny(u.Name, ":/\n ") {
		return User{}, fmt.Errorf("name %q: want a login name", u.Name)
	}
	out := User{Name: u.Name, Gecos: u.Gecos, Shell: u.Shell, LockPasswd: u.LockPasswd == nil || *u.LockPasswd,
		PlainTextPasswd: u.PlainTextPasswd, HashedPasswd: u.HashedPasswd, SSHAuthorizedKeys: u.SSHAuthorizedKeys}
	if out.HashedPasswd == "" {
		out.HashedPasswd = u.Passwd
	}
	groups, err := stringList(&u.Groups, true)
	if err != nil {
		return User{}, fmt.Errorf("groups: %w", err)
	}
	out.Groups = groups
	sudo, err := stringList(&u.Sudo, false)
	if err != nil {
		return User{}, fmt.Errorf("sudo: %w", err)
	}
	out.Sudo = sudo
	for _, k := range out.SSHAuthorizedKeys {
		if strings.ContainsAny(k, "\r\n") {
			return User{}, errors.New("ssh_authorized_keys: one key per entry")
		}
	}
	return out, nil
}

// stringList reads a YAML list of strings or one string (comma-separated
// when split is set). false or null give nothing.
func stringList(n *yaml.Node, split bool) ([]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		if n.Tag == "!!bool" || n.Tag == "!!null" {
			return nil, nil
		}
		if !split {
			return []string{n.Value}, nil
		}
		var out []string
		for _, g := range strings.Split(n.Value, ",") {
			if g = strings.TrimSpace(g); g != "" {
				out = append(out, g)
			}
		}
		return out, nil
	case yaml.SequenceNode:
		var out []string
		if err := n.Decode(&out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, errors.New("want a string or a list of strings")
}

func parseNetwork(b []byte) (Network, error) {
	var doc struct {
		Network *yaml.Node `yaml:"network"`
	}
	// Both forms occur: the document itself, or the same under "network:".
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Network{}, err
	}
	var v2 struct {
		Version   int                  `yaml:"version"`
		Ethernets map[string]yaml.Node `yaml:"ethernets"`
		Rest      map[string]yaml.Node `yaml:",inline"`
	}
	var err error
	if doc.Network != nil {
		err = doc.Network.Decode(&v2)
	} else {
		err = yaml.Unmarshal(b, &v2)
	}
	if err != nil {
		return Network{}, err
	}
	if v2.Version != 2 {
		return Network{}, fmt.Errorf("version %d: guestinit reads network-config version 2 only", v2.Version)
	}
	var errs []error
	for k := range v2.Rest {
		if k != "renderer" {
			errs = append(errs, fmt.Errorf("%s: only ethernets are supported by guestinit (bonds, bridges, vlans need cloud-init: use the debian-12-cloud-init image)", k))
		}
	}
	ids := make([]string, 0, len(v2.Ethernets))
	for id := range v2.Ethernets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var n Network
	for _, id := range ids {
		node := v2.Ethernets[id]
		e, err := parseEthernet(id, &node)
		if err != nil {
			errs = append(errs, fmt.Errorf("ethernets.%s: %w", id, err))
			continue
		}
		n.Ethernets = append(n.Ethernets, e)
	}
	return n, errors.Join(errs...)
}

func parseEthernet(id string, node *yaml.Node) (Ethernet, error) {
	var e struct {
		Match struct {
			MACAddress string `yaml:"macaddress"`
			Name       string `yaml:"name"`
		} `yaml:"match"`
		SetName   string   `yaml:"set-name"`
		DHCP4     bool     `yaml:"dhcp4"`
		DHCP6     bool     `yaml:"dhcp6"`
		Addresses []string `yaml:"addresses"`
		Gateway4  string   `yaml:"gateway4"`
		Gateway6  string   `yaml:"gateway6"`
		Routes    []struct {
			To  string `yaml:"to"`
			Via string `yaml:"via"`
		} `yaml:"routes"`
		Nameservers struct {
			Addresses []string `yaml:"addresses"`
		} `yaml:"nameservers"`
		Optional  bool      `yaml:"optional"`
		LinkLocal *[]string `yaml:"link-local"`
		MTU       int       `yaml:"mtu"`
	}
	if err := node.Decode(&e); err != nil {
		return Ethernet{}, err
	}
	out := Ethernet{ID: id, MatchName: e.Match.Name, SetName: e.SetName, DHCP4: e.DHCP4, DHCP6: e.DHCP6, Optional: e.Optional}
	if e.Match.MACAddress != "" {
		hw, err := net.ParseMAC(e.Match.MACAddress)
		if err != nil {
			return Ethernet{}, fmt.Errorf("match.macaddress: %w", err)
		}
		out.MatchMAC = hw.String()
	}
	if out.SetName != "" && out.MatchMAC == "" && out.MatchName == "" {
		return Ethernet{}, errors.New("set-name needs a match (macaddress or name)")
	}
	for _, a := range e.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return Ethernet{}, fmt.Errorf("address %q: want CIDR", a)
		}
		out.Addresses = append(out.Addresses, p)
	}
	routes := e.Routes
	for _, gw := range []struct{ via, to string }{{e.Gateway4, "0.0.0.0/0"}, {e.Gateway6, "::/0"}} {
		if gw.via != "" {
			routes = append(routes, struct {
				To  string `yaml:"to"`
				Via string `yaml:"via"`
			}{gw.to, gw.via})
		}
	}
	for _, r := range routes {
		to := r.To
		if to == "default" {
			to = "0.0.0.0/0"
		}
		p, err := netip.ParsePrefix(to)
		if err != nil {
			return Ethernet{}, fmt.Errorf("route to %q: want CIDR or default", r.To)
		}
		via, err := netip.ParseAddr(r.Via)
		if err != nil {
			return Ethernet{}, fmt.Errorf("route via %q: want an address", r.Via)
		}
		out.Routes = append(out.Routes, Route{To: p, Via: via})
	}
	for _, a := range e.Nameservers.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return Ethernet{}, fmt.Errorf("nameserver %q: want an address", a)
		}
		out.DNS = append(out.DNS, ip)
	}
	if e.LinkLocal != nil {
		out.LinkLocal = append([]string{}, (*e.LinkLocal)...)
		for _, l := range out.LinkLocal {
			if l != "ipv4" && l != "ipv6" {
				return Ethernet{}, fmt.Errorf("link-local %q: want ipv4 or ipv6", l)
			}
		}
	}
	if e.MTU < 0 || e.MTU > 65535 {
		return Ethernet{}, fmt.Errorf("mtu %d: want 68-65535", e.MTU)
	}
	out.MTU = e.MTU
	return out, nil
}
