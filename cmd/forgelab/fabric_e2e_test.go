package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fabricChecks runs the link acceptance checks on a booted lab whose link
// ab joins a and b, and bc joins b and c. It leaves every link as it found
// it (no impairment, up, healed).
func fabricChecks(t *testing.T, lab string, info inspectJSON) {
	bAB := addrOn(info, "b", "ab", false)
	cBC := addrOn(info, "c", "bc", false)
	reset := func(t *testing.T) {
		t.Helper()
		mustForgelab(t, "link", "set", lab, "ab", "--clear")
		mustForgelab(t, "link", "up", lab, "ab")
		mustForgelab(t, "heal", lab)
	}

	t.Run("delay 20ms each way adds 40ms RTT", func(t *testing.T) {
		defer reset(t)
		base := rtts(t, lab, "a", bAB, 100)
		mustForgelab(t, "link", "set", lab, "ab", "--delay", "20ms")
		delayed := rtts(t, lab, "a", bAB, 100)
		// The fastest round trip is the fabric's delay plus the guests'
		// least processing time, which load on the machine hardly moves
		// (the median moves by milliseconds when TCG guests share cores).
		added := delayed.min - base.min
		t.Logf("RTT without delay: min %.2f, median %.2f ms; with: min %.2f, median %.2f ms; added %.2f ms",
			base.min, base.median, delayed.min, delayed.median, added)
		if added < 39 || added > 45 {
			t.Errorf("20 ms each way added %.2f ms to the fastest RTT, want 40 (39-45)", added)
		}
	})

	t.Run("loss 10% over 1000 packets", func(t *testing.T) {
		defer reset(t)
		mustForgelab(t, "link", "set", lab, "ab", "--from", "a", "--loss", "10%")
		out := mustForgelab(t, "exec", lab, "a", "--", fmt.Sprintf("sudo ping -n -q -c 1000 -i 0.005 -W 1 %s || true", bAB))
		sent, recv := pingCounts(t, out)
		lost := sent - recv
		// Binomial(1000, 0.1): 99.9 % of outcomes lie in [69, 131].
		lo, hi := binomialInterval(sent, 0.10, 3.29)
		t.Logf("lost %d of %d (99.9%% interval [%d, %d])", lost, sent, lo, hi)
		if sent != 1000 || lost < lo || lost > hi {
			t.Errorf("lost %d of %d, want within [%d, %d]", lost, sent, lo, hi)
		}
	})

	t.Run("rate 10mbit", func(t *testing.T) {
		defer reset(t)
		mustForgelab(t, "link", "set", lab, "ab", "--rate", "10mbit")
		mustForgelab(t, "exec", lab, "b", "--", "iperf3 -s -1 -D")
		time.Sleep(500 * time.Millisecond)
		out := mustForgelab(t, "exec", lab, "a", "--", fmt.Sprintf("iperf3 -c %s -t 6 -O 1 -J", bAB))
		var res struct {
			End struct {
				SumReceived struct {
					Bits float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("iperf3 output: %v\n%s", err, out)
		}
		mbit := res.End.SumReceived.Bits / 1e6
		t.Logf("iperf3 TCP at rate 10mbit: %.2f Mbit/s", mbit)
		if mbit < 9.0 || mbit > 10.5 {
			t.Errorf("rate 10mbit carried %.2f Mbit/s, want 9.0-10.5", mbit)
		}
	})

	t.Run("change during a ping takes effect when the fabric applies it", func(t *testing.T) {
		defer reset(t)
		pcap := filepath.Join(t.TempDir(), "ab.pcap")
		capture := exec.Command(binPath, "--state-dir", stateDir(), "capture", lab, "ab", "-w", pcap)
		if err := capture.Start(); err != nil {
			t.Fatal(err)
		}
		ping := exec.Command(binPath, "--state-dir", stateDir(), "exec", lab, "a", "--", fmt.Sprintf("sudo ping -n -q -c 400 -i 0.01 %s", bAB))
		if err := ping.Start(); err != nil {
			t.Fatal(err)
		}
		// Change only once echoes flow (starting ping in a loaded TCG
		// guest can take seconds).
		waitEchoes(t, pcap, 20, time.Minute)
		// The capture sees frames as they are delivered, after the delay
		// line: delaying the replies (b to a) shows as a request-to-reply
		// gap, with the request's capture time still its send time. Both
		// the capture times and the moment the change was applied come
		// from the fabric's clock, so a slow CLI on a loaded machine does
		// not count (how fast `link set` is: bench/netfabric).
		mustForgelab(t, "link", "set", lab, "ab", "--from", "b", "--delay", "50ms")
		applied := directionChanged(t, lab, "ab", "b")
		ping.Wait()
		capture.Process.Signal(os.Interrupt)
		capture.Wait()
		es, err := echoes(pcap)
		if err != nil {
			t.Fatal(err)
		}
		const slow = 40 * time.Millisecond
		var before, after int
		var firstSlow time.Time
		for _, e := range es {
			switch {
			case e.sent.After(applied) && e.rtt < slow:
				t.Errorf("echo sent %s after the fabric applied the change came back in %s, want >= 50ms",
					e.sent.Sub(applied).Round(time.Millisecond), e.rtt.Round(time.Millisecond))
			case e.sent.After(applied):
				after++
			// a reply can meet the new delay if its request left just before
			case e.sent.Before(applied.Add(-100*time.Millisecond)) && e.rtt >= slow:
				t.Errorf("echo sent %s before the change was already delayed (%s)", applied.Sub(e.sent).Round(time.Millisecond), e.rtt)
			case e.sent.Before(applied):
				before++
			}
			if e.rtt >= slow && firstSlow.IsZero() {
				firstSlow = e.sent
			}
		}
		if before == 0 || after == 0 {
			t.Fatalf("%d echoes before the change and %d after: the capture missed one side (%d echoes)", before, after, len(es))
		}
		t.Logf("%d echoes before, %d after the change; the first delayed one was sent %s from when the fabric applied it",
			before, after, firstSlow.Sub(applied).Round(time.Millisecond))
	})

	t.Run("same seed, same drops", func(t *testing.T) {
		defer reset(t)
		mustForgelab(t, "link", "set", lab, "ab", "--from", "a", "--loss", "30%")
		run := func() []int {
			mustForgelab(t, "link", "reseed", lab)
			out := mustForgelab(t, "exec", lab, "a", "--", fmt.Sprintf("sudo ping -n -c 200 -i 0.01 -W 1 %s || true", bAB))
			got := map[int]bool{}
			for _, m := range seqRE.FindAllStringSubmatch(out, -1) {
				n, _ := strconv.Atoi(m[1])
				got[n] = true
			}
			var lost []int
			for i := 1; i <= 200; i++ {
				if !got[i] {
					lost = append(lost, i)
				}
			}
			return lost
		}
		first, second := run(), run()
		t.Logf("lost %d of 200 both times; first losses %v", len(first), first[:min(10, len(first))])
		if len(first) < 30 || fmt.Sprint(first) != fmt.Sprint(second) {
			t.Errorf("drop patterns differ after reseeding:\n%v\n%v", first, second)
		}
	})

	t.Run("partition then heal", func(t *testing.T) {
		defer reset(t)
		mustForgelab(t, "partition", lab, "a", "b,c")
		if r := forgelab(t, "exec", lab, "a", "--", fmt.Sprintf("ping -n -c 3 -i 0.2 -W 1 %s", bAB)); r.code == 0 || !strings.Contains(r.stdout, "100% packet loss") {
			t.Errorf("a reached b during the partition:\n%s", r.stdout)
		}
		if r := forgelab(t, "exec", lab, "b", "--", fmt.Sprintf("ping -n -c 3 -i 0.2 -W 1 %s", cBC)); r.code != 0 {
			t.Errorf("b could not reach c inside its group:\n%s", r.stdout)
		}
		mustForgelab(t, "heal", lab)
		if r := forgelab(t, "exec", lab, "a", "--", fmt.Sprintf("ping -n -c 5 -i 0.2 -W 1 %s", bAB)); r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
			t.Errorf("after heal a does not fully reach b:\n%s", r.stdout)
		}
	})

	t.Run("link down and up", func(t *testing.T) {
		defer reset(t)
		mustForgelab(t, "link", "down", lab, "ab")
		if r := forgelab(t, "exec", lab, "a", "--", fmt.Sprintf("ping -n -c 2 -W 1 %s", bAB)); r.code == 0 {
			t.Errorf("ping crossed a link that is down:\n%s", r.stdout)
		}
		mustForgelab(t, "link", "up", lab, "ab")
		if r := forgelab(t, "exec", lab, "a", "--", fmt.Sprintf("ping -n -c 2 -W 2 %s", bAB)); r.code != 0 {
			t.Errorf("ping fails after link up:\n%s", r.stdout)
		}
	})

	t.Run("nic cut and restore", func(t *testing.T) {
		mustForgelab(t, "nic", "down", lab, "b", "ab")
		out := mustForgelab(t, "exec", lab, "b", "--", "cat /sys/class/net/$(ip -o link | awk -F': ' '/"+macOn(info, "b", "ab")+"/ {print $2}')/carrier 2>/dev/null || ip -o link")
		mustForgelab(t, "nic", "up", lab, "b", "ab")
		if strings.TrimSpace(out) != "0" {
			t.Errorf("b's NIC on ab still has carrier after nic down: %q", out)
		}
		r := forgelab(t, "exec", lab, "a", "--", fmt.Sprintf("for i in $(seq 20); do ping -n -c 1 -W 1 %s && exit 0; done; exit 1", bAB))
		if r.code != 0 {
			t.Errorf("ping fails after nic up:\n%s", r.stdout)
		}
	})

	t.Run("host pause and resume", func(t *testing.T) {
		mustForgelab(t, "host", "pause", lab, "b")
		r := forgelab(t, "exec", lab, "a", "--", fmt.Sprintf("ping -n -c 2 -W 1 %s", bAB))
		mustForgelab(t, "host", "resume", lab, "b")
		if r.code == 0 {
			t.Errorf("a paused host answered ping:\n%s", r.stdout)
		}
		if got := strings.TrimSpace(mustForgelab(t, "exec", lab, "b", "--", "hostname")); got != "b" {
			t.Errorf("b after resume: %q", got)
		}
	})

	t.Run("concurrent link set on different fields both take effect", func(t *testing.T) {
		defer reset(t)
		var cmds []*exec.Cmd
		for _, args := range [][]string{{"--delay", "10ms"}, {"--loss", "5%"}, {"--rate", "50mbit"}} {
			cmd := exec.Command(binPath, append([]string{"--state-dir", stateDir(), "link", "set", lab, "ab"}, args...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("%v: %v", cmd.Args, err)
			}
		}
		var st struct {
			Links []struct {
				Name       string
				Directions []struct {
					From    string
					Quality struct {
						Delay    int64   `json:"delay_ns"`
						Loss     float64 `json:"loss"`
						RateBits int64   `json:"rate_bits"`
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(mustForgelab(t, "link", "show", "-o", "json", lab)), &st); err != nil {
			t.Fatal(err)
		}
		for _, l := range st.Links {
			for _, d := range l.Directions {
				if l.Name == "ab" && (d.Quality.Delay != 10e6 || d.Quality.Loss != 5 || d.Quality.RateBits != 50e6) {
					t.Errorf("ab from %s after three concurrent changes: %+v", d.From, d.Quality)
				}
			}
		}
	})

	t.Run("link show and event log", func(t *testing.T) {
		var st struct {
			Shaper string
			Links  []struct {
				Name       string
				Up         bool
				Directions []struct {
					From     string
					Counters *struct {
						RxPackets uint64 `json:"rx_packets"`
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(mustForgelab(t, "link", "show", "-o", "json", lab)), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Links) != 3 {
			t.Fatalf("link show: %d links", len(st.Links))
		}
		for _, l := range st.Links {
			if l.Name == "ab" && (len(l.Directions) != 2 || l.Directions[0].Counters == nil && st.Shaper == "userspace" || !l.Up) {
				t.Errorf("link ab in show: %+v", l)
			}
		}
		// The event log is JSON lines, one per change, from the CLI.
		data, err := os.ReadFile(filepath.Join(stateDir(), "labs", lab, "events.jsonl"))
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var e struct {
				Source, Action, Result string
				Args                   map[string]any
			}
			if jerr := json.Unmarshal([]byte(line), &e); jerr != nil {
				t.Errorf("event log line %q: %v", line, jerr)
				continue
			}
			if e.Source == "cli" && e.Result == "ok" {
				seen[e.Action] = true
				if e.Action == "link.set" && e.Args["link"] == "ab" {
					seen["link.set ab"] = true
				}
			}
		}
		if err != nil || !seen["partition"] || !seen["link.set ab"] {
			t.Errorf("event log lacks the changes (%v):\n%s", err, data)
		}
	})

	t.Run("bad quality changes nothing", func(t *testing.T) {
		before := mustForgelab(t, "link", "show", "-o", "json", lab)
		for _, args := range [][]string{
			{"link", "set", lab, "ab", "--delay", "-5ms"},
			{"link", "set", lab, "ab", "--loss", "150%"},
			{"link", "set", lab, "nosuch", "--delay", "5ms"},
			{"link", "set", lab, "ab", "--from", "c", "--delay", "5ms"},
		} {
			if r := forgelab(t, args...); r.code == 0 || r.stderr == "" {
				t.Errorf("forgelab %v accepted (exit %d)", args, r.code)
			} else {
				t.Logf("forgelab %s: %s", strings.Join(args[3:], " "), strings.TrimSpace(r.stderr))
			}
		}
		if after := mustForgelab(t, "link", "show", "-o", "json", lab); stripCounters(after) != stripCounters(before) {
			t.Errorf("refused changes changed the links:\nbefore %s\nafter %s", before, after)
		}
	})
}

// kernelShaperInGuest runs the kernel shaper's own tests inside a lab VM:
// this host kernel may lack sch_netem, Debian's guest kernel has it. The
// test binary builds its own namespaces there, so it needs only root.
func kernelShaperInGuest(t *testing.T, lab, host string) {
	bin := filepath.Join(t.TempDir(), "kernel.test")
	build := exec.Command("go", "test", "-c", "-tags", "netem", "-o", bin, "../../netfabric/kernel")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kernel shaper tests: %v\n%s", err, out)
	}
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(binPath, "--state-dir", stateDir(), "exec", lab, host, "--", "cat > /tmp/kernel.test && chmod +x /tmp/kernel.test")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy test binary into %s: %v\n%s", host, err, out)
	}
	r := forgelab(t, "exec", lab, host, "--", "cd /tmp && sudo FORGELAB_REQUIRE_NETEM=1 CI=true ./kernel.test -test.v -test.count=1 -test.timeout=10m 2>&1")
	t.Logf("kernel shaper tests inside %s:\n%s", host, lastN(r.stdout, 60))
	if r.code != 0 {
		t.Errorf("kernel shaper tests failed inside the guest (exit %d)", r.code)
	}
	if strings.Contains(r.stdout, "--- SKIP") {
		t.Errorf("kernel shaper tests skipped inside the guest: sch_netem should be there")
	}
}

var countersRE = regexp.MustCompile(`(?s)"counters": \{.*?\}`)

func stripCounters(s string) string { return countersRE.ReplaceAllString(s, "") }

func macOn(info inspectJSON, host, link string) string {
	for _, h := range info.Hosts {
		if h.Name == host {
			for _, n := range h.NICs {
				if n.Link == link {
					return n.MAC
				}
			}
		}
	}
	return ""
}

var seqRE = regexp.MustCompile(`icmp_seq=(\d+) `)

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// medianRTT pings n times and returns the median round trip in ms.
type rttStats struct{ min, median float64 }

// rtts pings addr n times from a host and returns the fastest and the
// median round trip in ms.
func rtts(t *testing.T, lab, from, addr string, n int) rttStats {
	t.Helper()
	out := mustForgelab(t, "exec", lab, from, "--", fmt.Sprintf("sudo ping -n -c %d -i 0.02 %s", n, addr))
	var rtts []float64
	for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, v)
	}
	if len(rtts) < n*9/10 {
		t.Fatalf("only %d of %d replies:\n%s", len(rtts), n, out)
	}
	sort.Float64s(rtts)
	return rttStats{min: rtts[0], median: rtts[len(rtts)/2]}
}

var pingStatsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func pingCounts(t *testing.T, out string) (int, int) {
	t.Helper()
	m := pingStatsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ping statistics in:\n%s", out)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a, b
}

// binomialInterval is the normal approximation of the interval holding a
// binomial count with the given z.
func binomialInterval(n int, p, z float64) (int, int) {
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return int(math.Floor(mean - z*sd)), int(math.Ceil(mean + z*sd))
}

// firstSlowEcho reads a pcap and returns the capture time of the first
// ICMP echo request whose reply came at least slow later.
type echo struct {
	sent time.Time     // the request's capture time
	rtt  time.Duration // to the reply's capture time
}

// echoes reads ICMP echo requests and their replies from a pcap.
func echoes(path string) ([]echo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 24 {
		return nil, fmt.Errorf("pcap %s is %d bytes", path, len(data))
	}
	le := binary.LittleEndian
	nano := le.Uint32(data[0:4]) == 0xa1b23c4d
	requests := map[uint32]time.Time{}
	var out []echo
	for off := 24; off+16 <= len(data); {
		sec, frac, incl := le.Uint32(data[off:]), le.Uint32(data[off+4:]), int(le.Uint32(data[off+8:]))
		ts := time.Unix(int64(sec), int64(frac)*1000)
		if nano {
			ts = time.Unix(int64(sec), int64(frac))
		}
		pkt := data[off+16 : min(off+16+incl, len(data))]
		off += 16 + incl
		// Ethernet + IPv4 + ICMP echo: type at 14+ihl, id and seq after.
		if len(pkt) < 42 || binary.BigEndian.Uint16(pkt[12:14]) != 0x0800 || pkt[23] != 1 {
			continue
		}
		ihl := int(pkt[14]&0x0f) * 4
		icmp := pkt[14+ihl:]
		if len(icmp) < 8 {
			continue
		}
		key := uint32(binary.BigEndian.Uint16(icmp[4:6]))<<16 | uint32(binary.BigEndian.Uint16(icmp[6:8]))
		switch icmp[0] {
		case 8:
			if _, seen := requests[key]; !seen {
				requests[key] = ts
			}
		case 0:
			if req, ok := requests[key]; ok {
				out = append(out, echo{sent: req, rtt: ts.Sub(req)})
				delete(requests, key)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no echo replies in %s (%d requests)", path, len(requests))
	}
	return out, nil
}

// waitEchoes waits until the capture being written to pcap holds n echo
// replies.
func waitEchoes(t *testing.T, pcap string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if es, err := echoes(pcap); err == nil && len(es) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d echoes in %s after %s", n, pcap, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// directionChanged is when the fabric applied the current quality of what
// from sends on link, by its own clock (`link show -o json`).
func directionChanged(t *testing.T, lab, link, from string) time.Time {
	t.Helper()
	var st struct {
		Links []struct {
			Name       string `json:"name"`
			Directions []struct {
				From    string    `json:"from"`
				Changed time.Time `json:"changed"`
			} `json:"directions"`
		} `json:"links"`
	}
	out := mustForgelab(t, "link", "show", "-o", "json", lab)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("link show -o json: %v\n%s", err, out)
	}
	for _, l := range st.Links {
		for _, d := range l.Directions {
			if l.Name == link && d.From == from {
				if d.Changed.IsZero() {
					t.Fatalf("link show: %s from %s has no time of change:\n%s", link, from, out)
				}
				return d.Changed
			}
		}
	}
	t.Fatalf("link show: no direction %s from %s:\n%s", link, from, out)
	return time.Time{}
}

// TestGuestFabric shapes inside the guests (tc netem over SSH, the fabric
// adopted physical hosts need), starting from a delay declared in the lab
// file, then changed at run time, and captures from the host bridge.
func TestGuestFabric(t *testing.T) {
	requireVMs(t)
	const lab = "fltest-guest"
	forgelab(t, "destroy", lab)
	t.Cleanup(func() { forgelab(t, "destroy", lab); assertNothingLeft(t, lab) })
	r := forgelab(t, "create", writeLab(t, `
[lab]
name = "fltest-guest"
fabric = "guest"
[[host]]
name = "a"
[[host]]
name = "b"
[[link]]
name = "ab"
endpoints = ["a", "b"]
delay = "10ms"
`))
	if r.code != 0 {
		t.Fatalf("create: exit %d\n%s", r.code, r.stderr)
	}
	info := inspect(t, lab)
	bAB := addrOn(info, "b", "ab", false)
	declared := rtts(t, lab, "a", bAB, 50)
	t.Logf("RTT with the lab file's 10 ms each way: min %.2f, median %.2f ms", declared.min, declared.median)
	if declared.min < 20 || declared.min > 25 {
		t.Errorf("declared delay 10ms each way gave a fastest RTT of %.2f ms, want 20-25", declared.min)
	}
	mustForgelab(t, "link", "set", lab, "ab", "--delay", "30ms")
	changed := rtts(t, lab, "a", bAB, 50)
	t.Logf("after link set --delay 30ms: min %.2f, median %.2f ms", changed.min, changed.median)
	if d := changed.min - declared.min; d < 39 || d > 45 {
		t.Errorf("raising the delay by 20 ms each way added %.2f ms to the fastest RTT, want 40 (39-45)", d)
	}
	out := mustForgelab(t, "exec", lab, "a", "--", "sudo tc qdisc show dev eth1")
	if !strings.Contains(out, "netem") {
		t.Errorf("no netem inside a:\n%s", out)
	}
	pcap := filepath.Join(t.TempDir(), "ab.pcap")
	capture := exec.Command(binPath, "--state-dir", stateDir(), "capture", lab, "ab", "-w", pcap)
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	mustForgelab(t, "exec", lab, "a", "--", fmt.Sprintf("ping -n -c 5 -i 0.2 %s", bAB))
	capture.Process.Signal(os.Interrupt)
	capture.Wait()
	if es, err := echoes(pcap); err != nil {
		t.Errorf("capture of the guest fabric's bridge: %v", err)
	} else if slices.IndexFunc(es, func(e echo) bool { return e.rtt >= 20*time.Millisecond }) < 0 {
		t.Errorf("capture of the guest fabric's bridge: no echo took 20ms or more (%d echoes)", len(es))
	}
	mustForgelab(t, "destroy", lab)
	assertNothingLeft(t, lab)
}
