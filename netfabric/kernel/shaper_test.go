package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/nstest"
)

// These tests build a kernel lab between network namespaces: each
// namespace plays a VM, its host-side veth the VM's tap, joined by a
// bridge. They need root. The netem ones also need sch_netem: they skip
// without it, unless FORGELAB_REQUIRE_NETEM=1 (set it where netem must
// exist, such as inside a Debian guest: build with `go test -c` and copy
// the binary in; it needs ip, ping, iperf3 and ss there).

type klab struct {
	env *nstest.Env
	s   *Shaper
}

func newLab(t *testing.T, tag string, q netfabric.Impairment, addrs ...string) *klab {
	t.Helper()
	nstest.Require(t)
	env, err := nstest.New(tag, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	br := "fltn" + tag + "br"
	if err := netfabric.EnsureBridge(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netfabric.DeleteLink(br) })
	l := netfabric.Link{Name: "ab", Bridge: br, Quality: q}
	for i, h := range env.Hosts {
		if err := netfabric.AddPort(br, h.Dev); err != nil {
			t.Fatal(err)
		}
		l.Endpoints = append(l.Endpoints, netfabric.Endpoint{Host: string(rune('a' + i)), Tap: h.Dev, MAC: h.MAC})
	}
	s, err := New(netfabric.Links{l}, 42, filepath.Join(t.TempDir(), "kernel-fabric.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Teardown(context.Background()); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	if err := s.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &klab{env: env, s: s}
}

func (k *klab) reach(t *testing.T, from, to int) bool {
	t.Helper()
	rs, err := k.env.Ping(context.Background(), from, k.env.Hosts[to].Addr, 3, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return len(rs) > 0
}

// iperfServer runs an iperf3 server on port 5201 of host i until the
// test ends.
func (k *klab) iperfServer(t *testing.T, i int) {
	t.Helper()
	stop, err := k.env.Start(i, "iperf3", "-s", "-p", "5201")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if err := k.env.WaitTCP(context.Background(), i, 5201); err != nil {
		t.Fatal(err)
	}
}

// ifbQdiscs lists the qdiscs on the ifb of host i's direction.
func (k *klab) ifbQdiscs(t *testing.T, i int) []netlink.Qdisc {
	t.Helper()
	ifb, err := netlink.LinkByName(k.env.Hosts[i].Dev + "i")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := netlink.QdiscList(ifb)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

func TestRateTCP(t *testing.T) {
	k := newLab(t, "kr", netfabric.Impairment{RateBits: 10e6}, "10.81.0.1", "10.81.0.2")
	ctx := context.Background()
	k.iperfServer(t, 0)
	bps, err := k.env.IperfTCP(ctx, 1, 0, 5201, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rate 10mbit (htb on the sender's ifb): iperf3 TCP %.2f Mbit/s", bps/1e6)
	if bps < 9.0e6 || bps > 10.5e6 {
		t.Fatalf("rate 10mbit gave %.2f Mbit/s, want 9.0-10.5", bps/1e6)
	}
	// Back to no impairment: the ifb stays for fast changes, but nothing
	// is redirected through it any more, so the link runs at full speed.
	if err := k.s.Set(ctx, "ab", "", netfabric.Impairment{}); err != nil {
		t.Fatal(err)
	}
	if bps, err = k.env.IperfTCP(ctx, 1, 0, 5201, 1); err != nil || bps < 100e6 {
		t.Fatalf("after removing the rate: %.0f Mbit/s, %v", bps/1e6, err)
	}
}

func TestPartitionHeal(t *testing.T) {
	k := newLab(t, "kp", netfabric.Impairment{}, "10.82.0.1", "10.82.0.2", "10.82.0.3")
	ctx := context.Background()
	if !k.reach(t, 0, 1) || !k.reach(t, 1, 2) {
		t.Fatal("segment a-b-c: not everyone reaches everyone")
	}
	if err := k.s.Partition(ctx, [][]string{{"a"}, {"b", "c"}}); err != nil {
		t.Fatal(err)
	}
	if k.reach(t, 0, 1) || k.reach(t, 2, 0) {
		t.Fatal("a still talks to b or c across the partition")
	}
	if !k.reach(t, 1, 2) {
		t.Fatal("b and c, in one group, cannot talk")
	}
	if st, _ := k.s.Show(ctx); len(st.Groups) != 2 {
		t.Fatalf("Show: groups %v", st.Groups)
	}
	// A second process sees the partition (state file) and heals it.
	s2, err := New(k.s.links, 42, k.s.statePath)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s2.Show(ctx); len(st.Groups) != 2 {
		t.Fatalf("a new shaper does not see the partition: %v", st.Groups)
	}
	if err := s2.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if !k.reach(t, 0, 1) || !k.reach(t, 2, 0) {
		t.Fatal("heal did not restore a")
	}
}

func TestDownUp(t *testing.T) {
	k := newLab(t, "kd", netfabric.Impairment{}, "10.83.0.1", "10.83.0.2")
	ctx := context.Background()
	if err := k.s.SetUp(ctx, "ab", false); err != nil {
		t.Fatal(err)
	}
	if k.reach(t, 0, 1) {
		t.Fatal("ping crosses a link that is down")
	}
	if st, _ := k.s.Show(ctx); st.Links[0].Up {
		t.Fatal("Show: link up")
	}
	if err := k.s.SetUp(ctx, "ab", true); err != nil {
		t.Fatal(err)
	}
	if !k.reach(t, 0, 1) {
		t.Fatal("link up again, ping lost")
	}
	// One direction down: a's requests are dropped, so no replies either.
	if err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{Down: true}); err != nil {
		t.Fatal(err)
	}
	if k.reach(t, 0, 1) {
		t.Fatal("direction a down, but a's pings pass")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	k := newLab(t, "kb", netfabric.Impairment{RateBits: 50e6}, "10.84.0.1", "10.84.0.2")
	ctx := context.Background()
	before, _ := k.s.Show(ctx)
	for _, err := range []error{
		k.s.Set(ctx, "ab", "", netfabric.Impairment{Delay: -time.Millisecond}),
		k.s.Set(ctx, "ab", "a", netfabric.Impairment{Loss: 120}),
		k.s.Set(ctx, "zz", "", netfabric.Impairment{}),
		k.s.Set(ctx, "ab", "q", netfabric.Impairment{}),
		k.s.SetUp(ctx, "zz", false),
		k.s.Partition(ctx, [][]string{{"a"}, {"x"}}),
		k.s.Capture(ctx, "zz", &bytes.Buffer{}),
	} {
		if err == nil {
			t.Fatal("bad input accepted")
		}
	}
	if err := k.s.Set(ctx, "zz", "", netfabric.Impairment{}); !errors.Is(err, netfabric.ErrUnknownLink) {
		t.Fatalf("unknown link: %v", err)
	}
	if HasNetem() != nil {
		// What this host cannot do is refused before anything changes.
		err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 20 * time.Millisecond})
		if !errors.Is(err, netfabric.ErrUnsupported) || !errors.Is(err, ErrNoNetem) {
			t.Fatalf("delay without netem: %v", err)
		}
		t.Logf("without netem: %v", err)
	}
	after, _ := k.s.Show(ctx)
	for i := range before.Links[0].Directions {
		if after.Links[0].Directions[i].Quality != before.Links[0].Directions[i].Quality {
			t.Fatalf("bad input changed direction %d: %v -> %v", i, before.Links[0].Directions[i].Quality, after.Links[0].Directions[i].Quality)
		}
	}
	if !netfabric.LinkExists(k.env.Hosts[0].Dev + "i") {
		t.Fatal("the 50mbit shaping of a is gone")
	}
}

func TestCapture(t *testing.T) {
	k := newLab(t, "kc", netfabric.Impairment{}, "10.85.0.1", "10.85.0.2")
	ctx, cancel := context.WithCancel(context.Background())
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- k.s.Capture(ctx, "ab", &buf) }()
	time.Sleep(100 * time.Millisecond)
	if rs, err := k.env.Ping(context.Background(), 0, k.env.Hosts[1].Addr, 5, 10*time.Millisecond); err != nil || len(rs) != 5 {
		t.Fatalf("ping: %d, %v", len(rs), err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b23c4d {
		t.Fatalf("not a pcap stream (%d bytes)", len(b))
	}
	icmp := 0
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:]))
		f := b[16 : 16+n]
		if len(f) > 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 1 {
			icmp++
		}
		b = b[16+n:]
	}
	if icmp != 10 {
		t.Fatalf("capture holds %d ICMP frames, want 10", icmp)
	}
}

func TestTeardownLeavesNothing(t *testing.T) {
	k := newLab(t, "kt", netfabric.Impairment{RateBits: 20e6}, "10.86.0.1", "10.86.0.2")
	ctx := context.Background()
	if err := k.s.Partition(ctx, [][]string{{"a"}, {"b"}}); err != nil {
		t.Fatal(err)
	}
	if err := k.s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range k.env.Hosts {
		if netfabric.LinkExists(h.Dev + "i") {
			t.Errorf("ifb of %s left", h.Dev)
		}
		l, _ := netlink.LinkByName(h.Dev)
		qs, _ := netlink.QdiscList(l)
		for _, q := range qs {
			if q.Type() == "clsact" {
				t.Errorf("clsact left on %s", h.Dev)
			}
		}
	}
	if _, err := os.Stat(k.s.statePath); err == nil {
		t.Error("state file left")
	}
	if !k.reach(t, 0, 1) {
		t.Fatal("after teardown the plain bridge does not forward")
	}
	// A heal or an up on bare taps (nothing of forgelab's left) is fine.
	if err := k.s.Heal(ctx); err != nil {
		t.Fatalf("heal after teardown: %v", err)
	}
	if err := k.s.Teardown(ctx); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
}

// The tests below need netem.

func median(rs []nstest.Reply) time.Duration {
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = r.RTT
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// kernelRate is the rate of the htb class shaping what tap's VM sends,
// and whether the tap redirects to its ifb at all: what `tc class show`
// and `tc filter show` would tell a user.
func kernelRate(t *testing.T, tap string) (uint64, bool) {
	t.Helper()
	l, err := netlink.LinkByName(tap)
	if err != nil {
		t.Fatal(err)
	}
	f, err := hasFilter(l, netlink.HANDLE_MIN_INGRESS, prioRedirect)
	if err != nil {
		t.Fatal(err)
	}
	ifb, err := netlink.LinkByName(tap + "i")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := netlink.ClassList(ifb, htbRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if h, ok := c.(*netlink.HtbClass); ok && h.Handle == htbClass {
			return h.Rate, f != nil
		}
	}
	return 0, f != nil
}

// Set sends only the changed qdiscs once this process made a direction's
// layout; what the kernel then has must still be what was asked for,
// across turning shaping off and on, a down direction, and a layout
// someone else broke in between.
func TestSetSequenceMatchesKernel(t *testing.T) {
	k := newLab(t, "ks", netfabric.Impairment{}, "10.84.0.1", "10.84.0.2")
	ctx := context.Background()
	tap := k.env.Hosts[0].Dev
	steps := []struct {
		name     string
		q        netfabric.Impairment
		breakIt  bool // delete the ifb's root qdisc before this Set
		rate     uint64
		redirect bool
	}{
		{"shaped", netfabric.Impairment{RateBits: 10e6}, false, 10e6 / 8, true},
		{"rate changes", netfabric.Impairment{RateBits: 20e6}, false, 20e6 / 8, true},
		{"queue limit changes", netfabric.Impairment{RateBits: 20e6, Limit: 2000}, false, 20e6 / 8, true},
		{"same again", netfabric.Impairment{RateBits: 20e6, Limit: 2000}, false, 20e6 / 8, true},
		{"unshaped", netfabric.Impairment{}, false, 20e6 / 8, false}, // the qdiscs stay, unused
		{"shaped again", netfabric.Impairment{RateBits: 5e6}, false, 5e6 / 8, true},
		{"down", netfabric.Impairment{RateBits: 5e6, Down: true}, false, 5e6 / 8, true},
		{"up", netfabric.Impairment{RateBits: 6e6}, false, 6e6 / 8, true},
		{"qdiscs removed by someone else", netfabric.Impairment{RateBits: 7e6}, true, 7e6 / 8, true},
	}
	for _, st := range steps {
		if st.breakIt {
			ifb, err := netlink.LinkByName(tap + "i")
			if err != nil {
				t.Fatal(err)
			}
			if err := delRoot(ifb); err != nil {
				t.Fatal(err)
			}
		}
		if err := k.s.Set(ctx, "ab", "a", st.q); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		rate, redirect := kernelRate(t, tap)
		if redirect != st.redirect || (st.redirect && rate != st.rate) {
			t.Errorf("%s: kernel has rate %d B/s, redirect %v; want %d B/s, %v", st.name, rate, redirect, st.rate, st.redirect)
		}
		l, _ := netlink.LinkByName(tap)
		down, err := hasFilter(l, netlink.HANDLE_MIN_INGRESS, prioDown)
		if err != nil {
			t.Fatal(err)
		}
		if (down != nil) != st.q.Down {
			t.Errorf("%s: down filter %v, want %v", st.name, down != nil, st.q.Down)
		}
	}
	if !k.reach(t, 0, 1) {
		t.Fatal("ping lost on a shaped link that is up")
	}
}

// A tap made anew under the same name (a restarted VM) has none of the
// old layout: the next Set must notice by its index and rebuild, even
// though this process's record says the layout is in place (veths play
// the taps: this host has no dummy devices). The sockets
// a Set keeps close after a second of quiet and come back on the next.
func TestSetAfterTapMadeAnew(t *testing.T) {
	nstest.Require(t)
	taps := []string{"fltkre0", "fltkre1"}
	mk := func(name string) {
		t.Helper()
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
			t.Fatal(err)
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l := netfabric.Link{Name: "ab", Bridge: "fltkrebr"}
	for i, tap := range taps {
		mk(tap)
		t.Cleanup(func() { _ = netfabric.DeleteLink(tap) })
		l.Endpoints = append(l.Endpoints, netfabric.Endpoint{Host: string(rune('a' + i)), Tap: tap})
	}
	s, err := New(netfabric.Links{l}, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { _ = s.Teardown(ctx) })
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "ab", "a", netfabric.Impairment{RateBits: 10e6}); err != nil {
		t.Fatal(err)
	}
	if rate, redirect := kernelRate(t, taps[0]); !redirect || rate != 10e6/8 {
		t.Fatalf("before: rate %d B/s, redirect %v; want %d, true", rate, redirect, uint64(10e6/8))
	}
	if err := netfabric.DeleteLink(taps[0]); err != nil {
		t.Fatal(err)
	}
	mk(taps[0])
	if err := s.Set(ctx, "ab", "a", netfabric.Impairment{RateBits: 20e6}); err != nil {
		t.Fatal(err)
	}
	if rate, redirect := kernelRate(t, taps[0]); !redirect || rate != 20e6/8 {
		t.Errorf("tap made anew: rate %d B/s, redirect %v; want %d, true", rate, redirect, uint64(20e6/8))
	}

	time.Sleep(idleClose + 300*time.Millisecond)
	s.mu.Lock()
	open := s.conn.h != nil
	s.mu.Unlock()
	if open {
		t.Errorf("sockets still open %v after the last change", idleClose+300*time.Millisecond)
	}
	if err := s.Set(ctx, "ab", "a", netfabric.Impairment{RateBits: 30e6}); err != nil {
		t.Fatal(err)
	}
	if rate, _ := kernelRate(t, taps[0]); rate != 30e6/8 {
		t.Errorf("after the sockets closed: rate %d B/s, want %d", rate, uint64(30e6/8))
	}
}

// Prepare, in a process that has not seen the lab (a new Shaper on the
// same taps), learns every scheduled direction's layout without changing
// any quality, so the schedule's first changes take the fast path.
func TestPrepareLearnsLayoutAndChangesNothing(t *testing.T) {
	k := newLab(t, "kp", netfabric.Impairment{RateBits: 10e6}, "10.85.0.1", "10.85.0.2")
	ctx := context.Background()
	links := k.s.links
	fresh, err := New(links, 42, "")
	if err != nil {
		t.Fatal(err)
	}
	changes := []netfabric.TimedChange{
		{At: time.Second, Link: "ab", From: "a", Quality: &netfabric.Impairment{RateBits: 20e6}},
		{At: 0, Link: "ab", From: "a", Quality: &netfabric.Impairment{RateBits: 30e6}},
	}
	if err := fresh.Prepare(ctx, changes); err != nil {
		t.Fatal(err)
	}
	tapA, tapB := links[0].Endpoints[0].Tap, links[0].Endpoints[1].Tap
	if rate, redirect := kernelRate(t, tapA); rate != 10e6/8 || !redirect {
		t.Errorf("Prepare changed a's direction: rate %d B/s, redirect %v", rate, redirect)
	}
	fresh.mu.Lock()
	ka, kb := fresh.known[tapA], fresh.known[tapB]
	fresh.mu.Unlock()
	if ka == nil || !ka.redirect || !ka.qdiscs || ka.q.RateBits != 10e6 {
		t.Errorf("a's layout not learnt: %+v", ka)
	}
	if kb != nil {
		t.Errorf("b's direction is not in the schedule but was prepared: %+v", kb)
	}
	if err := fresh.Set(ctx, "ab", "a", *changes[1].Quality); err != nil {
		t.Fatal(err)
	}
	if rate, _ := kernelRate(t, tapA); rate != 30e6/8 {
		t.Errorf("after the first change: rate %d B/s, want %d", rate, uint64(30e6/8))
	}
	bad := []netfabric.TimedChange{{At: 0, Link: "nope", Quality: &netfabric.Impairment{}}}
	if err := fresh.Prepare(ctx, bad); err == nil {
		t.Error("Prepare took a schedule with an unknown link")
	}
}

// Set saves the state file at once when it has not saved for a while (a
// one-shot CLI call), and at most every saveEvery while changes come
// fast; Flush writes what is pending.
func TestSetSavesStateAtMostEverySaveEvery(t *testing.T) {
	k := newLab(t, "kw", netfabric.Impairment{}, "10.83.0.1", "10.83.0.2")
	ctx := context.Background()
	saved := func() int64 {
		t.Helper()
		b, err := os.ReadFile(k.s.statePath)
		if err != nil {
			t.Fatal(err)
		}
		var st state
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		return st.Quality["ab"]["a"].RateBits
	}
	set := func(rate int64) {
		t.Helper()
		if err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{RateBits: rate}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(saveEvery) // Setup saved just now
	set(1e6)
	if got := saved(); got != 1e6 {
		t.Fatalf("first Set: state file has %d, want it saved at once", got)
	}
	set(2e6)
	if got := saved(); got != 1e6 {
		t.Logf("second Set right after the first was saved at once (slow machine?): %d", got)
	}
	time.Sleep(saveEvery + 100*time.Millisecond)
	if got := saved(); got != 2e6 {
		t.Fatalf("%v after a deferred save: state file has %d, want 2000000", saveEvery+100*time.Millisecond, got)
	}
	set(3e6)
	set(4e6)
	if err := k.s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := saved(); got != 4e6 {
		t.Fatalf("after Flush: state file has %d, want 4000000", got)
	}
}
