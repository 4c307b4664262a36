// Package nstest builds throwaway network namespaces joined by veth pairs,
// for the tests and the benchmark of the shapers: traffic between
// namespaces stands in for traffic between VMs. Every name it makes starts
// with "fltn" and is removed by name.
package nstest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Host is a namespace with one interface "eth1" whose host-side peer is
// Dev: Dev plays the VM's tap.
type Host struct {
	NS   string // namespace name, "fltn-..."
	Dev  string // host-side veth
	Addr string // IPv4 address on eth1, without prefix length
	MAC  string
}

// Env is the set of namespaces and devices one test made.
type Env struct {
	Hosts []Host
	made  []func()
}

// Prereq reports why namespace tests cannot run here, or nil.
func Prereq() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces, veths)")
	}
	for _, tool := range []string{"ip", "ping", "iperf3", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s: %w", tool, err)
		}
	}
	return nil
}

// New makes one namespace per address: host i gets namespace
// "fltn-<tag>-<i>", address addrs[i]/24 on its eth1, and host-side veth
// "fltn<tag><i>". tag must be short (netdev names have at most 15
// characters). IPv6 is off in the namespaces and on the host-side
// devices, and the ARP entries are static, so nothing but the test's own
// traffic crosses the link.
func New(tag string, addrs ...string) (*Env, error) {
	e := &Env{}
	for i, a := range addrs {
		h := Host{
			NS:   fmt.Sprintf("fltn-%s-%d", tag, i),
			Dev:  fmt.Sprintf("fltn%s%d", tag, i),
			Addr: a,
			MAC:  fmt.Sprintf("52:54:00:fe:%02x:%02x", len(tag)&0xff, i),
		}
		if len(h.Dev) > 15 {
			e.Close()
			return nil, fmt.Errorf("tag %q too long for device names", tag)
		}
		_ = run("ip", "netns", "del", h.NS) // a leftover of a killed run
		_ = run("ip", "link", "del", h.Dev)
		if err := run("ip", "netns", "add", h.NS); err != nil {
			e.Close()
			return nil, err
		}
		ns, dev := h.NS, h.Dev
		e.made = append(e.made, func() { _ = run("ip", "netns", "del", ns) })
		if err := run("ip", "link", "add", h.Dev, "type", "veth", "peer", "name", "eth1", "netns", h.NS); err != nil {
			e.Close()
			return nil, err
		}
		e.made = append(e.made, func() { _ = run("ip", "link", "del", dev) })
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+h.Dev+"/disable_ipv6", []byte("1"), 0)
		inNS := func(key, val string) []string {
			return []string{"ip", "netns", "exec", h.NS, "sh", "-c", "echo '" + val + "' > /proc/sys/net/" + key}
		}
		steps := [][]string{
			{"ip", "link", "set", h.Dev, "up"},
			inNS("ipv6/conf/all/disable_ipv6", "1"),
			inNS("ipv6/conf/default/disable_ipv6", "1"),
			// Long fat links need windows above the default 6 MB.
			inNS("ipv4/tcp_rmem", "4096 131072 67108864"),
			inNS("ipv4/tcp_wmem", "4096 16384 67108864"),
			{"ip", "-n", h.NS, "link", "set", "eth1", "address", h.MAC},
			{"ip", "-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth1"},
			{"ip", "-n", h.NS, "link", "set", "eth1", "up"},
			{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := run(s...); err != nil {
				e.Close()
				return nil, err
			}
		}
		e.Hosts = append(e.Hosts, h)
	}
	for _, h := range e.Hosts {
		for _, o := range e.Hosts {
			if o.NS != h.NS {
				if err := run("ip", "-n", h.NS, "neigh", "replace", o.Addr, "lladdr", o.MAC, "dev", "eth1", "nud", "permanent"); err != nil {
					e.Close()
					return nil, err
				}
			}
		}
	}
	return e, nil
}

// Close removes everything New made, by name.
func (e *Env) Close() {
	for i := len(e.made) - 1; i >= 0; i-- {
		e.made[i]()
	}
	e.made = nil
}

// Bridge joins the hosts' devices with a kernel bridge named name (the
// baseline the engine is measured against). It returns a function that
// removes the bridge.
func (e *Env) Bridge(name string) (func(), error) {
	_ = run("ip", "link", "del", name)
	if err := run("ip", "link", "add", name, "type", "bridge", "forward_delay", "0"); err != nil {
		return nil, err
	}
	undo := func() { _ = run("ip", "link", "del", name) }
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
	for _, h := range e.Hosts {
		if err := run("ip", "link", "set", h.Dev, "master", name); err != nil {
			undo()
			return nil, err
		}
	}
	if err := run("ip", "link", "set", name, "up"); err != nil {
		undo()
		return nil, err
	}
	return undo, nil
}

// Exec runs a command inside host i's namespace and returns its output.
func (e *Env) Exec(ctx context.Context, i int, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.Hosts[i].NS}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), e.Hosts[i].NS, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Start starts a long-running command inside host i's namespace; stop
// kills it.
func (e *Env) Start(i int, args ...string) (stop func(), err error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.Hosts[i].NS}, args...)...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}, nil
}

// WaitTCP waits until something listens on port in host i's namespace.
func (e *Env) WaitTCP(ctx context.Context, i int, port int) error {
	for {
		out, _ := e.Exec(ctx, i, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.Contains(out, fmt.Sprint(port)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on port %d in %s", port, e.Hosts[i].NS)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Require skips t when namespace tests cannot run here, saying how to
// enable them; under CI (CI=true) a missing prerequisite fails instead.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: builds network namespaces (needs root)")
	}
	if err := Prereq(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("network namespace test cannot run: %v", err)
		}
		t.Skipf("skipped: %v (run the tests as root to enable; CI=true makes this a failure)", err)
	}
}

// Reply is one answered ping.
type Reply struct {
	Seq  int
	RTT  time.Duration
	Sent time.Time // when the request left (reply time minus RTT)
}

var replyRE = regexp.MustCompile(`^\[(\d+)\.(\d+)\] .* icmp_seq=(\d+) .*time=([0-9.]+) ms`)

// Ping sends count echo requests every interval from host i to addr and
// returns the replies (lost requests have none).
func (e *Env) Ping(ctx context.Context, i int, addr string, count int, interval time.Duration) ([]Reply, error) {
	out, err := e.Exec(ctx, i, "ping", "-n", "-D", "-W", "2", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), addr)
	if err != nil && !strings.Contains(out, "packets transmitted") {
		return nil, err // ping exits 1 when replies are missing: not an error here
	}
	var rs []Reply
	for _, l := range strings.Split(out, "\n") {
		m := replyRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := m[2]
		for len(frac) < 9 {
			frac += "0"
		}
		nsec, _ := strconv.ParseInt(frac[:9], 10, 64)
		seq, _ := strconv.Atoi(m[3])
		ms, _ := strconv.ParseFloat(m[4], 64)
		rtt := time.Duration(ms * float64(time.Millisecond))
		rs = append(rs, Reply{Seq: seq, RTT: rtt, Sent: time.Unix(sec, nsec).Add(-rtt)})
	}
	return rs, nil
}

// IperfTCP runs an iperf3 TCP test from host client to host server (which
// must run `iperf3 -s -p port`) and returns the received bits per second.
func (e *Env) IperfTCP(ctx context.Context, client, server, port int, seconds int, extra ...string) (float64, error) {
	args := append([]string{"iperf3", "-c", e.Hosts[server].Addr, "-p", strconv.Itoa(port), "-t", strconv.Itoa(seconds), "-J"}, extra...)
	out, err := e.Exec(ctx, client, args...)
	if err != nil {
		return 0, err
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	return r.End.SumReceived.BitsPerSecond, nil
}
