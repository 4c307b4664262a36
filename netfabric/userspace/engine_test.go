package userspace

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/internal/proc"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/internal/frame"
	"github.com/forgelab/forgelab/netfabric/nstest"
)

// These tests run the engine between network namespaces: each namespace
// plays a VM, its host-side veth plays the VM's tap. They need root.

// lab makes namespaces for addrs, a link (or frame.Segment) "ab" joining them
// and a fabric daemon (Serve, in-process) serving it; it returns the
// client that controls the daemon.
func lab(t *testing.T, tag string, q netfabric.Impairment, addrs ...string) (*nstest.Env, *Client) {
	t.Helper()
	nstest.Require(t)
	env, err := nstest.New(tag, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	hosts := []string{"a", "b", "c", "d"}
	l := netfabric.Link{Name: "ab", Quality: q}
	for i, h := range env.Hosts {
		l.Endpoints = append(l.Endpoints, netfabric.Endpoint{Host: hosts[i], Tap: h.Dev, MAC: h.MAC})
	}
	return env, serve(t, Config{Seed: 42, Links: netfabric.Links{l}})
}

func serve(t *testing.T, cfg Config) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "fabric.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := NewClient(sock)
	t.Cleanup(func() { c.Close() })
	for i := 0; ; i++ {
		if _, err := c.Ping(context.Background()); err == nil {
			return c
		} else if i == 200 {
			t.Fatalf("daemon does not answer: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func median(rs []nstest.Reply) time.Duration {
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = r.RTT
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func TestPingDelay(t *testing.T) {
	env, c := lab(t, "dl", netfabric.Impairment{}, "10.61.0.1", "10.61.0.2")
	ctx := context.Background()
	base, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 20, 10*time.Millisecond)
	if err != nil || len(base) < 20 {
		t.Fatalf("baseline ping: %d replies, %v", len(base), err)
	}
	if err := c.Set(ctx, "ab", "", netfabric.Impairment{Delay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 100, 10*time.Millisecond)
	if err != nil || len(rs) != 100 {
		t.Fatalf("ping: %d replies of 100, %v", len(rs), err)
	}
	added := median(rs) - median(base)
	t.Logf("baseline median %v, with 20 ms each way %v: +%v", median(base), median(rs), added)
	if added < 38*time.Millisecond || added > 42*time.Millisecond {
		t.Fatalf("20 ms each way added %v to the median RTT, want 40 ms ± 2 ms", added)
	}
}

func TestLossInterval(t *testing.T) {
	env, c := lab(t, "ls", netfabric.Impairment{}, "10.62.0.1", "10.62.0.2")
	ctx := context.Background()
	// Loss only on what a sends: each lost ping is one lost request.
	if err := c.Set(ctx, "ab", "a", netfabric.Impairment{Loss: 10}); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, n, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	lost := n - len(rs)
	lo, hi := binomial99_9(n, 0.10)
	t.Logf("lost %d of %d (99.9%% interval [%.0f, %.0f])", lost, n, lo, hi)
	if float64(lost) < lo || float64(lost) > hi {
		t.Fatalf("loss 10%%: lost %d of %d, outside the 99.9%% interval [%.0f, %.0f]", lost, n, lo, hi)
	}
	st, err := c.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := st.Links[0].Directions[0]
	if a.From != "a" || a.Counters.DropLoss != uint64(lost) || a.Counters.RxPackets != n || a.Counters.TxPackets != uint64(n-lost) {
		t.Fatalf("counters of a: %+v; want rx %d, lost %d, tx %d", *a.Counters, n, lost, n-lost)
	}
	b := st.Links[0].Directions[1]
	if b.Counters.RxPackets != uint64(len(rs)) || b.Counters.TxPackets != uint64(len(rs)) || b.Counters.DropLoss != 0 {
		t.Fatalf("counters of b: %+v; want %d replies through, none lost", *b.Counters, len(rs))
	}
}

func TestSameSeedSameDropPattern(t *testing.T) {
	pattern := func(tag string) []int {
		env, c := lab(t, tag, netfabric.Impairment{}, "10.63.0.1", "10.63.0.2")
		ctx := context.Background()
		if err := c.Set(ctx, "ab", "a", netfabric.Impairment{Loss: 30}); err != nil {
			t.Fatal(err)
		}
		rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 200, 2*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int
		for _, r := range rs {
			seqs = append(seqs, r.Seq)
		}
		sort.Ints(seqs)
		return seqs
	}
	first, second := pattern("s1"), pattern("s2")
	if !slices.Equal(first, second) {
		t.Fatalf("same seed, different drop patterns:\n%v\n%v", first, second)
	}
	if len(first) > 170 || len(first) < 110 {
		t.Fatalf("%d of 200 answered at 30%% loss", len(first))
	}
}

func TestRateTCP(t *testing.T) {
	env, c := lab(t, "rt", netfabric.Impairment{RateBits: 10e6}, "10.64.0.1", "10.64.0.2")
	_ = c
	ctx := context.Background()
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
	t.Logf("rate 10mbit: iperf3 TCP %.2f Mbit/s", bps/1e6)
	if bps < 9.0e6 || bps > 10.5e6 {
		t.Fatalf("rate 10mbit gave %.2f Mbit/s, want 9.0-10.5", bps/1e6)
	}
}

// A change takes effect when the engine applies it, by the engine's own
// clock (Direction.Changed): pings sent after that are delayed, pings sent
// before the call began are not. The latency of a change is measured in
// bench/netfabric, not asserted here.
func TestChangeTakesEffectWhenApplied(t *testing.T) {
	env, c := lab(t, "ch", netfabric.Impairment{}, "10.65.0.1", "10.65.0.2")
	ctx := context.Background()
	began := make(chan time.Time, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		began <- time.Now()
		if err := c.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 50 * time.Millisecond}); err != nil {
			t.Error(err)
		}
	}()
	rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 100, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	setAt := <-began
	st, err := c.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var applied time.Time
	for _, d := range st.Links[0].Directions {
		if d.From == "a" {
			applied = d.Changed
		}
	}
	if applied.Before(setAt) {
		t.Fatalf("the engine says the change took effect at %v, before Set was called (%v)", applied, setAt)
	}
	var firstSlow time.Time
	for _, r := range rs {
		switch {
		case r.Sent.Before(setAt) && r.RTT > 20*time.Millisecond:
			t.Errorf("ping %d sent %v before the change already slow (%v)", r.Seq, setAt.Sub(r.Sent), r.RTT)
		case r.Sent.After(applied) && r.RTT < 45*time.Millisecond:
			t.Errorf("ping %d sent %v after the engine applied the change still fast (%v)", r.Seq, r.Sent.Sub(applied), r.RTT)
		}
		if r.RTT > 45*time.Millisecond && firstSlow.IsZero() {
			firstSlow = r.Sent
		}
	}
	if firstSlow.IsZero() {
		t.Fatal("the change never showed")
	}
	t.Logf("applied %v after Set was called; first delayed ping sent %v after that", applied.Sub(setAt), firstSlow.Sub(applied))
}

func TestSegmentPartitionHeal(t *testing.T) {
	env, c := lab(t, "pt", netfabric.Impairment{}, "10.66.0.1", "10.66.0.2", "10.66.0.3")
	ctx := context.Background()
	reach := func(from, to int) bool {
		rs, err := env.Ping(ctx, from, env.Hosts[to].Addr, 3, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs) > 0
	}
	if !reach(0, 1) || !reach(1, 2) || !reach(0, 2) {
		t.Fatal("frame.Segment a-b-c: not everyone reaches everyone")
	}
	if err := c.Partition(ctx, [][]string{{"a"}, {"b", "c"}}); err != nil {
		t.Fatal(err)
	}
	if reach(0, 1) || reach(0, 2) {
		t.Fatal("a still reaches b or c across the partition")
	}
	if !reach(1, 2) {
		t.Fatal("b and c, in the same group, cannot talk")
	}
	st, _ := c.Show(ctx)
	if len(st.Groups) != 2 || st.Links[0].Directions[0].Counters.DropPartition == 0 {
		t.Fatalf("show after partition: groups %v, a's counters %+v", st.Groups, st.Links[0].Directions[0].Counters)
	}
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if !reach(0, 1) || !reach(2, 0) {
		t.Fatal("heal did not restore a's links")
	}
}

func TestDownUp(t *testing.T) {
	env, c := lab(t, "du", netfabric.Impairment{}, "10.67.0.1", "10.67.0.2")
	ctx := context.Background()
	if err := c.SetUp(ctx, "ab", false); err != nil {
		t.Fatal(err)
	}
	if rs, _ := env.Ping(ctx, 0, env.Hosts[1].Addr, 3, 20*time.Millisecond); len(rs) != 0 {
		t.Fatal("ping crosses a link that is down")
	}
	st, _ := c.Show(ctx)
	if st.Links[0].Up || st.Links[0].Directions[0].Counters.DropDown != 3 {
		t.Fatalf("show of a down link: %+v", st.Links[0])
	}
	if err := c.SetUp(ctx, "ab", true); err != nil {
		t.Fatal(err)
	}
	if rs, _ := env.Ping(ctx, 0, env.Hosts[1].Addr, 3, 20*time.Millisecond); len(rs) != 3 {
		t.Fatal("link up again, but pings are lost")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	_, c := lab(t, "bi", netfabric.Impairment{Delay: 5 * time.Millisecond}, "10.68.0.1", "10.68.0.2")
	ctx := context.Background()
	before, _ := c.Show(ctx)
	for _, tc := range []struct {
		name string
		call func() error
		kind error
		msg  string
	}{
		{"negative delay", func() error { return c.Set(ctx, "ab", "", netfabric.Impairment{Delay: -time.Millisecond}) }, nil, "delay -1ms is negative"},
		{"loss over 100", func() error { return c.Set(ctx, "ab", "a", netfabric.Impairment{Loss: 150}) }, nil, "loss 150% is outside"},
		{"unknown link", func() error { return c.Set(ctx, "zz", "", netfabric.Impairment{}) }, netfabric.ErrUnknownLink, `unknown link "zz"`},
		{"unknown host", func() error { return c.Set(ctx, "ab", "q", netfabric.Impairment{}) }, netfabric.ErrUnknownHost, `unknown host "q"`},
		{"down unknown link", func() error { return c.SetUp(ctx, "zz", false) }, netfabric.ErrUnknownLink, "zz"},
		{"partition unknown host", func() error { return c.Partition(ctx, [][]string{{"a"}, {"x"}}) }, netfabric.ErrUnknownHost, `"x"`},
	} {
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("%s: err = %v, want %q (kind %v)", tc.name, err, tc.msg, tc.kind)
		}
	}
	after, _ := c.Show(ctx)
	if len(after.Groups) != 0 || after.Links[0].Directions[0].Quality != before.Links[0].Directions[0].Quality ||
		after.Links[0].Directions[1].Quality != before.Links[0].Directions[1].Quality || !after.Links[0].Up {
		t.Fatalf("bad input changed the state:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestCapture(t *testing.T) {
	env, c := lab(t, "cp", netfabric.Impairment{}, "10.69.0.1", "10.69.0.2")
	ctx, cancel := context.WithCancel(context.Background())
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- c.Capture(ctx, "ab", &buf) }()
	time.Sleep(100 * time.Millisecond) // capture attached
	if rs, err := env.Ping(context.Background(), 0, env.Hosts[1].Addr, 5, 10*time.Millisecond); err != nil || len(rs) != 5 {
		t.Fatalf("ping: %d replies, %v", len(rs), err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	frames := readPcap(t, buf.Bytes())
	var icmp int
	for _, f := range frames {
		if len(f) > 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == frame.ProtoICMP {
			icmp++
		}
	}
	if icmp != 10 {
		t.Fatalf("capture holds %d ICMP frames of %d frames, want 10 (5 requests, 5 replies)", icmp, len(frames))
	}
	if err := c.Capture(context.Background(), "nope", &buf); !errors.Is(err, netfabric.ErrUnknownLink) {
		t.Fatalf("capture of an unknown link: %v", err)
	}
}

// readPcap parses a classic pcap stream (nanosecond magic).
func readPcap(t *testing.T, b []byte) [][]byte {
	t.Helper()
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b23c4d {
		t.Fatalf("not a pcap stream (%d bytes)", len(b))
	}
	var frames [][]byte
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:]))
		if len(b) < 16+n {
			break
		}
		frames = append(frames, b[16:16+n])
		b = b[16+n:]
	}
	return frames
}

// TestUDPPeers joins two engines over UDP, as two machines would be: a's
// engine serves a's device and reaches b through b's engine.
func TestUDPPeers(t *testing.T) {
	nstest.Require(t)
	env, err := nstest.New("up", "10.70.0.1", "10.70.0.2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	ep := func(tap0, tap1 string) []netfabric.Endpoint {
		return []netfabric.Endpoint{{Host: "a", Tap: tap0}, {Host: "b", Tap: tap1}}
	}
	c1 := serve(t, Config{Seed: 1,
		Links: netfabric.Links{{Name: "ab", Endpoints: ep(env.Hosts[0].Dev, "")}},
		Peers: []Peer{{Link: "ab", Host: "b", Local: "127.0.0.1:47001", Remote: "127.0.0.1:47002"}}})
	serve(t, Config{Seed: 1,
		Links: netfabric.Links{{Name: "ab", Endpoints: ep("", env.Hosts[1].Dev)}},
		Peers: []Peer{{Link: "ab", Host: "a", Local: "127.0.0.1:47002", Remote: "127.0.0.1:47001"}}})
	ctx := context.Background()
	if err := c1.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 10, 10*time.Millisecond)
	if err != nil || len(rs) != 10 {
		t.Fatalf("ping across UDP: %d of 10 replies, %v", len(rs), err)
	}
	if m := median(rs); m < 10*time.Millisecond || m > 13*time.Millisecond {
		t.Fatalf("median RTT %v across UDP with 10 ms one way, want 10-13 ms", m)
	}
	// TCP super-frames are cut to wire size for the UDP hop.
	stop, err := env.Start(1, "iperf3", "-s", "-p", "5201")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := env.WaitTCP(ctx, 1, 5201); err != nil {
		t.Fatal(err)
	}
	if err := c1.Set(ctx, "ab", "a", netfabric.Impairment{}); err != nil {
		t.Fatal(err)
	}
	bps, err := env.IperfTCP(ctx, 0, 1, 5201, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TCP across the UDP hop: %.0f Mbit/s", bps/1e6)
	if bps < 50e6 {
		t.Fatalf("TCP across the UDP hop: %.1f Mbit/s, it is not forwarding properly", bps/1e6)
	}
}

// TestMain lets the test binary play `forgelab fabricd` for TestLaunch.
func TestMain(m *testing.M) {
	if os.Getenv("FORGELAB_TEST_FABRICD") == "1" {
		os.Exit(fabricdMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fabricdMain(args []string) int {
	var cfgPath, sock string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			cfgPath = args[i+1]
		case "--socket":
			sock = args[i+1]
		}
	}
	cfg, err := LoadConfig(cfgPath)
	if err == nil {
		err = Serve(context.Background(), cfg, sock)
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

func TestLaunchStop(t *testing.T) {
	nstest.Require(t)
	env, err := nstest.New("ln", "10.71.0.1", "10.71.0.2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	dir := t.TempDir()
	cfg := Config{Seed: 1, Links: netfabric.Links{{Name: "ab", Endpoints: []netfabric.Endpoint{
		{Host: "a", Tap: env.Hosts[0].Dev}, {Host: "b", Tap: env.Hosts[1].Dev}}}}}
	t.Setenv("FORGELAB_TEST_FABRICD", "1")
	ctx := context.Background()
	c, err := Launch(ctx, []string{os.Args[0]}, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(context.Background(), dir) })
	pid, err := c.Ping(ctx)
	rec, _ := proc.ReadFile(filepath.Join(dir, PIDFile))
	if err != nil || pid == os.Getpid() || rec.PID != pid {
		t.Fatalf("daemon pid %d (pid file %d), err %v", pid, rec.PID, err)
	}
	if rs, _ := env.Ping(ctx, 0, env.Hosts[1].Addr, 3, 10*time.Millisecond); len(rs) != 3 {
		t.Fatal("no traffic through the launched daemon")
	}
	// Quality change round trips (the bench reports the figure).
	if err := c.Set(ctx, "ab", "", netfabric.Impairment{Delay: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	// A second daemon on the same socket is refused.
	if _, err := Launch(ctx, []string{os.Args[0]}, dir, cfg); err == nil {
		t.Fatal("a second daemon started on a live socket")
	}
	if err := Stop(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Identify(pid); err == nil {
		t.Fatalf("daemon %d still running after Stop", pid)
	}
	for _, f := range []string{PIDFile, SocketFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s left behind", f)
		}
	}
	if err := Stop(ctx, dir); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// A pid file that names a process the fabric did not start (a stale file
// whose number was reused) leaves that process alone.
func TestStopSparesOtherProcess(t *testing.T) {
	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() }) // by its pid
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, PIDFile), []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o600)
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleep.Process.Pid))
	if f := strings.Fields(string(stat)); err != nil || len(f) < 3 || f[2] == "Z" {
		t.Fatalf("Stop ended pid %d, which the fabric did not start: %q %v", sleep.Process.Pid, stat, err)
	}
}
