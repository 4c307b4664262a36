// Package backend is what forgelab serve needs from the labs of this
// machine, and nothing more: a narrow interface so the server, the
// Prometheus collector and the web UI are tested against a fake
// (backendtest) and the labs control path is wired in one place.
//
// Reads return plain values; control calls take the caller's source
// ("api", "ui") for the lab's event log. Errors wrap ErrNotFound,
// ErrBadInput or ErrConflict when the caller asked for something wrong
// (the server answers 4xx), ErrUnsupported when this backend cannot do it
// at all (501); any other error is a failure (500).
package backend

import (
	"context"
	"errors"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// Sentinels a Backend wraps so the server can tell the caller's mistakes
// from its own failures.
var (
	// ErrNotFound: no such lab, link, host or run.
	ErrNotFound = errors.New("not found")
	// ErrBadInput: impossible values, unknown action, malformed request.
	ErrBadInput = errors.New("bad input")
	// ErrConflict: the request is valid but the lab cannot do it now (not
	// ready, busy, its fabric lacks the capability).
	ErrConflict = errors.New("conflict")
	// ErrUnsupported: this backend cannot do that at all (yet).
	ErrUnsupported = errors.New("not supported")
)

// Backend is everything serve reads from and changes in the labs.
type Backend interface {
	// Labs lists the labs with saved state, sorted by name.
	Labs(ctx context.Context) ([]LabSummary, error)
	// Topology is a lab's hosts (with current positions), links and
	// management network.
	Topology(ctx context.Context, lab string) (*Topology, error)
	// Links is the fabric's current quality and counters per direction.
	Links(ctx context.Context, lab string) (netfabric.State, error)
	// DomainStats are the libvirt statistics of the lab's VMs; physical
	// hosts have none.
	DomainStats(ctx context.Context, lab string) ([]DomainStats, error)
	// Workloads are the latest numeric fields of the workloads' JSON lines.
	Workloads(ctx context.Context, lab string) ([]WorkloadValue, error)
	// Processes are the latest resources of the workloads' and services'
	// processes in the hosts, while a run samples them; none otherwise.
	Processes(ctx context.Context, lab string) ([]ProcessStats, error)
	// Scenario is the running scenario's clock and the actions it applied.
	Scenario(ctx context.Context, lab string) (ScenarioStatus, error)
	// Events returns the lab's events after cursor (0: from the start),
	// oldest first, at most limit of them, and the cursor to ask with next.
	Events(ctx context.Context, lab string, after int64, limit int) ([]Event, int64, error)

	Control
}

// Control changes a running lab. Every call validates all its input
// before it changes anything and logs one event with source.
type Control interface {
	// SetLink changes the quality of what host from sends on link (every
	// direction for from ""); fields of c left nil keep their value.
	SetLink(ctx context.Context, source, lab, link, from string, c QualityChange) error
	// SetLinkUp takes a whole link down (nothing passes) or up.
	SetLinkUp(ctx context.Context, source, lab, link string, up bool) error
	// Partition splits the lab into groups that cannot reach each other.
	Partition(ctx context.Context, source, lab string, groups [][]string) error
	// Heal ends a partition.
	Heal(ctx context.Context, source, lab string) error
	// HostAction is one of HostActions on a VM.
	HostAction(ctx context.Context, source, lab, host, action string) error
	// StartScenario plays a scenario (a file the lab knows, "" for the
	// lab file's own) and records a run; StopScenario ends it.
	StartScenario(ctx context.Context, source, lab, scenario string) error
	StopScenario(ctx context.Context, source, lab string) error
}

// Runs is an optional capability (found by type assertion): recorded runs,
// which outlive their lab.
type Runs interface {
	Runs(ctx context.Context) ([]RunSummary, error)
	// Run is one run's series and events, for a replay.
	Run(ctx context.Context, lab, id string) (*Run, error)
}

// Paths is an optional capability: the routes that demo conversations
// take now (Alice on a talking to Bob on d), drawn over the links they use.
type Paths interface {
	Paths(ctx context.Context, lab string) ([]Path, error)
}

// Path is one conversation's route at this moment.
type Path struct {
	Name  string   `json:"name"`  // e.g. "alice→bob"
	Hosts []string `json:"hosts"` // every hop, sender first
	Links []string `json:"links"` // the link between each two hops
}

// Sources a web client may claim; the CLI and the scenario engine have
// their own and never come through the server.
const (
	SourceAPI = "api"
	SourceUI  = "ui"
)

// HostActions are the host actions, as hypervisor names them.
var HostActions = []string{"stop", "start", "kill", "pause", "resume", "reboot"}

// LabSummary is one line of the lab list.
type LabSummary struct {
	Name    string    `json:"name"`
	Phase   string    `json:"phase"` // creating, ready, failed, destroying
	Fabric  string    `json:"fabric,omitempty"`
	Created time.Time `json:"created"`
	Hosts   int       `json:"hosts"`
	Links   int       `json:"links"`
}

// Topology is a lab's shape at this moment.
type Topology struct {
	Lab   string `json:"lab"`
	Phase string `json:"phase"`
	// Mgmt is the management network every host has a NIC on.
	Mgmt  Mgmt   `json:"mgmt"`
	Hosts []Host `json:"hosts"`
	Links []Link `json:"links"`
}

// Mgmt is the management network.
type Mgmt struct {
	Name   string `json:"name"`   // libvirt network
	Prefix string `json:"prefix"` // e.g. 10.213.7.0/24
}

// Host is one host of a lab.
type Host struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // vm, physical
	// Position in metres; nil when the lab gives none (the UI lays it out).
	Position *[3]float64 `json:"position"`
	State    string      `json:"state"` // running, paused, shut off, unknown
	Up       bool        `json:"up"`
	MgmtIP   string      `json:"mgmt_ip,omitempty"`
}

// Link is a point-to-point link (two endpoints) or a segment (more).
type Link struct {
	Name      string   `json:"name"`
	Endpoints []string `json:"endpoints"`
}

// Segment reports whether l joins more than two hosts.
func (l Link) Segment() bool { return len(l.Endpoints) > 2 }

// DomainStats are one VM's libvirt statistics, cumulative since it started.
type DomainStats struct {
	Host        string       `json:"host"`
	Domain      string       `json:"domain"`
	CPUSeconds  float64      `json:"cpu_seconds"`
	MemoryBytes uint64       `json:"memory_bytes"` // the balloon's (libvirt_domain_info_memory_usage_bytes)
	RSSBytes    uint64       `json:"rss_bytes"`    // QEMU's resident memory here (libvirt_domain_memory_stats_rss_bytes)
	Blocks      []BlockStats `json:"blocks"`
	NICs        []NICStats   `json:"nics"`
}

// BlockStats are one disk's counters; Device is libvirt's target (vda).
type BlockStats struct {
	Device        string `json:"device"`
	ReadBytes     uint64 `json:"read_bytes"`
	WriteBytes    uint64 `json:"write_bytes"`
	ReadRequests  uint64 `json:"read_requests"`
	WriteRequests uint64 `json:"write_requests"`
}

// NICStats are one NIC's counters; Device is libvirt's target (the tap).
type NICStats struct {
	Device    string `json:"device"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
}

// ProcessStats are one workload's or service's processes on one host
// (a run's processes.csv, docs/metrics.md).
type ProcessStats struct {
	Host       string  `json:"host"`
	Process    string  `json:"process"`
	Kind       string  `json:"kind"` // workload or service
	Processes  float64 `json:"processes"`
	RSSBytes   float64 `json:"rss_bytes"`
	OpenFDs    float64 `json:"open_fds"` // NaN: not known
	CPUSeconds float64 `json:"cpu_seconds"`
}

// WorkloadValue is the last value of one numeric field of a workload's
// JSON lines.
type WorkloadValue struct {
	Host     string  `json:"host"`
	Workload string  `json:"workload"`
	Field    string  `json:"field"`
	Value    float64 `json:"value"`
}

// ScenarioStatus is the running scenario, if any.
type ScenarioStatus struct {
	Running bool   `json:"running"`
	Name    string `json:"name,omitempty"`
	// Clock is the time since the scenario started.
	Clock time.Duration `json:"clock_ns"`
	// Applied counts the scenario's actions applied, by action, since
	// serve started watching (a Prometheus counter).
	Applied map[string]uint64 `json:"applied,omitempty"`
}

// Event is one change to a lab (the labs event log's line).
type Event struct {
	Seq    int64          `json:"seq"` // position in the log, the cursor
	Time   time.Time      `json:"time"`
	Source string         `json:"source"`
	Action string         `json:"action"`
	Args   map[string]any `json:"args,omitempty"`
	Result string         `json:"result,omitempty"` // ok, error
	Error  string         `json:"error,omitempty"`
}

// QualityChange changes some of a direction's quality; nil fields keep
// their value. Units as netfabric.Impairment: bits/s, ns, percent.
type QualityChange struct {
	Clear        bool           `json:"clear,omitempty"` // start from no impairment
	RateBits     *int64         `json:"rate_bits,omitempty"`
	Delay        *time.Duration `json:"delay_ns,omitempty"`
	Jitter       *time.Duration `json:"jitter_ns,omitempty"`
	Distribution *string        `json:"distribution,omitempty"`
	Loss         *float64       `json:"loss,omitempty"`
	Duplicate    *float64       `json:"duplicate,omitempty"`
	Reorder      *float64       `json:"reorder,omitempty"`
	Corrupt      *float64       `json:"corrupt,omitempty"`
	Limit        *int           `json:"limit,omitempty"`
}

// Apply returns q changed by c.
func (c QualityChange) Apply(q netfabric.Impairment) netfabric.Impairment {
	if c.Clear {
		q = netfabric.Impairment{}
	}
	if c.RateBits != nil {
		q.RateBits = *c.RateBits
	}
	if c.Delay != nil {
		q.Delay = *c.Delay
	}
	if c.Jitter != nil {
		q.Jitter = *c.Jitter
	}
	if c.Distribution != nil {
		q.Distribution = *c.Distribution
	}
	if c.Loss != nil {
		q.Loss = *c.Loss
	}
	if c.Duplicate != nil {
		q.Duplicate = *c.Duplicate
	}
	if c.Reorder != nil {
		q.Reorder = *c.Reorder
	}
	if c.Corrupt != nil {
		q.Corrupt = *c.Corrupt
	}
	if c.Limit != nil {
		q.Limit = *c.Limit
	}
	return q
}

// RunSummary is one recorded run (as telemetry/runs lists it).
type RunSummary struct {
	Lab      string    `json:"lab"`
	ID       string    `json:"id"`
	Scenario string    `json:"scenario,omitempty"`
	Variant  string    `json:"variant,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"` // zero while it records
	Status   string    `json:"status"`       // running, complete, incomplete, failed
}

// Run is a recorded run for a replay: the lab's shape, every series
// (named as docs/metrics.md, so positions and link quality at any moment
// come from forgelab_host_position_meters and forgelab_link_*), and the
// events. Over telemetry/runs: runs.Open, its plan.json for the topology,
// Select for the series, Events for the events.
type Run struct {
	RunSummary
	Topology *Topology `json:"topology"`
	Series   []Series  `json:"series"`
	Events   []Event   `json:"events"`
	// Paths are the demo conversations' routes as the run recorded them,
	// each from its T on (a new entry when one changes).
	Paths []RunPath `json:"paths,omitempty"`
}

// RunPath is a conversation's route from T (seconds since the run's
// start) until the next RunPath of the same Name.
type RunPath struct {
	T float64 `json:"t"`
	Path
}

// Series is one recorded metric: T in seconds since the run's start
// (telemetry/runs.Series).
type Series struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	T      []float64         `json:"t"`
	V      []float64         `json:"v"`
}
