package labs

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// statsVMs adds libvirt's statistics to the fake world's VMs.
type statsVMs struct {
	VMs
	cpu atomic.Int64
}

func (s *statsVMs) DomainStats(names []string) ([]hypervisor.DomainStats, error) {
	var out []hypervisor.DomainStats
	for _, n := range names {
		c := float64(s.cpu.Add(1))
		out = append(out, hypervisor.DomainStats{Domain: n, CPUSeconds: c, BalloonBytes: 512 << 20, RSSBytes: 300 << 20,
			Blocks: []hypervisor.BlockStats{{Device: "vda", ReadBytes: 100, WriteBytes: 50}, {Device: "vdb", ReadBytes: 1}},
			NICs:   []hypervisor.NICStats{{Device: "t0", RxPackets: 3}, {Device: "t1", RxPackets: 4}},
			Has:    map[string]bool{"cpu": true, "balloon": true, "rss": true}})
	}
	return out, nil
}

// procRemote answers the sampler's /proc command with a guest where the
// workload alice has two processes whose RSS grows with each sample.
type procRemote struct {
	*fakeRemote
	n *atomic.Int64
}

// RootStream plays the sampler loop: a reading every 100 ms, written in
// pieces that do not follow the readings, until ctx ends.
func (r procRemote) RootStream(ctx context.Context, cmd string, w io.Writer) error {
	for {
		out := r.reading()
		w.Write(out[:7])
		w.Write(append(out[7:], "#end\n"...))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r procRemote) reading() []byte {
	i := r.n.Add(1)
	return []byte(fmt.Sprintf(`#self 900
#conf
4096
100
#stat
1 (systemd) S 0 1 1 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 5 1000 100 0
300 (sh) S 1 300 300 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 5 1000 %d 0
301 (alice) S 300 300 300 0 -1 0 0 0 0 0 20 20 0 0 20 0 1 0 5 1000 100 0
#fd
300 3
301 4
#env
300/environ:FORGELAB_WORKLOAD=alice
301/environ:FORGELAB_WORKLOAD=alice
#cgroup
`, 100+i))
}

type procSoftware struct {
	*fakeSoftware
	n atomic.Int64
}

func (s *procSoftware) Connect(ctx context.Context, st *State, host string) (Remote, error) {
	r, err := s.fakeSoftware.Connect(ctx, st, host)
	if err != nil {
		return nil, err
	}
	return procRemote{fakeRemote: r.(*fakeRemote), n: &s.n}, nil
}

// A run samples libvirt's statistics into hosts.csv (devices summed) and
// the workloads' processes into processes.csv.
func TestRunSamplesResources(t *testing.T) {
	m, sw := newRunLab(t)
	m.VMs = &statsVMs{VMs: m.VMs}
	m.Software = &procSoftware{fakeSoftware: sw}
	rep, err := m.Run(context.Background(), "mover", RunOptions{SampleEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run, err := runs.Open(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := run.Hosts()
	if err != nil || len(hosts) < 3 {
		t.Fatalf("hosts: %d rows, %v", len(hosts), err)
	}
	h := hosts[len(hosts)-1]
	if h.Up != 1 || !(h.CPUSeconds > 0) || h.MemoryBytes != 512<<20 || h.MemoryRSSBytes != 300<<20 ||
		h.BlockReadBytes != 101 || h.BlockWriteBytes != 50 || h.NetRxPackets != 7 {
		t.Errorf("hosts.csv row %+v", h)
	}
	procs, err := run.Processes()
	if err != nil || len(procs) < 3*5 { // 3 hosts, about 2 s at 5 Hz
		t.Fatalf("processes: %d rows, %v", len(procs), err)
	}
	p := procs[0]
	if p.Process != "alice" || p.Kind != "workload" || p.Processes != 2 || p.OpenFDs != 7 || math.Abs(p.CPUSeconds-0.6) > 1e-9 || !(p.RSSBytes > 200*4096) {
		t.Errorf("processes.csv row %+v", p)
	}
}

// A soak run lasts its duration past the scenario's end, starts
// workloads that ended early again, and refuses --for with it.
func TestSoakDuration(t *testing.T) {
	m, sw := newRunLab(t)
	ctx := context.Background()
	if _, err := m.Run(ctx, "mover", RunOptions{For: time.Second, Duration: time.Second}); err == nil {
		t.Error("--for with --duration accepted")
	}
	began := time.Now()
	rep, err := m.Run(ctx, "mover", RunOptions{Duration: 4 * time.Second, SampleEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 4*time.Second {
		t.Errorf("a 4 s soak run took %s", took)
	}
	if n := len(sw.events("workload alice@a")); n < 2 {
		t.Errorf("alice ran %d times in a soak run; a workload that ends early starts again", n)
	}
	run, _ := runs.Open(rep.Dir)
	evs, _ := run.Events()
	soak, restarts := false, 0
	for _, e := range evs {
		if e.Action == "run.start" && e.Args["soak"] == true {
			soak = true
		}
		if e.Action == "workload.restart" {
			restarts++
		}
	}
	if !soak || restarts == 0 {
		t.Errorf("run.start soak=%v, %d workload.restart events", soak, restarts)
	}
	if _, err := run.Processes(); err != nil {
		t.Errorf("processes without sampling: %v", err)
	}
}
