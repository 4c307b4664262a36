package guest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/nstest"
)

// nsRunner runs commands inside the namespace standing in for a host, the
// way the SSH runner runs them inside a VM.
type nsRunner map[string]string // host -> namespace

func (r nsRunner) Run(ctx context.Context, host, cmd string) (string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", r[host], "sh", "-c", cmd).CombinedOutput()
	return string(out), err
}

// TestInNamespaces drives real tc through the guest shaper: namespaces
// play the hosts, a bridge joins them. Rate needs htb only; the delay
// part runs where netem exists.
func TestInNamespaces(t *testing.T) {
	nstest.Require(t)
	env, err := nstest.New("gs", "10.91.0.1", "10.91.0.2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	undo, err := env.Bridge("fltngsbr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(undo)
	run := nsRunner{"a": env.Hosts[0].NS, "b": env.Hosts[1].NS}
	links := netfabric.Links{{Name: "ab", Quality: netfabric.Impairment{RateBits: 10e6}, Endpoints: []netfabric.Endpoint{
		{Host: "a", Iface: "eth1", MAC: env.Hosts[0].MAC}, {Host: "b", Iface: "eth1", MAC: env.Hosts[1].MAC}}}}
	s, err := New(links, run, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rootBefore, _ := run.Run(ctx, "b", "tc qdisc show dev eth1 root")
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	stop, err := env.Start(0, "iperf3", "-s", "-p", "5201")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := env.WaitTCP(ctx, 0, 5201); err != nil {
		t.Fatal(err)
	}
	bps, err := env.IperfTCP(ctx, 1, 0, 5201, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rate 10mbit inside the sender: iperf3 TCP %.2f Mbit/s", bps/1e6)
	if bps < 9.0e6 || bps > 10.5e6 {
		t.Fatalf("rate 10mbit gave %.2f Mbit/s, want 9.0-10.5", bps/1e6)
	}
	if probe, _ := run.Run(ctx, "a", probeNetem+" && echo ok"); strings.Contains(probe, "ok") {
		if err := s.Set(ctx, "ab", "", netfabric.Impairment{Delay: 20 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 20, 10*time.Millisecond)
		if err != nil || len(rs) == 0 || rs[len(rs)/2].RTT < 39*time.Millisecond {
			t.Fatalf("20 ms each way: %v %v", rs, err)
		}
	} else {
		t.Log("no netem here: the delay part is skipped")
	}
	if err := s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if rootAfter, _ := run.Run(ctx, "b", "tc qdisc show dev eth1 root"); rootAfter != rootBefore {
		t.Fatalf("teardown did not restore the root qdisc:\nbefore %q\nafter  %q", rootBefore, rootAfter)
	}
}
