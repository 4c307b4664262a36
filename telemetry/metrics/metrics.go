// Package metrics is forgelab's Prometheus exporter: a collector that reads
// every lab from a backend.Backend on each scrape and emits the families
// of docs/metrics.md, each with the label lab. It keeps no state: what it
// reports is what the labs report at the moment of the scrape.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/backend"
)

// desc builds a family's descriptor; every family has the label lab first.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"lab"}, labels...), nil)
}

var (
	hostUp       = desc("forgelab_host_up", "1 while the host runs.", "host", "kind")
	hostPosition = desc("forgelab_host_position_meters", "Host position from the lab file or mobility.", "host", "axis")

	linkUp        = desc("forgelab_link_up", "1 when the link is up.", "link")
	linkRate      = desc("forgelab_link_rate_bytes_per_second", "Configured rate of what from sends, in bytes per second (Prometheus base unit; x8 for bit/s); 0 = unlimited.", "link", "from")
	linkDelay     = desc("forgelab_link_delay_seconds", "Configured one-way delay.", "link", "from")
	linkJitter    = desc("forgelab_link_jitter_seconds", "Configured jitter.", "link", "from")
	linkLoss      = desc("forgelab_link_loss_ratio", "Configured loss, 0-1 (the long-run mean of a Gilbert-Elliott model).", "link", "from")
	linkDuplicate = desc("forgelab_link_duplicate_ratio", "Configured duplication, 0-1.", "link", "from")
	linkCorrupt   = desc("forgelab_link_corrupt_ratio", "Configured corruption, 0-1.", "link", "from")
	linkReorder   = desc("forgelab_link_reorder_ratio", "Configured reordering, 0-1.", "link", "from")
	linkRxPackets = desc("forgelab_link_rx_packets_total", "Packets that entered the link from from.", "link", "from")
	linkRxBytes   = desc("forgelab_link_rx_bytes_total", "Bytes that entered the link from from.", "link", "from")
	linkTxPackets = desc("forgelab_link_tx_packets_total", "Packets delivered to receivers.", "link", "from")
	linkTxBytes   = desc("forgelab_link_tx_bytes_total", "Bytes delivered to receivers.", "link", "from")
	linkDropped   = desc("forgelab_link_dropped_packets_total", "Packets dropped, by cause.", "link", "from", "cause")
	linkQueued    = desc("forgelab_link_queued_packets", "Packets in the delay line now.", "link", "from")

	vmCPU        = desc("libvirt_domain_info_cpu_time_seconds_total", "CPU time the domain used.", "host", "domain")
	vmMemory     = desc("libvirt_domain_info_memory_usage_bytes", "Memory the domain uses.", "host", "domain")
	vmRSS        = desc("libvirt_domain_memory_stats_rss_bytes", "Resident memory of the domain's QEMU process on this machine.", "host", "domain")
	vmReadBytes  = desc("libvirt_domain_block_stats_read_bytes_total", "Bytes read from the disk.", "host", "domain", "target_device")
	vmWriteBytes = desc("libvirt_domain_block_stats_write_bytes_total", "Bytes written to the disk.", "host", "domain", "target_device")
	vmReadReqs   = desc("libvirt_domain_block_stats_read_requests_total", "Read requests to the disk.", "host", "domain", "target_device")
	vmWriteReqs  = desc("libvirt_domain_block_stats_write_requests_total", "Write requests to the disk.", "host", "domain", "target_device")
	vmRxBytes    = desc("libvirt_domain_interface_stats_receive_bytes_total", "Bytes the NIC received.", "host", "domain", "target_device")
	vmTxBytes    = desc("libvirt_domain_interface_stats_transmit_bytes_total", "Bytes the NIC sent.", "host", "domain", "target_device")
	vmRxPackets  = desc("libvirt_domain_interface_stats_receive_packets_total", "Packets the NIC received.", "host", "domain", "target_device")
	vmTxPackets  = desc("libvirt_domain_interface_stats_transmit_packets_total", "Packets the NIC sent.", "host", "domain", "target_device")

	procCount      = desc("forgelab_process_instances", "Processes of the workload or service.", "host", "process", "kind")
	procRSS        = desc("forgelab_process_resident_memory_bytes", "Resident memory of the workload's or service's processes, summed.", "host", "process", "kind")
	procFDs        = desc("forgelab_process_open_fds", "Open file descriptors of the workload's or service's processes, summed.", "host", "process", "kind")
	procCPU        = desc("forgelab_process_cpu_seconds_total", "User and system CPU of the workload's or service's processes.", "host", "process", "kind")
	workloadValue  = desc("forgelab_workload_value", "The last numeric value of field in the workload's JSON lines.", "host", "workload", "field")
	scenarioClock  = desc("forgelab_scenario_clock_seconds", "Time since the running scenario started.")
	scenarioEvents = desc("forgelab_scenario_events_total", "Scenario actions applied.", "action")
)

var allDescs = []*prometheus.Desc{
	hostUp, hostPosition,
	linkUp, linkRate, linkDelay, linkJitter, linkLoss, linkDuplicate, linkCorrupt, linkReorder,
	linkRxPackets, linkRxBytes, linkTxPackets, linkTxBytes, linkDropped, linkQueued,
	vmCPU, vmMemory, vmRSS, vmReadBytes, vmWriteBytes, vmReadReqs, vmWriteReqs, vmRxBytes, vmTxBytes, vmRxPackets, vmTxPackets,
	workloadValue, scenarioClock, scenarioEvents, procCount, procRSS, procFDs, procCPU,
}

// Collector reads the labs on every scrape.
type Collector struct {
	b       backend.Backend
	timeout time.Duration
	log     *slog.Logger
}

// New returns a collector over b. A scrape gives up on the labs after
// timeout (the scraper's own timeout is usually 10 s).
func New(b backend.Backend, timeout time.Duration, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{b: b, timeout: timeout, log: log}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect emits every lab's series. A lab that fails is left out of this
// scrape (and logged) rather than failing the whole scrape: one broken lab
// must not blind the dashboard to the others. A lab that vanished in the
// middle (destroyed) is left out silently.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	labs, err := c.b.Labs(ctx)
	if err != nil {
		c.log.Warn("metrics: list labs", "err", err)
		return
	}
	for _, l := range labs {
		if err := c.collectLab(ctx, l.Name, ch); err != nil && !errors.Is(err, backend.ErrNotFound) {
			c.log.Warn("metrics: lab left out of this scrape", "lab", l.Name, "err", err)
		}
	}
}

// collectLab reads everything first and emits only when all reads worked,
// so a scrape never holds half a lab.
func (c *Collector) collectLab(ctx context.Context, lab string, ch chan<- prometheus.Metric) error {
	topo, err := c.b.Topology(ctx, lab)
	if err != nil {
		return err
	}
	if topo.Phase != "" && topo.Phase != "ready" {
		return nil // nothing runs yet (or any more)
	}
	links, err := c.b.Links(ctx, lab)
	if err != nil {
		return err
	}
	stats, err := c.b.DomainStats(ctx, lab)
	if err != nil {
		return err
	}
	work, err := c.b.Workloads(ctx, lab)
	if err != nil {
		return err
	}
	procs, err := c.b.Processes(ctx, lab)
	if err != nil {
		return err
	}
	scen, err := c.b.Scenario(ctx, lab)
	if err != nil {
		return err
	}

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{lab}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{lab}, labels...)...)
	}
	for _, h := range topo.Hosts {
		gauge(hostUp, b2f(h.Up), h.Name, h.Kind)
		if h.Position != nil {
			for i, axis := range []string{"x", "y", "z"} {
				gauge(hostPosition, h.Position[i], h.Name, axis)
			}
		}
	}
	for _, l := range links.Links {
		gauge(linkUp, b2f(l.Up), l.Name)
		for _, d := range l.Directions {
			q := d.Quality
			gauge(linkRate, float64(q.RateBits)/8, l.Name, d.From)
			gauge(linkDelay, q.Delay.Seconds(), l.Name, d.From)
			gauge(linkJitter, q.Jitter.Seconds(), l.Name, d.From)
			gauge(linkLoss, LossRatio(q), l.Name, d.From)
			gauge(linkDuplicate, q.Duplicate/100, l.Name, d.From)
			gauge(linkCorrupt, q.Corrupt/100, l.Name, d.From)
			gauge(linkReorder, q.Reorder/100, l.Name, d.From)
			k := d.Counters
			if k == nil {
				continue // this shaper cannot count: no series rather than zeros
			}
			counter(linkRxPackets, float64(k.RxPackets), l.Name, d.From)
			counter(linkRxBytes, float64(k.RxBytes), l.Name, d.From)
			counter(linkTxPackets, float64(k.TxPackets), l.Name, d.From)
			counter(linkTxBytes, float64(k.TxBytes), l.Name, d.From)
			for _, dc := range []struct {
				cause string
				n     uint64
			}{{"loss", k.DropLoss}, {"queue", k.DropQueue}, {"down", k.DropDown},
				{"partition", k.DropPartition}, {"error", k.DropError}, {"peer_down", k.DropPeerDown}, {"overrun", k.DropOverrun}} {
				counter(linkDropped, float64(dc.n), l.Name, d.From, dc.cause)
			}
			gauge(linkQueued, float64(k.Queued), l.Name, d.From)
		}
	}
	for _, s := range stats {
		counter(vmCPU, s.CPUSeconds, s.Host, s.Domain)
		gauge(vmMemory, float64(s.MemoryBytes), s.Host, s.Domain)
		if s.RSSBytes > 0 {
			gauge(vmRSS, float64(s.RSSBytes), s.Host, s.Domain)
		}
		for _, b := range s.Blocks {
			counter(vmReadBytes, float64(b.ReadBytes), s.Host, s.Domain, b.Device)
			counter(vmWriteBytes, float64(b.WriteBytes), s.Host, s.Domain, b.Device)
			counter(vmReadReqs, float64(b.ReadRequests), s.Host, s.Domain, b.Device)
			counter(vmWriteReqs, float64(b.WriteRequests), s.Host, s.Domain, b.Device)
		}
		for _, n := range s.NICs {
			counter(vmRxBytes, float64(n.RxBytes), s.Host, s.Domain, n.Device)
			counter(vmTxBytes, float64(n.TxBytes), s.Host, s.Domain, n.Device)
			counter(vmRxPackets, float64(n.RxPackets), s.Host, s.Domain, n.Device)
			counter(vmTxPackets, float64(n.TxPackets), s.Host, s.Domain, n.Device)
		}
	}
	for _, w := range work {
		gauge(workloadValue, w.Value, w.Host, w.Workload, w.Field)
	}
	for _, p := range procs {
		gauge(procCount, p.Processes, p.Host, p.Process, p.Kind)
		gauge(procRSS, p.RSSBytes, p.Host, p.Process, p.Kind)
		if !math.IsNaN(p.OpenFDs) {
			gauge(procFDs, p.OpenFDs, p.Host, p.Process, p.Kind)
		}
		counter(procCPU, p.CPUSeconds, p.Host, p.Process, p.Kind)
	}
	if scen.Running {
		gauge(scenarioClock, scen.Clock.Seconds())
	}
	for action, n := range scen.Applied {
		counter(scenarioEvents, float64(n), action)
	}
	return nil
}

// LossRatio is a direction's configured loss as a ratio: the long-run
// mean where a Gilbert-Elliott model replaces random loss.
func LossRatio(q netfabric.Impairment) float64 {
	if !q.GE.IsZero() {
		return q.GE.MeanLoss() / 100
	}
	return q.Loss / 100
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
