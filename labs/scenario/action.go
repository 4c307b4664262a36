// Package scenario reads an experiment's timeline of events (a scenario
// file, or the [scenario] section of a lab file), expands it into a flat,
// sorted list of concrete actions, checks it against the lab, and plays it
// on a clock through an executor the lab provides.
package scenario

import (
	"fmt"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// Kind is what an action does, as written after do = in a scenario.
type Kind string

// Action kinds. Each maps to one operation of the lab's control path.
const (
	LinkSet    Kind = "link.set"   // change some quality fields (Patch) of Link, from Sender or both ways
	LinkReset  Kind = "link.reset" // back to the lab file's declared quality
	LinkDown   Kind = "link.down"
	LinkUp     Kind = "link.up"
	Partition  Kind = "partition" // Groups
	Heal       Kind = "heal"
	HostStop   Kind = "host.stop"
	HostStart  Kind = "host.start"
	HostKill   Kind = "host.kill"
	HostPause  Kind = "host.pause"
	HostResume Kind = "host.resume"
	HostReboot Kind = "host.reboot"
	NICDown    Kind = "nic.down" // Host's NIC on Link
	NICUp      Kind = "nic.up"
	WorkStart  Kind = "workload.start"
	WorkStop   Kind = "workload.stop"
	Exec       Kind = "exec" // Command on Host
	Marker     Kind = "marker"

	// Only in a from/to window; they expand into the kinds above.
	LinkFlap Kind = "link.flap" // down and up every period
	LinkRamp Kind = "link.ramp" // link.set from begin to end, every step
)

// Action is one concrete thing to do at a time from the start of the run.
type Action struct {
	At   time.Duration
	Kind Kind

	Link     string     // link.*, nic.*
	Sender   string     // link.set: only the traffic this host sends; "" both ways
	Host     string     // host.*, nic.*, exec
	Workload string     // workload.*
	Patch    Patch      // link.set
	Groups   [][]string // partition
	Command  string     // exec: a shell command line
	Label    string     // marker

	// Where the action comes from, for messages and the run record.
	File  string
	Line  int // of its event
	Event int // index of its event in the file, from 0
}

func (a Action) String() string {
	s := fmt.Sprintf("%v %s", a.At, a.Kind)
	switch a.Kind {
	case LinkSet:
		s += " " + a.Link
		if a.Sender != "" {
			s += " from " + a.Sender
		}
		s += " " + a.Patch.String()
	case LinkReset, LinkDown, LinkUp:
		s += " " + a.Link
	case Partition:
		s += fmt.Sprintf(" %v", a.Groups)
	case HostStop, HostStart, HostKill, HostPause, HostResume, HostReboot:
		s += " " + a.Host
	case NICDown, NICUp:
		s += " " + a.Host + " " + a.Link
	case WorkStart, WorkStop:
		s += " " + a.Workload
	case Exec:
		s += fmt.Sprintf(" %s %q", a.Host, a.Command)
	case Marker:
		s += fmt.Sprintf(" %q", a.Label)
	}
	return s
}

// Patch is the part of a link's quality an action sets; nil fields keep
// the link's current value, as `forgelab link set --loss 5%` does.
type Patch struct {
	Rate         *int64 // bits/s; 0 = unlimited
	Delay        *time.Duration
	Jitter       *time.Duration
	Distribution *string
	Loss         *float64 // percent
	// LossBurst is a Gilbert-Elliott model (P, R, 1-H, 1-K in percent);
	// it replaces random loss.
	LossBurst *[4]float64
	Duplicate *float64
	Reorder   *float64
	Corrupt   *float64
	Limit     *int
}

// Apply returns q with the fields of p set.
func (p Patch) Apply(q netfabric.Impairment) netfabric.Impairment {
	if p.Rate != nil {
		q.RateBits = *p.Rate
	}
	if p.Delay != nil {
		q.Delay = *p.Delay
	}
	if p.Jitter != nil {
		q.Jitter = *p.Jitter
	}
	if p.Distribution != nil {
		q.Distribution = *p.Distribution
	}
	if p.Loss != nil {
		q.Loss = *p.Loss
		q.GE = netfabric.GilbertElliott{} // random loss replaces a bursty model
	}
	if b := p.LossBurst; b != nil {
		q.GE = netfabric.GilbertElliott{P: b[0], R: b[1], OneMinusH: b[2], OneMinusK: b[3]}
		q.Loss = 0
	}
	if p.Duplicate != nil {
		q.Duplicate = *p.Duplicate
	}
	if p.Reorder != nil {
		q.Reorder = *p.Reorder
	}
	if p.Corrupt != nil {
		q.Corrupt = *p.Corrupt
	}
	if p.Limit != nil {
		q.Limit = *p.Limit
	}
	return q
}

// IsZero reports whether p sets nothing.
func (p Patch) IsZero() bool { return p == Patch{} }

// String renders the fields p sets, in netfabric's words: "loss 5% delay 20ms".
func (p Patch) String() string {
	if p.IsZero() {
		return "(nothing)"
	}
	// Render through netfabric so units read the same everywhere; fields
	// set to zero would vanish there, so they are named here.
	var zero []string
	q := p.Apply(netfabric.Impairment{})
	add := func(set bool, isZero bool, name string) {
		if set && isZero {
			zero = append(zero, name+" 0")
		}
	}
	add(p.Rate != nil, q.RateBits == 0, "rate")
	add(p.Delay != nil, q.Delay == 0, "delay")
	add(p.Jitter != nil, q.Jitter == 0, "jitter")
	add(p.Loss != nil, q.Loss == 0, "loss")
	add(p.Duplicate != nil, q.Duplicate == 0, "duplicate")
	add(p.Reorder != nil, q.Reorder == 0, "reorder")
	add(p.Corrupt != nil, q.Corrupt == 0, "corrupt")
	add(p.Limit != nil, q.Limit == 0, "limit")
	s := ""
	if !q.IsZero() {
		s = q.String()
	}
	for _, z := range zero {
		if s != "" {
			s += " "
		}
		s += z
	}
	return s
}
