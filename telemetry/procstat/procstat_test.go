package procstat

import (
	"bufio"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// What the command prints on a guest with one workload of two processes
// (a shell and its child that made its own process group) and one
// service; comm with spaces and parentheses.
const sample = `#conf
4096
100
#stat
1 (systemd) S 0 1 1 0 -1 4194560 100 200 10 20 150 50 300 100 20 0 1 0 5 170000000 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0
200 (sh) S 1 200 200 0 -1 4194560 0 0 0 0 10 5 100 50 20 0 1 0 500 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0
201 (leak (v2) x) R 200 200 200 0 -1 4194560 0 0 0 0 300 100 0 0 20 0 1 0 510 9000000 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0
300 (babeld) S 1 300 300 0 -1 4194560 0 0 0 0 40 10 0 0 20 0 1 0 400 3000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0
#fd
1 80
200 3
201 7
300 5
#env
200/environ:FORGELAB_WORKLOAD=leaky
201/environ:FORGELAB_WORKLOAD=leaky
#cgroup
300/cgroup:forgelab-babeld.service
#cpu
cpu  1000 10 500 8000 100 5 5 0 0 0
#mem
MemTotal:        1000 kB
MemFree:          100 kB
MemAvailable:     400 kB
#disk
 254       0 vda 100 0 800 10 50 0 400 5 0 0 0 0 0 0 0 0 0
 254       1 vda1 90 0 700 10 40 0 300 5 0 0 0 0 0 0 0 0 0
   7       0 loop0 5 0 10 1 0 0 0 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 1 0 8 0 1 0 8 0 0 0 0 0 0 0 0 0 0
 259       1 nvme0n1p1 1 0 8 0 1 0 8 0 0 0 0 0 0 0 0 0 0
#net
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   999     9    0    0    0     0          0         0      999     9    0    0    0     0       0          0
  ens3:  1000    10    0    0    0     0          0         0     2000    20    0    0    0     0       0          0
  ens4:   100     1    0    0    0     0          0         0      200     2    0    0    0     0       0          0
`

func TestParseAndGroups(t *testing.T) {
	s, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Procs) != 4 || s.Procs[2].Comm != "leak (v2) x" || s.Procs[2].PGID != 200 || s.Procs[2].FDs != 7 {
		t.Fatalf("procs = %+v", s.Procs)
	}
	gs := Groups(s)
	want := []Group{
		{Name: "leaky", Kind: "workload", Processes: 2, RSSBytes: 1200 * 4096, FDs: 10, CPUSeconds: (10 + 5 + 100 + 50 + 300 + 100) / 100.0},
		{Name: "babeld", Kind: "service", Processes: 1, RSSBytes: 500 * 4096, FDs: 5, CPUSeconds: 0.5},
	}
	if len(gs) != len(want) {
		t.Fatalf("groups = %+v", gs)
	}
	for i := range want {
		if gs[i] != want[i] {
			t.Errorf("group %d = %+v, want %+v", i, gs[i], want[i])
		}
	}
	h := s.Host
	wantHost := Host{CPUBusyTicks: 1000 + 10 + 500 + 5 + 5, CPUTotalTicks: 1000 + 10 + 500 + 8000 + 100 + 5 + 5,
		MemTotalBytes: 1000 * 1024, MemAvailBytes: 400 * 1024,
		Reads: 101, ReadSectors: 808, Writes: 51, WriteSectors: 408,
		RxBytes: 1100, RxPackets: 11, TxBytes: 2200, TxPackets: 22}
	if h == nil || *h != wantHost {
		t.Errorf("host = %+v\nwant   %+v", h, wantHost)
	}
}

func TestGroupsUnknownFDs(t *testing.T) {
	s := &Snapshot{PageSize: 4096, ClockTicks: 100, Procs: []Proc{{PID: 5, Workload: "w", FDs: -1}, {PID: 6, Workload: "w", FDs: 3}}}
	if g := Groups(s); len(g) != 1 || !math.IsNaN(g[0].FDs) {
		t.Errorf("groups = %+v, want fds NaN", g)
	}
}

func TestParseNothing(t *testing.T) {
	if _, err := Parse([]byte("sudo: a password is required\n")); err == nil {
		t.Error("parsed output with no process")
	}
}

func TestBusyBetween(t *testing.T) {
	a := &Snapshot{ClockTicks: 100, Procs: []Proc{{PID: 1, Comm: "idle", Ticks: 10}, {PID: 2, Comm: "spin", Ticks: 100}}}
	b := &Snapshot{ClockTicks: 100, Procs: []Proc{{PID: 1, Comm: "idle", Ticks: 10}, {PID: 2, Comm: "spin", Ticks: 290}, {PID: 3, Comm: "new", Ticks: 20}}}
	got := BusyBetween(a, b, 2, 0.05)
	if len(got) != 2 || got[0].Comm != "spin" || math.Abs(got[0].CPU-0.95) > 1e-9 || got[1].Comm != "new" || math.Abs(got[1].CPU-0.1) > 1e-9 {
		t.Errorf("BusyBetween = %+v", got)
	}
}

// The command on this machine's real /proc finds a process of ours by
// the marker and reads the host's totals.
func TestCommandOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	sleeper := exec.Command("sleep", "30")
	sleeper.Env = append(os.Environ(), WorkloadEnv+"=probe")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	out, err := exec.Command("sh", "-c", Command(true)).Output()
	if err != nil {
		t.Fatalf("command: %v", err)
	}
	s, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var found *Proc
	for i, p := range s.Procs {
		if p.PID == sleeper.Process.Pid {
			found = &s.Procs[i]
		}
	}
	if found == nil || found.Workload != "probe" || found.Comm != "sleep" || found.RSSPages == 0 {
		t.Fatalf("sleep %d not found with its marker: %+v", sleeper.Process.Pid, found)
	}
	if os.Geteuid() == 0 && found.FDs < 3 {
		t.Errorf("sleep has %d open files, want at least 3 (stdin, stdout, stderr)", found.FDs)
	}
	if s.Host == nil || s.Host.MemTotalBytes == 0 || s.Host.CPUTotalTicks == 0 {
		t.Errorf("host totals = %+v", s.Host)
	}
	t.Logf("%d processes, output %s bytes", len(s.Procs), strconv.Itoa(len(out)))
}

// The loop prints a reading per interval, each ending with EndMarker,
// and the loop's own processes carry the sampler's marker.
func TestLoopCommandOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	cmd := exec.Command("sh", "-c", LoopCommand(false, 0.2))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var readings []string
	var cur strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for len(readings) < 3 && sc.Scan() {
		if sc.Text() == EndMarker {
			readings = append(readings, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	if len(readings) < 3 {
		t.Fatalf("%d readings", len(readings))
	}
	s, err := Parse([]byte(readings[2]))
	if err != nil {
		t.Fatal(err)
	}
	var sampler *Group
	for _, g := range Groups(s) {
		if g.Kind == "sampler" {
			sampler = &g
		}
	}
	if sampler == nil || sampler.Name != SamplerName || sampler.Processes < 1 {
		t.Errorf("the loop's own processes are not a sampler group: %+v", Groups(s))
	}
}
