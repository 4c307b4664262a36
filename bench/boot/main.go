// Command boot measures how long `forgelab create` takes to get N VMs to
// SSH-ready, what CPU the boots cost, and how long destroy takes.
//
//	go run ./bench/boot -bin bin/forgelab -vms 1,4
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/forgelab", "forgelab binary")
	vms := flag.String("vms", "1,4", "lab sizes to measure")
	runs := flag.Int("runs", 1, "runs per size")
	flag.Parse()
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d cores, %s\n", host, runtime.NumCPU(), memTotal())
	fmt.Printf("%-4s %-4s %-6s %12s %12s %14s %12s\n", "VMs", "run", "accel", "create (s)", "slowest (s)", "boot CPU (s)", "destroy (s)")
	for _, f := range strings.Split(*vms, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			fail(err)
		}
		for r := 1; r <= *runs; r++ {
			measure(*bin, n, r)
		}
	}
}

func measure(bin string, n, run int) {
	name := fmt.Sprintf("flbench-%d", n)
	var b strings.Builder
	fmt.Fprintf(&b, "[lab]\nname = %q\n[defaults]\nmemory = \"512MiB\"\n", name)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "[[host]]\nname = \"h%d\"\n", i)
	}
	dir, _ := os.MkdirTemp("", "flbench")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "lab.toml")
	os.WriteFile(file, []byte(b.String()), 0o644)

	run1(bin, "destroy", name)
	start := time.Now()
	if out, err := run1(bin, "create", file); err != nil {
		run1(bin, "destroy", name)
		fail(fmt.Errorf("create: %v\n%s", err, out))
	}
	create := time.Since(start)
	out, err := run1(bin, "inspect", "-o", "json", name)
	if err != nil {
		fail(err)
	}
	var info struct {
		Accel string
		Hosts []struct {
			BootTime time.Duration `json:"boot_time_ns"`
			BootCPU  time.Duration `json:"boot_cpu_ns"`
		}
	}
	json.Unmarshal(out, &info)
	var cpu, slowest time.Duration
	for _, h := range info.Hosts {
		cpu += h.BootCPU
		if h.BootTime > slowest {
			slowest = h.BootTime
		}
	}
	start = time.Now()
	if out, err := run1(bin, "destroy", name); err != nil {
		fail(fmt.Errorf("destroy: %v\n%s", err, out))
	}
	destroy := time.Since(start)
	fmt.Printf("%-4d %-4d %-6s %12.1f %12.1f %14.1f %12.2f\n", n, run, info.Accel, create.Seconds(), slowest.Seconds(), cpu.Seconds(), destroy.Seconds())
}

func run1(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%d GiB", kb>>20)
		}
	}
	return "?"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
