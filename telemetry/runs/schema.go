package runs

import (
	"math"
	"strconv"
	"time"
)

// Column names every table starts with.
const (
	ColTime = "time" // RFC 3339 UTC with nanoseconds
	ColT    = "t"    // seconds since the start of the run
)

// timeLayout writes every nanosecond digit, so the time column has one
// width and sorts as text too.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Position is where a host is, in metres.
type Position struct {
	Host    string
	X, Y, Z float64
}

// LinkSample is one direction of one link at one moment: its configured
// quality and its counters, in the base units of docs/metrics.md. NaN is
// "not known" (a shaper that cannot count) and is written as an empty cell.
type LinkSample struct {
	Link string
	From string // the sending host

	Up                 float64 // 1 when the link is up and this direction is not down
	RateBytesPerSecond float64 // 0 = unlimited
	DelaySeconds       float64
	JitterSeconds      float64
	LossRatio          float64 // 0-1 (the mean loss of a Gilbert-Elliott model)
	DuplicateRatio     float64
	CorruptRatio       float64
	ReorderRatio       float64

	RxPackets, RxBytes float64 // entered the link from From
	TxPackets, TxBytes float64 // delivered to receivers

	DroppedLoss, DroppedQueue, DroppedDown         float64
	DroppedPartition, DroppedError, DroppedOverrun float64
	// DroppedPeerDown: toward a host whose NIC had no carrier (not booted
	// yet, stopped): expected, not a fault of the link.
	DroppedPeerDown float64

	QueuedPackets float64
}

// HostSample is one host's resources at one moment, from libvirt's domain
// statistics (or /proc over SSH on a physical host). Device counters are
// summed over the host's disks and NICs. NaN is "not known".
type HostSample struct {
	Host   string
	Kind   string // vm or physical
	Domain string // libvirt domain; empty for a physical host

	Up float64 // 1 while the host runs (a VM's domain is running, not paused)

	CPUSeconds         float64 // since the domain started
	MemoryBytes        float64
	BlockReadBytes     float64
	BlockWriteBytes    float64
	BlockReadRequests  float64
	BlockWriteRequests float64
	NetRxBytes         float64
	NetTxBytes         float64
	NetRxPackets       float64
	NetTxPackets       float64
	// MemoryRSSBytes is the QEMU process's resident memory on this
	// machine (libvirt's balloon.rss); NaN for a physical host.
	MemoryRSSBytes float64
}

// ProcessSample is one workload's or service's processes on one host at
// one moment, sampled from /proc in the guest: every process that carries
// the workload's marker (children included) or runs in the service's
// unit. NaN is "not known".
type ProcessSample struct {
	Host    string
	Process string // the workload's or service's name
	Kind    string // workload or service

	Processes  float64 // how many processes
	RSSBytes   float64 // resident memory, summed (pages shared between them count once per process)
	OpenFDs    float64 // open file descriptors, summed
	CPUSeconds float64 // user+system, since each started, with the children each waited for
}

// Row types returned by the readers: the sample and when it was taken.
type (
	PositionRow struct {
		Time time.Time
		T    float64
		Position
	}
	LinkRow struct {
		Time time.Time
		T    float64
		LinkSample
	}
	HostRow struct {
		Time time.Time
		T    float64
		HostSample
	}
	ProcessRow struct {
		Time time.Time
		T    float64
		ProcessSample
	}
)

// schema maps a sample type to its CSV columns. Label columns are strings,
// value columns float64. A value column is named as the metric in
// docs/metrics.md; where the metric has a label the row does not carry
// (the axis of a position, the cause of a drop) the column names it in
// braces: forgelab_link_dropped_packets_total{cause=loss}.
type schema[T any] struct {
	labels []col[T, string]
	values []col[T, float64]
}

type col[T, V any] struct {
	name string
	ptr  func(*T) *V
}

func (s schema[T]) header() []string {
	h := []string{ColTime, ColT}
	for _, c := range s.labels {
		h = append(h, c.name)
	}
	for _, c := range s.values {
		h = append(h, c.name)
	}
	return h
}

func (s schema[T]) record(t time.Time, secs float64, v *T) []string {
	rec := make([]string, 0, 2+len(s.labels)+len(s.values))
	rec = append(rec, t.UTC().Format(timeLayout), formatFloat(secs))
	for _, c := range s.labels {
		rec = append(rec, *c.ptr(v))
	}
	for _, c := range s.values {
		rec = append(rec, formatFloat(*c.ptr(v)))
	}
	return rec
}

// formatFloat writes NaN as an empty cell (pandas reads it as NaN, a
// spreadsheet as blank) and never uses an exponent.
func formatFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	if f == 0 {
		f = 0 // -0 would print as "-0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func parseFloat(s string) (float64, error) {
	if s == "" {
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

var positionSchema = schema[Position]{
	labels: []col[Position, string]{{"host", func(p *Position) *string { return &p.Host }}},
	values: []col[Position, float64]{
		{"forgelab_host_position_meters{axis=x}", func(p *Position) *float64 { return &p.X }},
		{"forgelab_host_position_meters{axis=y}", func(p *Position) *float64 { return &p.Y }},
		{"forgelab_host_position_meters{axis=z}", func(p *Position) *float64 { return &p.Z }},
	},
}

var linkSchema = schema[LinkSample]{
	labels: []col[LinkSample, string]{
		{"link", func(s *LinkSample) *string { return &s.Link }},
		{"from", func(s *LinkSample) *string { return &s.From }},
	},
	values: []col[LinkSample, float64]{
		{"forgelab_link_up", func(s *LinkSample) *float64 { return &s.Up }},
		{"forgelab_link_rate_bytes_per_second", func(s *LinkSample) *float64 { return &s.RateBytesPerSecond }},
		{"forgelab_link_delay_seconds", func(s *LinkSample) *float64 { return &s.DelaySeconds }},
		{"forgelab_link_jitter_seconds", func(s *LinkSample) *float64 { return &s.JitterSeconds }},
		{"forgelab_link_loss_ratio", func(s *LinkSample) *float64 { return &s.LossRatio }},
		{"forgelab_link_duplicate_ratio", func(s *LinkSample) *float64 { return &s.DuplicateRatio }},
		{"forgelab_link_corrupt_ratio", func(s *LinkSample) *float64 { return &s.CorruptRatio }},
		{"forgelab_link_reorder_ratio", func(s *LinkSample) *float64 { return &s.ReorderRatio }},
		{"forgelab_link_rx_packets_total", func(s *LinkSample) *float64 { return &s.RxPackets }},
		{"forgelab_link_rx_bytes_total", func(s *LinkSample) *float64 { return &s.RxBytes }},
		{"forgelab_link_tx_packets_total", func(s *LinkSample) *float64 { return &s.TxPackets }},
		{"forgelab_link_tx_bytes_total", func(s *LinkSample) *float64 { return &s.TxBytes }},
		{"forgelab_link_dropped_packets_total{cause=loss}", func(s *LinkSample) *float64 { return &s.DroppedLoss }},
		{"forgelab_link_dropped_packets_total{cause=queue}", func(s *LinkSample) *float64 { return &s.DroppedQueue }},
		{"forgelab_link_dropped_packets_total{cause=down}", func(s *LinkSample) *float64 { return &s.DroppedDown }},
		{"forgelab_link_dropped_packets_total{cause=partition}", func(s *LinkSample) *float64 { return &s.DroppedPartition }},
		{"forgelab_link_dropped_packets_total{cause=error}", func(s *LinkSample) *float64 { return &s.DroppedError }},
		{"forgelab_link_dropped_packets_total{cause=overrun}", func(s *LinkSample) *float64 { return &s.DroppedOverrun }},
		{"forgelab_link_dropped_packets_total{cause=peer_down}", func(s *LinkSample) *float64 { return &s.DroppedPeerDown }},
		{"forgelab_link_queued_packets", func(s *LinkSample) *float64 { return &s.QueuedPackets }},
	},
}

var hostSchema = schema[HostSample]{
	labels: []col[HostSample, string]{
		{"host", func(s *HostSample) *string { return &s.Host }},
		{"kind", func(s *HostSample) *string { return &s.Kind }},
		{"domain", func(s *HostSample) *string { return &s.Domain }},
	},
	values: []col[HostSample, float64]{
		{"forgelab_host_up", func(s *HostSample) *float64 { return &s.Up }},
		{"libvirt_domain_info_cpu_time_seconds_total", func(s *HostSample) *float64 { return &s.CPUSeconds }},
		{"libvirt_domain_info_memory_usage_bytes", func(s *HostSample) *float64 { return &s.MemoryBytes }},
		{"libvirt_domain_block_stats_read_bytes_total", func(s *HostSample) *float64 { return &s.BlockReadBytes }},
		{"libvirt_domain_block_stats_write_bytes_total", func(s *HostSample) *float64 { return &s.BlockWriteBytes }},
		{"libvirt_domain_block_stats_read_requests_total", func(s *HostSample) *float64 { return &s.BlockReadRequests }},
		{"libvirt_domain_block_stats_write_requests_total", func(s *HostSample) *float64 { return &s.BlockWriteRequests }},
		{"libvirt_domain_interface_stats_receive_bytes_total", func(s *HostSample) *float64 { return &s.NetRxBytes }},
		{"libvirt_domain_interface_stats_transmit_bytes_total", func(s *HostSample) *float64 { return &s.NetTxBytes }},
		{"libvirt_domain_interface_stats_receive_packets_total", func(s *HostSample) *float64 { return &s.NetRxPackets }},
		{"libvirt_domain_interface_stats_transmit_packets_total", func(s *HostSample) *float64 { return &s.NetTxPackets }},
		{"libvirt_domain_memory_stats_rss_bytes", func(s *HostSample) *float64 { return &s.MemoryRSSBytes }},
	},
}

var processSchema = schema[ProcessSample]{
	labels: []col[ProcessSample, string]{
		{"host", func(s *ProcessSample) *string { return &s.Host }},
		{"process", func(s *ProcessSample) *string { return &s.Process }},
		{"kind", func(s *ProcessSample) *string { return &s.Kind }},
	},
	values: []col[ProcessSample, float64]{
		{"forgelab_process_instances", func(s *ProcessSample) *float64 { return &s.Processes }},
		{"forgelab_process_resident_memory_bytes", func(s *ProcessSample) *float64 { return &s.RSSBytes }},
		{"forgelab_process_open_fds", func(s *ProcessSample) *float64 { return &s.OpenFDs }},
		{"forgelab_process_cpu_seconds_total", func(s *ProcessSample) *float64 { return &s.CPUSeconds }},
	},
}
