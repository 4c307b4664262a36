// Package kernel shapes lab links with the Linux kernel: the VMs' taps are
// ports of a bridge per link, and netem (htb for rate alone) shapes each
// direction, all through netlink. It is the fastest fabric and needs
// sch_netem on the host (see HasNetem); rate alone needs only htb.
package kernel

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/forgelab/forgelab/netfabric"
)

// Shaper is the kernel fabric of one lab.
type Shaper struct {
	links     netfabric.Links
	seed      int64
	statePath string

	mu    sync.Mutex
	state state
	known map[string]*layout // by tap name: what this process made there
	netem error              // result of HasNetem, probed on first need
	probe sync.Once

	tickUs float64 // scheduler ticks per microsecond, read once

	// conn stays open while changes come one after another (a schedule
	// plays), and closes after a second of quiet, so a shaper made for
	// one call leaves no socket behind. Guarded by mu.
	conn conn
	idle *time.Timer

	// Set's saves of the state file, at most every saveEvery (saveSoon).
	// Guarded by mu.
	lastSave  time.Time
	dirty     bool
	saveTimer *time.Timer
	saveErr   error

	distMu sync.Mutex
	dists  map[string][]int16 // jitter distribution tables, parsed once
}

// layout is what this process last made of one direction's tc layout
// (clsact on the tap, the down filter, the redirect, the ifb's qdiscs).
// A Set that finds it in place sends only the qdisc changes: in a TCG
// guest each netlink request costs about a millisecond, and the
// layout's checks were most of a change's requests. It belongs to the
// tap's ifindex, so a tap made anew (a restarted VM) gets the careful
// path again; any refused request, e.g. after someone else removed a
// qdisc, takes the careful path too, which rebuilds what is missing.
type layout struct {
	tap      int          // ifindex of the tap it was made on
	ifb      netlink.Link // the direction's ifb; nil: not known to exist
	down     bool         // the drop-all filter is on
	redirect bool         // the redirect to the ifb is on
	qdiscs   bool         // the ifb's qdiscs shape q with limit
	q        netfabric.Impairment
	limit    uint32
}

var _ netfabric.Shaper = (*Shaper)(nil)
var _ netfabric.Capturer = (*Shaper)(nil)
var _ netfabric.Expresser = (*Shaper)(nil)
var _ netfabric.Preparer = (*Shaper)(nil)
var _ netfabric.Flusher = (*Shaper)(nil)

// state is what the kernel cannot tell back (netem does not dump its
// distribution table): the qualities as set, kept in statePath so each
// CLI invocation sees what the last one did.
type state struct {
	Quality map[string]map[string]netfabric.Impairment `json:"quality"` // link -> from host -> quality
	Down    map[string]bool                            `json:"down,omitempty"`
	Groups  [][]string                                 `json:"groups,omitempty"`
}

// New returns the kernel shaper of links. Every endpoint needs a Tap (the
// VM NIC's host-side device, a port of the link's Bridge) of at most 14
// characters; its helper ifb device is the tap's name plus "i". statePath
// ("" = in memory only) keeps the current qualities between processes.
func New(links netfabric.Links, seed int64, statePath string) (*Shaper, error) {
	if err := links.Validate(); err != nil {
		return nil, err
	}
	for _, l := range links {
		for _, e := range l.Endpoints {
			if e.Tap == "" {
				return nil, fmt.Errorf("link %s: host %s has no tap", l.Name, e.Host)
			}
			if _, err := ifbName(e.Tap); err != nil {
				return nil, fmt.Errorf("link %s: %w", l.Name, err)
			}
		}
	}
	s := &Shaper{links: links, seed: seed, statePath: statePath, known: map[string]*layout{}, tickUs: tickPerUsec(), dists: map[string][]int16{}}
	s.state = s.declared()
	if statePath != "" {
		if b, err := os.ReadFile(statePath); err == nil {
			var st state
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, fmt.Errorf("kernel fabric state %s: %w", statePath, err)
			}
			s.state = st
		}
	}
	return s, nil
}

func (s *Shaper) declared() state {
	st := state{Quality: map[string]map[string]netfabric.Impairment{}, Down: map[string]bool{}}
	for _, l := range s.links {
		st.Quality[l.Name] = map[string]netfabric.Impairment{}
		for _, e := range l.Endpoints {
			st.Quality[l.Name][e.Host] = l.Quality
		}
	}
	return st
}

// save writes the state file now. Call with mu held.
func (s *Shaper) save() error {
	if s.statePath == "" {
		return nil
	}
	s.dirty, s.lastSave = false, time.Now()
	b, err := json.MarshalIndent(s.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("kernel fabric state: %w", err)
	}
	return os.Rename(tmp, s.statePath)
}

// Name implements netfabric.Shaper.
func (s *Shaper) Name() string { return "kernel" }

// canExpress checks, before anything changes, that this host can do q.
// CanExpress implements netfabric.Expresser: whether this host's kernel
// can shape q (delay, loss and the like need sch_netem).
func (s *Shaper) CanExpress(q netfabric.Impairment) error { return s.canExpress(q) }

func (s *Shaper) canExpress(q netfabric.Impairment) error {
	if needsNetem(q) {
		s.probe.Do(func() { s.netem = HasNetem() })
		if s.netem != nil {
			return fmt.Errorf("%w: %v: %w", netfabric.ErrUnsupported, q, s.netem)
		}
	}
	if q.Jitter > 0 {
		if _, err := s.dist(q.Distribution); err != nil {
			return err
		}
	}
	return nil
}

// dist is loadDist, parsed once per table.
func (s *Shaper) dist(name string) ([]int16, error) {
	s.distMu.Lock()
	defer s.distMu.Unlock()
	if d, ok := s.dists[name]; ok {
		return d, nil
	}
	d, err := loadDist(name)
	if err == nil {
		s.dists[name] = d
	}
	return d, err
}

// Setup prepares every tap (clsact) and applies the qualities: those
// declared, or those a previous process set (statePath).
func (s *Shaper) Setup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.known)
	c := dial()
	defer c.close()
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			if err := s.canExpress(s.state.Quality[l.Name][e.Host]); err != nil {
				return fmt.Errorf("link %s from %s: %w", l.Name, e.Host, err)
			}
		}
	}
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			tap, err := linkByName(e.Tap)
			if err != nil {
				return fmt.Errorf("link %s: %w", l.Name, err)
			}
			if err := ensureClsact(tap); err != nil {
				return err
			}
			// Make each direction's ifb now, shaped or not: a later Set then
			// only swaps qdiscs and the redirect, which takes effect at
			// once, instead of creating a device mid-experiment.
			name, _ := ifbName(e.Tap)
			if _, err := ensureIfb(name); err != nil {
				return err
			}
			if err := s.apply(c, l.Name, e); err != nil {
				return err
			}
		}
	}
	if err := s.applyGroups(s.state.Groups); err != nil {
		return err
	}
	return s.save()
}

// apply makes the kernel match the state for what e sends on link: in a
// few requests when this process's last apply left the layout in place
// (fastApply), else carefully, step by step.
func (s *Shaper) apply(c conn, link string, e netfabric.Endpoint) error {
	q := s.state.Quality[link][e.Host]
	down := s.state.Down[link] || q.Down
	if k := s.known[e.Tap]; k != nil && k.down == down {
		if idx, err := c.ifindex(e.Tap); err == nil && idx == k.tap {
			if done, err := s.fastApply(c, k, e.Tap, link, e.Host, q); done && err == nil {
				return nil
			}
		}
	}
	delete(s.known, e.Tap)
	tap, err := c.linkByName(e.Tap)
	if err != nil {
		return err
	}
	if err := ensureClsact(tap); err != nil {
		return err
	}
	if err := setDown(tap, down); err != nil {
		return err
	}
	name, _ := ifbName(e.Tap)
	if !shapes(q) {
		// The ifb stays (Teardown removes it) so shaping can come back fast.
		if err := setRedirect(tap, nil, false); err != nil {
			return err
		}
		k := &layout{tap: tap.Attrs().Index, down: down}
		if ifb, err := c.handle().LinkByName(name); err == nil {
			k.ifb = ifb // made by Setup: shaping can come back in a few requests
		}
		s.known[e.Tap] = k
		return nil
	}
	ifb, err := ensureIfb(name)
	if err != nil {
		return err
	}
	dist, err := s.dist(q.Distribution)
	if err != nil {
		return err
	}
	limit := uint32(q.QueueLimit(10e9))
	if err := shape(c, ifb, q, limit, dist, s.netemSeed(link, e.Host), s.tickUs); err != nil {
		return err
	}
	if err := setRedirect(tap, ifb, true); err != nil {
		return err
	}
	s.known[e.Tap] = &layout{tap: tap.Attrs().Index, ifb: ifb, down: down, redirect: true, qdiscs: true, q: q, limit: limit}
	return nil
}

// fastApply changes a direction whose layout k this process made to q,
// sending only the qdiscs (or the class) whose parameters change and
// turning the redirect on or off. It reports false when it cannot (the
// ifb is not known), and an error when the kernel refused: both mean the
// careful path.
func (s *Shaper) fastApply(c conn, k *layout, tap, link, from string, q netfabric.Impairment) (bool, error) {
	if k.ifb == nil {
		return !shapes(q) && !k.redirect, nil
	}
	tapLink := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: k.tap, Name: tap}}
	if !shapes(q) {
		// The qdiscs stay, unused, so shaping comes back fast.
		if k.redirect {
			if err := delFilters(tapLink, netlink.HANDLE_MIN_INGRESS, prioRedirect); err != nil {
				return true, err
			}
			k.redirect = false
		}
		return true, nil
	}
	dist, err := s.dist(q.Distribution)
	if err != nil {
		return true, err
	}
	limit := uint32(q.QueueLimit(10e9))
	seed := s.netemSeed(link, from)
	old, known := k.q, k.qdiscs
	k.qdiscs = false // unknown until the requests below succeed
	switch {
	case !known || needsNetem(q) != needsNetem(old):
		// Another set of qdiscs: shape swaps them.
		err = shape(c, k.ifb, q, limit, dist, seed, s.tickUs)
	case needsNetem(q): // netem alone, at the root, with the rate
		if q != old || limit != k.limit {
			err = setNetem(c, k.ifb, htbRoot, netlink.HANDLE_ROOT, q, limit, dist, seed, s.tickUs)
		}
	default: // htb and pfifo
		if q.RateBits != old.RateBits {
			err = setClass(c, k.ifb, q.RateBits)
		}
		if err == nil && limit != k.limit {
			err = setPfifo(c, k.ifb, limit)
		}
	}
	if err != nil {
		return true, err
	}
	k.qdiscs, k.q, k.limit = true, q, limit
	if !k.redirect {
		// This process took the redirect off, so none is there: add it
		// without a filter dump (a filter found there fails the add, and
		// the careful path sorts it out).
		if err := addRedirect(c, tapLink, k.ifb); err != nil {
			return true, err
		}
		k.redirect = true
	}
	return true, nil
}

// netemSeed derives netem's PRNG seed (Linux 6.5+) from the lab seed, the
// link and the sending host, as the userspace engine does.
func (s *Shaper) netemSeed(link, from string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s.seed))
	h.Write(b[:])
	h.Write([]byte(link + "\x00" + from))
	return h.Sum64()
}

// Set implements netfabric.Shaper.
func (s *Shaper) Set(ctx context.Context, link, from string, q netfabric.Impairment) error {
	_, froms, err := s.links.CheckSet(link, from, q)
	if err != nil {
		return err
	}
	if err := s.canExpress(q); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.held()
	for _, e := range froms {
		s.state.Quality[link][e.Host] = q
		if err := s.apply(c, link, e); err != nil {
			s.drop() // a request that failed may leave replies unread
			return fmt.Errorf("link %s from %s: %w", link, e.Host, err)
		}
	}
	return s.saveSoon()
}

// Prepare implements netfabric.Preparer. Each direction the schedule
// changes gets the careful path once if this process has not seen it, so
// its first change takes the fast one. An unshaped direction whose first
// quality needs netem gets its netem root on the ifb now, while the
// redirect is off and nothing passes through it: putting a root qdisc in
// place waits for an RCU grace period (tens of milliseconds in a TCG
// guest), where changing it in place does not.
func (s *Shaper) Prepare(ctx context.Context, changes []netfabric.TimedChange) error {
	first := map[string]netfabric.Impairment{} // by tap: the first quality scheduled
	firstAt := map[string]time.Duration{}
	for _, ch := range changes {
		if ch.Quality == nil {
			continue
		}
		_, froms, err := s.links.CheckSet(ch.Link, ch.From, *ch.Quality)
		if err != nil {
			return err
		}
		for _, e := range froms {
			if at, ok := firstAt[e.Tap]; !ok || ch.At < at {
				firstAt[e.Tap], first[e.Tap] = ch.At, *ch.Quality
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.held()
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			q, ok := first[e.Tap]
			if !ok {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if s.known[e.Tap] == nil {
				if err := s.apply(c, l.Name, e); err != nil {
					s.drop()
					return fmt.Errorf("link %s from %s: %w", l.Name, e.Host, err)
				}
			}
			k := s.known[e.Tap]
			if k == nil || k.ifb == nil || k.redirect || !needsNetem(q) || (k.qdiscs && needsNetem(k.q)) || s.canExpress(q) != nil {
				continue
			}
			dist, err := s.dist(q.Distribution)
			if err != nil {
				return err
			}
			limit := uint32(q.QueueLimit(10e9))
			k.qdiscs = false
			if err := shape(c, k.ifb, q, limit, dist, s.netemSeed(l.Name, e.Host), s.tickUs); err != nil {
				s.drop()
				return fmt.Errorf("link %s from %s: %w", l.Name, e.Host, err)
			}
			k.qdiscs, k.q, k.limit = true, q, limit
		}
	}
	return nil
}

// saveEvery bounds how often Set writes the state file: a schedule's
// changes come tens a second, and a write (JSON, write, rename) cost
// 1.1 ms natively at 50 links. A Set saves at once when the last save is
// older than that (so a one-shot CLI call always does), else a timer
// saves within saveEvery, and Flush, which the schedule player calls at
// the end, saves what is still pending.
const saveEvery = 100 * time.Millisecond

// saveSoon is save, at most every saveEvery. Call with mu held.
func (s *Shaper) saveSoon() error {
	if s.statePath == "" {
		return nil
	}
	if err := s.saveErr; err != nil {
		s.saveErr = nil
		return err // a deferred save failed: tell the next caller
	}
	wait := saveEvery - time.Since(s.lastSave)
	if wait <= 0 {
		return s.save()
	}
	s.dirty = true
	if s.saveTimer == nil {
		s.saveTimer = time.AfterFunc(wait, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.saveTimer = nil
			if s.dirty {
				s.saveErr = s.save()
			}
		})
	}
	return nil
}

// Flush implements netfabric.Flusher: it writes a state file save that
// Set deferred.
func (s *Shaper) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveTimer != nil {
		s.saveTimer.Stop()
		s.saveTimer = nil
	}
	err := s.saveErr
	s.saveErr = nil
	if s.dirty {
		if e := s.save(); e != nil {
			return e
		}
	}
	return err
}

// idleClose is how long the shaper's sockets outlive its last change.
const idleClose = time.Second

// held returns the shaper's conn, dialling it if needed, and keeps it
// open for idleClose more. Call with mu held.
func (s *Shaper) held() conn {
	if s.conn.h == nil {
		s.conn = dial()
	}
	if s.idle == nil {
		s.idle = time.AfterFunc(idleClose, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.drop()
		})
	} else {
		s.idle.Reset(idleClose)
	}
	return s.conn
}

// drop closes the held conn. Call with mu held.
func (s *Shaper) drop() {
	s.conn.close()
	s.conn = conn{}
}

// SetUp implements netfabric.Shaper: a down link drops whatever any of its
// VMs sends; the taps and the bridge stay as they are.
func (s *Shaper) SetUp(ctx context.Context, link string, up bool) error {
	l, err := s.links.Find(link)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Down[link] = !up
	for _, e := range l.Endpoints {
		delete(s.known, e.Tap) // its down filter changes here
		tap, err := linkByName(e.Tap)
		if err != nil {
			return err
		}
		if err := ensureClsact(tap); err != nil {
			return err
		}
		if err := setDown(tap, !up || s.state.Quality[link][e.Host].Down); err != nil {
			return err
		}
	}
	return s.save()
}

// Partition implements netfabric.Shaper: each tap drops frames toward its
// VM whose source MAC belongs to a host of another group. It needs every
// endpoint's MAC.
func (s *Shaper) Partition(ctx context.Context, groups [][]string) error {
	if err := s.links.CheckGroups(groups); err != nil {
		return err
	}
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			if _, err := net.ParseMAC(e.MAC); err != nil {
				return fmt.Errorf("partition: %w: link %s host %s has no usable MAC (%q)", netfabric.ErrUnsupported, l.Name, e.Host, e.MAC)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.applyGroups(groups); err != nil {
		return err
	}
	s.state.Groups = groups
	return s.save()
}

// Heal implements netfabric.Shaper.
func (s *Shaper) Heal(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.applyGroups(nil); err != nil {
		return err
	}
	s.state.Groups = nil
	return s.save()
}

func (s *Shaper) applyGroups(groups [][]string) error {
	g := netfabric.GroupOf(groups)
	for _, l := range s.links {
		for _, to := range l.Endpoints {
			var from []net.HardwareAddr
			for _, e := range l.Endpoints {
				if e.Host != to.Host && netfabric.Separated(g, e.Host, to.Host) {
					mac, _ := net.ParseMAC(e.MAC)
					from = append(from, mac)
				}
			}
			tap, err := linkByName(to.Tap)
			if err != nil {
				return err
			}
			if len(from) > 0 {
				if err := ensureClsact(tap); err != nil {
					return err
				}
			}
			if err := setPartition(tap, from); err != nil {
				return err
			}
		}
	}
	return nil
}

// Show implements netfabric.Shaper. Counters come from the kernel: what
// each tap received from its VM, and what the direction's qdiscs dropped
// (netem loss and queue overflow together, reported as DropLoss). The
// kernel counts a GSO super-frame as one packet.
func (s *Shaper) Show(ctx context.Context) (netfabric.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := netfabric.State{Shaper: s.Name(), Groups: s.state.Groups}
	for _, l := range s.links {
		ls := netfabric.LinkState{Name: l.Name, Up: !s.state.Down[l.Name]}
		for _, e := range l.Endpoints {
			d := netfabric.Direction{From: e.Host, Quality: s.state.Quality[l.Name][e.Host]}
			if tap, err := netlink.LinkByName(e.Tap); err == nil && tap.Attrs().Statistics != nil {
				c := &netfabric.Counters{RxPackets: tap.Attrs().Statistics.RxPackets, RxBytes: tap.Attrs().Statistics.RxBytes}
				if name, _ := ifbName(e.Tap); name != "" {
					if ifb, err := netlink.LinkByName(name); err == nil {
						if qs, err := netlink.QdiscList(ifb); err == nil {
							for _, q := range qs {
								if st := q.Attrs().Statistics; st != nil && st.Queue != nil && q.Attrs().Parent == netlink.HANDLE_ROOT {
									c.DropLoss = uint64(st.Queue.Drops)
								}
							}
						}
					}
				}
				d.Counters = c
			}
			ls.Directions = append(ls.Directions, d)
		}
		st.Links = append(st.Links, ls)
	}
	return st, nil
}

// Teardown removes every filter, qdisc and ifb the shaper made and its
// state file. The taps and bridges themselves belong to the orchestrator.
func (s *Shaper) Teardown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveTimer != nil { // the state file goes: no save may bring it back
		s.saveTimer.Stop()
		s.saveTimer = nil
	}
	s.dirty = false
	s.drop()
	var errs []error
	for _, l := range s.links {
		for _, e := range l.Endpoints {
			if tap, err := netlink.LinkByName(e.Tap); err == nil {
				q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: tap.Attrs().Index, Parent: netlink.HANDLE_CLSACT, Handle: netlink.MakeHandle(0xffff, 0)}}
				if err := netlink.QdiscDel(q); err != nil && !notFound(err) {
					errs = append(errs, fmt.Errorf("%s: remove clsact: %w", e.Tap, err))
				}
			}
			name, _ := ifbName(e.Tap)
			if err := netfabric.DeleteLink(name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.statePath != "" {
		if err := os.Remove(s.statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.state = s.declared()
	clear(s.known)
	return errors.Join(errs...)
}
