package labs

// Physical hosts: machines forgelab adopts over SSH instead of booting.
//
// Adoption itself changes nothing: forgelab connects (host key verified
// against the known_hosts files; trusted on first use only when the lab
// file says so), checks sudo, tools and free space, and records the host
// in the state (store.KindAdopted) before its first change. From then on every
// change there (files, units, supervisors, tunnel ends, qdiscs) is
// written to the host's journal in the state before it is made, and
// destroy undoes the journal newest first, leaving the host as it was.
//
// Links: a physical host joins each of its links through a VXLAN tunnel
// fl<id>h<HH>v<NN> (HH the host's index, NN the NIC's; the same name on
// both ends), UDP port 4789, a VNI derived from lab, host and link. The
// lab's end is made on this machine before the link fabric starts
// (recorded first, a store.KindNetdev) and is the host's "tap" for the fabric:
// a bridge port (kernel) or a device the userspace engine forwards, so
// the fabric shapes links to physical hosts like any other. The host's
// end is made when the host is adopted, journalled, and carries the
// host's addresses on the link; with fabric = "guest" the guest shaper
// shapes it inside the host (it is forgelab's own device, so nothing of
// the host's is replaced).

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
)

// VXLAN is the lab's end of a tunnel to a physical host.
type VXLAN struct {
	Name          string
	VNI           uint32
	Local, Remote netip.Addr // Local zero: the routing table's source towards Remote
	Port          int        // UDP destination port
}

// VXLANMaker is the optional ability of a Netdevs to make VXLAN devices;
// it returns the local address the tunnel uses.
type VXLANMaker interface {
	AddVXLAN(v VXLAN) (netip.Addr, error)
}

const vxlanPort = 4789

// vxlanVNI derives a VNI (1 to 2^24-1) from lab, host and link.
func vxlanVNI(lab, host, link string) uint32 {
	sum := sha256.Sum256([]byte(lab + "/" + host + "/" + link))
	v := binary.BigEndian.Uint32(sum[:4]) & 0xffffff
	if v == 0 {
		v = 1
	}
	return v
}

// physicalHost is how to reach a physical host of a lab. Relative paths
// in its ssh table start at the lab file's directory.
func physicalHost(s *Store, st *State, h HostPlan, tofu bool) (provision.PhysicalHost, error) {
	if h.SSH == nil {
		return provision.PhysicalHost{}, fmt.Errorf("host %s is physical but has no ssh table", h.Name)
	}
	sp := &Spec{File: st.File}
	ph := provision.PhysicalHost{
		Name: h.Name, Lab: st.Lab, Address: h.SSH.Address, Port: h.SSH.Port, User: h.SSH.User,
		KeyPath: sp.Resolve(h.SSH.Key), UseAgent: h.SSH.Agent,
		KnownHosts:      s.LayoutOf(st).KnownHosts(),
		TrustOnFirstUse: tofu && h.SSH.TrustOnFirstUse,
		ConnectTimeout:  10 * time.Second,
	}
	if h.SSH.KnownHosts != "" {
		ph.AlsoKnownHosts = []string{sp.Resolve(h.SSH.KnownHosts)}
	} else if home, err := os.UserHomeDir(); err == nil {
		ph.AlsoKnownHosts = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	if ph.KeyPath == "" && !ph.UseAgent {
		if os.Getenv("SSH_AUTH_SOCK") != "" {
			ph.UseAgent = true
		} else if home, err := os.UserHomeDir(); err == nil {
			for _, k := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				if p := filepath.Join(home, ".ssh", k); fileExists(p) {
					ph.KeyPath = p
					break
				}
			}
		}
		if ph.KeyPath == "" && !ph.UseAgent {
			return ph, fmt.Errorf("host %s: no SSH key to log in with: set ssh.key (e.g. \"~/.ssh/id_ed25519\") or ssh.agent = true in the lab file", h.Name)
		}
	}
	return ph, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// adoptHost takes a physical host into the lab over SSH instead of booting
// a VM. Everything it changes there is journalled in the state first.
func (m *Manager) adoptHost(ctx context.Context, rec *Recorder, i int) error {
	st := rec.State()
	p := st.Plan
	h := p.Hosts[i]
	ph, err := physicalHost(m.Store, st, h, true)
	if err != nil {
		return err
	}
	start := time.Now()
	m.progress("  %s: adopting %s@%s over SSH", h.Name, ph.User, h.SSH.Address)
	r, checks, err := m.software().Adopt(ctx, ph)
	if err != nil {
		return trimHost(err, h.Name)
	}
	defer r.Close()
	for _, c := range checks {
		if !c.OK {
			m.progress("  %s: note: %s: %s", h.Name, c.Name, c.Detail)
		}
	}
	var ah AdoptedHost
	if err := rec.Update(func(s *State) {
		if s.Adopted == nil {
			s.Adopted = map[string]*AdoptedHost{}
		}
		a := s.Adopted[h.Name]
		if a == nil {
			a = &AdoptedHost{Changes: []provision.Change{}}
			s.Adopted[h.Name] = a
		}
		a.Addr, a.Checks = fmt.Sprintf("%s:%d", ph.Address, ph.Port), checks
		if a.Local == "" && r.LocalAddr().IsValid() {
			a.Local = r.LocalAddr().String()
		}
		if a.Remote == "" && r.RemoteAddr().IsValid() {
			a.Remote = r.RemoteAddr().String()
		}
		ah = *a
	}); err != nil {
		return err
	}
	// From here on the host may change: undo finds it in the state.
	if err := rec.Record(store.KindAdopted, h.Name); err != nil {
		return err
	}
	j := m.journal(rec, h.Name)
	if err := m.tunnelEnds(ctx, p, i, &ah, r, j); err != nil {
		return err
	}
	hs := &HostState{Ready: true, BootTime: time.Since(start).Round(10 * time.Millisecond)}
	if err := rec.Update(func(s *State) { s.Hosts[h.Name] = hs }); err != nil {
		return err
	}
	m.progress("  %s: adopted in %s", h.Name, hs.BootTime.Round(100*time.Millisecond))
	return nil
}

// trimHost drops provision's "host NAME: " in front of err: the caller
// names the host already.
func trimHost(err error, name string) error {
	if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "host "+name+": ") && err.Error() == "host "+name+": "+u.Error() {
		return u
	}
	return err
}

// countVMs is how many hosts of the plan forgelab makes here.
func countVMs(p *Plan) int {
	n := 0
	for _, h := range p.Hosts {
		if kindOf(h).madeHere() {
			n++
		}
	}
	return n
}

// journal returns the journal of an adopted host, saved into the state
// after every entry.
func (m *Manager) journal(rec *Recorder, host string) *provision.Journal {
	j := &provision.Journal{Host: host}
	rec.View(func(st *State) {
		if ah := st.Adopted[host]; ah != nil {
			j.Changes = slices.Clone(ah.Changes)
			j.NextBackup = ah.NextBackup
		}
	})
	j.Save = func(j *provision.Journal) error {
		// Called with j locked: its changes are stable; the state keeps a copy.
		changes := slices.Clone(j.Changes)
		next := j.NextBackup
		return rec.Update(func(s *State) {
			if s.Adopted == nil {
				s.Adopted = map[string]*AdoptedHost{}
			}
			a := s.Adopted[host]
			if a == nil {
				a = &AdoptedHost{}
				s.Adopted[host] = a
			}
			a.Changes, a.NextBackup = changes, next
			if a.Changes == nil {
				a.Changes = []provision.Change{}
			}
		})
	}
	return j
}

// prepareTunnels makes the lab's end of every tunnel to physical host i,
// before the link fabric starts (it takes them as the host's taps). The
// host's address is resolved here; the host's own end is made when it is
// adopted.
func (m *Manager) prepareTunnels(ctx context.Context, rec *Recorder, i int) error {
	p := rec.State().Plan
	h := p.Hosts[i]
	if len(h.NICs) == 0 || h.SSH == nil {
		return nil
	}
	vx, ok := m.Netdevs.(VXLANMaker)
	if !ok {
		return fmt.Errorf("host %s: this machine's link fabric cannot make VXLAN tunnels to physical hosts", h.Name)
	}
	remote, err := resolveHost(ctx, h.SSH.Address)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	ah := &AdoptedHost{Remote: remote.String(), Changes: []provision.Change{}}
	for _, nic := range h.NICs {
		if err := rec.Record(store.KindNetdev, nic.Tap); err != nil {
			return err
		}
		v := VXLAN{Name: nic.Tap, VNI: vxlanVNI(p.Lab, h.Name, nic.Link), Remote: remote, Port: vxlanPort}
		local, err := vx.AddVXLAN(v)
		if err != nil {
			return fmt.Errorf("host %s, link %s: %w", h.Name, nic.Link, err)
		}
		ah.Local = local.String()
	}
	if err := rec.Update(func(s *State) {
		if s.Adopted == nil {
			s.Adopted = map[string]*AdoptedHost{}
		}
		s.Adopted[h.Name] = ah
	}); err != nil {
		return err
	}
	return nil
}

// resolveHost turns an ssh address into an IP address.
func resolveHost(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("cannot resolve %s: %v", host, err)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// tunnelEnds makes the host's end of each of its tunnels, journalled: the
// mirror of the lab's end, with the host's addresses on the link.
func (m *Manager) tunnelEnds(ctx context.Context, p *Plan, i int, ah *AdoptedHost, r Remote, j *provision.Journal) error {
	h := p.Hosts[i]
	if len(h.NICs) == 0 {
		return nil
	}
	local, err1 := netip.ParseAddr(ah.Local)
	remote, err2 := netip.ParseAddr(ah.Remote)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("links: the lab's ends of the tunnels to %s are not in the state", h.Name)
	}
	if ra := r.RemoteAddr(); ra.IsValid() && ra != remote {
		m.progress("  %s: note: SSH reached %s, tunnels go to %s", h.Name, ra, remote)
	}
	for _, nic := range h.NICs {
		v := VXLAN{Name: nic.Name, VNI: vxlanVNI(p.Lab, h.Name, nic.Link), Local: local, Remote: remote, Port: vxlanPort}
		if err := r.AddNetdev(ctx, j, nic.Name, peerScript(v, nic)); err != nil {
			return fmt.Errorf("link %s: the host's end of the tunnel: %w", nic.Link, err)
		}
		m.progress("  %s: link %s over VXLAN %d (%s <-> %s)", h.Name, nic.Link, v.VNI, local, remote)
	}
	return nil
}

// peerScript makes the host's end of a tunnel whose lab end is v, with
// the host's addresses on the link.
func peerScript(v VXLAN, nic NICPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ip link add %s mtu 1500 type vxlan id %d remote %s local %s dstport %d\n", v.Name, v.VNI, v.Local, v.Remote, v.Port)
	for _, a := range nic.Addresses {
		if a.Addr().Is4() {
			fmt.Fprintf(&b, "ip addr add %s dev %s\n", a, v.Name)
		} else {
			fmt.Fprintf(&b, "ip -6 addr add %s dev %s nodad\n", a, v.Name)
		}
	}
	fmt.Fprintf(&b, "ip link set %s up\n", v.Name)
	return b.String()
}

// undoAdopted gives an adopted host back exactly as it was.
func (m *Manager) undoAdopted(ctx context.Context, rec *Recorder, host string) error {
	var ah *AdoptedHost
	rec.View(func(st *State) { ah = st.Adopted[host] })
	empty := ah == nil || len(ah.Changes) == 0
	forget := func() error {
		return rec.Update(func(s *State) { delete(s.Adopted, host) })
	}
	if empty {
		return forget()
	}
	r, err := m.software().Connect(ctx, rec.State(), host)
	if err != nil {
		return fmt.Errorf("host %s: cannot undo forgelab's %d changes there: %w (its journal stays in the state: fix the connection and run destroy again)", host, len(ah.Changes), err)
	}
	defer r.Close()
	j := m.journal(rec, host)
	n := len(j.Changes)
	if err := r.Undo(ctx, j); err != nil {
		return fmt.Errorf("host %s: %w", host, err)
	}
	m.progress("host %s: %d changes undone", host, n)
	return forget()
}

// inspectSoftware adds what inspect shows about physical hosts and the
// coordination service.
func inspectSoftware(st *State, info *Info) {
	info.Coord = st.Coord
	for i := range info.Hosts {
		hi := &info.Hosts[i]
		h := st.Plan.Host(hi.Name)
		if h == nil || kindOf(*h).madeHere() {
			continue
		}
		hi.SerialLog, hi.State = "", "not adopted"
		if h.SSH != nil {
			hi.MgmtIP = h.SSH.Address
		}
		if ah := st.Adopted[hi.Name]; ah != nil && slices.Contains(st.Resources, Resource{Kind: store.KindAdopted, Name: hi.Name}) {
			hi.State, hi.Changes = "adopted", len(ah.Changes)
		}
	}
}

// physicalSSHArgs are the ssh(1) options and destination that log into a
// physical host as forgelab does: its key (or the agent), its port, and
// host keys checked against the lab's and the user's known_hosts.
func physicalSSHArgs(s *Store, st *State, h HostPlan) ([]string, error) {
	ph, err := physicalHost(s, st, h, false)
	if err != nil {
		return nil, err
	}
	known := append([]string{ph.KnownHosts}, ph.AlsoKnownHosts...)
	args := []string{"-p", fmt.Sprint(ph.Port), "-o", "UserKnownHostsFile=" + strings.Join(known, " "), "-o", "StrictHostKeyChecking=yes"}
	if ph.KeyPath != "" {
		args = append(args, "-i", ph.KeyPath)
		if !ph.UseAgent {
			args = append(args, "-o", "IdentitiesOnly=yes")
		}
	}
	return append(args, ph.User+"@"+ph.Address), nil
}
