// Package procstat reads a Linux host's processes and totals from /proc
// with one shell command, so a run can sample the software under test in
// guests (and physical hosts' resources) over one SSH session per host
// per sample rather than one per process. The command uses the shell's
// builtins where it can (a fork under TCG costs milliseconds of guest
// CPU): one cat of every process's stat, a glob per process for its open
// files, one grep for the workload marker in environments and one for
// forgelab's service units in cgroups.
//
// Parse turns its output into a Snapshot; Groups sums a snapshot's
// processes per workload and service (children included); Busy compares
// two snapshots for the quiet-environment check.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// WorkloadEnv is the environment variable forgelab sets on every workload
// process: its children inherit it, whatever process group or session
// they make, so the sampler finds the whole tree.
const WorkloadEnv = "FORGELAB_WORKLOAD"

// SamplerName is the workload marker of the sampler loop itself
// (LoopCommand), so its own cost shows in processes.csv as kind sampler,
// and the quiet check does not count it as noise.
const SamplerName = "forgelab-sampler"

// EndMarker ends each sample of LoopCommand's output.
const EndMarker = "#end"

// LoopCommand is Command's reading in a loop, one sample every interval
// (plus the reading's own time) until its output is closed: one SSH
// session for a whole run, so a sample costs the host no SSH session, no
// sudo and no sshd fork. Each sample ends with a line EndMarker.
func LoopCommand(withHost bool, interval float64) string {
	// The sleep runs while the reading is taken: one reading per interval,
	// or per reading's time when that is longer.
	loop := "cd /proc || exit 1\n" + confLine + "while :; do\nsleep " + strconv.FormatFloat(interval, 'f', -1, 64) + " &\n" +
		reading(withHost) + "echo '" + EndMarker + "' || exit 0\nwait\ndone\n"
	return "exec env " + WorkloadEnv + "=" + SamplerName + " sh -c '" + strings.ReplaceAll(loop, "'", `'\''`) + "'"
}

// Command is the shell command (POSIX sh, run as root so every process's
// files are readable) whose output Parse reads. withHost adds the host's
// totals (/proc/stat, meminfo, diskstats, net/dev), for physical hosts.
func Command(withHost bool) string {
	return "cd /proc || exit 1\n" + confLine + reading(withHost) + "exit 0\n"
}

// confLine prints the page size; clock ticks are USER_HZ, 100 on every
// Linux ABI.
const confLine = "echo '#conf'; getconf PAGESIZE\n"

// reading is one reading in /proc. Under TCG a fork and exec costs the
// guest tens of milliseconds, so it has two (cat, grep; a subshell for
// the loop over grep's output) and the rest is shell builtins: one grep
// finds both markers, and only the marked processes' open files are
// counted (a glob each). Names of workloads and services are
// [A-Za-z0-9_.-], which ends the match inside environ's NUL-separated
// records.
func reading(withHost bool) string {
	var b strings.Builder
	b.WriteString(`echo "#self $$"
echo '#stat'; cat [0-9]*/stat 2>/dev/null
echo '#marks'; grep -a -o -H -e '` + WorkloadEnv + `=[A-Za-z0-9_.-]*' -e 'forgelab-[A-Za-z0-9_.-]*\.service' [0-9]*/environ [0-9]*/cgroup 2>/dev/null |
while IFS= read -r l; do p=${l%%/*}; set -- $p/fd/*; [ -L "$1" ] || set --; echo "$l fd=$#"; done
`)
	if withHost {
		b.WriteString(`echo '#cpu'; head -n 1 stat
echo '#mem'; cat meminfo
echo '#disk'; cat diskstats
echo '#net'; cat net/dev
`)
	}
	return b.String()
}

// Proc is one process.
type Proc struct {
	PID, PPID, PGID int
	Comm            string
	// Ticks is user+system time of the process and of its children it
	// waited for, in clock ticks.
	Ticks    uint64
	RSSPages uint64
	FDs      int    // -1: not known
	Workload string // the WorkloadEnv value, "" for none
	Service  string // the forgelab service unit's name (without forgelab- and .service)
}

// Host are a host's totals.
type Host struct {
	CPUBusyTicks, CPUTotalTicks  uint64 // all CPUs since boot
	MemTotalBytes, MemAvailBytes uint64
	ReadSectors, WriteSectors    uint64 // 512-byte sectors, whole disks
	Reads, Writes                uint64
	RxBytes, TxBytes             uint64 // every interface but lo
	RxPackets, TxPackets         uint64
}

// Snapshot is one reading.
type Snapshot struct {
	PageSize   uint64
	ClockTicks uint64
	HasConf    bool // PageSize was read (LoopCommand prints it once, before the first reading)
	Procs      []Proc
	Host       *Host // nil unless the command was asked for it
	// Self is the shell that ran the command (0: not known): it, its
	// ancestors (sudo, the SSH session) and its children are the
	// sampler's own.
	Self int
}

// Parse reads Command's output.
func Parse(out []byte) (*Snapshot, error) {
	s := &Snapshot{PageSize: 4096, ClockTicks: 100}
	byPID := map[int]*Proc{}
	var order []int
	section := ""
	var h *Host
	// grep -z writes its matches NUL-terminated.
	out = bytes.ReplaceAll(out, []byte{0}, []byte{'\n'})
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "#self "); ok {
			s.Self, _ = strconv.Atoi(strings.TrimSpace(v))
			continue
		}
		if strings.HasPrefix(line, "#") && !strings.Contains(line, " ") {
			section = line[1:]
			if section == "cpu" && h == nil {
				h = &Host{}
				s.Host = h
			}
			continue
		}
		switch section {
		case "conf":
			if v, err := strconv.ParseUint(strings.TrimSpace(line), 10, 64); err == nil && v > 0 && !s.HasConf {
				s.PageSize, s.HasConf = v, true
			}
		case "stat":
			p, err := parseStat(line)
			if err != nil {
				continue // a process that ended mid-read
			}
			p.FDs = -1
			if _, dup := byPID[p.PID]; !dup {
				byPID[p.PID] = &p
				order = append(order, p.PID)
			}
		case "fd":
			f := strings.Fields(line)
			if len(f) == 2 {
				pid, _ := strconv.Atoi(f[0])
				n, err := strconv.Atoi(f[1])
				if p := byPID[pid]; p != nil && err == nil {
					p.FDs = n
				}
			}
		case "marks", "env", "cgroup":
			// 123/environ:FORGELAB_WORKLOAD=name fd=6 or
			// 123/cgroup:forgelab-name.service fd=6 (fd= only in marks)
			fds := -1
			if i := strings.LastIndex(line, " fd="); i > 0 {
				if n, err := strconv.Atoi(line[i+4:]); err == nil {
					fds = n
				}
				line = line[:i]
			}
			pid, val, ok := procValue(line, "environ:"+WorkloadEnv+"=")
			isService := false
			if !ok {
				pid, val, ok = procValue(line, "cgroup:forgelab-")
				isService = true
			}
			p := byPID[pid]
			if !ok || p == nil {
				continue
			}
			if isService {
				p.Service = strings.TrimSuffix(val, ".service")
			} else {
				p.Workload = val
			}
			if fds >= 0 {
				p.FDs = fds
			}
		case "cpu":
			h.CPUBusyTicks, h.CPUTotalTicks = parseCPU(line)
		case "mem":
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				switch f[0] {
				case "MemTotal:":
					h.MemTotalBytes = v * 1024
				case "MemAvailable:":
					h.MemAvailBytes = v * 1024
				}
			}
		case "disk":
			f := strings.Fields(line)
			if len(f) >= 10 && wholeDisk(f[2]) {
				h.Reads += atou(f[3])
				h.ReadSectors += atou(f[5])
				h.Writes += atou(f[7])
				h.WriteSectors += atou(f[9])
			}
		case "net":
			name, rest, ok := strings.Cut(line, ":")
			name = strings.TrimSpace(name)
			f := strings.Fields(rest)
			if ok && name != "lo" && len(f) >= 10 {
				h.RxBytes += atou(f[0])
				h.RxPackets += atou(f[1])
				h.TxBytes += atou(f[8])
				h.TxPackets += atou(f[9])
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc sample: %w", err)
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("read /proc sample: no process listed (the host's /proc is not readable, or the command did not run: %.200q)", out)
	}
	for _, pid := range order {
		s.Procs = append(s.Procs, *byPID[pid])
	}
	return s, nil
}

// parseStat reads /proc/PID/stat; comm may hold spaces and parentheses,
// so the fields after it are found from the last ')'.
func parseStat(line string) (Proc, error) {
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return Proc{}, fmt.Errorf("stat line %.80q", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return Proc{}, err
	}
	// After comm: state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15) cutime(16) cstime(17) ... rss(24).
	f := strings.Fields(line[end+1:])
	if len(f) < 22 {
		return Proc{}, fmt.Errorf("stat line of %d: %d fields", pid, len(f))
	}
	at := func(field int) uint64 { return atou(f[field-3]) }
	return Proc{PID: pid, PPID: int(at(4)), PGID: int(at(5)), Comm: line[open+1 : end],
		Ticks: at(14) + at(15) + at(16) + at(17), RSSPages: at(24)}, nil
}

// parseCPU reads the "cpu" line of /proc/stat: busy is everything but
// idle and iowait.
func parseCPU(line string) (busy, total uint64) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		if i >= 8 {
			break // guest and guest_nice are inside user and nice already
		}
		n := atou(v)
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total
}

// wholeDisk tells disks from their partitions and from loop and RAM
// devices, by name as the kernel gives them.
func wholeDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "dm-", "sr", "zram", "md"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	last := name[len(name)-1]
	if last < '0' || last > '9' {
		return true // sda, vda, xvda
	}
	// nvme0n1 and mmcblk0 are disks; nvme0n1p1, mmcblk0p1, sda1 are not.
	trimmed := strings.TrimRight(name, "0123456789")
	switch {
	case strings.HasPrefix(name, "nvme"), strings.HasPrefix(name, "mmcblk"):
		return !strings.HasSuffix(trimmed, "p")
	}
	return false
}

func procValue(line, key string) (int, string, bool) {
	slash := strings.IndexByte(line, '/')
	if slash < 1 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(line[:slash])
	if err != nil {
		return 0, "", false
	}
	rest, ok := strings.CutPrefix(line[slash+1:], key)
	return pid, strings.TrimSpace(rest), ok && rest != ""
}

func atou(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// Group is the resources of one workload or service on one host: every
// process that carries its marker, children included.
type Group struct {
	Name       string
	Kind       string // workload or service
	Processes  int
	RSSBytes   float64
	FDs        float64 // NaN when some process's files were not readable
	CPUSeconds float64 // since each process started (children it waited for included)
}

// Groups sums s's processes per workload and per service, sorted by kind
// and name. A service's process that also carries a workload marker
// counts for the workload.
func Groups(s *Snapshot) []Group {
	byKey := map[[2]string]*Group{}
	for _, p := range s.Procs {
		kind, name := "workload", p.Workload
		if name == SamplerName {
			kind = "sampler"
		}
		if name == "" {
			kind, name = "service", p.Service
		}
		if name == "" {
			continue
		}
		k := [2]string{kind, name}
		g := byKey[k]
		if g == nil {
			g = &Group{Name: name, Kind: kind}
			byKey[k] = g
		}
		g.Processes++
		g.RSSBytes += float64(p.RSSPages * s.PageSize)
		g.CPUSeconds += float64(p.Ticks) / float64(s.ClockTicks)
		if p.FDs < 0 {
			g.FDs = nan
		} else {
			g.FDs += float64(p.FDs)
		}
	}
	out := make([]Group, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind > out[j].Kind // workloads first
		}
		return out[i].Name < out[j].Name
	})
	return out
}
