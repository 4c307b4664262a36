package labs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/plan"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/provision"
)

// plan turns spec into a Plan whose management subnet clashes with no
// other network on this machine. An explicit [lab] mgmt is used as is,
// or refused when it clashes.
func (m *Manager) plan(sp *Spec) (*Plan, error) {
	used, err := m.usedPrefixes()
	if err != nil {
		return nil, err
	}
	clash := func(p netip.Prefix) bool {
		for _, u := range used {
			if u.Overlaps(p) {
				return true
			}
		}
		return false
	}
	if sp.Lab.Mgmt.IsValid() {
		p, err := plan.NewPlan(sp)
		if err != nil {
			return nil, err
		}
		if clash(p.Mgmt.Prefix) {
			return nil, fmt.Errorf("%s: [lab] mgmt %s overlaps a network already on this machine: choose another /24", sp.File, p.Mgmt.Prefix)
		}
		return p, nil
	}
	p, err := plan.NewPlan(sp)
	if err != nil {
		return nil, err
	}
	cand := p.Mgmt.Prefix
	for i := 0; i < 256; i++ {
		if !clash(cand) {
			if cand == p.Mgmt.Prefix {
				return p, nil
			}
			s := *sp
			s.Lab.Mgmt = cand
			return plan.NewPlan(&s)
		}
		// Next /24 in 10.200.0.0-10.249.255.0, wrapping around.
		a := cand.Addr().As4()
		a[2]++
		if a[2] == 0 {
			a[1]++
			if a[1] >= 250 {
				a[1] = 200
			}
		}
		cand = netip.PrefixFrom(netip.AddrFrom4(a), 24)
	}
	return nil, fmt.Errorf("no free /24 for the management network of lab %s: set [lab] mgmt", sp.Lab.Name)
}

func (m *Manager) usedPrefixes() ([]netip.Prefix, error) {
	var used []netip.Prefix
	host := m.HostPrefixes
	if host == nil {
		host = hostPrefixes
	}
	hp, err := host()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	used = append(used, hp...)
	xmls, err := m.VMs.NetworkXMLs()
	if err != nil {
		return nil, err
	}
	for _, x := range xmls {
		used = append(used, networkPrefixes(x)...)
	}
	return used, nil
}

func hostPrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// networkPrefixes reads the IPv4 subnets out of libvirt network XML.
func networkPrefixes(doc string) []netip.Prefix {
	var n struct {
		IPs []struct {
			Address string `xml:"address,attr"`
			Netmask string `xml:"netmask,attr"`
			Prefix  string `xml:"prefix,attr"`
		} `xml:"ip"`
	}
	if xml.Unmarshal([]byte(doc), &n) != nil {
		return nil
	}
	var out []netip.Prefix
	for _, ip := range n.IPs {
		a, err := netip.ParseAddr(ip.Address)
		if err != nil || !a.Is4() {
			continue
		}
		bits := 24
		if ip.Prefix != "" {
			bits, _ = strconv.Atoi(ip.Prefix)
		} else if ip.Netmask != "" {
			if mask := net.ParseIP(ip.Netmask).To4(); mask != nil {
				bits, _ = net.IPv4Mask(mask[0], mask[1], mask[2], mask[3]).Size()
			}
		}
		if p, err := a.Prefix(bits); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// recordAll records several objects of one kind before they are made; a
// record that cannot be written stops create: destroy would not know the
// object exists.
func recordAll(rec *Recorder, kind string, names ...string) error {
	for _, n := range names {
		if err := rec.Record(kind, n); err != nil {
			return fmt.Errorf("record %s %s in the lab's state (destroy would not find it): %w", kind, n, err)
		}
	}
	return nil
}

type labKeys struct {
	user     provision.KeyPair
	hosts    map[string]provision.KeyPair
	password string
}

// makeKeys makes the lab's login key, one host key per VM (so forgelab
// knows every host key before boot and verifies it), and the console
// password. All secrets are 0600 inside the lab dir.
func (m *Manager) makeKeys(rec *Recorder, l store.Layout, p *Plan) (*labKeys, error) {
	k := &labKeys{hosts: map[string]provision.KeyPair{}}
	var err error
	if k.user, err = provision.NewKeyPair("forgelab-" + p.Lab); err != nil {
		return nil, err
	}
	keyPath := l.Key()
	if err := recordAll(rec, store.KindFile, keyPath+".pub", keyPath); err != nil {
		return nil, err
	}
	if err := k.user.WriteFile(keyPath); err != nil {
		return nil, err
	}
	var known strings.Builder
	for _, h := range p.Hosts {
		if !kindOf(h).madeHere() {
			continue // its own key, checked when it is adopted
		}
		kp, err := provision.NewKeyPair("forgelab-" + p.Lab + "-" + h.Name)
		if err != nil {
			return nil, err
		}
		k.hosts[h.Name] = kp
		line, err := provision.KnownHostsLine(h.MgmtIP.String(), kp.Public)
		if err != nil {
			return nil, err
		}
		known.WriteString(line + "\n")
	}
	khPath := l.KnownHosts()
	if err := rec.Record(store.KindFile, khPath); err != nil {
		return nil, err
	}
	if err := os.WriteFile(khPath, []byte(known.String()), 0o644); err != nil {
		return nil, err
	}
	buf := make([]byte, 12)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	k.password = base64.RawURLEncoding.EncodeToString(buf)
	pwPath := l.Password()
	if err := rec.Record(store.KindFile, pwPath); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pwPath, []byte(k.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func (m *Manager) makeMgmt(ctx context.Context, rec *Recorder, p *Plan) error {
	pfx := p.Mgmt.Prefix
	mask := net.CIDRMask(pfx.Bits(), 32)
	n := hypervisor.NATNetwork{
		Name: p.Mgmt.Network, Bridge: p.Mgmt.Bridge, Gateway: p.Mgmt.Gateway.String(),
		Netmask: net.IP(mask).String(), Domain: p.Lab + ".lab",
	}
	for _, h := range p.Hosts {
		if !kindOf(h).madeHere() {
			continue
		}
		n.Hosts = append(n.Hosts, hypervisor.DHCPHost{MAC: h.MgmtMAC, IP: h.MgmtIP.String(), Name: h.Name})
	}
	if err := rec.Record(store.KindNetwork, n.Name); err != nil {
		return err
	}
	// libvirt makes the bridge; record it too so a half-made network
	// cannot leave it behind.
	if err := rec.Record(store.KindNetdev, n.Bridge); err != nil {
		return err
	}
	m.progress("management network %s (%s)", n.Name, pfx)
	err := m.VMs.StartNetwork(ctx, n)
	if errors.Is(err, hypervisor.ErrExists) {
		// Someone else's network (and its bridge): not this lab's to remove.
		return notMade(rec, store.KindNetwork, n.Name, notMade(rec, store.KindNetdev, n.Bridge, err))
	}
	return err
}

// MgmtTap is the host-side tap of a host's management NIC.
func MgmtTap(p *Plan, hostIndex int) string { return fmt.Sprintf("fl%sh%02dm", p.ID, hostIndex) }

// bootAll starts the VMs, at most opts.Parallel booting at once, and waits
// for each to answer SSH. A boot slot is held until the host is ready:
// booting is what costs CPU, and guests starved of it time out.
func (m *Manager) bootAll(ctx context.Context, rec *Recorder, p *Plan, k *labKeys, opts CreateOptions) error {
	par := opts.Parallel
	if par <= 0 {
		par = DefaultParallel(opts.Accel)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, par)
	errc := make(chan error, len(p.Hosts))
	var wg sync.WaitGroup
	m.progress("booting %d VMs (%s, %d at a time)", countVMs(p), opts.Accel, par)
	for i := range p.Hosts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := kindOf(p.Hosts[i]).join(ctx, m, rec, i, k, opts); err != nil {
				errc <- fmt.Errorf("host %s: %w", p.Hosts[i].Name, err)
				cancel() // one failure stops the rest: the lab is removed anyway
			}
		}(i)
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		if !errors.Is(err, context.Canceled) || len(errs) == 0 {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// DefaultParallel fits concurrent boots to the machine: under TCG one boot
// keeps one core busy, under KVM boots mostly wait on I/O.
func DefaultParallel(accel hypervisor.Accel) int {
	n := runtime.NumCPU()
	if accel == hypervisor.KVM {
		n *= 2
	}
	if n < 1 {
		n = 1
	}
	return n
}

func (m *Manager) bootHost(ctx context.Context, rec *Recorder, p *Plan, i int, k *labKeys, opts CreateOptions) error {
	h := p.Hosts[i]
	l := m.Store.LayoutOf(rec.State())
	disk, seed, serial := l.Disk(h.Name), l.Seed(h.Name), l.SerialLog(h.Name)

	if err := rec.Record(store.KindFile, disk); err != nil {
		return err
	}
	if err := m.Images.CreateOverlay(ctx, m.Images.Path(h.Image), disk, h.DiskBytes); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	hk := k.hosts[h.Name]
	in := SeedInput{
		InstanceID: fmt.Sprintf("%s-%s-%d", p.ID, h.Name, time.Now().UnixNano()),
		Hostname:   h.Name, User: opts.User, Password: k.password,
		AuthorizedKeys: []string{k.user.Public},
		HostKeyPrivate: string(hk.Private), HostKeyPublic: hk.Public,
		EtcHosts: plan.EtcHosts(p, h.Name),
		// The management address is static (the lab planned it; the DHCP
		// lease stays for images that ignore the seed): the guest is
		// reachable as soon as its NIC is up, without a DHCP exchange.
		NICs: []SeedNIC{{Name: "eth0", MAC: h.MgmtMAC, Primary: true,
			Addresses:   []string{netip.PrefixFrom(h.MgmtIP, p.Mgmt.Prefix.Bits()).String()},
			Gateway4:    p.Mgmt.Gateway.String(),
			Nameservers: []string{p.Mgmt.Gateway.String()}}},
	}
	for _, n := range h.NICs {
		sn := SeedNIC{Name: n.Name, MAC: n.MAC}
		for _, a := range n.Addresses {
			sn.Addresses = append(sn.Addresses, a.String())
		}
		in.NICs = append(in.NICs, sn)
	}
	if err := rec.Record(store.KindFile, seed); err != nil {
		return err
	}
	if err := m.Images.WriteSeed(seed, in); err != nil {
		return fmt.Errorf("cloud-init seed: %w", err)
	}

	cfg := hypervisor.DomainConfig{
		Name: h.Domain, Title: "forgelab " + p.Lab + "/" + h.Name, Lab: p.Lab, LabID: p.ID, StateDir: absDir(m.Store.Dir), Accel: opts.Accel,
		VCPUs: h.CPUs, MemoryMiB: h.MemoryMiB, Disk: disk, Seed: seed, SerialLog: serial,
		NICs: []hypervisor.NIC{{MAC: h.MgmtMAC, Network: p.Mgmt.Network, Tap: MgmtTap(p, i)}},
	}
	if opts.Accel == hypervisor.TCG {
		cfg.TBCacheMiB = tcgTBCacheMiB
	}
	if b := m.Images.DirectBoot(h.Image); b != nil && !opts.DiskBoot {
		cfg.Kernel, cfg.Initrd, cfg.Cmdline = b.Kernel, b.Initrd, b.Cmdline
	}
	// Data NICs use the taps prepareFabric made: they outlive VM restarts,
	// so shaping and captures stay put.
	for _, n := range h.NICs {
		cfg.NICs = append(cfg.NICs, hypervisor.NIC{MAC: n.MAC, Tap: n.Tap, TapExisting: true})
	}
	// Record everything the domain brings with it before it exists.
	if err := rec.Record(store.KindNetdev, cfg.NICs[0].Tap); err != nil {
		return err
	}
	if err := rec.Record(store.KindFile, serial); err != nil {
		return err
	}
	if err := rec.Record(store.KindDomain, h.Domain); err != nil {
		return err
	}
	start := time.Now()
	if err := m.VMs.StartDomain(ctx, cfg); err != nil {
		if errors.Is(err, hypervisor.ErrExists) {
			// The mgmt tap is that domain's, too.
			return notMade(rec, store.KindDomain, h.Domain, notMade(rec, store.KindNetdev, cfg.NICs[0].Tap, err))
		}
		return err
	}
	m.progress("  %s: booting", h.Name)
	wctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	if err := m.waitAlive(wctx, rec.State(), h); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return m.bootFailure(h, serial, opts, err)
	}
	hs := &HostState{Ready: true, BootTime: time.Since(start).Round(10 * time.Millisecond)}
	if pid, err := hypervisor.DomainPID(h.Domain); err == nil {
		hs.BootCPU = processCPU(pid)
	}
	if err := rec.Update(func(s *State) { s.Hosts[h.Name] = hs }); err != nil {
		return err
	}
	m.progress("  %s: ready in %s (%s CPU)", h.Name, hs.BootTime.Round(100*time.Millisecond), hs.BootCPU.Round(100*time.Millisecond))
	return nil
}

// waitAlive waits for SSH while watching the domain: a guest that stopped
// (a crashed kernel, a KVM emulation failure) fails at once instead of at
// the end of the timeout.
func (m *Manager) waitAlive(ctx context.Context, st *State, h HostPlan) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			s, err := m.VMs.DomainState(h.Domain)
			if err == nil && s != "running" && s != "blocked" && s != "paused" {
				cancel(fmt.Errorf("domain %s is %s", h.Domain, s))
				return
			}
		}
	}()
	err := m.Waiter.WaitReady(ctx, st, h.Name)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return err
}

// bootFailure explains a host that never answered: QEMU's own complaint if
// it has one, and the end of the serial console.
func (m *Manager) bootFailure(h HostPlan, serial string, opts CreateOptions, err error) error {
	msg := fmt.Sprintf("not ready (timeout %s): %v", opts.ReadyTimeout, err)
	if advice := hypervisor.ExplainQEMULog(hypervisor.QEMULog(h.Domain, 8192)); advice != "" {
		msg += "\n" + advice
	}
	tail := lastLines(hypervisor.TailFile(serial, 16384), 25)
	if tail != "" {
		msg += "\nlast lines of its serial console (" + serial + "):\n" + tail
	}
	return errors.New(msg)
}

func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = "    " + strings.TrimRight(l, "\r")
	}
	return strings.Join(lines, "\n")
}

// absDir is dir made absolute (as written into domain metadata).
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// processCPU is the user+system CPU time a process has used so far.
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces).
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}
