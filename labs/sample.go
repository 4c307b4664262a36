package labs

// Resource sampling during a run: libvirt's domain statistics for VMs
// (hosts.csv), and the software under test inside every host from /proc
// over SSH (processes.csv; and hosts.csv for physical hosts, which have no
// libvirt). One SSH session per host for the whole run runs the sampler
// loop (telemetry/procstat.LoopCommand), which prints one reading per
// interval, so a sample costs no SSH session and no sudo. Measured under
// TCG (TestSoakRun, 2026-12-02): the loop used 19 % of the guest's vCPU at
// 1 Hz (about 200 ms of CPU a reading, the kernel's /proc emulated), a
// reading with its own sudo 286 ms; the loop's cost is in processes.csv
// as kind sampler. On KVM a reading costs a few milliseconds.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/telemetry/procstat"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// domainStatser is an optional capability of VMs: libvirt's statistics
// (*hypervisor.Conn has it).
type domainStatser interface {
	DomainStats(names []string) ([]hypervisor.DomainStats, error)
}

// rootRunner is an optional capability of Remote: a command as root,
// its stdout back (the SSH remote has it).
type rootRunner interface {
	RootOutput(ctx context.Context, cmd string) ([]byte, error)
}

// rootStreamer is an optional capability of Remote: a command as root,
// its stdout streamed to w until it ends or ctx does.
type rootStreamer interface {
	RootStream(ctx context.Context, cmd string, w io.Writer) error
}

// hostSample turns a domain's statistics into a hosts.csv row.
func hostSample(s *runs.HostSample, d hypervisor.DomainStats) {
	if d.Has["cpu"] {
		s.CPUSeconds = d.CPUSeconds
	}
	if d.Has["balloon"] {
		s.MemoryBytes = float64(d.BalloonBytes)
	}
	if d.Has["rss"] {
		s.MemoryRSSBytes = float64(d.RSSBytes)
	}
	var br, bw, brq, bwq, nrx, ntx, nrp, ntp float64
	for _, b := range d.Blocks {
		br, bw, brq, bwq = br+float64(b.ReadBytes), bw+float64(b.WriteBytes), brq+float64(b.ReadRequests), bwq+float64(b.WriteRequests)
	}
	for _, n := range d.NICs {
		nrx, ntx, nrp, ntp = nrx+float64(n.RxBytes), ntx+float64(n.TxBytes), nrp+float64(n.RxPackets), ntp+float64(n.TxPackets)
	}
	s.BlockReadBytes, s.BlockWriteBytes, s.BlockReadRequests, s.BlockWriteRequests = br, bw, brq, bwq
	s.NetRxBytes, s.NetTxBytes, s.NetRxPackets, s.NetTxPackets = nrx, ntx, nrp, ntp
}

// procHostSample fills a physical host's row from its /proc totals.
func procHostSample(s *runs.HostSample, h *procstat.Host, ticks uint64) {
	s.Up = 1
	s.CPUSeconds = float64(h.CPUBusyTicks) / float64(ticks)
	s.MemoryBytes = float64(h.MemTotalBytes - min(h.MemAvailBytes, h.MemTotalBytes))
	s.BlockReadBytes, s.BlockWriteBytes = float64(h.ReadSectors*512), float64(h.WriteSectors*512)
	s.BlockReadRequests, s.BlockWriteRequests = float64(h.Reads), float64(h.Writes)
	s.NetRxBytes, s.NetTxBytes = float64(h.RxBytes), float64(h.TxBytes)
	s.NetRxPackets, s.NetTxPackets = float64(h.RxPackets), float64(h.TxPackets)
}

func nanHost(h HostPlan) runs.HostSample {
	nan := math.NaN()
	return runs.HostSample{Host: h.Name, Kind: h.Kind, Domain: h.Domain, Up: nan,
		CPUSeconds: nan, MemoryBytes: nan, BlockReadBytes: nan, BlockWriteBytes: nan, BlockReadRequests: nan,
		BlockWriteRequests: nan, NetRxBytes: nan, NetTxBytes: nan, NetRxPackets: nan, NetTxPackets: nan, MemoryRSSBytes: nan}
}

// procSampler samples every host's /proc during a run.
type procSampler struct {
	r     *runner
	every time.Duration

	mu       sync.Mutex
	physical map[string]runs.HostSample // latest totals of physical hosts
}

// run samples each host every interval until ctx ends; a host that
// cannot be reached is recorded once as an event and tried again at the
// next sample.
func (p *procSampler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range p.r.st.Plan.Hosts {
		wg.Add(1)
		go func() { defer wg.Done(); p.host(ctx, h) }()
	}
	wg.Wait()
}

func (p *procSampler) host(ctx context.Context, h HostPlan) {
	physical := !kindOf(h).madeHere()
	last := ""
	report := func(err error) {
		if err == nil || ctx.Err() != nil {
			return
		}
		if err.Error() != last {
			last = err.Error()
			p.r.rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "sample.processes", Args: map[string]any{"host": h.Name}, Error: last})
		}
	}
	for ctx.Err() == nil {
		report(p.stream(ctx, h, physical))
		select {
		case <-ctx.Done():
		case <-time.After(p.every): // then connect again (the host may have rebooted)
		}
	}
}

// stream runs the sampler loop on one host over one SSH session and
// records each sample as it arrives, until ctx ends or the session breaks.
func (p *procSampler) stream(ctx context.Context, h HostPlan, physical bool) error {
	conn, err := p.r.m.software().Connect(ctx, p.r.st, h.Name)
	if err != nil {
		return err
	}
	defer conn.Close()
	rs, ok := conn.(rootStreamer)
	if !ok {
		return fmt.Errorf("host %s: this connection cannot run commands: %w", h.Name, errors.ErrUnsupported)
	}
	var parseErr error
	var pageSize uint64 // the loop prints it once, before its first reading
	w := &sampleSplitter{each: func(out []byte) {
		if err := p.record(h, physical, time.Now(), out, &pageSize); err != nil && parseErr == nil {
			parseErr = err
			report := fmt.Errorf("host %s: %w", h.Name, err)
			p.r.rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "sample.processes", Args: map[string]any{"host": h.Name}, Error: report.Error()})
		}
	}}
	err = rs.RootStream(ctx, procstat.LoopCommand(physical, p.every.Seconds()), w)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("the sampler loop ended")
	}
	return fmt.Errorf("host %s: %w", h.Name, err)
}

// record writes one sample of a host.
func (p *procSampler) record(h HostPlan, physical bool, at time.Time, out []byte, pageSize *uint64) error {
	snap, err := procstat.Parse(out)
	if err != nil {
		return err
	}
	if snap.HasConf {
		*pageSize = snap.PageSize
	} else if *pageSize > 0 {
		snap.PageSize = *pageSize
	}
	var rows []runs.ProcessSample
	for _, g := range procstat.Groups(snap) {
		rows = append(rows, runs.ProcessSample{Host: h.Name, Process: g.Name, Kind: g.Kind,
			Processes: float64(g.Processes), RSSBytes: g.RSSBytes, OpenFDs: g.FDs, CPUSeconds: g.CPUSeconds})
	}
	if len(rows) > 0 {
		if err := p.r.rec.Process(at, rows...); err != nil {
			return err
		}
	}
	if physical && snap.Host != nil {
		s := nanHost(h)
		procHostSample(&s, snap.Host, snap.ClockTicks)
		p.mu.Lock()
		p.physical[h.Name] = s
		p.mu.Unlock()
	}
	return nil
}

// sampleSplitter cuts the loop's output at each EndMarker line.
type sampleSplitter struct {
	buf  []byte
	each func([]byte)
}

func (s *sampleSplitter) Write(b []byte) (int, error) {
	s.buf = append(s.buf, b...)
	marker := []byte("\n" + procstat.EndMarker + "\n")
	for {
		i := bytes.Index(s.buf, marker)
		if i < 0 {
			if bytes.HasPrefix(s.buf, marker[1:]) { // an empty sample
				s.buf = s.buf[len(marker)-1:]
				continue
			}
			return len(b), nil
		}
		s.each(s.buf[:i+1])
		s.buf = s.buf[i+len(marker):]
	}
}

// latest is a physical host's last totals; false before the first.
func (p *procSampler) latest(host string) (runs.HostSample, bool) {
	if p == nil {
		return runs.HostSample{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.physical[host]
	return s, ok
}
