// Command fabricvm measures forgelab's userspace link engine between two
// VMs against a plain kernel bridge between the same two VMs, in one run:
// the engine's link is taken down and the VMs' taps are bridged for the
// baseline, then the bridge is removed and the engine carries the link.
//
//	go run ./bench/fabricvm -bin bin/forgelab
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

var bin string

func main() {
	flag.StringVar(&bin, "bin", "bin/forgelab", "forgelab binary")
	secs := flag.Int("t", 8, "seconds per measurement")
	keep := flag.Bool("keep", false, "keep the lab afterwards")
	flag.Parse()

	const lab = "flbench-fabric"
	dir, _ := os.MkdirTemp("", "fabricvm")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "lab.toml")
	os.WriteFile(file, []byte(`[lab]
name = "`+lab+`"
fabric = "userspace"
[defaults]
memory = "512MiB"
[[host]]
name = "a"
[[host]]
name = "b"
[[link]]
name = "ab"
endpoints = ["a", "b"]
`), 0o644)
	run("destroy", lab)
	if out, err := run("create", file); err != nil {
		fail(fmt.Errorf("create: %v\n%s", err, out))
	}
	if !*keep {
		defer run("destroy", lab)
	}
	out, err := run("inspect", "-o", "json", lab)
	if err != nil {
		fail(err)
	}
	var info struct {
		Accel string
		Hosts []struct {
			Name string
			NICs []struct {
				Tap       string
				Addresses []string
			}
		}
	}
	json.Unmarshal(out, &info)
	var taps []string
	var addrB string
	for _, h := range info.Hosts {
		taps = append(taps, h.NICs[0].Tap)
		if h.Name == "b" {
			addrB = strings.Split(h.NICs[0].Addresses[0], "/")[0]
		}
	}
	run("exec", lab, "b", "--", "iperf3 -s -D")
	time.Sleep(time.Second)

	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d cores; guests: %s, 1 vCPU each; %d s per figure\n", host, runtime.NumCPU(), info.Accel, *secs)

	// Baseline: the kernel bridge, engine link down so it forwards nothing.
	must(run("link", "down", lab, "ab"))
	br := "flbenchbr0"
	sh("ip", "link", "add", br, "type", "bridge")
	for _, t := range taps {
		sh("ip", "link", "set", t, "master", br)
	}
	sh("ip", "link", "set", br, "up")
	time.Sleep(2 * time.Second)
	bTCP, bPPS := measure(lab, addrB, *secs)
	sh("ip", "link", "del", br)
	must(run("link", "up", lab, "ab"))
	time.Sleep(2 * time.Second)
	eTCP, ePPS := measure(lab, addrB, *secs)

	fmt.Printf("%-22s %14s %16s\n", "path", "TCP (Gbit/s)", "64 B UDP (pkt/s)")
	fmt.Printf("%-22s %14.2f %16.0f\n", "kernel bridge", bTCP, bPPS)
	fmt.Printf("%-22s %14.2f %16.0f\n", "forgelab engine", eTCP, ePPS)
	fmt.Printf("%-22s %14.2f %16.2f\n", "engine / bridge", eTCP/bTCP, ePPS/bPPS)
}

// measure returns iperf3 TCP Gbit/s and small-UDP packets/s received.
func measure(lab, addr string, secs int) (float64, float64) {
	out, err := run("exec", lab, "a", "--", fmt.Sprintf("iperf3 -c %s -t %d -O 1 -J", addr, secs))
	if err != nil {
		fail(fmt.Errorf("iperf3 tcp: %v\n%s", err, out))
	}
	var tcp struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	json.Unmarshal(out, &tcp)
	out, err = run("exec", lab, "a", "--", fmt.Sprintf("iperf3 -c %s -u -l 64 -b 0 -t %d -J", addr, secs))
	if err != nil {
		fail(fmt.Errorf("iperf3 udp: %v\n%s", err, out))
	}
	var udp struct {
		End struct {
			Sum struct {
				Packets     float64 `json:"packets"`
				LostPackets float64 `json:"lost_packets"`
				Seconds     float64 `json:"seconds"`
			} `json:"sum"`
		} `json:"end"`
	}
	json.Unmarshal(out, &udp)
	s := udp.End.Sum
	pps := 0.0
	if s.Seconds > 0 {
		pps = (s.Packets - s.LostPackets) / s.Seconds
	}
	return tcp.End.SumReceived.BitsPerSecond / 1e9, pps
}

func run(args ...string) ([]byte, error) {
	return exec.Command(bin, args...).CombinedOutput()
}

func sh(args ...string) {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		fail(fmt.Errorf("%v: %v\n%s", args, err, out))
	}
}

func must(out []byte, err error) {
	if err != nil {
		fail(fmt.Errorf("%v\n%s", err, out))
	}
}

func fail(err error) {
	exec.Command("ip", "link", "del", "flbenchbr0").Run()
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
