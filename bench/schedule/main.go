// Command schedule-bench measures how close to their due time a mobility
// scenario's link-quality changes take effect, and what applying them
// costs. It builds point-to-point links between network namespaces (each
// namespace stands in for a VM, its host-side veth for the VM's tap),
// moves the links' two hosts with random-waypoint mobility, turns the
// distance into quality with a labs/quality model sampled at 10 Hz, and
// plays the resulting schedule:
//
//   - -shaper userspace (default): on forgelab's engine, run as a
//     separate fabricd process. First the engine gets the whole schedule
//     in one request and applies each change itself; then, as the
//     baseline in the same run, the bench applies the same schedule with
//     one control message per change (netfabric.PlaySchedule over the
//     client). For each: lateness of every change against its due time
//     (p50, p99, max) and the CPU seconds the runner (this process) and
//     the engine (the daemon) spent.
//   - -shaper netem: on the kernel shaper (bridge, netem, htb), applied
//     by netfabric.PlaySchedule from this process; netlink work happens in
//     this process's system calls, so its CPU is the whole cost. Run it
//     inside a guest that has sch_netem (this project's build hosts have
//     none): build with `go build ./bench/schedule`, copy the binary in
//     and run it as root there. With -model rate the schedule changes
//     only rates and downs, which need htb alone, so it runs on such
//     hosts too.
//
// Lateness is measured by whoever applies the change: the engine by its
// own clock once the lines have the new quality; the runner when Set (or
// SetUp) returns, which includes the round trip to the shaper.
//   - -vm: the netem variant inside a guest, on a real VM: makes a lab
//     of one debian-12 VM with the forgelab binary (-forgelab), builds
//     this bench statically, deploys it into the guest, runs it there
//     as root with -shaper netem and the same -duration, -links,
//     -interval, -model and -seed, prints its figures and destroys the
//     lab. Run it from the repository root.
//
// Run as root: go run ./bench/schedule [-duration 60s] [-links 50]
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/labs/quality"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/kernel"
	"github.com/forgelab/forgelab/netfabric/nstest"
	"github.com/forgelab/forgelab/netfabric/userspace"
)

type options struct {
	duration time.Duration
	interval time.Duration
	links    int
	vmLinks  string
	shaper   string
	model    string
	seed     int64
	lead     time.Duration
	forgelab string
	stateDir string
	profile  string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fabricd" {
		os.Exit(fabricd(os.Args[2:]))
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "scenario length (keep it short while developing, e.g. 10s)")
	flag.DurationVar(&o.interval, "interval", 100*time.Millisecond, "quality sampling interval (100ms = 10 Hz)")
	flag.IntVar(&o.links, "links", 50, "point-to-point links, 1-99 (two namespaces each)")
	flag.StringVar(&o.shaper, "shaper", "userspace", "userspace (the engine, with the one-message-per-change baseline) or netem (the kernel shaper: run inside a guest that has sch_netem)")
	flag.StringVar(&o.model, "model", quality.MininetWiFi, "quality model: mininet-wifi, ramp, or rate (rate only, 54mbit near to 1mbit at 300 m, down beyond 314 m: the kernel shaper needs only htb for it, no sch_netem)")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the mobility")
	flag.DurationVar(&o.lead, "lead", 500*time.Millisecond, "how far ahead of the first change the schedule is handed over")
	vm := flag.Bool("vm", false, "run the netem variant inside a one-VM lab (made and destroyed with -forgelab)")
	flag.StringVar(&o.vmLinks, "vm-links", "", "with -vm: comma-separated link counts to run one after another in the same guest (\"\": -links)")
	flag.StringVar(&o.forgelab, "forgelab", "bin/forgelab", "forgelab binary, for -vm")
	flag.StringVar(&o.stateDir, "state-dir", "", "forgelab state dir, for -vm (\"\": its default)")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the schedule's run to this file (with -vm: made in the guest, copied here)")
	flag.Parse()
	if *vm {
		if err := inVM(o); err != nil {
			log.Fatalf("schedule bench: %v", err)
		}
		return
	}
	if o.links < 1 || o.links > 99 {
		log.Fatalf("schedule bench: -links %d is outside 1-99", o.links)
	}
	if o.shaper != "userspace" && o.shaper != "netem" {
		log.Fatalf("schedule bench: -shaper %q is not known (use userspace or netem)", o.shaper)
	}
	if err := nstest.Prereq(); err != nil {
		log.Fatalf("schedule bench: %v", err)
	}
	// Ctrl-C ends the run early; the deferred cleanups still remove every
	// namespace, veth, bridge and the daemon.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatalf("schedule bench: %v", err)
	}
}

// fabricd is this program run as the engine's daemon (userspace.Launch
// appends --config and --socket), so the engine's CPU is its own process's.
func fabricd(args []string) int {
	fs := flag.NewFlagSet("fabricd", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "fabric config")
	sock := fs.String("socket", "", "control socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := userspace.LoadConfig(*cfgPath)
	if err == nil {
		err = userspace.Serve(context.Background(), cfg, *sock)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func run(ctx context.Context, o options) error {
	t0 := time.Now()
	envs, links, err := build(o.links)
	defer func() {
		for _, e := range envs {
			e.Close()
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "built %d links (%d namespaces) in %v\n", len(links), 2*len(links), time.Since(t0).Round(time.Millisecond))

	changes, err := timeline(links, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "schedule: %d changes over %v at %v\n", len(changes), o.duration, o.interval)

	header := fmt.Sprintf("schedule bench: %d links, %v at %v (%s, random-waypoint), %d changes; %s; %s, %d CPUs; load before %s",
		len(links), o.duration, o.interval, o.model, len(changes), time.Now().UTC().Format("2006-01-02 15:04 UTC"), cpuModel(), runtime.NumCPU(), loadavg())
	var results []result
	switch o.shaper {
	case "userspace":
		results, err = runUserspace(ctx, o, links, changes)
	case "netem":
		results, err = runNetem(ctx, o, links, changes)
	}
	if err != nil {
		return err
	}
	fmt.Println(header)
	fmt.Printf("%-52s %8s %10s %10s %10s %10s %10s %8s\n", "", "applied", "p50", "p99", "max", "runner s", "engine s", "msgs")
	for _, r := range results {
		engine := "-"
		if r.engineCPU >= 0 {
			engine = fmt.Sprintf("%.2f", r.engineCPU)
		}
		fmt.Printf("%-52s %8d %10v %10v %10v %10.2f %10s %8d\n", r.name, r.st.Applied, r.st.Lateness.P50, r.st.Lateness.P99, r.st.Lateness.Max, r.runnerCPU, engine, r.messages)
	}
	fmt.Printf("load after %s\n", loadavg())
	for _, r := range results {
		printBySecond(r)
	}
	return nil
}

// printBySecond shows where in the schedule the late changes were: the
// lateness of the changes due in each second.
func printBySecond(r result) {
	by := map[int][]netfabric.AppliedChange{}
	last := 0
	for _, c := range r.st.Records {
		sec := int(c.At / time.Second)
		by[sec] = append(by[sec], c)
		last = max(last, sec)
	}
	fmt.Printf("%s, by the second the changes were due in:\n%8s %8s %10s %10s %10s\n", r.name, "second", "changes", "p50", "p99", "max")
	for sec := 0; sec <= last; sec++ {
		l := netfabric.LatenessOf(by[sec])
		fmt.Printf("%8d %8d %10v %10v %10v\n", sec, l.N, l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond), l.Max.Round(time.Microsecond))
	}
}

// build makes n links l00.. between namespace pairs: link i joins hosts
// "iNNa" and "iNNb" at 10.78.i.1 and 10.78.i.2, through host-side veths
// fltnsNN0 and fltnsNN1 (netdev names stay far below 15 characters, with
// room for the kernel shaper's ifb suffix). Four at a time: each is a
// dozen `ip` commands.
func build(n int) ([]*nstest.Env, netfabric.Links, error) {
	envs := make([]*nstest.Env, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			envs[i], errs[i] = nstest.New(fmt.Sprintf("s%02d", i), fmt.Sprintf("10.78.%d.1", i), fmt.Sprintf("10.78.%d.2", i))
		}()
	}
	wg.Wait()
	var made []*nstest.Env
	links := make(netfabric.Links, n)
	for i, e := range envs {
		if e == nil {
			continue
		}
		made = append(made, e)
		links[i] = netfabric.Link{Name: fmt.Sprintf("l%02d", i), Endpoints: []netfabric.Endpoint{
			{Host: fmt.Sprintf("i%02da", i), Tap: e.Hosts[0].Dev, MAC: e.Hosts[0].MAC},
			{Host: fmt.Sprintf("i%02db", i), Tap: e.Hosts[1].Dev, MAC: e.Hosts[1].MAC},
		}}
	}
	if err := errors.Join(errs...); err != nil {
		return made, nil, fmt.Errorf("build namespaces: %w", err)
	}
	return made, links, nil
}

// timeline moves every host with random-waypoint mobility in a 400 m x
// 400 m square at 5-15 m/s with 1 s pauses, so links drift in and out of
// the model's range, and turns the distances into quality changes.
func timeline(links netfabric.Links, o options) ([]netfabric.TimedChange, error) {
	qc := quality.Config{Model: o.model}
	if o.model == "rate" {
		near, far := quality.Rate(54e6), quality.Rate(1e6)
		qc = quality.Config{Model: quality.Table, Points: []quality.Point{{Distance: 0, Rate: &near}, {Distance: 300, Rate: &far}, {Distance: 314, Down: true}}}
	}
	qm, err := quality.New(qc)
	if err != nil {
		return nil, fmt.Errorf("quality model %s: %w", o.model, err)
	}
	bounds := mobility.Box{{0, 0, 0}, {400, 400, 0}}
	pause := mobility.Duration(time.Second)
	rng := rand.New(rand.NewPCG(uint64(o.seed), 0))
	hosts := map[string]mobility.Model{}
	var qlinks []quality.Link
	for _, l := range links {
		var names []string
		for _, e := range l.Endpoints {
			mc := mobility.Config{Model: mobility.RandomWaypoint, Bounds: &bounds, Speed: []float64{5, 15}, Pause: &pause}
			start := mobility.Vec{rng.Float64() * 400, rng.Float64() * 400, 0}
			m, err := mobility.New(mc, mobility.Env{Seed: o.seed, Host: e.Host, Position: start})
			if err != nil {
				return nil, fmt.Errorf("mobility of %s: %w", e.Host, err)
			}
			hosts[e.Host] = m
			names = append(names, e.Host)
		}
		qlinks = append(qlinks, quality.Link{Name: l.Name, Endpoints: names, Model: qm})
	}
	qs, err := quality.Timeline(hosts, qlinks, quality.Options{Duration: o.duration, Interval: o.interval})
	if err != nil {
		return nil, err
	}
	// A point-to-point link's change applies both ways: from "".
	changes := make([]netfabric.TimedChange, len(qs))
	for i, c := range qs {
		changes[i] = netfabric.TimedChange{At: c.At, Link: c.Link, Quality: &qs[i].Quality}
	}
	return changes, nil
}

type result struct {
	name      string
	st        netfabric.ScheduleStatus
	runnerCPU float64 // CPU seconds of this process over the run
	engineCPU float64 // of the fabric daemon; -1 where there is none
	messages  int     // control messages the runner sent
}

func runUserspace(ctx context.Context, o options, links netfabric.Links, changes []netfabric.TimedChange) ([]result, error) {
	dir, err := os.MkdirTemp("", "fltn-schedule-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c, err := userspace.Launch(ctx, []string{exe, "fabricd"}, dir, userspace.Config{Seed: o.seed, Links: links})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := userspace.Stop(context.WithoutCancel(ctx), dir); err != nil {
			fmt.Fprintf(os.Stderr, "stop the fabric daemon: %v\n", err)
		}
	}()
	defer c.Close()
	pid, err := c.Ping(ctx)
	if err != nil {
		return nil, err
	}

	// 1. The engine applies the whole schedule itself. The runner looks
	// in once a second, as a live status would.
	fmt.Fprintf(os.Stderr, "engine-applied schedule: %v ...\n", o.duration)
	r0, e0 := selfCPU(), procCPU(pid)
	start := time.Now().Add(o.lead)
	sent := time.Now()
	if err := c.Schedule(ctx, start, changes); err != nil {
		return nil, err
	}
	handover := time.Since(sent)
	var st netfabric.ScheduleStatus
	polls := 0
	for {
		polls++
		if st, err = c.ScheduleStatus(ctx, st.Applied); err != nil {
			return nil, err
		}
		if st.State != netfabric.ScheduleRunning {
			break
		}
		select {
		case <-ctx.Done():
			_ = c.CancelSchedule(context.WithoutCancel(ctx))
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if st, err = c.ScheduleStatus(ctx, 0); err != nil { // with the lateness summary
		return nil, err
	}
	engineRun := result{name: "engine applies the schedule (1 request)", st: st, runnerCPU: selfCPU() - r0, engineCPU: procCPU(pid) - e0,
		messages: (len(changes)+4095)/4096 + polls + 1}
	fmt.Fprintf(os.Stderr, "  handing over %d changes took %v (lead %v)\n", len(changes), handover.Round(time.Microsecond), o.lead)
	if st.State != netfabric.ScheduleDone {
		return nil, fmt.Errorf("engine schedule ended %s after %d of %d changes", st.State, st.Applied, st.Changes)
	}

	// 2. Baseline: the runner applies each change with its own message.
	fmt.Fprintf(os.Stderr, "runner-applied schedule (one message per change): %v ...\n", o.duration)
	r0, e0 = selfCPU(), procCPU(pid)
	st, err = netfabric.PlaySchedule(ctx, c, time.Now().Add(o.lead), changes, nil)
	if err != nil {
		return nil, err
	}
	if st.State != netfabric.ScheduleDone {
		return nil, fmt.Errorf("runner schedule ended %s after %d of %d changes", st.State, st.Applied, st.Changes)
	}
	baseline := result{name: "runner sends 1 message per change (PlaySchedule)", st: st, runnerCPU: selfCPU() - r0, engineCPU: procCPU(pid) - e0, messages: len(changes) + 1}
	return []result{engineRun, baseline}, nil
}

func runNetem(ctx context.Context, o options, links netfabric.Links, changes []netfabric.TimedChange) ([]result, error) {
	for i := range links {
		br := fmt.Sprintf("fltns%02dbr", i)
		if err := netfabric.EnsureBridge(br); err != nil {
			return nil, err
		}
		defer netfabric.DeleteLink(br)
		for _, e := range links[i].Endpoints {
			if err := netfabric.AddPort(br, e.Tap); err != nil {
				return nil, err
			}
		}
		links[i].Bridge = br
	}
	s, err := kernel.New(links, o.seed, "")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := s.Teardown(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(os.Stderr, "kernel shaper teardown: %v\n", err)
		}
	}()
	if err := s.Setup(ctx); err != nil {
		return nil, err
	}
	// What PlaySchedule does first, done here before the start is set, so
	// the lead covers waiting and not the preparation (printed apart).
	t0 := time.Now()
	if err := s.Prepare(ctx, changes); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "kernel shaper prepared the schedule's directions in %v\n", time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "netem schedule applied by the runner: %v ...\n", o.duration)
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	r0 := selfCPU()
	st, err := netfabric.PlaySchedule(ctx, s, time.Now().Add(o.lead), changes, nil)
	if errors.Is(err, netfabric.ErrUnsupported) {
		return nil, fmt.Errorf("-shaper netem: %w; run this bench inside a guest that has sch_netem (the debian-12 image does), or use -model rate (htb only)", err)
	}
	if err != nil {
		return nil, err
	}
	if st.State != netfabric.ScheduleDone {
		return nil, fmt.Errorf("netem schedule ended %s after %d of %d changes", st.State, st.Applied, st.Changes)
	}
	return []result{{name: "kernel shaper, runner applies (PlaySchedule)", st: st, runnerCPU: selfCPU() - r0, engineCPU: -1, messages: len(changes)}}, nil
}

// selfCPU is this process's CPU time in seconds (user + system).
func selfCPU() float64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procCPU is another process's CPU time in seconds, from /proc (clock
// ticks of 10 ms: fine over seconds of run).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64) // field 14
	stime, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (utime + stime) / 100              // USER_HZ
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// inVM runs the netem variant of this bench inside a guest of a fresh
// one-VM lab: built statically, deployed with the lab, run as root there.
func inVM(o options) error {
	const lab = "flbench-sched"
	dir, err := os.MkdirTemp("", "fl-schedule-vm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bench", "schedule-bench")
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "./bench/schedule")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the bench for the guest (run from the repository root): %v\n%s", err, out)
	}
	file := filepath.Join(dir, "lab.toml")
	if err := os.WriteFile(file, []byte(`[lab]
name = "`+lab+`"
[defaults]
image = "debian-12"
cpus = 2
memory = "1GiB"
[[host]]
name = "g"
[[deploy]]
src = "bench"
dst = "/opt/bench"
`), 0o644); err != nil {
		return err
	}
	fl := func(args ...string) (string, error) {
		if o.stateDir != "" {
			args = append([]string{"--state-dir", o.stateDir}, args...)
		}
		cmd := exec.Command(o.forgelab, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		err := cmd.Run()
		return out.String(), err
	}
	fl("destroy", lab)
	t0 := time.Now()
	if _, err := fl("create", file); err != nil {
		return fmt.Errorf("create the lab: %w", err)
	}
	defer fl("destroy", lab)
	fmt.Fprintf(os.Stderr, "lab up in %v\n", time.Since(t0).Round(time.Second))
	info, _ := fl("inspect", "-o", "json", lab)
	var st struct{ Accel string }
	json.Unmarshal([]byte(info), &st)
	counts := []string{strconv.Itoa(o.links)}
	if o.vmLinks != "" {
		counts = strings.Split(o.vmLinks, ",")
	}
	for _, n := range counts {
		if v, err := strconv.Atoi(strings.TrimSpace(n)); err != nil || v < 1 || v > 99 {
			return fmt.Errorf("-vm-links %q: %q is not a link count of 1-99", o.vmLinks, n)
		}
		cmd := fmt.Sprintf("sudo -n /opt/bench/schedule-bench -shaper netem -duration %v -links %s -interval %v -model %s -seed %d -lead %v",
			o.duration, strings.TrimSpace(n), o.interval, o.model, o.seed, o.lead)
		if o.profile != "" {
			cmd += " -cpuprofile /tmp/schedule.pprof"
		}
		out, err := fl("exec", lab, "g", "--", cmd)
		fmt.Printf("inside a guest (debian-12, 2 vCPUs, 1 GiB, accelerator %s) on %s, %d CPUs, %s links, %s:\n%s",
			cmpOr(st.Accel, "?"), cpuModel(), runtime.NumCPU(), strings.TrimSpace(n), time.Now().UTC().Format("2006-01-02 15:04 UTC"), out)
		if err != nil {
			return fmt.Errorf("the bench in the guest: %w", err)
		}
	}
	if o.profile != "" {
		b64, err := fl("exec", lab, "g", "--", "sudo -n base64 -w0 /tmp/schedule.pprof")
		if err != nil {
			return fmt.Errorf("copy the profile out of the guest: %w", err)
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			return fmt.Errorf("copy the profile out of the guest: %w", err)
		}
		if err := os.WriteFile(o.profile, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("CPU profile of the guest's run: %s (go tool pprof -top %s)\n", o.profile, o.profile)
	}
	return nil
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}
