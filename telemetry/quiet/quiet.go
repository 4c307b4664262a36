// Package quiet checks that a machine is quiet enough to measure on
// (issue 12, item 5): the host (load, other VMs and labs, the CPU
// frequency governor, other processes' CPU), the lab's guests (processes
// other than the lab's own using CPU, systemd timers that could fire
// during a run). It knows nothing of labs or bench: the caller hands it
// what to look at (Inputs), so `forgelab run --quiet` and `forgelab bench`
// share one check, and tests give it fake /proc trees and guests.
//
// It lives in telemetry, next to the run records its notes go into,
// because it measures and judges; labs.Manager.CheckQuiet gathers the
// inputs from a lab's state.
package quiet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/forgelab/forgelab/telemetry/procstat"
)

// Thresholds say what counts as noise. Start from DefaultThresholds.
type Thresholds struct {
	// LoadPerCPU: the 1-minute load average above LoadPerCPU times the
	// CPUs, on top of the lab's own VMs (one each), is noise.
	LoadPerCPU float64
	// ProcessCPU: a process (not the lab's) using at least this share of
	// one CPU over the window is noise, on the host and in guests.
	ProcessCPU float64
	// ForeignPackets: more packets a second than this arriving on a
	// physical host's lab interfaces beyond what the lab delivered is
	// noise.
	ForeignPackets float64
}

// DefaultThresholds: load above a quarter of the CPUs beyond the lab's
// VMs, and any other process using 5 % of a CPU or more. A TCG guest
// at rest costs its QEMU about 0.5 % of a CPU; 5 % is ten times that,
// and a busy neighbour shows up well above it.
//
// Foreign traffic: 5 packets a second (the lab's own counters and the
// host's are read a moment apart, and a quiet LAN still carries some ARP
// and neighbour discovery; a flow that would disturb a measurement is far
// above it).
func DefaultThresholds() Thresholds {
	return Thresholds{LoadPerCPU: 0.25, ProcessCPU: 0.05, ForeignPackets: 5}
}

// Guest is one of the lab's hosts, reached over SSH.
type Guest struct {
	Name string
	// Run runs a shell command as root and returns its stdout.
	Run func(ctx context.Context, cmd string) ([]byte, error)
	// LabIfaces are a physical host's interfaces on the lab's links, and
	// LabSent counts the packets the lab's fabric has delivered to the
	// host so far: what arrives on LabIfaces beyond that during the
	// window is traffic the lab did not send (a LAN's broadcasts, another
	// user). Both empty for VMs, whose NICs only the lab reaches. LabSent
	// returns an errors.ErrUnsupported error where the fabric cannot
	// count: then the traffic is not checked, and Checked says so.
	LabIfaces []string
	LabSent   func(ctx context.Context) (uint64, error)
}

// Inputs is what Check looks at.
type Inputs struct {
	// Proc and Sys are the host's /proc and /sys ("" for the real ones).
	Proc, Sys string
	// Window is how long processes' CPU is watched; 0: 2 s.
	Window time.Duration
	// OwnDomains are the lab's libvirt domains; RunningDomains lists every
	// running domain on the machine (nil: not checked).
	OwnDomains     []string
	RunningDomains func() ([]string, error)
	// OtherLabs are forgelab labs up in the state dir besides this one.
	OtherLabs []string
	// OwnPIDs are host processes that are the lab's (its VMs' QEMU, its
	// fabric engine, this process): their CPU is not noise.
	OwnPIDs []int
	Guests  []Guest
	Thresholds
}

// Finding is one thing seen.
type Finding struct {
	Where string `json:"where"` // "host", or the guest's name
	What  string `json:"what"`  // load, domain, lab, governor, process, timer, error
	Text  string `json:"text"`
}

func (f Finding) String() string { return f.Where + ": " + f.Text }

// Report is what Check saw. Checked lists what was looked at and found
// quiet (or could not be read), for the record.
type Report struct {
	Findings []Finding `json:"findings"`
	Checked  []string  `json:"checked"`
}

// Noisy reports whether anything was found.
func (r Report) Noisy() bool { return len(r.Findings) > 0 }

// String lists the findings, one a line.
func (r Report) String() string {
	if !r.Noisy() {
		return "quiet (" + strings.Join(r.Checked, "; ") + ")"
	}
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

// Notes are the report as a run fingerprint's notes.
func (r Report) Notes() map[string]string {
	n := map[string]string{"quiet": "yes", "quiet.checked": strings.Join(r.Checked, "; ")}
	if r.Noisy() {
		n["quiet"] = "no"
		var fs []string
		for _, f := range r.Findings {
			fs = append(fs, f.String())
		}
		n["quiet.seen"] = strings.Join(fs, "; ")
	}
	return n
}

// Check looks at the host and the guests for Window and reports what it
// saw. It fails only when it cannot look at all; a guest that cannot be
// read is a finding (the run would not know what it runs next to).
func Check(ctx context.Context, in Inputs) (Report, error) {
	if in.Proc == "" {
		in.Proc = "/proc"
	}
	if in.Sys == "" {
		in.Sys = "/sys"
	}
	if in.Window <= 0 {
		in.Window = 2 * time.Second
	}
	if in.Thresholds == (Thresholds{}) {
		in.Thresholds = DefaultThresholds()
	}
	var r Report
	add := func(where, what, format string, a ...any) {
		r.Findings = append(r.Findings, Finding{Where: where, What: what, Text: fmt.Sprintf(format, a...)})
	}

	// Before the window: the first readings.
	hostA, err := procstat.ReadProc(in.Proc)
	if err != nil {
		return r, fmt.Errorf("quiet check: %w", err)
	}
	guestA := make([]*procstat.Snapshot, len(in.Guests))
	guestErr := make([]error, len(in.Guests))
	trafficA := make([]traffic, len(in.Guests))
	for i, g := range in.Guests {
		guestA[i], guestErr[i] = readGuest(ctx, g)
		trafficA[i] = readTraffic(ctx, g)
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(in.Window):
	}

	// The host.
	ncpu := runtime.NumCPU()
	if load, err := loadAverage(in.Proc); err == nil {
		limit := in.LoadPerCPU*float64(ncpu) + float64(len(in.OwnDomains))
		if load > limit {
			add("host", "load", "load average %.2f over 1 minute, above %.2f (%.2f per CPU x %d CPUs, plus one per VM of the lab)", load, limit, in.LoadPerCPU, ncpu)
		} else {
			r.Checked = append(r.Checked, fmt.Sprintf("load %.2f", load))
		}
	}
	if in.RunningDomains != nil {
		all, err := in.RunningDomains()
		if err != nil {
			add("host", "error", "cannot list libvirt domains: %v", err)
		}
		var other []string
		for _, d := range all {
			if !slices.Contains(in.OwnDomains, d) {
				other = append(other, d)
			}
		}
		sort.Strings(other)
		if len(other) > 0 {
			add("host", "domain", "other libvirt domains running: %s", strings.Join(other, ", "))
		} else if err == nil {
			r.Checked = append(r.Checked, "no other domains")
		}
	}
	if len(in.OtherLabs) > 0 {
		add("host", "lab", "other forgelab labs up: %s", strings.Join(in.OtherLabs, ", "))
	}
	switch govs := governors(in.Sys); {
	case len(govs) == 0:
		r.Checked = append(r.Checked, "CPU governor not readable")
	default:
		var slow []string
		for g, n := range govs {
			if g != "performance" {
				slow = append(slow, fmt.Sprintf("%s on %d CPUs", g, n))
			}
		}
		sort.Strings(slow)
		if len(slow) > 0 {
			add("host", "governor", "CPU frequency governor %s, not performance (clock speed varies with load: `cpupower frequency-set -g performance`)", strings.Join(slow, ", "))
		} else {
			r.Checked = append(r.Checked, "governor performance")
		}
	}
	elapsed := time.Since(start).Seconds()
	if hostB, err := procstat.ReadProc(in.Proc); err == nil {
		own := map[int]bool{os.Getpid(): true}
		for _, p := range in.OwnPIDs {
			own[p] = true
		}
		n := 0
		for _, b := range procstat.BusyBetween(hostA, hostB, elapsed, in.ProcessCPU) {
			if own[b.PID] {
				continue
			}
			n++
			if n <= 5 {
				add("host", "process", "process %d (%s) used %.0f %% of a CPU", b.PID, b.Comm, 100*b.CPU)
			}
		}
		if n > 5 {
			add("host", "process", "and %d more processes above %.0f %% of a CPU", n-5, 100*in.ProcessCPU)
		}
		if n == 0 {
			r.Checked = append(r.Checked, "no other busy host process")
		}
	}

	// The guests.
	for i, g := range in.Guests {
		if guestErr[i] != nil {
			add(g.Name, "error", "cannot read its processes: %v", guestErr[i])
			continue
		}
		b, err := readGuest(ctx, g)
		if err != nil {
			add(g.Name, "error", "cannot read its processes: %v", err)
			continue
		}
		secs := time.Since(start).Seconds()
		own := procstat.Own(b)
		for pid := range procstat.Own(guestA[i]) {
			own[pid] = true
		}
		quietGuest := true
		for _, p := range procstat.BusyBetween(guestA[i], b, secs, in.ProcessCPU) {
			if own[p.PID] || p.Workload != "" || p.Service != "" {
				continue // the sampler, or the lab's own software
			}
			quietGuest = false
			add(g.Name, "process", "process %d (%s) used %.0f %% of a CPU", p.PID, p.Comm, 100*p.CPU)
		}
		timers, err := g.Run(ctx, timersCommand)
		if err == nil {
			for _, t := range parseTimers(timers) {
				quietGuest = false
				add(g.Name, "timer", "timer %s could fire during the run (`systemctl disable --now %s` in the image)", t, t)
			}
		}
		if len(g.LabIfaces) > 0 {
			tb := readTraffic(ctx, g)
			switch err := errors.Join(trafficA[i].err, tb.err); {
			case errors.Is(err, errors.ErrUnsupported):
				r.Checked = append(r.Checked, fmt.Sprintf("%s traffic not checked (%v)", g.Name, err))
			case err != nil:
				quietGuest = false
				add(g.Name, "error", "cannot count the traffic on its lab interfaces: %v", err)
			default:
				foreign := float64(tb.received-trafficA[i].received) - float64(tb.sent-trafficA[i].sent)
				if rate := foreign / secs; rate > in.ForeignPackets {
					quietGuest = false
					add(g.Name, "traffic", "%.0f packets a second arrived on %s that the lab did not send (another user or the LAN on the lab's interfaces)",
						rate, strings.Join(g.LabIfaces, ", "))
				}
			}
		}
		if quietGuest {
			r.Checked = append(r.Checked, g.Name+" quiet")
		}
	}
	return r, nil
}

// traffic is a physical host's packet count on its lab interfaces and
// the lab's count of what it delivered there, read together.
type traffic struct {
	received, sent uint64
	err            error
}

func readTraffic(ctx context.Context, g Guest) traffic {
	if len(g.LabIfaces) == 0 || g.LabSent == nil {
		return traffic{}
	}
	var t traffic
	if t.sent, t.err = g.LabSent(ctx); t.err != nil {
		return t
	}
	var cmd strings.Builder
	for _, ifc := range g.LabIfaces {
		fmt.Fprintf(&cmd, "cat /sys/class/net/%s/statistics/rx_packets; ", ifc)
	}
	out, err := g.Run(ctx, cmd.String())
	if err != nil {
		t.err = err
		return t
	}
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.err = fmt.Errorf("rx_packets %q: %w", f, err)
			return t
		}
		t.received += n
	}
	return t
}

func readGuest(ctx context.Context, g Guest) (*procstat.Snapshot, error) {
	out, err := g.Run(ctx, procstat.Command(false))
	if err != nil {
		return nil, err
	}
	return procstat.Parse(out)
}

// timersCommand lists the active systemd timers (none without systemd).
const timersCommand = "systemctl list-timers --no-legend --plain --no-pager 2>/dev/null || true"

// parseTimers picks the unit names out of `systemctl list-timers`; the
// columns before them are dates with spaces, so the unit is the field
// that ends in .timer.
func parseTimers(out []byte) []string {
	var ts []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasSuffix(f, ".timer") {
				ts = append(ts, f)
				break
			}
		}
	}
	sort.Strings(ts)
	return slices.Compact(ts)
}

func loadAverage(proc string) (float64, error) {
	data, err := os.ReadFile(filepath.Join(proc, "loadavg"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}

// governors counts CPUs per frequency governor; empty where cpufreq is
// not exposed (most VMs).
func governors(sys string) map[string]int {
	paths, _ := filepath.Glob(filepath.Join(sys, "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
	out := map[string]int{}
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			out[strings.TrimSpace(string(data))]++
		}
	}
	return out
}
