package hypervisor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// fakeVirt is libvirt as a map of domains and networks (as virter's
// test fake): it parses the XML it is given, and tests assert the end
// state.
type fakeVirt struct {
	mu       sync.Mutex
	domains  map[string]*fakeDomain
	networks map[string]*fakeNetwork
	// Injected failures.
	failCreate   string // domain whose create fails
	failUndefine string // domain whose undefine fails
	ignoreACPI   bool   // guests do not power off when asked
	// hang, when set, blocks every lookup, define and list until it is
	// closed: a libvirtd that accepted the connection and stopped answering.
	hang          chan struct{}
	deviceUpdates []string
	// stats are what domainStats reports for a running domain.
	stats map[string]libvirt.DomainStats
}

func newFakeVirt() *fakeVirt {
	return &fakeVirt{domains: map[string]*fakeDomain{}, networks: map[string]*fakeNetwork{}}
}

func noDomain(name string) error {
	return libvirt.Error{Code: libvirt.ERR_NO_DOMAIN, Message: "Domain not found: no domain with matching name '" + name + "'"}
}

type fakeDomain struct {
	v      *fakeVirt
	name   string
	doc    string
	active bool
	st     libvirt.DomainState
}

func (f *fakeVirt) defineDomain(x string) (domain, error) {
	f.wait()
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return nil, libvirt.Error{Code: libvirt.ERR_XML_ERROR, Message: err.Error()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dom := &fakeDomain{v: f, name: d.Name, doc: x, st: libvirt.DOMAIN_SHUTOFF}
	f.domains[d.Name] = dom
	return dom, nil
}

func (f *fakeVirt) lookupDomain(name string) (domain, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.domains[name]
	if !ok {
		return nil, noDomain(name)
	}
	return d, nil
}

func (f *fakeVirt) defineNetwork(x string) (network, error) {
	f.wait()
	var n libvirtxml.Network
	if err := n.Unmarshal(x); err != nil {
		return nil, libvirt.Error{Code: libvirt.ERR_XML_ERROR, Message: err.Error()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	net := &fakeNetwork{v: f, name: n.Name, doc: x}
	f.networks[n.Name] = net
	return net, nil
}

func (f *fakeVirt) lookupNetwork(name string) (network, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.networks[name]
	if !ok {
		return nil, libvirt.Error{Code: libvirt.ERR_NO_NETWORK, Message: "Network not found"}
	}
	return n, nil
}

func (f *fakeVirt) networkXMLs() ([]string, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.networks {
		out = append(out, n.doc)
	}
	return out, nil
}

func (f *fakeVirt) domainXMLs() ([]listed, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []listed
	for _, d := range f.domains {
		out = append(out, listed{d.doc, d.active})
	}
	return out, nil
}

func (f *fakeVirt) networkList() ([]listed, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []listed
	for _, n := range f.networks {
		out = append(out, listed{n.doc, n.active})
	}
	return out, nil
}

func (f *fakeVirt) close() error { return nil }

func (f *fakeVirt) wait() {
	if f.hang != nil {
		<-f.hang
	}
}

func (f *fakeVirt) domainStats(names []string) ([]namedStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []namedStats
	for _, n := range names {
		if d, ok := f.domains[n]; ok && d.active {
			out = append(out, namedStats{name: n, stats: f.stats[n]})
		}
	}
	return out, nil
}

func (f *fakeVirt) activeDomains() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n, d := range f.domains {
		if d.active {
			out = append(out, n)
		}
	}
	return out, nil
}

func (d *fakeDomain) set(active bool, st libvirt.DomainState) {
	d.v.mu.Lock()
	defer d.v.mu.Unlock()
	d.active, d.st = active, st
}

func (d *fakeDomain) create() error {
	if d.v.failCreate == d.name {
		return libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "process exited while connecting to monitor"}
	}
	d.set(true, libvirt.DOMAIN_RUNNING)
	return nil
}

func (d *fakeDomain) destroy() error {
	if !d.isActive() {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is not running"}
	}
	d.set(false, libvirt.DOMAIN_SHUTOFF)
	return nil
}

func (d *fakeDomain) undefine() error {
	if d.v.failUndefine == d.name {
		return libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "injected"}
	}
	d.v.mu.Lock()
	defer d.v.mu.Unlock()
	if _, ok := d.v.domains[d.name]; !ok {
		return noDomain(d.name)
	}
	if d.active {
		d.active = false // a transient domain: it goes when it stops
	}
	delete(d.v.domains, d.name)
	return nil
}

func (d *fakeDomain) isActive() bool {
	d.v.mu.Lock()
	defer d.v.mu.Unlock()
	return d.active
}

func (d *fakeDomain) state() (libvirt.DomainState, error) {
	d.v.mu.Lock()
	defer d.v.mu.Unlock()
	return d.st, nil
}

func (d *fakeDomain) shutdown() error {
	if !d.isActive() {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is not running"}
	}
	if !d.v.ignoreACPI {
		d.set(false, libvirt.DOMAIN_SHUTOFF)
	}
	return nil
}

func (d *fakeDomain) suspend() error { d.set(true, libvirt.DOMAIN_PAUSED); return nil }
func (d *fakeDomain) resume() error  { d.set(true, libvirt.DOMAIN_RUNNING); return nil }
func (d *fakeDomain) reset() error   { return nil }

func (d *fakeDomain) xml() (string, error) {
	d.v.mu.Lock()
	defer d.v.mu.Unlock()
	return d.doc, nil
}

func (d *fakeDomain) updateLiveDevice(x string) error {
	if !d.isActive() {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is not running"}
	}
	d.v.mu.Lock()
	defer d.v.mu.Unlock()
	d.v.deviceUpdates = append(d.v.deviceUpdates, x)
	return nil
}

func (d *fakeDomain) free() {}

type fakeNetwork struct {
	v      *fakeVirt
	name   string
	doc    string
	active bool
}

func (n *fakeNetwork) create() error { n.v.mu.Lock(); n.active = true; n.v.mu.Unlock(); return nil }
func (n *fakeNetwork) destroy() error {
	n.v.mu.Lock()
	defer n.v.mu.Unlock()
	n.active = false
	return nil
}
func (n *fakeNetwork) undefine() error {
	n.v.mu.Lock()
	defer n.v.mu.Unlock()
	delete(n.v.networks, n.name)
	return nil
}
func (n *fakeNetwork) isActive() bool { n.v.mu.Lock(); defer n.v.mu.Unlock(); return n.active }
func (n *fakeNetwork) free()          {}

// fakeClock moves forward by exactly what a caller waits for.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func newFakeConn() (*Conn, *fakeVirt, *fakeClock) {
	v := newFakeVirt()
	clk := &fakeClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	return &Conn{v: v, clock: clk}, v, clk
}

func testDomain(name string) DomainConfig {
	return DomainConfig{
		Name: name, Title: "forgelab lab/a", Lab: "lab", LabID: "1a2b", VCPUs: 1, MemoryMiB: 256, Disk: "/d/a.qcow2",
		NICs: []NIC{{MAC: "52:54:00:00:00:01", Network: "fl-1a2b-mgmt"}, {MAC: "52:54:00:00:00:02", Tap: "fl1a2bh00n01", TapExisting: true}},
	}
}

func TestDomainLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		setup      func(v *fakeVirt)
		start      bool // StartDomain first
		wantErr    string
		wantExists bool
	}{
		{name: "start then remove", start: true},
		{name: "a failed start undefines the domain", setup: func(v *fakeVirt) { v.failCreate = "fl-1a2b-a" }, start: true, wantErr: "start domain fl-1a2b-a: "},
		{name: "a failed start whose undefine fails says how to clean up", setup: func(v *fakeVirt) { v.failCreate, v.failUndefine = "fl-1a2b-a", "fl-1a2b-a" },
			start: true, wantErr: "virsh undefine fl-1a2b-a", wantExists: true},
		{name: "removing an absent domain is fine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, v, _ := newFakeConn()
			if tc.setup != nil {
				tc.setup(v)
			}
			var err error
			if tc.start {
				err = c.StartDomain(ctx, testDomain("fl-1a2b-a"))
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("start: %v, want %q", err, tc.wantErr)
			}
			if _, exists := v.domains["fl-1a2b-a"]; exists != (tc.wantExists || tc.start && tc.wantErr == "") {
				t.Fatalf("after start: domain exists %v", exists)
			}
			if tc.wantErr != "" {
				return
			}
			if st, _ := c.DomainState("fl-1a2b-a"); tc.start && st != "running" {
				t.Errorf("state %s", st)
			}
			if err := c.RemoveDomain(ctx, "fl-1a2b-a"); err != nil {
				t.Fatal(err)
			}
			if err := c.RemoveDomain(ctx, "fl-1a2b-a"); err != nil {
				t.Fatalf("second remove: %v", err)
			}
			if st, err := c.DomainState("fl-1a2b-a"); st != "absent" || err != nil || len(v.domains) != 0 {
				t.Errorf("after remove: %s %v %v", st, err, v.domains)
			}
		})
	}
}

// Every domain carries its lab in <metadata>, so a leftover is
// recognisable without the lab's state.
func TestDomainsCarryTheirLab(t *testing.T) {
	c, v, _ := newFakeConn()
	if err := c.StartDomain(context.Background(), testDomain("fl-1a2b-a")); err != nil {
		t.Fatal(err)
	}
	doc, _ := v.domains["fl-1a2b-a"].xml()
	if lab, id, ok := LabOf(doc); !ok || lab != "lab" || id != "1a2b" {
		t.Errorf("LabOf = %q %q %v", lab, id, ok)
	}
}

func TestShutdown(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		ignoreACPI bool
		minWait    time.Duration
	}{
		{name: "the guest powers off"},
		{name: "a guest that ignores ACPI is killed after the grace period", ignoreACPI: true, minWait: 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, v, clk := newFakeConn()
			c.StartDomain(ctx, testDomain("fl-1a2b-a"))
			v.ignoreACPI = tc.ignoreACPI
			start := clk.Now()
			if err := c.Do(ctx, "fl-1a2b-a", ActionStop); err != nil {
				t.Fatal(err)
			}
			if st, _ := c.DomainState("fl-1a2b-a"); st != "shut-off" {
				t.Errorf("after stop: %s", st)
			}
			if waited := clk.Now().Sub(start); waited < tc.minWait || waited > tc.minWait+time.Second {
				t.Errorf("waited %s (fake clock), want %s", waited, tc.minWait)
			}
		})
	}
}

func TestHostActions(t *testing.T) {
	ctx := context.Background()
	c, _, _ := newFakeConn()
	c.StartDomain(ctx, testDomain("fl-1a2b-a"))
	for _, step := range []struct {
		a    HostAction
		want string
	}{
		{ActionPause, "paused"}, {ActionResume, "running"}, {ActionKill, "shut-off"}, {ActionKill, "shut-off"},
		{ActionStart, "running"}, {ActionStart, "running"}, {ActionReboot, "running"},
	} {
		if err := c.Do(ctx, "fl-1a2b-a", step.a); err != nil {
			t.Fatalf("%s: %v", step.a, err)
		}
		if st, _ := c.DomainState("fl-1a2b-a"); st != step.want {
			t.Errorf("after %s: %s, want %s", step.a, st, step.want)
		}
	}
	if err := c.Do(ctx, "fl-1a2b-a", "explode"); err == nil || !strings.Contains(err.Error(), "unknown host action") {
		t.Errorf("unknown action: %v", err)
	}
	if err := c.Do(ctx, "nosuch", ActionKill); err == nil || !strings.Contains(err.Error(), "look up domain nosuch") {
		t.Errorf("absent domain: %v", err)
	}
}

func TestSetNICLink(t *testing.T) {
	ctx := context.Background()
	c, v, _ := newFakeConn()
	c.StartDomain(ctx, testDomain("fl-1a2b-a"))
	if err := c.SetNICLink(ctx, "fl-1a2b-a", "52:54:00:00:00:02", false); err != nil {
		t.Fatal(err)
	}
	if len(v.deviceUpdates) != 1 || !strings.Contains(v.deviceUpdates[0], `<link state="down">`) || !strings.Contains(v.deviceUpdates[0], "52:54:00:00:00:02") {
		t.Errorf("device updates: %v", v.deviceUpdates)
	}
	err := c.SetNICLink(ctx, "fl-1a2b-a", "52:54:00:00:00:99", false)
	if err == nil || !strings.Contains(err.Error(), "no NIC with MAC 52:54:00:00:00:99") || len(v.deviceUpdates) != 1 {
		t.Errorf("unknown MAC: %v (%d updates)", err, len(v.deviceUpdates))
	}
	if err := c.SetNICLink(ctx, "nosuch", "52:54:00:00:00:02", true); !errors.As(err, new(libvirt.Error)) {
		t.Errorf("absent domain: %v", err)
	}
}

func TestNetworks(t *testing.T) {
	ctx := context.Background()
	c, v, _ := newFakeConn()
	n := NATNetwork{Name: "fl-1a2b-mgmt", Bridge: "fl1a2b-m", Gateway: "10.1.2.1", Netmask: "255.255.255.0", Domain: "lab.lab"}
	if err := c.StartNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	xmls, _ := c.NetworkXMLs()
	if len(xmls) != 1 || !strings.Contains(xmls[0], "10.1.2.1") {
		t.Errorf("networks: %v", xmls)
	}
	for i := range 2 {
		if err := c.RemoveNetwork(ctx, n.Name); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	if len(v.networks) != 0 {
		t.Errorf("left: %v", v.networks)
	}
}

// A libvirtd that stops answering must not hang create or destroy: every
// operation gives up after the call timeout (or when its context ends)
// with an error that says libvirtd did not answer and how to check it.
func TestHungLibvirtIsBounded(t *testing.T) {
	ops := []struct {
		name string
		run  func(ctx context.Context, c *Conn) error
	}{
		{"start domain", func(ctx context.Context, c *Conn) error { return c.StartDomain(ctx, testDomain("fl-1a2b-a")) }},
		{"remove domain", func(ctx context.Context, c *Conn) error { return c.RemoveDomain(ctx, "fl-1a2b-a") }},
		{"domain state", func(ctx context.Context, c *Conn) error { _, err := c.DomainState("fl-1a2b-a"); return err }},
		{"start network", func(ctx context.Context, c *Conn) error {
			return c.StartNetwork(ctx, NATNetwork{Name: "fl-1a2b-mgmt", Bridge: "fl1a2b-m", Gateway: "10.200.0.1", Netmask: "255.255.255.0"})
		}},
		{"remove network", func(ctx context.Context, c *Conn) error { return c.RemoveNetwork(ctx, "fl-1a2b-mgmt") }},
		{"list networks", func(ctx context.Context, c *Conn) error { _, err := c.NetworkXMLs(); return err }},
		{"list objects", func(ctx context.Context, c *Conn) error { _, err := c.Objects(ctx); return err }},
		{"host action", func(ctx context.Context, c *Conn) error { return c.Do(ctx, "fl-1a2b-a", ActionKill) }},
		{"shutdown", func(ctx context.Context, c *Conn) error { return c.Shutdown(ctx, "fl-1a2b-a", time.Second) }},
		{"nic link", func(ctx context.Context, c *Conn) error {
			return c.SetNICLink(ctx, "fl-1a2b-a", "52:54:00:00:00:02", false)
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			c, v, _ := newFakeConn()
			v.hang = make(chan struct{})
			defer close(v.hang)
			c.SetCallTimeout(50 * time.Millisecond)
			errc := make(chan error, 1)
			go func() { errc <- op.run(context.Background(), c) }()
			select {
			case err := <-errc:
				var te *TimeoutError
				if !errors.As(err, &te) {
					t.Fatalf("got %v, want a TimeoutError", err)
				}
				if !strings.Contains(err.Error(), "libvirtd did not answer within") || !strings.Contains(err.Error(), "virsh list") {
					t.Errorf("error does not say what happened and how to check: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a hung libvirt call was not bounded")
			}
		})
	}
	t.Run("context", func(t *testing.T) {
		c, v, _ := newFakeConn()
		v.hang = make(chan struct{})
		defer close(v.hang)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := c.RemoveDomain(ctx, "fl-1a2b-a")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RemoveDomain on a hung libvirtd with a context deadline: %v", err)
		}
	})
}
