package netfabric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Errors a caller may want to tell apart.
var (
	ErrUnknownLink = errors.New("unknown link")
	ErrUnknownHost = errors.New("unknown host")
	// ErrUnsupported: the chosen shaper cannot express what was asked.
	ErrUnsupported = errors.New("not supported by this shaper")
)

// Endpoint is one host's NIC on a link.
type Endpoint struct {
	Host  string `json:"host"`            // lab host name
	Tap   string `json:"tap,omitempty"`   // host-side netdev (kernel, userspace); empty for adopted hosts
	MAC   string `json:"mac,omitempty"`   // the NIC's MAC address, 52:54:00:...
	Iface string `json:"iface,omitempty"` // interface name inside the host (guest shaper), e.g. "eth1"
	// Remote, userspace only: "ip:port" of the fabricd on another machine
	// that serves this endpoint. Frames to and from it travel as UDP.
	Remote string `json:"remote,omitempty"`
}

// Link is a point-to-point link (two endpoints) or a shared segment (more).
type Link struct {
	Name      string     `json:"name"`
	Bridge    string     `json:"bridge,omitempty"` // kernel shaper: the Linux bridge joining the taps
	Endpoints []Endpoint `json:"endpoints"`
	Quality   Impairment `json:"quality"` // declared quality, every direction
}

// Shaper shapes the links of one lab. The orchestrator holds only this
// interface; backends are picked in one place (labs).
//
// Directions are named by the host the traffic leaves: Set(ctx, "ab", "a",
// q) shapes what a sends on ab; from == "" means every direction. On a
// segment, the quality of "from a" applies to everything a sends there,
// whoever receives it. Every method validates all of its input before it
// changes anything, and returns ErrUnknownLink, ErrUnknownHost or
// ErrUnsupported (wrapped) for what it cannot do.
type Shaper interface {
	Name() string
	// Setup prepares the links and applies their declared Quality. Call it
	// once the hosts' NICs exist; it is idempotent.
	Setup(ctx context.Context) error
	Set(ctx context.Context, link, from string, q Impairment) error
	// SetUp takes a whole link down (nothing passes either way) or up.
	SetUp(ctx context.Context, link string, up bool) error
	// Partition stops traffic between hosts of different groups on every
	// link. Hosts in no group are not affected. It replaces any earlier
	// partition.
	Partition(ctx context.Context, groups [][]string) error
	Heal(ctx context.Context) error
	Show(ctx context.Context) (State, error)
	// Teardown undoes everything Setup and later calls did to hosts
	// (qdiscs, filters, helper devices). It is idempotent and works on a
	// fresh value made from the same links, so destroy needs no live state.
	Teardown(ctx context.Context) error
}

// Capturer is an optional Shaper capability: stream a pcap of everything on
// a link to w until ctx ends.
type Capturer interface {
	Capture(ctx context.Context, link string, w io.Writer) error
}

// Reseeder is an optional Shaper capability: restart the random streams
// (loss, jitter, duplicate, corrupt, reorder) from the lab seed, so the
// same traffic meets the same choices again.
type Reseeder interface {
	Reseed(ctx context.Context) error
}

// State is what Show reports.
type State struct {
	Shaper string      `json:"shaper"`
	Links  []LinkState `json:"links"`
	Groups [][]string  `json:"groups,omitempty"` // current partition; empty when healed
}

// LinkState is one link's current quality per direction.
type LinkState struct {
	Name       string      `json:"name"`
	Up         bool        `json:"up"`
	Directions []Direction `json:"directions"`
}

// Direction is the traffic one host sends on a link.
type Direction struct {
	From    string     `json:"from"`
	Quality Impairment `json:"quality"`
	// Changed is when Quality took effect, by the shaper's own clock, where
	// the shaper knows it (the userspace engine): the moment a change is
	// measured from, rather than when a command asking for it started.
	Changed  time.Time `json:"changed,omitzero"`
	Counters *Counters `json:"counters,omitempty"` // nil where the shaper cannot count
}

// Counters count the traffic of one direction. Packets are wire packets:
// a GSO super-frame counts as the segments it stands for.
type Counters struct {
	RxPackets uint64 `json:"rx_packets"` // entered the link from this host
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"` // delivered to a receiver (each copy of a flood counts)
	TxBytes   uint64 `json:"tx_bytes"`

	DropLoss      uint64 `json:"drop_loss"`      // random or Gilbert-Elliott loss
	DropQueue     uint64 `json:"drop_queue"`     // queue limit reached
	DropDown      uint64 `json:"drop_down"`      // link or direction down
	DropPartition uint64 `json:"drop_partition"` // receiver in another partition group
	DropError     uint64 `json:"drop_error"`     // the receiving device refused the frame
	// DropPeerDown: the receiving host's NIC had no carrier (its VM not
	// started yet, or stopped): expected on an idle or booting lab, not
	// a fault of the link.
	DropPeerDown uint64 `json:"drop_peer_down"`
	DropOverrun  uint64 `json:"drop_overrun"` // the shaper fell behind and the kernel dropped frames before it read them

	Duplicated uint64 `json:"duplicated"`
	Corrupted  uint64 `json:"corrupted"`
	Reordered  uint64 `json:"reordered"`
	Queued     uint64 `json:"queued"` // in the delay line right now
}

// Links is a lab's link table with the checks every shaper shares.
type Links []Link

// Find returns the link called name.
func (ls Links) Find(name string) (*Link, error) {
	for i := range ls {
		if ls[i].Name == name {
			return &ls[i], nil
		}
	}
	return nil, fmt.Errorf("%w %q (links: %v)", ErrUnknownLink, name, ls.names())
}

// Endpoint returns the endpoint of host on link l.
func (l *Link) Endpoint(host string) (*Endpoint, error) {
	for i := range l.Endpoints {
		if l.Endpoints[i].Host == host {
			return &l.Endpoints[i], nil
		}
	}
	hosts := make([]string, len(l.Endpoints))
	for i, e := range l.Endpoints {
		hosts[i] = e.Host
	}
	return nil, fmt.Errorf("%w %q on link %s (endpoints: %v)", ErrUnknownHost, host, l.Name, hosts)
}

// Froms resolves a Set's from argument to the endpoints whose outgoing
// traffic it covers: one, or all of them for "".
func (l *Link) Froms(from string) ([]Endpoint, error) {
	if from == "" {
		return l.Endpoints, nil
	}
	e, err := l.Endpoint(from)
	if err != nil {
		return nil, err
	}
	return []Endpoint{*e}, nil
}

// CheckSet validates the arguments of Shaper.Set.
func (ls Links) CheckSet(link, from string, q Impairment) (*Link, []Endpoint, error) {
	if err := q.Validate(); err != nil {
		return nil, nil, fmt.Errorf("link %s: %w", link, err)
	}
	l, err := ls.Find(link)
	if err != nil {
		return nil, nil, err
	}
	froms, err := l.Froms(from)
	if err != nil {
		return nil, nil, err
	}
	return l, froms, nil
}

// CheckGroups validates a partition: known hosts, none in two groups.
func (ls Links) CheckGroups(groups [][]string) error {
	known := map[string]bool{}
	for _, l := range ls {
		for _, e := range l.Endpoints {
			known[e.Host] = true
		}
	}
	seen := map[string]int{}
	for i, g := range groups {
		for _, h := range g {
			if !known[h] {
				return fmt.Errorf("partition: %w %q (no link has it)", ErrUnknownHost, h)
			}
			if j, dup := seen[h]; dup && j != i {
				return fmt.Errorf("partition: host %q is in groups %d and %d", h, j+1, i+1)
			}
			seen[h] = i
		}
	}
	return nil
}

// GroupOf maps each host named in groups to its group index.
func GroupOf(groups [][]string) map[string]int {
	m := map[string]int{}
	for i, g := range groups {
		for _, h := range g {
			m[h] = i
		}
	}
	return m
}

// Separated reports whether a partition keeps a and b apart.
func Separated(group map[string]int, a, b string) bool {
	ga, oka := group[a]
	gb, okb := group[b]
	return oka && okb && ga != gb
}

// Validate checks a link table: unique link names, at least two
// endpoints, no host twice on one link.
func (ls Links) Validate() error {
	seen := map[string]bool{}
	for _, l := range ls {
		if l.Name == "" {
			return errors.New("link without a name")
		}
		if seen[l.Name] {
			return fmt.Errorf("link %s defined twice", l.Name)
		}
		seen[l.Name] = true
		if len(l.Endpoints) < 2 {
			return fmt.Errorf("link %s: needs at least two endpoints, has %d", l.Name, len(l.Endpoints))
		}
		hosts := map[string]bool{}
		for _, e := range l.Endpoints {
			if e.Host == "" {
				return fmt.Errorf("link %s: endpoint without a host name", l.Name)
			}
			if hosts[e.Host] {
				return fmt.Errorf("link %s: host %s appears twice", l.Name, e.Host)
			}
			hosts[e.Host] = true
		}
		if err := l.Quality.Validate(); err != nil {
			return fmt.Errorf("link %s: %w", l.Name, err)
		}
	}
	return nil
}

func (ls Links) names() []string {
	n := make([]string, len(ls))
	for i, l := range ls {
		n[i] = l.Name
	}
	slices.Sort(n)
	return n
}
