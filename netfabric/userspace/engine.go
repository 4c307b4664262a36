// Package userspace is forgelab's own forwarding engine: it moves frames
// between the host-side devices (taps or veths) of each lab link through
// AF_PACKET sockets and applies the link's impairments on the way, with a
// seeded random source and exact counters. It runs inside `forgelab
// fabricd`, a background process per lab, controlled over a unix socket
// (see Serve and Client); Engine is also usable in-process.
package userspace

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/forgelab/forgelab/netfabric"
)

// Config is what a fabricd serves: the lab's links and its seed.
type Config struct {
	Seed  int64           `json:"seed"`
	Links netfabric.Links `json:"links"`
	// Peers lists endpoints reached over UDP instead of a local device:
	// hosts on another machine (served by that machine's fabricd), or a
	// QEMU NIC of type 'udp'. Traffic from such an endpoint is shaped here
	// like any other; for a host on another machine give its directions no
	// impairment here, since its own fabricd shapes them.
	Peers []Peer `json:"peers,omitempty"`
}

// Peer is a UDP endpoint: frames travel one per datagram, bare Ethernet.
type Peer struct {
	Link   string `json:"link"`
	Host   string `json:"host"`
	Local  string `json:"local"`  // ip:port this side binds
	Remote string `json:"remote"` // ip:port of the other side
}

// LoadConfig reads a Config from a JSON file.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("fabric config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("fabric config %s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes c as JSON to path (0600).
func WriteConfig(path string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write fabric config: %w", err)
	}
	return nil
}

// Engine forwards and shapes the frames of every link in its Config.
type Engine struct {
	cfg   Config
	pool  *bufPool
	links []*link

	mu      sync.Mutex                     // serialises control calls
	groups  atomic.Pointer[map[string]int] // partition: host -> group; nil = healed
	grouped [][]string

	monoBase int64     // CLOCK_MONOTONIC at timeBase
	timeBase time.Time // carries Go's monotonic reading

	sched      *schedule // the current or last timed schedule; guarded by mu
	schedTimer *schedTimer

	wg      sync.WaitGroup
	errs    chan error
	stopped bool
}

var _ netfabric.Shaper = (*Engine)(nil)
var _ netfabric.Capturer = (*Engine)(nil)
var _ netfabric.Reseeder = (*Engine)(nil)

// New checks cfg and attaches to every endpoint. Nothing is forwarded
// until Start.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Links.Validate(); err != nil {
		return nil, err
	}
	peers := map[[2]string]Peer{}
	for _, p := range cfg.Peers {
		peers[[2]string{p.Link, p.Host}] = p
	}
	e := &Engine{cfg: cfg, pool: newBufPool(), errs: make(chan error, 1)}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	e.timeBase, e.monoBase = time.Now(), ts.Nano()
	ok := false
	defer func() {
		if !ok {
			e.closeAll()
			if e.schedTimer != nil {
				e.schedTimer.close()
			}
		}
	}()
	var err error
	if e.schedTimer, err = newSchedTimer(); err != nil {
		return nil, err
	}
	for _, l := range cfg.Links {
		lk := &link{e: e, name: l.Name, quality: l.Quality, macs: map[[6]byte]int{}}
		e.links = append(e.links, lk)
		for i, ep := range l.Endpoints {
			p := &port{lk: lk, idx: i, host: ep.Host}
			if peer, isPeer := peers[[2]string{l.Name, ep.Host}]; isPeer {
				p.udp, p.name = true, peer.Local+"->"+peer.Remote
				p.conn, err = openUDP(peer.Local, peer.Remote)
			} else if ep.Tap != "" {
				p.name = ep.Tap
				if err = prepareDevice(ep.Tap); err == nil {
					p.conn, err = openPacket(ep.Tap, batchSize)
				}
			} else {
				err = fmt.Errorf("host %s has neither a tap nor a UDP peer", ep.Host)
			}
			if err != nil {
				return nil, fmt.Errorf("link %s: %w", l.Name, err)
			}
			lk.ports = append(lk.ports, p)
			if p.line, err = newLine(e, lk, p); err != nil {
				p.conn.Close()
				return nil, fmt.Errorf("link %s: %w", l.Name, err)
			}
		}
	}
	ok = true
	return e, nil
}

// Start starts forwarding in the background. Errors of the forwarding
// goroutines end up in Wait.
func (e *Engine) Start() {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.runSchedule()
	}()
	for _, lk := range e.links {
		for _, p := range lk.ports {
			e.wg.Add(2)
			go func() {
				defer e.wg.Done()
				if err := p.readLoop(); err != nil {
					select {
					case e.errs <- err:
					default:
					}
				}
			}()
			go func() {
				defer e.wg.Done()
				p.line.run()
			}()
		}
	}
}

// Run forwards until ctx ends or a port fails, then stops.
func (e *Engine) Run(ctx context.Context) error {
	e.Start()
	var err error
	select {
	case <-ctx.Done():
	case err = <-e.errs:
	}
	e.Stop()
	return err
}

// Stop closes every socket and waits for the goroutines to end.
func (e *Engine) Stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	e.stopped = true
	e.cancelScheduleLocked()
	e.mu.Unlock()
	e.closeAll()
	e.wg.Wait()
	e.schedTimer.close()
}

func (e *Engine) closeAll() {
	if e.schedTimer != nil {
		e.schedTimer.shut()
	}
	for _, lk := range e.links {
		for _, p := range lk.ports {
			if p.conn != nil {
				p.conn.Close()
			}
			if p.line != nil {
				p.line.close()
			}
		}
	}
}

// now is the engine clock: CLOCK_MONOTONIC in nanoseconds, the clock the
// line timers are armed on. Go's monotonic clock is the same clock, read
// through the vDSO: cheaper than a clock_gettime system call per batch.
func (e *Engine) now() int64 {
	return e.monoBase + int64(time.Since(e.timeBase))
}

func (e *Engine) link(name string) (*link, error) {
	for _, lk := range e.links {
		if lk.name == name {
			return lk, nil
		}
	}
	_, err := e.cfg.Links.Find(name)
	return nil, err
}

// Name implements netfabric.Shaper.
func (e *Engine) Name() string { return "userspace" }

// Setup applies nothing: the engine starts with the declared qualities.
func (e *Engine) Setup(context.Context) error { return nil }

// Teardown stops the engine.
func (e *Engine) Teardown(context.Context) error { e.Stop(); return nil }

// Reseed restarts every random stream from the lab seed, as when the
// engine started: the same traffic meets the same losses again, so two
// runs in one lab are as comparable as two fresh labs.
func (e *Engine) Reseed(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, lk := range e.links {
		for _, p := range lk.ports {
			p.line.mu.Lock()
			p.line.dec = newDecider(e.cfg.Seed, lk.name, p.host)
			p.line.mu.Unlock()
		}
	}
	return nil
}

// Set changes the quality of what from sends on a link ("" = everyone).
// Packets already in the line keep their release times, as in netem.
// During a timed schedule the change holds until the schedule's next
// change of the same direction.
func (e *Engine) Set(_ context.Context, linkName, from string, q netfabric.Impairment) error {
	if _, _, err := e.cfg.Links.CheckSet(linkName, from, q); err != nil {
		return err
	}
	lk, err := e.link(linkName)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setLocked(lk, from, q)
	return nil
}

// setLocked sets a checked quality. Called with e.mu held.
func (e *Engine) setLocked(lk *link, from string, q netfabric.Impairment) {
	for _, p := range lk.ports {
		if from == "" || p.host == from {
			p.line.mu.Lock()
			p.line.setQuality(q)
			p.line.mu.Unlock()
		}
	}
}

// SetUp takes a link down, dropping what is in flight on it, or up.
// During a timed schedule the change holds until the schedule's next
// up/down of the same link.
func (e *Engine) SetUp(_ context.Context, linkName string, up bool) error {
	lk, err := e.link(linkName)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setUpLocked(lk, up)
	return nil
}

// setUpLocked is SetUp with e.mu held.
func (e *Engine) setUpLocked(lk *link, up bool) {
	lk.down.Store(!up)
	if up {
		return
	}
	for _, p := range lk.ports {
		l := p.line
		l.mu.Lock()
		for l.fifo.len() > 0 {
			pk := l.fifo.popFront()
			l.qbytes -= len(pk.b)
			l.ctr.dropDown.Add(uint64(pk.pkts))
			e.pool.put(pk.b)
		}
		l.mu.Unlock()
	}
}

// Partition stops traffic between hosts of different groups.
func (e *Engine) Partition(_ context.Context, groups [][]string) error {
	if err := e.cfg.Links.CheckGroups(groups); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := netfabric.GroupOf(groups)
	e.groups.Store(&m)
	e.grouped = groups
	return nil
}

// Heal ends a partition.
func (e *Engine) Heal(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.groups.Store(nil)
	e.grouped = nil
	return nil
}

// Show reports every link's quality and counters per direction.
func (e *Engine) Show(context.Context) (netfabric.State, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := netfabric.State{Shaper: e.Name(), Groups: e.grouped}
	for _, lk := range e.links {
		ls := netfabric.LinkState{Name: lk.name, Up: !lk.down.Load()}
		for _, p := range lk.ports {
			if !p.udp {
				p.line.ctr.dropOverrun.Add(packetDrops(p.conn))
			}
			ls.Directions = append(ls.Directions, p.line.snapshot())
		}
		st.Links = append(st.Links, ls)
	}
	return st, nil
}

func setUp(dev string) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("device %s: %w", dev, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %s: %w", dev, err)
	}
	return nil
}
