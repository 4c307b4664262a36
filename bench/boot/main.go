// Command boot measures how long `forgelab create` takes to get N VMs to
// SSH-ready, what CPU the boots cost, and how long destroy takes, for the
// built-in debian-12 image (the seed applied by forgelab-guestinit) next to
// its baseline in the same run: debian-12-cloud-init, the same image with
// Debian's stock cloud-init applying the same seed. Images alternate within
// each size so drift in the machine's load hits both alike.
//
//	go run ./bench/boot -bin bin/forgelab -vms 1,4 -runs 2
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
	"slices"
	"strconv"
	"strings"
	"time"
)

type result struct {
	image                              string
	vms                                int
	create, slowest, cpuPerVM, destroy time.Duration
}

func main() {
	bin := flag.String("bin", "bin/forgelab", "forgelab binary")
	vms := flag.String("vms", "1,4", "lab sizes to measure")
	runs := flag.Int("runs", 1, "runs per size and image")
	imgs := flag.String("images", "debian-12,debian-12-cloud-init", "images: the first is measured, the second is its baseline")
	flag.Parse()
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine: %s, %s, %d cores, %s, load %s", host, cpuModel(), runtime.NumCPU(), memTotal(), load)
	fmt.Printf("%-22s %-4s %-4s %-6s %12s %12s %14s %12s\n", "image", "VMs", "run", "accel", "create (s)", "slowest (s)", "CPU/VM (s)", "destroy (s)")
	images := strings.Split(*imgs, ",")
	var all []result
	for _, f := range strings.Split(*vms, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			fail(err)
		}
		for r := 1; r <= *runs; r++ {
			for _, img := range images {
				all = append(all, measure(*bin, img, n, r))
			}
		}
	}
	summary(all, images)
}

func median(rs []result, image string, n int, f func(result) time.Duration) (time.Duration, bool) {
	var xs []time.Duration
	for _, r := range rs {
		if r.image == image && r.vms == n {
			xs = append(xs, f(r))
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	return xs[len(xs)/2], true
}

func summary(rs []result, images []string) {
	img := images[0]
	create := func(r result) time.Duration { return r.create }
	cpu := func(r result) time.Duration { return r.cpuPerVM }
	fmt.Println()
	one, ok1 := median(rs, img, 1, create)
	oneCPU, _ := median(rs, img, 1, cpu)
	if ok1 {
		fmt.Printf("%s, 1 VM: create to SSH %.1f s (target under 20 s: %s), %.1f CPU-s\n", img, one.Seconds(), verdict(one < 20*time.Second), oneCPU.Seconds())
	}
	if len(images) > 1 {
		base := images[1]
		b, okb := median(rs, base, 1, create)
		bCPU, _ := median(rs, base, 1, cpu)
		if ok1 && okb {
			fmt.Printf("%s (baseline), 1 VM: create to SSH %.1f s, %.1f CPU-s\n", base, b.Seconds(), bCPU.Seconds())
			fmt.Printf("CPU per boot, %s / %s: %.2f (target under 0.33: %s); time %.2f\n", img, base,
				oneCPU.Seconds()/bCPU.Seconds(), verdict(oneCPU*3 < bCPU), one.Seconds()/b.Seconds())
		}
	}
	if four, ok := median(rs, img, 4, create); ok && ok1 {
		fmt.Printf("%s, 4 VMs: %.1f s = %.2fx one VM (target under 2x: %s)\n", img, four.Seconds(), four.Seconds()/one.Seconds(), verdict(four < 2*one))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func measure(bin, image string, n, run int) result {
	name := fmt.Sprintf("flbench-%d", n)
	var b strings.Builder
	fmt.Fprintf(&b, "[lab]\nname = %q\n[defaults]\nimage = %q\nmemory = \"512MiB\"\n", name, image)
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
	r := result{image: image, vms: n, create: create, slowest: slowest, cpuPerVM: cpu / time.Duration(max(n, 1)), destroy: destroy}
	fmt.Printf("%-22s %-4d %-4d %-6s %12.1f %12.1f %14.1f %12.2f\n", image, n, run, info.Accel, create.Seconds(), slowest.Seconds(), r.cpuPerVM.Seconds(), destroy.Seconds())
	return r
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
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
