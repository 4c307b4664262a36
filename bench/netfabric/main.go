// Command netfabric-bench measures forgelab's userspace fabric engine
// against the plain kernel bridge, in one run, between two network
// namespaces joined by veth pairs (each namespace stands in for a VM, its
// host-side veth for the VM's tap):
//
//   - TCP throughput (iperf3) and small-packet rate (an iperf3 UDP flood
//     of 64-byte payloads, counted as frames reaching the receiver's NIC),
//     bridge vs engine, and their ratio;
//   - the engine with segmentation offloads off in the namespaces, the best
//     case for a one-frame-per-datagram attachment (libvirt <interface
//     type='udp'>);
//   - the round trip of a quality change over the daemon's socket;
//   - a 100 ms delay line's TCP throughput against the same line without
//     delay.
//
// Run as root: go run ./bench/netfabric [-t seconds]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/nstest"
	"github.com/forgelab/forgelab/netfabric/userspace"
)

func main() {
	secs := flag.Int("t", 4, "seconds per throughput measurement (the machine is small: keep it short)")
	flag.Parse()
	if err := nstest.Prereq(); err != nil {
		log.Fatalf("netfabric bench: %v", err)
	}
	if err := run(*secs); err != nil {
		log.Fatalf("netfabric bench: %v", err)
	}
}

type result struct {
	tcp, pps       float64
	tcpCPU, ppsCPU float64 // CPU seconds this process used per second of each test
}

func run(secs int) error {
	ctx := context.Background()
	env, err := nstest.New("bn", "10.77.0.1", "10.77.0.2")
	if err != nil {
		return err
	}
	defer env.Close()
	stop, err := env.Start(0, "iperf3", "-s", "-p", "5201")
	if err != nil {
		return err
	}
	defer stop()
	if err := env.WaitTCP(ctx, 0, 5201); err != nil {
		return err
	}

	// 1. Kernel bridge.
	undo, err := env.Bridge("fltnbnbr")
	if err != nil {
		return err
	}
	bridge, err := measure(ctx, env, secs)
	undo()
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}

	// 2. Engine, run as the daemon would run it, controlled over its socket.
	dir, err := os.MkdirTemp("", "fltn-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	link := netfabric.Link{Name: "ab", Endpoints: []netfabric.Endpoint{
		{Host: "a", Tap: env.Hosts[0].Dev}, {Host: "b", Tap: env.Hosts[1].Dev}}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sock := filepath.Join(dir, "fabric.sock")
	served := make(chan error, 1)
	go func() {
		served <- userspace.Serve(sctx, userspace.Config{Seed: 1, Links: netfabric.Links{link}}, sock)
	}()
	c := userspace.NewClient(sock)
	if err := waitDaemon(ctx, c, served); err != nil {
		return err
	}
	engine, err := measure(ctx, env, secs)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}

	// 3. Engine with 1500-byte frames only.
	var noGSO float64
	if err := offloads(ctx, env, "off"); err != nil {
		fmt.Fprintf(os.Stderr, "offloads off: %v (skipped)\n", err)
	} else {
		noGSO, err = env.IperfTCP(ctx, 1, 0, 5201, secs)
		_ = offloads(ctx, env, "on")
		if err != nil {
			return fmt.Errorf("engine without offloads: %w", err)
		}
	}

	// 4. Quality change round trip.
	lat, err := setLatency(ctx, c, 500)
	if err != nil {
		return err
	}

	// 5. Delay line: rate 1 Gbit/s, with and without 100 ms one way, plus
	// 100 ms at the engine's full speed. Two seconds of slow start omitted.
	line := func(q netfabric.Impairment) (float64, error) {
		if err := c.Set(ctx, "ab", "b", q); err != nil { // b -> a carries the data
			return 0, err
		}
		defer c.Set(ctx, "ab", "b", netfabric.Impairment{})
		return env.IperfTCP(ctx, 1, 0, 5201, secs+2, "-O", "2")
	}
	rate0, err := line(netfabric.Impairment{RateBits: 1e9})
	if err != nil {
		return err
	}
	rate100, err := line(netfabric.Impairment{RateBits: 1e9, Delay: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	full100, err := line(netfabric.Impairment{Delay: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	st, err := c.Show(ctx)
	if err != nil {
		return err
	}
	var queue, overrun, refused uint64
	for _, d := range st.Links[0].Directions {
		queue += d.Counters.DropQueue
		overrun += d.Counters.DropOverrun
		refused += d.Counters.DropError
	}
	cancel()
	if err := <-served; err != nil {
		return err
	}

	fmt.Printf("netfabric bench: %d s per run, %s, %d CPUs, load %s\n", secs, time.Now().Format(time.DateTime), runtime.NumCPU(), loadavg())
	fmt.Printf("%-44s %12s %12s\n", "", "TCP Gbit/s", "64B kpps")
	fmt.Printf("%-44s %12.2f %12.0f\n", "kernel bridge", bridge.tcp/1e9, bridge.pps/1e3)
	fmt.Printf("%-44s %12.2f %12.0f\n", "userspace engine (AF_PACKET, vnet hdr)", engine.tcp/1e9, engine.pps/1e3)
	fmt.Printf("%-44s %11.2fx %11.2fx\n", "engine / bridge", engine.tcp/bridge.tcp, engine.pps/bridge.pps)
	fmt.Printf("%-44s %11.0f%% %11.0f%%\n", "engine CPU (share of one core)", 100*engine.tcpCPU, 100*engine.ppsCPU)
	if noGSO > 0 {
		fmt.Printf("%-44s %12.2f\n", "engine, offloads off (1500-byte frames)", noGSO/1e9)
	}
	fmt.Printf("quality change over the socket (%d calls): median %v, p99 %v, max %v\n", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	fmt.Printf("delay line, rate 1gbit:   0 ms %.0f Mbit/s, 100 ms %.0f Mbit/s (%.0f%%)\n", rate0/1e6, rate100/1e6, 100*rate100/rate0)
	fmt.Printf("delay line, no rate limit, 100 ms: %.2f Gbit/s (TCP window bound: 64 MB buffers / 100 ms)\n", full100/1e9)
	fmt.Printf("engine drops over the whole run: queue full %d, overrun (engine behind) %d, refused by device %d\n", queue, overrun, refused)
	return nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func waitDaemon(ctx context.Context, c *userspace.Client, served chan error) error {
	for i := 0; i < 200; i++ {
		if _, err := c.Ping(ctx); err == nil {
			return nil
		}
		select {
		case err := <-served:
			return fmt.Errorf("fabric daemon: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("fabric daemon does not answer")
}

// measure runs TCP and small-UDP tests from host 1 to host 0.
func measure(ctx context.Context, env *nstest.Env, secs int) (result, error) {
	var r result
	var err error
	cpu0, t0 := cpuSeconds(), time.Now()
	if r.tcp, err = env.IperfTCP(ctx, 1, 0, 5201, secs); err != nil {
		return r, err
	}
	r.tcpCPU = (cpuSeconds() - cpu0) / time.Since(t0).Seconds()
	// Small packets: count what reaches the receiver's NIC, not what the
	// receiving iperf3 manages to read (on two shared cores it drops most
	// of a flood whichever path delivers it).
	before, err := rxPackets(ctx, env, 0)
	if err != nil {
		return r, err
	}
	cpu0, start := cpuSeconds(), time.Now()
	if _, err := env.Exec(ctx, 1, "iperf3", "-c", env.Hosts[0].Addr, "-p", "5201", "-u", "-b", "0", "-l", "64", "-t", strconv.Itoa(secs)); err != nil {
		return r, err
	}
	after, err := rxPackets(ctx, env, 0)
	if err != nil {
		return r, err
	}
	r.pps = float64(after-before) / time.Since(start).Seconds()
	r.ppsCPU = (cpuSeconds() - cpu0) / time.Since(start).Seconds()
	return r, nil
}

// cpuSeconds is the CPU time of this process: with the engine running in
// it, what the engine costs (iperf3 runs in child processes).
func cpuSeconds() float64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func rxPackets(ctx context.Context, env *nstest.Env, i int) (uint64, error) {
	out, err := env.Exec(ctx, i, "cat", "/sys/class/net/eth1/statistics/rx_packets")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(out), 10, 64)
}

func offloads(ctx context.Context, env *nstest.Env, onOff string) error {
	for i := range env.Hosts {
		if _, err := env.Exec(ctx, i, "ethtool", "-K", "eth1", "tso", onOff, "gso", onOff, "gro", onOff); err != nil {
			return err
		}
	}
	return nil
}

// setLatency times n quality changes over the socket, sorted.
func setLatency(ctx context.Context, c *userspace.Client, n int) ([]time.Duration, error) {
	var d []time.Duration
	for i := 0; i < n; i++ {
		q := netfabric.Impairment{Delay: time.Duration(i%2) * time.Millisecond}
		start := time.Now()
		if err := c.Set(ctx, "ab", "", q); err != nil {
			return nil, err
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return d, c.Set(ctx, "ab", "", netfabric.Impairment{})
}
