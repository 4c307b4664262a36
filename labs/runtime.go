package labs

// The control path: every change to a running lab goes through one of
// the methods here, whoever asks (the CLI, the scenario engine, the HTTP
// API). Each one
//
//   - takes the lab's lock (store.Lock), so two callers never change one
//     lab at once and nothing changes a lab while destroy removes it;
//   - loads the state again under the lock (destroy may have won the
//     race) and refuses a lab that is not ready;
//   - validates all its input before it changes anything;
//   - writes one JSON line to the lab's event log (events.jsonl) with the
//     time, the caller's source, the action, its arguments and the result;
//   - turns a fabric's missing capability into one error that wraps
//     netfabric.ErrUnsupported and says what to do.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/provision"
)

// Source is who asks for a change; the event log records it.
type Source string

const (
	SourceCLI      Source = "cli"
	SourceScenario Source = "scenario"
	SourceAPI      Source = "api"
	// SourceForgelab: forgelab itself, e.g. a run putting links back at
	// its end, or the next change after a killed run doing it.
	SourceForgelab Source = "forgelab"
)

// Actions, as the event log names them.
const (
	ActionLinkSet   = "link.set"
	ActionLinkReset = "link.reset"
	ActionLinkUp    = "link.up"
	ActionLinkDown  = "link.down"
	ActionPartition = "partition"
	ActionHeal      = "heal"
	ActionReseed    = "reseed"
	ActionCapture   = "capture"
	ActionNICUp     = "nic.up"
	ActionNICDown   = "nic.down"
	// ActionLinkSchedule hands the shaper a timed schedule of quality
	// changes (a run's mobility); ActionExec runs a command on a host.
	ActionLinkSchedule = "link.schedule"
	ActionExec         = "exec"
	// Host actions are "host." + the hypervisor.HostAction.
)

// QualityChange changes some of a link direction's quality; nil fields
// keep their current value.
type QualityChange struct {
	Clear        bool           `json:"clear,omitempty"` // start from no impairment (then apply the fields set)
	RateBits     *int64         `json:"rate_bits,omitempty"`
	Delay        *time.Duration `json:"delay_ns,omitempty"`
	Jitter       *time.Duration `json:"jitter_ns,omitempty"`
	Distribution *string        `json:"distribution,omitempty"`
	Loss         *float64       `json:"loss,omitempty"` // percentages, 0-100
	// LossBurst is a Gilbert-Elliott model (P, R, 1-H, 1-K in percent,
	// units.ParseBurstLoss); it replaces random loss, as Loss replaces it.
	LossBurst *[4]float64 `json:"loss_burst,omitempty"`
	Duplicate *float64    `json:"duplicate,omitempty"`
	Reorder   *float64    `json:"reorder,omitempty"`
	Corrupt   *float64    `json:"corrupt,omitempty"`
	Limit     *int        `json:"limit,omitempty"`
	Down      *bool       `json:"down,omitempty"` // nothing passes in this direction
}

// apply returns q changed by c.
func (c QualityChange) apply(q netfabric.Impairment) netfabric.Impairment {
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
		q.GE = netfabric.GilbertElliott{} // random loss replaces a bursty model
	}
	if b := c.LossBurst; b != nil {
		q.GE = netfabric.GilbertElliott{P: b[0], R: b[1], OneMinusH: b[2], OneMinusK: b[3]}
		q.Loss = 0
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
	if c.Down != nil {
		q.Down = *c.Down
	}
	return q
}

// DirectionSet is one direction of a link as SetLink left it.
type DirectionSet struct {
	From    string               `json:"from"`
	Quality netfabric.Impairment `json:"quality"`
}

// SetLink changes the quality of a link in every direction (from "") or
// in what host from sends. The change is merged into the current quality
// under the lab's lock, so concurrent changes of different fields all
// take effect.
func (m *Manager) SetLink(ctx context.Context, src Source, lab, link, from string, c QualityChange) ([]DirectionSet, error) {
	var out []DirectionSet
	args := map[string]any{"link": link, "from": from, "change": c}
	err := m.change(ctx, src, lab, ActionLinkSet, args, func(st *State, sh netfabric.Shaper) error {
		cur, err := sh.Show(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(cur.Links, func(l netfabric.LinkState) bool { return l.Name == link })
		if i < 0 {
			return fmt.Errorf("lab %s has no link %q (forgelab link show %s lists them)", st.Lab, link, st.Lab)
		}
		var next []DirectionSet
		for _, d := range cur.Links[i].Directions {
			if from != "" && d.From != from {
				continue
			}
			q := c.apply(d.Quality)
			if err := q.Validate(); err != nil {
				return fmt.Errorf("link %s: %w", link, err)
			}
			next = append(next, DirectionSet{From: d.From, Quality: q})
		}
		if len(next) == 0 {
			return fmt.Errorf("link %s has no endpoint %q", link, from)
		}
		// Every direction was checked above: a bad value changes nothing.
		for _, d := range next {
			if err := sh.Set(ctx, link, d.From, d.Quality); err != nil {
				return err
			}
			out = append(out, d)
		}
		args["set"] = out
		return nil
	})
	return out, err
}

// ScheduleLinks hands the lab's shaper a timed schedule of changes that
// it applies itself, each at start + At (netfabric.Scheduler): a run's
// link qualities arrive at their due time without one control call per
// change. The schedule is checked whole against the lab's links and
// logged as one event naming what it is for (e.g. the scenario); it
// replaces any schedule still pending. Changes made meanwhile through
// the other methods here hold until the schedule's next change of the
// same direction. A shaper that cannot take schedules (the kernel and
// guest shapers) gets an error wrapping netfabric.ErrUnsupported and
// nothing is logged: the caller then applies the changes one by one.
func (m *Manager) ScheduleLinks(ctx context.Context, src Source, lab, what string, start time.Time, changes []netfabric.TimedChange) error {
	st, err := m.Store.Load(lab)
	if err != nil {
		return err
	}
	sh, err := m.shaper(st)
	if err != nil {
		return err
	}
	if _, ok := sh.(netfabric.Scheduler); !ok {
		return unsupported(st, "take a timed schedule")
	}
	var last time.Duration
	for _, c := range changes {
		last = max(last, c.At)
	}
	args := map[string]any{"for": what, "start": start, "changes": len(changes), "last_at": last.Seconds()}
	return m.change(ctx, src, lab, ActionLinkSchedule, args, func(st *State, sh netfabric.Shaper) error {
		sch, ok := sh.(netfabric.Scheduler)
		if !ok {
			return unsupported(st, "take a timed schedule")
		}
		for i, c := range changes {
			if st.Plan.Link(c.Link) == nil {
				return fmt.Errorf("schedule change %d: lab %s has no link %q (forgelab link show %s lists them)", i, st.Lab, c.Link, st.Lab)
			}
		}
		return sch.Schedule(ctx, start, changes)
	})
}

// ResetLink puts a link back to the quality its lab file declared, in
// every direction (from "") or in what host from sends.
func (m *Manager) ResetLink(ctx context.Context, src Source, lab, link, from string) error {
	return m.change(ctx, src, lab, ActionLinkReset, map[string]any{"link": link, "from": from}, func(st *State, sh netfabric.Shaper) error {
		l := st.Plan.Link(link)
		if l == nil {
			return fmt.Errorf("lab %s has no link %q (forgelab link show %s lists them)", st.Lab, link, st.Lab)
		}
		if from != "" && !slices.Contains(l.Endpoints, from) {
			return fmt.Errorf("link %s has no endpoint %q", link, from)
		}
		for _, e := range l.Endpoints {
			if from == "" || e == from {
				if err := sh.Set(ctx, link, e, impairment(l.Quality)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// LinkUpDown takes a whole link down (nothing passes) or brings it up.
func (m *Manager) LinkUpDown(ctx context.Context, src Source, lab, link string, up bool) error {
	action := map[bool]string{true: ActionLinkUp, false: ActionLinkDown}[up]
	return m.change(ctx, src, lab, action, map[string]any{"link": link}, func(st *State, sh netfabric.Shaper) error {
		if st.Plan.Link(link) == nil {
			return fmt.Errorf("lab %s has no link %q (forgelab link show %s lists them)", st.Lab, link, st.Lab)
		}
		return sh.SetUp(ctx, link, up)
	})
}

// Partition splits the lab: hosts in different groups cannot reach each
// other on any link. It replaces any earlier partition.
func (m *Manager) Partition(ctx context.Context, src Source, lab string, groups [][]string) error {
	return m.change(ctx, src, lab, ActionPartition, map[string]any{"groups": groups}, func(st *State, sh netfabric.Shaper) error {
		if len(groups) < 2 {
			return fmt.Errorf("a partition needs at least two groups of hosts, got %d", len(groups))
		}
		seen := map[string]bool{}
		for _, g := range groups {
			for _, h := range g {
				if st.Plan.Host(h) == nil {
					return fmt.Errorf("lab %s has no host %q (hosts: %s)", st.Lab, h, hostNames(st.Plan))
				}
				if seen[h] {
					return fmt.Errorf("host %s is in two groups", h)
				}
				seen[h] = true
			}
		}
		return sh.Partition(ctx, groups)
	})
}

// Heal ends a partition.
func (m *Manager) Heal(ctx context.Context, src Source, lab string) error {
	return m.change(ctx, src, lab, ActionHeal, nil, func(st *State, sh netfabric.Shaper) error {
		return sh.Heal(ctx)
	})
}

// Reseed restarts the fabric's random choices from the lab seed, so the
// same traffic meets the same losses again. It returns the seed.
func (m *Manager) Reseed(ctx context.Context, src Source, lab string) (int64, error) {
	var seed int64
	args := map[string]any{}
	err := m.change(ctx, src, lab, ActionReseed, args, func(st *State, sh netfabric.Shaper) error {
		r, ok := sh.(netfabric.Reseeder)
		if !ok {
			return unsupported(st, "restart its random choices (the kernel draws them)")
		}
		seed = st.Plan.Seed
		args["seed"] = seed
		return r.Reseed(ctx)
	})
	return seed, err
}

// Capture streams a pcap of everything on a link to w until ctx ends.
// The lock is held only to check and log the start: a capture reads, and
// it ends by itself when destroy removes the link.
func (m *Manager) Capture(ctx context.Context, src Source, lab, link string, w io.Writer) error {
	var capture netfabric.Capturer
	err := m.change(ctx, src, lab, ActionCapture, map[string]any{"link": link}, func(st *State, sh netfabric.Shaper) error {
		if st.Plan.Link(link) == nil {
			return fmt.Errorf("lab %s has no link %q (forgelab link show %s lists them)", st.Lab, link, st.Lab)
		}
		c, ok := sh.(netfabric.Capturer)
		if !ok {
			return unsupported(st, "capture")
		}
		capture = c
		return nil
	})
	if err != nil {
		return err
	}
	err = capture.Capture(ctx, link, w)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // stopped by the caller: the normal end
	}
	return err
}

// HostAction applies a power or fault action to a VM.
func (m *Manager) HostAction(ctx context.Context, src Source, lab, host string, a hypervisor.HostAction) error {
	return m.changeVM(ctx, src, lab, "host."+string(a), map[string]any{"host": host}, func(st *State) error {
		if !slices.Contains(hypervisor.HostActions, a) {
			return fmt.Errorf("unknown host action %q (use %v)", a, hypervisor.HostActions)
		}
		h, err := vmHost(st, host)
		if err != nil {
			return err
		}
		return m.VMs.Do(ctx, h.Domain, a)
	})
}

// SetNIC cuts (up false) or restores the carrier of a VM's NIC on a link:
// the guest sees its link go down, as when a cable is pulled.
func (m *Manager) SetNIC(ctx context.Context, src Source, lab, host, link string, up bool) error {
	action := map[bool]string{true: ActionNICUp, false: ActionNICDown}[up]
	args := map[string]any{"host": host, "link": link}
	return m.changeVM(ctx, src, lab, action, args, func(st *State) error {
		h, err := vmHost(st, host)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(h.NICs, func(n NICPlan) bool { return n.Link == link })
		if i < 0 {
			return fmt.Errorf("host %s has no NIC on link %q", h.Name, link)
		}
		args["mac"] = h.NICs[i].MAC
		return m.VMs.SetNICLink(ctx, h.Domain, h.NICs[i].MAC, up)
	})
}

// Exec runs a shell command on a host of the lab (a VM or a physical
// host) to its end, with the lab's templates ({{ node "b" }}) and
// environment as a workload has them, its stdout and stderr into files in
// outDir. The lock is held only to check the host and log the start: a
// command may run long, and changes to the lab meanwhile must not wait
// for it. A command that exits non-zero is a result, not an error.
func (m *Manager) Exec(ctx context.Context, src Source, lab, host, command, outDir string) (provision.WorkloadResult, error) {
	var wl provision.Workload
	var st *State
	err := m.locked(ctx, src, lab, ActionExec, map[string]any{"host": host, "command": command}, func(s *State) error {
		if s.Plan.Host(host) == nil {
			return fmt.Errorf("lab %s has no host %q (hosts: %s)", s.Lab, host, hostNames(s.Plan))
		}
		if strings.TrimSpace(command) == "" {
			return fmt.Errorf("exec on host %s: no command given", host)
		}
		var err error
		wl, err = toWorkload(WorkloadSpec{Name: "exec", Command: command}, hostFacts(s.Plan, s.Coord, host))
		st = s
		return err
	})
	if err != nil {
		return provision.WorkloadResult{}, err
	}
	conn, err := m.software().Connect(ctx, st, host)
	if err != nil {
		return provision.WorkloadResult{}, fmt.Errorf("exec on host %s: %w", host, err)
	}
	defer conn.Close()
	res, err := conn.RunWorkload(ctx, wl, outDir)
	if err != nil {
		return res, fmt.Errorf("exec on host %s: %w", host, err)
	}
	return res, nil
}

// ShowLinks reports every link's quality and counters. It changes
// nothing, so it takes no lock and logs nothing.
func (m *Manager) ShowLinks(ctx context.Context, lab string) (netfabric.State, error) {
	st, err := m.Store.Load(lab)
	if err != nil {
		return netfabric.State{}, err
	}
	sh, err := m.shaper(st)
	if err != nil {
		return netfabric.State{}, err
	}
	return sh.Show(ctx)
}

// vmHost is a host of the lab that forgelab made here (a VM).
func vmHost(st *State, host string) (*HostPlan, error) {
	h := st.Plan.Host(host)
	if h == nil || !kindOf(*h).madeHere() {
		return nil, fmt.Errorf("lab %s has no VM %q (VMs: %s)", st.Lab, host, vmNames(st.Plan))
	}
	return h, nil
}

func vmNames(p *Plan) string {
	var names []string
	for _, h := range p.Hosts {
		if kindOf(h).madeHere() {
			names = append(names, h.Name)
		}
	}
	return orNone(fmt.Sprint(names))
}

// unsupportedError is a change the lab's fabric cannot make, with what to
// do about it. It is a netfabric.ErrUnsupported.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }
func (e *unsupportedError) Unwrap() error { return netfabric.ErrUnsupported }

func unsupported(st *State, what string) error {
	return &unsupportedError{fmt.Sprintf("the %s fabric of lab %s cannot %s (%v): a lab with fabric = %q in its [lab] table can, recreate it with that",
		st.Fabric, st.Lab, what, netfabric.ErrUnsupported, spec.FabricUserspace)}
}

// change runs one change to a lab's links through the control path.
func (m *Manager) change(ctx context.Context, src Source, lab, action string, args map[string]any, f func(*State, netfabric.Shaper) error) error {
	return m.locked(ctx, src, lab, action, args, func(st *State) error {
		sh, err := m.shaper(st)
		if err != nil {
			return err
		}
		err = f(st, sh)
		var said *unsupportedError
		if errors.Is(err, netfabric.ErrUnsupported) && !errors.As(err, &said) {
			err = fmt.Errorf("%w: the lab's %s fabric cannot do this; a lab with fabric = %q in its [lab] table can, recreate it with that", err, st.Fabric, spec.FabricUserspace)
		}
		return err
	})
}

// changeVM runs one change to a lab's VMs through the control path.
func (m *Manager) changeVM(ctx context.Context, src Source, lab, action string, args map[string]any, f func(*State) error) error {
	if m.VMs == nil {
		return errors.New("no connection to libvirt") // a wiring mistake, not a user's
	}
	return m.locked(ctx, src, lab, action, args, f)
}

// locked is the common part of every change: lock, load again, check the
// lab is ready, run f, log one event.
func (m *Manager) locked(ctx context.Context, src Source, lab, action string, args map[string]any, f func(*State) error) error {
	unlock, err := m.Store.Lock(ctx, lab, action)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.Store.Load(lab)
	if err != nil {
		return err
	}
	if st.Phase != store.PhaseReady || st.Plan == nil {
		return fmt.Errorf("lab %s is %s, not ready: nothing to change (forgelab inspect %s says more)", lab, st.Phase, lab)
	}
	// A run whose runner was killed left its qualities behind: put the
	// links back first, so this change starts from the lab file's.
	if err := m.recoverRun(ctx, st); err != nil {
		return err
	}
	err = f(st)
	e := store.Event{Source: string(src), Action: action, Args: args, Result: store.ResultOK}
	if err != nil {
		e.Result, e.Error = store.ResultError, err.Error()
	}
	if lerr := m.Store.AppendEvent(lab, e); lerr != nil && err == nil {
		// The change is made; say the log failed, but do not hide it.
		return fmt.Errorf("%s done, but the event log was not written: %w", action, lerr)
	}
	return err
}
