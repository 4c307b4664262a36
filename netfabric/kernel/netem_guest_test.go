//go:build netem

// These tests need sch_netem, which this project's CI host kernel lacks and
// Debian's guest kernels have: TestLabLifecycle builds them with -tags netem
// and runs them inside a lab VM (FORGELAB_REQUIRE_NETEM=1), so on the host
// they are not compiled rather than skipped.

package kernel

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/nstest"
)

func requireNetem(t *testing.T) {
	t.Helper()
	nstest.Require(t) // root first: without it the probe cannot tell
	if err := HasNetem(); err != nil {
		if os.Getenv("FORGELAB_REQUIRE_NETEM") == "1" {
			t.Fatalf("netem required (FORGELAB_REQUIRE_NETEM=1): %v", err)
		}
		t.Skipf("skipped: %v (run where sch_netem exists, e.g. a Debian guest; FORGELAB_REQUIRE_NETEM=1 makes this a failure)", err)
	}
}

func TestNetemDelay(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "ky", netfabric.Impairment{}, "10.87.0.1", "10.87.0.2")
	ctx := context.Background()
	base, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 20, 10*time.Millisecond)
	if err != nil || len(base) == 0 {
		t.Fatalf("baseline: %v", err)
	}
	if err := k.s.Set(ctx, "ab", "", netfabric.Impairment{Delay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 100, 10*time.Millisecond)
	if err != nil || len(rs) != 100 {
		t.Fatalf("ping: %d of 100, %v", len(rs), err)
	}
	added := median(rs) - median(base)
	t.Logf("20 ms each way: median RTT +%v", added)
	if added < 38*time.Millisecond || added > 42*time.Millisecond {
		t.Fatalf("added %v, want 40 ms ± 2 ms", added)
	}
}

func TestNetemLoss(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "kl", netfabric.Impairment{}, "10.88.0.1", "10.88.0.2")
	ctx := context.Background()
	if err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{Loss: 10}); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, n, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	lost := n - len(rs)
	// Binomial(1000, 0.1): 99.9 % of runs lose 69..131.
	t.Logf("lost %d of %d", lost, n)
	if lost < 69 || lost > 131 {
		t.Fatalf("loss 10%%: lost %d of %d, outside the 99.9%% interval [69, 131]", lost, n)
	}
}

func TestNetemJitterKeepsOrder(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "kj", netfabric.Impairment{}, "10.89.0.1", "10.89.0.2")
	ctx := context.Background()
	if err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 200, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]int, len(rs)) // in arrival order
	for i, r := range rs {
		seqs[i] = r.Seq
	}
	if !slices.IsSorted(seqs) {
		t.Fatalf("jitter without reorder reordered: %v", seqs)
	}
	if err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: 25}); err != nil {
		t.Fatal(err)
	}
	rs, _ = k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 200, 2*time.Millisecond)
	seqs = seqs[:0]
	for _, r := range rs {
		seqs = append(seqs, r.Seq)
	}
	if slices.IsSorted(seqs) {
		t.Fatal("reorder 25% kept everything in order")
	}
}

// A change is in effect once Set returns: pings sent before it are not
// delayed, every ping sent after it is. How fast Set is goes into bench/,
// not into a test on a loaded machine.
func TestNetemChangeInEffectWhenSetReturns(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "kv", netfabric.Impairment{}, "10.90.0.1", "10.90.0.2")
	ctx := context.Background()
	ping := func() []nstest.Reply {
		rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 20, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) < 18 {
			t.Fatalf("%d of 20 replies", len(rs))
		}
		return rs
	}
	for _, r := range ping() {
		if r.RTT > 45*time.Millisecond {
			t.Fatalf("ping %d before any change took %v", r.Seq, r.RTT)
		}
	}
	begin := time.Now()
	if err := k.s.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Set took %s", time.Since(begin).Round(time.Millisecond))
	for _, r := range ping() {
		if r.RTT < 50*time.Millisecond {
			t.Fatalf("ping %d sent after Set returned took %v, want >= 50ms", r.Seq, r.RTT)
		}
	}
}

// Rate with delay is netem alone, carrying the rate: TCP gets the rate
// across the delay, pings the delay, and a change of both in place (one
// request) takes the new rate.
func TestNetemRateWithDelay(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "kd", netfabric.Impairment{}, "10.94.0.1", "10.94.0.2")
	ctx := context.Background()
	k.iperfServer(t, 0)
	for _, rate := range []int64{10e6, 5e6} {
		q := netfabric.Impairment{RateBits: rate, Delay: 5 * time.Millisecond}
		if err := k.s.Set(ctx, "ab", "", q); err != nil {
			t.Fatal(err)
		}
		bps, err := k.env.IperfTCP(ctx, 1, 0, 5201, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: iperf3 TCP %.2f Mbit/s", q, bps/1e6)
		if bps < 0.85*float64(rate) || bps > 1.05*float64(rate) {
			t.Errorf("%v gave %.2f Mbit/s, want %.2f-%.2f", q, bps/1e6, 0.85*float64(rate)/1e6, 1.05*float64(rate)/1e6)
		}
		rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 20, 10*time.Millisecond)
		if err != nil || len(rs) < 18 {
			t.Fatalf("ping: %d of 20, %v", len(rs), err)
		}
		if m := median(rs); m < 10*time.Millisecond || m > 14*time.Millisecond {
			t.Errorf("%v: median RTT %v, want 10-14 ms (5 ms each way)", q, m)
		}
	}
}

// Prepare puts the netem root a schedule will need on the ifb of an
// unshaped direction while its redirect stays off: traffic is untouched
// until the first change, which then only turns the redirect on.
func TestNetemPrepare(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "kq", netfabric.Impairment{}, "10.95.0.1", "10.95.0.2")
	ctx := context.Background()
	q := netfabric.Impairment{Delay: 50 * time.Millisecond, Loss: 0.1}
	if err := k.s.Prepare(ctx, []netfabric.TimedChange{{At: 0, Link: "ab", From: "a", Quality: &q}}); err != nil {
		t.Fatal(err)
	}
	root := ""
	for _, x := range k.ifbQdiscs(t, 0) {
		if x.Attrs().Parent == netlink.HANDLE_ROOT {
			root = x.Type()
		}
	}
	if root != "netem" {
		t.Errorf("ifb root qdisc after Prepare: %q, want netem", root)
	}
	if _, redirect := kernelRate(t, k.env.Hosts[0].Dev); redirect {
		t.Error("Prepare turned the redirect on")
	}
	rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 10, 10*time.Millisecond)
	if err != nil || len(rs) < 9 || median(rs) > 40*time.Millisecond {
		t.Fatalf("before the first change: %d of 10 replies, median %v, %v", len(rs), median(rs), err)
	}
	if err := k.s.Set(ctx, "ab", "a", q); err != nil {
		t.Fatal(err)
	}
	rs, err = k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 10, 10*time.Millisecond)
	if err != nil || len(rs) < 8 || median(rs) < 50*time.Millisecond {
		t.Fatalf("after the first change: %d of 10 replies, median %v, %v", len(rs), median(rs), err)
	}
}
