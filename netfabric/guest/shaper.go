// Package guest shapes links from inside the hosts: tc netem (and htb for
// rate) on the host's own interface, run over SSH. It is the only way to
// shape the links of adopted physical hosts and works for VMs too. Each
// host shapes what it sends (its interface's egress), so directions map
// directly onto hosts.
package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/forgelab/forgelab/netfabric"
)

// Runner runs a shell command on a lab host (over SSH, as root) and
// returns its output. provision's SSH client satisfies it.
type Runner interface {
	Run(ctx context.Context, host, cmd string) (string, error)
}

// Shaper is the guest fabric of one lab.
type Shaper struct {
	links     netfabric.Links
	run       Runner
	statePath string

	mu    sync.Mutex
	state state
	netem map[string]error // host -> netem probe result
}

var _ netfabric.Shaper = (*Shaper)(nil)

// state survives between CLI processes in statePath.
type state struct {
	Quality map[string]map[string]netfabric.Impairment `json:"quality"` // link -> host -> quality
	Down    map[string]bool                            `json:"down,omitempty"`
	Groups  [][]string                                 `json:"groups,omitempty"`
	// Layout forgelab left on each host interface ("host/iface").
	Layout map[string]layout `json:"layout,omitempty"`
	// Prior records each interface's root qdisc before forgelab touched it
	// ("host/iface" -> "kind handle"), to check the way back on teardown.
	Prior map[string]string `json:"prior,omitempty"`
	// Clsact marks interfaces where forgelab added the clsact qdisc.
	Clsact map[string]bool `json:"clsact,omitempty"`
}

// New returns the guest shaper of links. Every endpoint needs Iface (the
// interface name inside the host) and, for partitions, MAC.
func New(links netfabric.Links, run Runner, statePath string) (*Shaper, error) {
	if err := links.Validate(); err != nil {
		return nil, err
	}
	for _, l := range links {
		for _, e := range l.Endpoints {
			if e.Iface == "" {
				return nil, fmt.Errorf("link %s: host %s: no interface name", l.Name, e.Host)
			}
		}
	}
	s := &Shaper{links: links, run: run, statePath: statePath, netem: map[string]error{}}
	s.state = state{
		Quality: map[string]map[string]netfabric.Impairment{}, Down: map[string]bool{},
		Layout: map[string]layout{}, Prior: map[string]string{}, Clsact: map[string]bool{},
	}
	for _, l := range links {
		s.state.Quality[l.Name] = map[string]netfabric.Impairment{}
		for _, e := range l.Endpoints {
			s.state.Quality[l.Name][e.Host] = l.Quality
		}
	}
	if statePath != "" {
		if b, err := os.ReadFile(statePath); err == nil {
			if err := json.Unmarshal(b, &s.state); err != nil {
				return nil, fmt.Errorf("guest fabric state %s: %w", statePath, err)
			}
		}
	}
	return s, nil
}

// Name implements netfabric.Shaper.
func (s *Shaper) Name() string { return "guest" }

func key(e netfabric.Endpoint) string { return e.Host + "/" + e.Iface }

func (s *Shaper) save() error {
	if s.statePath == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.statePath+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("guest fabric state: %w", err)
	}
	return os.Rename(s.statePath+".tmp", s.statePath)
}

func (s *Shaper) exec(ctx context.Context, host, cmd string) (string, error) {
	out, err := s.run.Run(ctx, host, cmd)
	if err != nil {
		return out, fmt.Errorf("on %s: %s: %w: %s", host, cmd, err, strings.TrimSpace(out))
	}
	return out, nil
}

// canExpress checks, before anything changes, that host can do q.
func (s *Shaper) canExpress(ctx context.Context, host string, q netfabric.Impairment) error {
	if !needsNetem(q) {
		return nil
	}
	err, probed := s.netem[host]
	if !probed {
		if _, perr := s.run.Run(ctx, host, probeNetem); perr != nil {
			err = fmt.Errorf("%w: host %s has no working netem (tc netem, sch_netem): %v", netfabric.ErrUnsupported, host, perr)
		}
		s.netem[host] = err
	}
	return err
}

// adopt records an interface's root qdisc the first time forgelab touches
// it, and refuses an interface whose root qdisc someone configured: forgelab
// would have no way to give it back.
func (s *Shaper) adopt(ctx context.Context, e netfabric.Endpoint) error {
	k := key(e)
	if _, ok := s.state.Prior[k]; ok {
		return nil
	}
	out, err := s.exec(ctx, e.Host, "tc -j qdisc show dev "+e.Iface+" root")
	if err != nil {
		return err
	}
	var qs []struct {
		Kind   string `json:"kind"`
		Handle string `json:"handle"`
	}
	if err := json.Unmarshal([]byte(out), &qs); err != nil {
		return fmt.Errorf("on %s: tc -j qdisc show dev %s: %w", e.Host, e.Iface, err)
	}
	prior := "default"
	if len(qs) > 0 {
		prior = qs[0].Kind + " " + qs[0].Handle
		if qs[0].Handle != "0:" && qs[0].Kind != "noqueue" {
			return fmt.Errorf("%w: %s on %s already has a root qdisc of its own (%s): forgelab will not replace it", netfabric.ErrUnsupported, e.Iface, e.Host, prior)
		}
	}
	s.state.Prior[k] = prior
	return nil
}

// ensureClsact adds the clsact qdisc for forgelab's filters, refusing an
// interface that has its own ingress configuration.
func (s *Shaper) ensureClsact(ctx context.Context, e netfabric.Endpoint) error {
	k := key(e)
	if s.state.Clsact[k] {
		return nil
	}
	out, err := s.exec(ctx, e.Host, "tc -j qdisc show dev "+e.Iface+" ingress")
	if err != nil {
		return err
	}
	if strings.Contains(out, `"kind"`) {
		return fmt.Errorf("%w: %s on %s already has an ingress/clsact qdisc of its own: forgelab will not add filters to it", netfabric.ErrUnsupported, e.Iface, e.Host)
	}
	if _, err := s.exec(ctx, e.Host, "tc qdisc add dev "+e.Iface+" clsact"); err != nil {
		return err
	}
	s.state.Clsact[k] = true
	return nil
}

// Setup applies every link's current quality.
func (s *Shaper) Setup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			if err := s.canExpress(ctx, e.Host, s.state.Quality[l.Name][e.Host]); err != nil {
				return fmt.Errorf("link %s: %w", l.Name, err)
			}
		}
	}
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			if err := s.apply(ctx, l.Name, e); err != nil {
				return err
			}
		}
	}
	return s.save()
}

func (s *Shaper) apply(ctx context.Context, link string, e netfabric.Endpoint) error {
	q := s.state.Quality[link][e.Host]
	if err := s.adopt(ctx, e); err != nil {
		return err
	}
	k := key(e)
	if cmd := renderShape(e.Iface, q, s.state.Layout[k]); cmd != "" {
		if _, err := s.exec(ctx, e.Host, cmd); err != nil {
			return err
		}
	}
	s.state.Layout[k] = layoutOf(q)
	down := s.state.Down[link] || q.Down
	if down || s.state.Clsact[k] {
		if err := s.ensureClsact(ctx, e); err != nil {
			return err
		}
		if _, err := s.exec(ctx, e.Host, renderDown(e.Iface, down)); err != nil {
			return err
		}
	}
	return nil
}

// Set implements netfabric.Shaper.
func (s *Shaper) Set(ctx context.Context, link, from string, q netfabric.Impairment) error {
	_, froms, err := s.links.CheckSet(link, from, q)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range froms {
		if err := s.canExpress(ctx, e.Host, q); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	for _, e := range froms {
		s.state.Quality[link][e.Host] = q
		if err := s.apply(ctx, link, e); err != nil {
			return fmt.Errorf("link %s from %s: %w", link, e.Host, err)
		}
	}
	return s.save()
}

// SetUp implements netfabric.Shaper: a down link drops everything in and
// out of each host's interface on it (the interface itself stays up, so
// addresses and routes survive).
func (s *Shaper) SetUp(ctx context.Context, link string, up bool) error {
	l, err := s.links.Find(link)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Down[link] = !up
	for _, e := range l.Endpoints {
		if err := s.apply(ctx, link, e); err != nil {
			return err
		}
	}
	return s.save()
}

// Partition implements netfabric.Shaper: each host drops frames arriving
// from the MACs of hosts in other groups.
func (s *Shaper) Partition(ctx context.Context, groups [][]string) error {
	if err := s.links.CheckGroups(groups); err != nil {
		return err
	}
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			if e.MAC == "" {
				return fmt.Errorf("partition: %w: link %s host %s has no MAC", netfabric.ErrUnsupported, l.Name, e.Host)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.applyGroups(ctx, groups); err != nil {
		return err
	}
	s.state.Groups = groups
	return s.save()
}

// Heal implements netfabric.Shaper.
func (s *Shaper) Heal(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.applyGroups(ctx, nil); err != nil {
		return err
	}
	s.state.Groups = nil
	return s.save()
}

func (s *Shaper) applyGroups(ctx context.Context, groups [][]string) error {
	g := netfabric.GroupOf(groups)
	for _, l := range s.links {
		for _, to := range l.Endpoints {
			var macs []string
			for _, e := range l.Endpoints {
				if netfabric.Separated(g, e.Host, to.Host) {
					macs = append(macs, e.MAC)
				}
			}
			if len(macs) == 0 && !s.state.Clsact[key(to)] {
				continue // nothing there to remove
			}
			if err := s.ensureClsact(ctx, to); err != nil {
				return err
			}
			if _, err := s.exec(ctx, to.Host, renderPartition(to.Iface, macs)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Show implements netfabric.Shaper. Counters: what the interface sent
// (RxPackets/RxBytes: what entered the link from the host) and what the
// host's netem dropped (DropLoss: loss and queue overflow together).
func (s *Shaper) Show(ctx context.Context) (netfabric.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := netfabric.State{Shaper: s.Name(), Groups: s.state.Groups}
	for _, l := range s.links {
		ls := netfabric.LinkState{Name: l.Name, Up: !s.state.Down[l.Name]}
		for _, e := range l.Endpoints {
			d := netfabric.Direction{From: e.Host, Quality: s.state.Quality[l.Name][e.Host]}
			if c, err := s.counters(ctx, e); err == nil {
				d.Counters = c
			}
			ls.Directions = append(ls.Directions, d)
		}
		st.Links = append(st.Links, ls)
	}
	return st, nil
}

func (s *Shaper) counters(ctx context.Context, e netfabric.Endpoint) (*netfabric.Counters, error) {
	dir := "/sys/class/net/" + e.Iface + "/statistics/"
	out, err := s.exec(ctx, e.Host, "cat "+dir+"tx_packets "+dir+"tx_bytes && tc -s -j qdisc show dev "+e.Iface)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitN(out, "\n", 3)
	if len(lines) < 3 {
		return nil, errors.New("short counter output")
	}
	c := &netfabric.Counters{}
	c.RxPackets, _ = strconv.ParseUint(strings.TrimSpace(lines[0]), 10, 64)
	c.RxBytes, _ = strconv.ParseUint(strings.TrimSpace(lines[1]), 10, 64)
	var qs []struct {
		Kind  string `json:"kind"`
		Drops uint64 `json:"drops"`
	}
	if json.Unmarshal([]byte(lines[2]), &qs) == nil {
		for _, q := range qs {
			if q.Kind == "netem" {
				c.DropLoss += q.Drops
			}
		}
	}
	return c, nil
}

// Teardown gives every interface back what it had: forgelab's filters and
// clsact go, and the root qdisc returns to the host's default (forgelab
// only ever took over interfaces that had the default).
func (s *Shaper) Teardown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			k := key(e)
			if s.state.Layout[k] != layoutNone {
				if _, err := s.exec(ctx, e.Host, "tc qdisc del dev "+e.Iface+" root"); err != nil {
					errs = append(errs, err)
				}
			}
			if s.state.Clsact[k] {
				if _, err := s.exec(ctx, e.Host, "tc qdisc del dev "+e.Iface+" clsact"); err != nil {
					errs = append(errs, err)
				}
			}
			delete(s.state.Layout, k)
			delete(s.state.Clsact, k)
			delete(s.state.Prior, k)
		}
	}
	if len(errs) == 0 && s.statePath != "" {
		if err := os.Remove(s.statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	} else if err := s.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
