package labs

// forgelab run: play a scenario on a running lab and record it (issue 10).
//
// One start time is shared by everything: the scenario's actions
// (scenario.PlayFrom through the control path, as source "scenario"), the
// hosts' positions (mobility models, computed from the clock, never
// accumulated) and the link qualities that follow from them (quality
// Timeline at 10 Hz, computed up front). The qualities go to a shaper that
// takes a timed schedule (the userspace engine) as one schedule through
// the control path (ScheduleLinks), and the engine applies each change at
// its due time by its own clock; the run collects what it applied. Other
// shapers get them from one loop with one timer, each through the control
// path's SetLink.
//
// While it plays, the run records into telemetry/runs: events (the lab's
// event log lines that appear during the run, whoever made them, and the
// scenario's own markers and workload actions), positions at 10 Hz, link
// samples once a second and at each applied change, host samples once a
// second, and the workloads that start with the run. At the end, or on
// Ctrl-C, every link goes back to the quality the lab file declares and
// partitions heal; then serial logs are copied and the run is closed as
// complete (or incomplete).
//
// A runner that is killed leaves run.current in the lab directory: the
// next change through the control path, or the next run, finds its
// recorder dead and puts the links back first (recoverRun).

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/mobility"
	linkq "github.com/forgelab/forgelab/labs/quality"
	"github.com/forgelab/forgelab/labs/scenario"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/provision"
	"github.com/forgelab/forgelab/telemetry/quiet"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// Actions of the runner, as the event logs name them.
const (
	ActionRunReset   = "run.reset"   // the end of a run: links back to the lab file
	ActionRunRecover = "run.recover" // the same, after a runner that was killed
)

// RunOptions say what to play.
type RunOptions struct {
	// Scenario is a scenario file; "" plays the lab file's [scenario].
	Scenario string
	// Variant labels the run (e.g. "babeld"), for comparisons.
	Variant string
	// For plays this long instead of the scenario's duration (actions
	// after it are dropped); with no scenario at all, it is required.
	For time.Duration
	// Status gets a live status once a second; nil: none.
	Status io.Writer
	// Clock is the scenario clock; nil: the real one.
	Clock scenario.Clock
	// Interval is how often qualities are recomputed; 0: 100ms (10 Hz).
	Interval time.Duration
	// Duration makes a soak run: it plays this long whatever the
	// scenario's duration (the scenario once, then held at its end state;
	// with no scenario, nothing but the workloads), and workloads that
	// start with the run are started again when they end before it.
	Duration time.Duration
	// SampleEvery is how often the workloads' and services' processes are
	// sampled in the hosts (processes.csv); 0: every second under KVM and
	// every 5 s under TCG (where one reading costs ~0.2 CPU-s of the
	// guest's, and the sampler would weigh on what it measures); negative: not.
	SampleEvery time.Duration
	// Quiet checks the environment first (CheckQuiet) and refuses a noisy
	// run with ErrNoisy, unless AllowNoise: then it runs, marked. What the
	// check saw goes into the run fingerprint's notes either way.
	Quiet, AllowNoise bool
	// QuietWindow is how long the check watches CPU use; 0: 2 s.
	QuietWindow time.Duration
	// Bench makes this one run of a bench (forgelab bench, labs/bench.go);
	// nil for an ordinary run.
	Bench *BenchRun
}

// BenchRun is what makes a run one run of a bench: no scenario plays,
// only the bench mode's workloads start (whatever their start), and the
// run ends when they have all ended; For is its upper bound.
type BenchRun struct {
	Info      runs.BenchInfo
	Workloads []WorkloadSpec
	// LabData is the file the bench was read from, saved as the run's
	// lab file: its [bench] section says what the run's metrics are.
	LabData []byte
}

// RunReport is what a run did.
type RunReport struct {
	Dir     string
	ID      string
	Status  runs.Status
	Reason  string
	Results []scenario.Result
	Applied int  // quality changes applied
	Failed  int  // quality changes the shaper refused
	Noisy   bool // --quiet saw noise and --allow-noise ran it anyway
}

// runMarker is run.current: which run plays on the lab, and by whom.
type runMarker struct {
	Dir      string       `json:"dir"`
	Recorder runs.Process `json:"recorder"`
}

// Run plays a scenario on a ready lab and records it; see the top of
// this file. It returns when the scenario ends or ctx is cancelled (the
// run is then incomplete, and that is not an error).
func (m *Manager) Run(ctx context.Context, lab string, o RunOptions) (*RunReport, error) {
	clock := o.Clock
	if clock == nil {
		clock = scenario.RealClock{}
	}
	if o.Interval == 0 {
		o.Interval = 100 * time.Millisecond
	}
	st, err := m.Store.Load(lab)
	if err != nil {
		return nil, err
	}
	if st.Phase != store.PhaseReady || st.Plan == nil {
		return nil, fmt.Errorf("lab %s is %s, not ready: nothing to run (forgelab inspect %s says more)", lab, st.Phase, lab)
	}
	// A run killed earlier: put its links back before anything else.
	unlock, err := m.Store.Lock(ctx, lab, "run")
	if err != nil {
		return nil, err
	}
	err = m.recoverRun(ctx, st)
	unlock()
	if err != nil {
		return nil, err
	}
	l := m.Store.LayoutOf(st)
	if mk, ok := readRunMarker(l); ok && mk.Recorder.Alive() {
		return nil, fmt.Errorf("lab %s is playing a run already (%s, process %d): stop it with Ctrl-C in its terminal, or wait for its end", lab, mk.Dir, mk.Recorder.PID)
	}
	p, err := m.prepareRun(st, l, o)
	if err != nil {
		return nil, err
	}
	var noise *quiet.Report
	if o.Quiet {
		qr, err := m.CheckQuiet(ctx, lab, o.QuietWindow)
		if err != nil {
			return nil, fmt.Errorf("quiet check: %w", err)
		}
		if qr.Noisy() && !o.AllowNoise {
			return nil, fmt.Errorf("%w; the run did not start. Seen:\n%s(stop what is listed, or run with --allow-noise to record a run marked noisy)", ErrNoisy, qr)
		}
		noise = &qr
	}

	start := clock.Now()
	rec, err := runs.Create(runs.Root(m.Store.Dir), runs.Meta{
		Lab: lab, Scenario: p.scenarioName, Variant: o.Variant, Bench: benchInfo(o.Bench), Start: start,
		Fingerprint: runs.Fingerprint{Accel: st.Accel, Seed: st.Plan.Seed, Images: m.imageDigests(st.Plan)},
	})
	if err != nil {
		return nil, err
	}
	rep := &RunReport{Dir: rec.Dir(), ID: rec.ID()}
	if noise != nil {
		for k, v := range noise.Notes() {
			rec.SetNote(k, v)
		}
		rep.Noisy = noise.Noisy()
	}
	mk, _ := json.Marshal(runMarker{Dir: rec.Dir(), Recorder: runs.Self()})
	if err := os.WriteFile(l.RunFile(), mk, 0o644); err != nil {
		rec.Close(runs.StatusFailed, err.Error())
		return nil, fmt.Errorf("mark the lab as running: %w", err)
	}
	defer os.Remove(l.RunFile())
	var saveErr error
	save := func(err error) {
		if err != nil && saveErr == nil {
			saveErr = err
		}
	}
	save(rec.SaveLab(p.labData))
	if p.scenarioData != nil {
		save(rec.SaveScenario(p.scenarioData))
	}
	planJSON, _ := json.MarshalIndent(st.Plan, "", "  ")
	save(rec.SavePlan(planJSON))
	save(rec.Event(runs.Event{Time: start, Source: runs.SourceForgelab, Action: "run.start", Args: map[string]any{
		"scenario": p.scenarioName, "duration": p.tl.Duration.Seconds(), "variant": o.Variant,
		"actions": len(p.tl.Actions), "quality_changes": len(p.changes), "soak": o.Duration > 0}}))

	r := &runner{m: m, st: st, rec: rec, clock: clock, start: start, p: p, status: newLiveStatus(p), events: 1, keep: o.Duration > 0}
	if fi, err := os.Stat(l.Events()); err == nil {
		r.events = max(fi.Size(), 1) // the lab's log so far is not this run's
	}
	// The link qualities: handed to the shaper as one timed schedule when
	// it takes one (the userspace engine applies each change itself at its
	// due time); otherwise applied from here, one SetLink per change.
	quality := r.applyQuality
	if len(p.changes) > 0 {
		err := m.ScheduleLinks(ctx, SourceScenario, lab, "run "+rec.ID(), start, timedChanges(p.changes))
		switch {
		case err == nil:
			quality, r.scheduled = r.followSchedule, true
		case errors.Is(err, netfabric.ErrUnsupported):
		default:
			rec.Close(runs.StatusFailed, err.Error())
			return nil, fmt.Errorf("hand the run's link qualities to the fabric: %w", err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	loops := []func(context.Context){
		quality,
		r.recordPositions,
		func(ctx context.Context) { rec.SampleLinks(ctx, time.Second, r.show) },
		func(ctx context.Context) { rec.SampleHosts(ctx, time.Second, r.hostSamples) },
		r.followEvents,
	}
	if o.Status != nil {
		loops = append(loops, func(ctx context.Context) { r.printStatus(ctx, o.Status) })
	}
	if o.SampleEvery >= 0 {
		r.procs = &procSampler{r: r, every: cmp.Or(o.SampleEvery, defaultSampleEvery(st.Accel)), physical: map[string]runs.HostSample{}}
		loops = append(loops, r.procs.run)
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(runCtx) }()
	}
	r.work = newRunWorkloads(r, ctx)
	r.work.startAll(p.runWorkloads)
	var workloadsEnded atomic.Bool
	if o.Bench != nil {
		go func() {
			r.work.wg.Wait()
			workloadsEnded.Store(true)
			stop()
		}()
	}
	if o.Quiet {
		// Again halfway through, with the lab's software running: what
		// started meanwhile (a timer that fired, a neighbour's VM) is noted
		// too, as quiet.during.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !r.sleepUntil(runCtx, p.tl.Duration/2) {
				return
			}
			qr, err := m.CheckQuiet(runCtx, lab, o.QuietWindow)
			if err != nil {
				if runCtx.Err() == nil {
					rec.SetNote("quiet.during", "check failed: "+err.Error())
				}
				return
			}
			for k, v := range qr.Notes() {
				rec.SetNote(strings.Replace(k, "quiet", "quiet.during", 1), v)
			}
			if qr.Noisy() {
				rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "quiet.noise", Args: map[string]any{"seen": qr.Notes()["quiet.seen"]}})
			}
		}()
	}

	results, playErr := scenario.PlayFrom(runCtx, clock, start, p.tl, runExecutor{r: r})
	if workloadsEnded.Load() && ctx.Err() == nil {
		playErr = nil // a bench run ends with its workloads
	}
	stop()
	wg.Wait()
	r.work.stopAll()
	os.RemoveAll(filepath.Join(l.Dir, "exec", rec.ID())) // exec output, copied into the run folder
	rep.Results = results

	// The end: links back, whatever ctx says.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	resetErr := m.locked(cctx, SourceForgelab, lab, ActionRunReset, nil, func(st *State) error {
		sh, err := m.shaper(st)
		if err != nil {
			return err
		}
		return resetLinks(cctx, st, sh)
	})
	if r.scheduled {
		r.collectSchedule(cctx) // what the engine applied before the reset cancelled the rest
	}
	rep.Applied, rep.Failed = r.applied, r.failed
	r.followEvents(nil) // the last lines, the reset among them
	if st, err := r.show(cctx); err == nil {
		save(rec.Links(time.Now(), st))
	}
	for _, h := range st.Plan.Hosts {
		if kindOf(h).madeHere() {
			if _, err := os.Stat(l.SerialLog(h.Name)); err == nil {
				save(rec.CopySerial(h.Name, l.SerialLog(h.Name)))
			}
		}
	}

	rep.Status = runs.StatusComplete
	switch {
	case playErr != nil && ctx.Err() != nil:
		rep.Status, rep.Reason = runs.StatusIncomplete, "stopped before the end (Ctrl-C)"
	case playErr != nil:
		rep.Status, rep.Reason = runs.StatusFailed, playErr.Error()
	case o.Bench != nil && !workloadsEnded.Load():
		rep.Status, rep.Reason = runs.StatusFailed, fmt.Sprintf("the bench workloads were still running after %s: stopped (raise timeout in [bench])", p.tl.Duration)
	case resetErr != nil:
		rep.Status, rep.Reason = runs.StatusFailed, "links not put back: "+resetErr.Error()
	case saveErr != nil:
		rep.Status, rep.Reason = runs.StatusIncomplete, "recording: "+saveErr.Error()
	}
	save(rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "run.end", Result: string(rep.Status), Error: rep.Reason}))
	if err := rec.Close(rep.Status, rep.Reason); err != nil {
		return rep, err
	}
	if resetErr != nil {
		return rep, fmt.Errorf("run %s ended, but its links were not put back: %w (run `forgelab link reset` on each)", rep.ID, resetErr)
	}
	return rep, nil
}

// runPlan is everything a run computes before it starts.
type runPlan struct {
	labData      []byte
	scenarioData []byte // nil when the lab file's [scenario] plays
	scenarioName string
	tl           *scenario.Timeline
	hosts        []string // in plan order
	mob          map[string]mobility.Model
	links        []linkq.Link // links whose quality follows a model
	changes      []linkq.Change
	runWorkloads []WorkloadSpec // start = "run"
}

// prepareRun reads the lab file as created and the scenario, and builds
// the models and the quality timeline: every problem is found before the
// run starts.
func (m *Manager) prepareRun(st *State, l store.Layout, o RunOptions) (*runPlan, error) {
	p := &runPlan{}
	data, err := os.ReadFile(l.LabFile())
	if errors.Is(err, os.ErrNotExist) {
		// A lab made before create kept a copy: the file it came from.
		data, err = os.ReadFile(st.File)
	}
	if err != nil {
		return nil, fmt.Errorf("read the lab file of %s: %w", st.Lab, err)
	}
	p.labData = data
	sp, err := spec.Parse(st.File, data)
	if err != nil {
		return nil, err
	}
	lab := spec.ScenarioLab(sp)
	if o.Bench != nil {
		if o.For <= 0 {
			return nil, errors.New("a bench run needs an upper bound on its length (RunOptions.For)")
		}
		p.labData = o.Bench.LabData
		p.tl, p.scenarioName = &scenario.Timeline{File: st.File, Duration: o.For}, "bench"
		p.runWorkloads = o.Bench.Workloads
	} else if o.Scenario != "" {
		if p.scenarioData, err = os.ReadFile(o.Scenario); err != nil {
			return nil, fmt.Errorf("read scenario: %w", err)
		}
		if p.tl, err = scenario.Parse(o.Scenario, p.scenarioData, lab); err != nil {
			return nil, err
		}
		p.scenarioName = strings.TrimSuffix(filepath.Base(o.Scenario), filepath.Ext(o.Scenario))
	} else {
		if p.tl, err = scenario.ParseSection(st.File, data, lab); err != nil {
			return nil, err
		}
		p.scenarioName = "lab"
	}
	switch {
	case o.For > 0 && o.Duration > 0:
		return nil, fmt.Errorf("give either --for (play part of a scenario) or --duration (a soak run), not both")
	case o.Duration > 0 && p.tl == nil:
		p.tl, p.scenarioName = &scenario.Timeline{File: st.File, Duration: o.Duration}, "none"
	case o.Duration > 0:
		// A soak run: the scenario once, then held at its end state (the
		// quality timeline below runs to the end: mobility models hold
		// their last position).
		if p.tl.Duration > o.Duration {
			p.tl.Actions = slices.DeleteFunc(slices.Clone(p.tl.Actions), func(a scenario.Action) bool { return a.At > o.Duration })
		}
		p.tl.Duration = o.Duration
	case p.tl == nil && o.For <= 0:
		return nil, fmt.Errorf("lab %s has no [scenario]: give a scenario file (forgelab run %s SCENARIO.toml), or a duration (--for 60s)", st.Lab, st.Lab)
	case p.tl == nil:
		p.tl, p.scenarioName = &scenario.Timeline{File: st.File, Duration: o.For}, "none"
	case o.For > 0:
		p.tl.Duration = o.For
		p.tl.Actions = slices.DeleteFunc(slices.Clone(p.tl.Actions), func(a scenario.Action) bool { return a.At > o.For })
	}

	lm, err := scenario.ParseModels(st.File, data)
	if err != nil {
		return nil, err
	}
	mob, qual, err := lm.Build(sp.Lab.Seed, sp.PositionOf, sp.ReadRelative)
	if err != nil {
		return nil, err
	}
	p.mob = map[string]mobility.Model{}
	for _, h := range st.Plan.Hosts {
		p.hosts = append(p.hosts, h.Name)
		if mm := mob[h.Name]; mm != nil {
			p.mob[h.Name] = mm
			continue
		}
		still, err := mobility.New(mobility.Config{Model: mobility.Static}, mobility.Env{Seed: sp.Lab.Seed, Host: h.Name, Position: mobility.Vec(h.Position)})
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		p.mob[h.Name] = still
	}
	for _, ls := range sp.Links {
		if ls.Model == "" {
			continue
		}
		if len(ls.Endpoints) != 2 {
			// Per-pair quality on a segment needs the userspace engine's
			// per-pair rules; the control path sets one quality per sender.
			return nil, fmt.Errorf("%s:%d: link %s: a quality model on a segment of %d hosts is not supported yet (use point-to-point links)", st.File, ls.Line, ls.Name, len(ls.Endpoints))
		}
		p.links = append(p.links, linkq.Link{Name: ls.Name, Endpoints: ls.Endpoints, Model: qual[ls.Model]})
	}
	if len(p.links) > 0 {
		if p.changes, err = linkq.Timeline(p.mob, p.links, linkq.Options{Duration: p.tl.Duration, Interval: o.Interval}); err != nil {
			return nil, err
		}
	}
	for _, w := range sp.Workloads {
		if w.Start == spec.StartRun && o.Bench == nil {
			p.runWorkloads = append(p.runWorkloads, w)
		}
	}
	return p, nil
}

func benchInfo(b *BenchRun) *runs.BenchInfo {
	if b == nil {
		return nil
	}
	info := b.Info
	return &info
}

// runner is one run while it plays.
type runner struct {
	m     *Manager
	st    *State
	rec   *runs.Recorder
	clock scenario.Clock
	start time.Time
	p     *runPlan
	work  *runWorkloads

	// scheduled: the shaper plays the qualities itself (ScheduleLinks);
	// seen is how many of its applied changes the run has recorded.
	scheduled bool
	sched     netfabric.Scheduler
	seen      int
	procs     *procSampler // nil: not sampling
	keep      bool         // a soak run: workloads that end early start again

	mu      sync.Mutex
	applied int
	failed  int
	status  *liveStatus
	events  int64 // bytes of the lab's event log already read; 1 for none (the log did not exist)
}

func (r *runner) show(ctx context.Context) (netfabric.State, error) {
	return r.m.ShowLinks(ctx, r.st.Lab)
}

// sleepUntil waits on the scenario clock; false when ctx ended first.
func (r *runner) sleepUntil(ctx context.Context, at time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	d := r.start.Add(at).Sub(r.clock.Now())
	if d <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-r.clock.After(d):
		return true
	}
}

// applyQuality applies the quality timeline: every change due at one
// instant, then one wait for the next instant.
func (r *runner) applyQuality(ctx context.Context) {
	cs := r.p.changes
	for i := 0; i < len(cs); {
		at := cs[i].At
		if !r.sleepUntil(ctx, at) {
			return
		}
		j := i
		for j < len(cs) && cs[j].At == at {
			j++
		}
		for _, c := range cs[i:j] {
			_, err := r.m.SetLink(ctx, SourceScenario, r.st.Lab, c.Link, "", fullChange(c.Quality))
			r.mu.Lock()
			if err != nil {
				r.failed++
			} else {
				r.applied++
			}
			r.mu.Unlock()
			r.status.link(c, err)
		}
		if st, err := r.show(ctx); err == nil {
			r.rec.Links(time.Now(), st)
		}
		i = j
	}
}

// timedChanges is the quality timeline as a shaper's schedule, change
// for change (an applied change's Index is its index in cs).
func timedChanges(cs []linkq.Change) []netfabric.TimedChange {
	out := make([]netfabric.TimedChange, len(cs))
	for i, c := range cs {
		q := c.Quality
		out[i] = netfabric.TimedChange{At: c.At, Link: c.Link, Quality: &q}
	}
	return out
}

// followSchedule records the changes the shaper applies from the run's
// schedule, at the quality rate, until ctx ends.
func (r *runner) followSchedule(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		r.collectSchedule(ctx)
	}
}

// collectSchedule records the schedule's changes applied since the last
// call: one event each (due time and lateness by the shaper's clock), the
// live status, and a sample of every link when anything changed, as a
// change applied from here gets.
func (r *runner) collectSchedule(ctx context.Context) {
	if r.sched == nil { // one connection for the whole run
		sh, err := r.m.shaper(r.st)
		if err != nil {
			return
		}
		sch, ok := sh.(netfabric.Scheduler)
		if !ok {
			return
		}
		r.sched = sch
	}
	st, err := r.sched.ScheduleStatus(ctx, r.seen)
	if err != nil || !st.Start.Equal(r.start) {
		return // not this run's schedule (none, or the engine restarted)
	}
	for _, a := range st.Records {
		if a.Index < 0 || a.Index >= len(r.p.changes) {
			continue
		}
		c := r.p.changes[a.Index]
		r.rec.Event(runs.Event{Time: r.start.Add(a.At + a.Late), Source: runs.SourceScenario, Action: ActionLinkSet,
			Args: map[string]any{"link": c.Link, "distance_m": c.Distance, "quality": c.Quality, "due_s": a.At.Seconds(), "late_s": a.Late.Seconds()}})
		r.mu.Lock()
		r.applied++
		r.mu.Unlock()
		r.status.link(c, nil)
	}
	r.seen += len(st.Records)
	if st.Error != "" && st.State != netfabric.ScheduleRunning {
		r.mu.Lock()
		r.failed = len(r.p.changes) - r.seen
		r.mu.Unlock()
	}
	if len(st.Records) > 0 {
		if ls, err := r.show(ctx); err == nil {
			r.rec.Links(time.Now(), ls)
		}
	}
}

// fullChange sets every field of a direction to q.
func fullChange(q netfabric.Impairment) QualityChange {
	c := QualityChange{Clear: true, RateBits: &q.RateBits, Delay: &q.Delay, Jitter: &q.Jitter,
		Loss: &q.Loss, Duplicate: &q.Duplicate, Reorder: &q.Reorder, Corrupt: &q.Corrupt, Limit: &q.Limit, Down: &q.Down}
	if q.Distribution != "" {
		c.Distribution = &q.Distribution
	}
	if !q.GE.IsZero() {
		// After Loss, which clears a bursty model: the declared one returns.
		b := [4]float64{q.GE.P, q.GE.R, q.GE.OneMinusH, q.GE.OneMinusK}
		c.LossBurst = &b
	}
	return c
}

// recordPositions records every host's position at the quality rate.
func (r *runner) recordPositions(ctx context.Context) {
	step := 100 * time.Millisecond
	for t := time.Duration(0); ; t += step {
		if !r.sleepUntil(ctx, t) {
			return
		}
		ps := make([]runs.Position, 0, len(r.p.hosts))
		for _, h := range r.p.hosts {
			v := r.p.mob[h].Position(t)
			ps = append(ps, runs.Position{Host: h, X: v[0], Y: v[1], Z: v[2]})
		}
		r.rec.Position(r.start.Add(t), ps...)
		r.status.positions(t, ps)
	}
}

// hostSamples are the hosts' resources: libvirt's domain statistics for
// VMs (one call for all), the /proc sampler's latest totals for physical
// hosts; NaN where neither says.
func (r *runner) hostSamples(ctx context.Context) ([]runs.HostSample, error) {
	var out []runs.HostSample
	byDomain := map[string]hypervisor.DomainStats{}
	if ds, ok := r.m.VMs.(domainStatser); ok {
		var names []string
		for _, h := range r.st.Plan.Hosts {
			if kindOf(h).madeHere() {
				names = append(names, h.Domain)
			}
		}
		stats, err := ds.DomainStats(names)
		if err != nil {
			return nil, err
		}
		for _, d := range stats {
			byDomain[d.Domain] = d
		}
	}
	for _, h := range r.st.Plan.Hosts {
		s := nanHost(h)
		switch {
		case kindOf(h).madeHere() && r.m.VMs != nil:
			state, err := r.m.VMs.DomainState(h.Domain)
			if err != nil {
				return nil, err
			}
			s.Up = 0
			if state == "running" {
				s.Up = 1
			}
			if d, ok := byDomain[h.Domain]; ok {
				hostSample(&s, d)
			}
		case !kindOf(h).madeHere():
			if ps, ok := r.procs.latest(h.Name); ok {
				s = ps
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// followEvents copies the lab's event log lines written since the run
// started into the run's events, once a second until ctx ends; with a nil
// ctx it reads once.
func (r *runner) followEvents(ctx context.Context) {
	path := r.m.Store.LayoutOf(r.st).Events()
	for {
		r.readEvents(path)
		if ctx == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (r *runner) readEvents(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	from := r.events
	if from == 1 {
		from = 0 // the log did not exist at the start
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return // a partial last line is read next time
		}
		from += int64(len(line))
		r.events = max(from, 1)
		var e store.Event
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		r.rec.Event(runs.Event{Time: e.Time, Source: e.Source, Action: e.Action, Args: e.Args, Result: e.Result, Error: e.Error})
		if e.Source != string(SourceScenario) || e.Result != store.ResultOK || e.Action != ActionLinkSet {
			r.status.event(e.Time.Sub(r.start), e.Source+" "+e.Action+" "+eventArgs(e.Args)+errSuffix(e.Error))
		}
	}
}

func eventArgs(args map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if k == "change" || k == "set" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, args[k]))
	}
	return strings.Join(parts, " ")
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

// resetLinks cancels any timed schedule, puts every link back to the
// quality the lab file declares, up, and heals any partition. The caller holds the lab's lock.
func resetLinks(ctx context.Context, st *State, sh netfabric.Shaper) error {
	if len(st.Plan.Links) == 0 {
		return nil // no links, no fabric to ask (a one-VM soak lab)
	}
	var errs []error
	// A run's schedule first, so none of its changes lands after the reset.
	if sch, ok := sh.(netfabric.Scheduler); ok {
		if err := sch.CancelSchedule(ctx); err != nil && !errors.Is(err, netfabric.ErrUnsupported) {
			errs = append(errs, fmt.Errorf("cancel the run's schedule: %w", err))
		}
	}
	if err := sh.Heal(ctx); err != nil && !errors.Is(err, netfabric.ErrUnsupported) {
		errs = append(errs, err)
	}
	for _, l := range st.Plan.Links {
		if err := sh.SetUp(ctx, l.Name, true); err != nil && !errors.Is(err, netfabric.ErrUnsupported) {
			errs = append(errs, fmt.Errorf("link %s: %w", l.Name, err))
		}
		for _, e := range l.Endpoints {
			if err := sh.Set(ctx, l.Name, e, impairment(l.Quality)); err != nil {
				errs = append(errs, fmt.Errorf("link %s from %s: %w", l.Name, e, err))
			}
		}
	}
	return errors.Join(errs...)
}

// recoverRun puts the links back after a run whose runner is gone (killed,
// or its machine rebooted). The caller holds the lab's lock; a run that
// still plays is left alone (changes during it are part of it).
func (m *Manager) recoverRun(ctx context.Context, st *State) error {
	l := m.Store.LayoutOf(st)
	mk, ok := readRunMarker(l)
	if !ok || mk.Recorder.Alive() {
		return nil
	}
	sh, err := m.shaper(st)
	if err != nil {
		return err
	}
	err = resetLinks(ctx, st, sh)
	e := store.Event{Source: string(SourceForgelab), Action: ActionRunRecover, Args: map[string]any{"run": mk.Dir, "pid": mk.Recorder.PID}, Result: store.ResultOK}
	if err != nil {
		e.Result, e.Error = store.ResultError, err.Error()
	}
	if lerr := m.Store.AppendEvent(st.Lab, e); lerr != nil && err == nil {
		err = fmt.Errorf("write the event log: %w", lerr)
	}
	if err != nil {
		return fmt.Errorf("the run %s was stopped without putting its links back, and putting them back failed: %w", mk.Dir, err)
	}
	m.progress("the run %s was stopped without putting its links back: done now (the run is marked incomplete)", mk.Dir)
	return os.Remove(l.RunFile())
}

// CurrentRun is the folder of the run playing on a lab, if its recorder
// is alive (serve reads its latest samples).
func CurrentRun(s *Store, st *State) (string, bool) {
	mk, ok := readRunMarker(s.LayoutOf(st))
	if !ok || !mk.Recorder.Alive() {
		return "", false
	}
	return mk.Dir, true
}

func readRunMarker(l store.Layout) (runMarker, bool) {
	data, err := os.ReadFile(l.RunFile())
	if err != nil {
		return runMarker{}, false
	}
	var mk runMarker
	if json.Unmarshal(data, &mk) != nil {
		return runMarker{Dir: strings.TrimSpace(string(data))}, true // unreadable: its runner is as good as gone
	}
	return mk, true
}

// imageDigest is an optional capability of Images: the digest of an
// image, for the run's fingerprint.
type imageDigest interface {
	Digest(name string) (string, error)
}

func (m *Manager) imageDigests(p *Plan) []runs.Image {
	d, ok := m.Images.(imageDigest)
	seen := map[string]bool{}
	var out []runs.Image
	for _, h := range p.Hosts {
		if h.Image == "" || seen[h.Image] {
			continue
		}
		seen[h.Image] = true
		img := runs.Image{Name: h.Image}
		if ok {
			if s, err := d.Digest(h.Image); err == nil {
				img.Digest = s
			}
		}
		out = append(out, img)
	}
	return out
}

// runExecutor is the scenario's executor during a run: workloads and
// markers are the run's own business; everything else goes through the
// control path.
type runExecutor struct{ r *runner }

func (e runExecutor) Do(ctx context.Context, a scenario.Action) error {
	switch a.Kind {
	case scenario.WorkStart:
		return e.r.work.start(a.Workload)
	case scenario.WorkStop:
		return e.r.work.stop(a.Workload)
	case scenario.Marker:
		return nil
	case scenario.Exec:
		return e.r.work.exec(a)
	}
	return ScenarioExecutor{M: e.r.m, Lab: e.r.st.Lab}.Do(ctx, a)
}

// Report records the actions the control path does not log itself.
func (e runExecutor) Report(res scenario.Result) {
	switch res.Action.Kind {
	case scenario.WorkStart, scenario.WorkStop, scenario.Marker, scenario.Exec:
	default:
		if res.Err == nil {
			return // in the lab's event log, which the run follows
		}
		if !errors.Is(res.Err, errors.ErrUnsupported) {
			return // failed in the control path: logged there too
		}
	}
	ev := runs.Event{Time: e.r.start.Add(res.Ran), Source: runs.SourceScenario, Action: string(res.Action.Kind),
		Args: map[string]any{"action": res.Action.String()}, Took: res.Took.Seconds()}
	if res.Action.Kind == scenario.Marker {
		ev.Args["label"] = res.Action.Label // compare names the scenario's phases by it
	}
	if res.Err != nil {
		ev.Error = res.Err.Error()
	}
	e.r.rec.Event(ev)
	e.r.status.event(res.Ran, "scenario "+res.Action.String()+errSuffix(ev.Error))
}

// runWorkloads are the workloads that start with a run (start = "run"):
// started at t=0 (or by the scenario), stopped at the end; their output
// goes into the run folder when each ends.
type runWorkloads struct {
	r   *runner
	ctx context.Context

	mu      sync.Mutex
	specs   map[string]WorkloadSpec
	running map[string]context.CancelFunc
	wg      sync.WaitGroup
}

func newRunWorkloads(r *runner, ctx context.Context) *runWorkloads {
	w := &runWorkloads{r: r, ctx: ctx, specs: map[string]WorkloadSpec{}, running: map[string]context.CancelFunc{}}
	for _, s := range r.p.runWorkloads {
		w.specs[s.Name] = s
	}
	return w
}

func (w *runWorkloads) startAll(specs []WorkloadSpec) {
	for _, s := range specs {
		if err := w.start(s.Name); err != nil {
			w.r.rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "workload.start", Args: map[string]any{"workload": s.Name}, Error: err.Error()})
		}
	}
}

// start runs a workload on each of its hosts, unless it runs already.
func (w *runWorkloads) start(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.specs[name]
	if !ok {
		return fmt.Errorf("workload %s does not start with a run (add start = \"run\" to its [[workload]]): %w", name, errors.ErrUnsupported)
	}
	if _, on := w.running[name]; on {
		return nil
	}
	ctx, cancel := context.WithCancel(w.ctx)
	w.running[name] = cancel
	st, l := w.r.st, w.r.m.Store.LayoutOf(w.r.st)
	for _, h := range st.Plan.Hosts {
		if !spec.OnHost(s.Hosts, h.Name) {
			continue
		}
		wl, err := toWorkload(s, hostFacts(st.Plan, st.Coord, h.Name))
		if err != nil {
			return fmt.Errorf("workload %s on host %s: %w", s.Name, h.Name, err)
		}
		w.wg.Add(1)
		go func(host string) {
			defer w.wg.Done()
			for n := 1; ; n++ {
				w.run(ctx, host, wl, l.WorkloadDir(s.Name, host))
				if !w.r.keep || ctx.Err() != nil {
					return
				}
				// A soak run keeps its workloads running: again, after a
				// pause so a workload that fails at once does not spin.
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				w.r.rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "workload.restart", Args: map[string]any{"workload": wl.Name, "host": host, "n": n}})
			}
		}(h.Name)
	}
	return nil
}

// exec runs an exec action's command in the background, so the
// timeline goes on while it runs, and records its output as
// workloads/<host>-exec-<line>-<ms>.stdout/.stderr and its end as an
// exec.end event with the exit code. A command still running at the end
// of the run is stopped with the workloads.
func (w *runWorkloads) exec(a scenario.Action) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := execName(a)
	ctx, cancel := context.WithCancel(w.ctx)
	w.running[name] = cancel
	out := filepath.Join(w.r.m.Store.LayoutOf(w.r.st).Dir, "exec", w.r.rec.ID(), name)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.running, name)
			w.mu.Unlock()
			cancel()
		}()
		rec := w.r.rec
		res, err := w.r.m.Exec(ctx, SourceScenario, w.r.st.Lab, a.Host, a.Command, out)
		ended := res.Ended
		if ended.IsZero() {
			ended = time.Now()
		}
		eachLine(res.Stdout, func(line []byte) { rec.WorkloadLine(ended, a.Host, name, runs.Stdout, line) })
		eachLine(res.Stderr, func(line []byte) { rec.WorkloadLine(ended, a.Host, name, runs.Stderr, line) })
		ev := runs.Event{Time: ended, Source: runs.SourceScenario, Action: "exec.end",
			Args: map[string]any{"host": a.Host, "command": a.Command, "line": a.Line, "output": name, "exit_code": res.ExitCode},
			Took: ended.Sub(res.Started).Seconds()}
		switch {
		case err != nil && ctx.Err() != nil:
			ev.Error = "stopped at the end of the run"
		case err != nil:
			ev.Error = err.Error()
		case res.ExitCode != 0:
			ev.Error = fmt.Sprintf("%s:%d: exited with status %d", a.File, a.Line, res.ExitCode)
		}
		rec.Event(ev)
		w.r.status.event(ended.Sub(w.r.start), "exec on "+a.Host+" ended"+errSuffix(ev.Error))
	}()
	return nil
}

func (w *runWorkloads) stop(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cancel, ok := w.running[name]; ok {
		cancel()
		delete(w.running, name)
	}
	return nil
}

// stopAll ends every workload still running and waits until their output
// is recorded.
func (w *runWorkloads) stopAll() {
	w.mu.Lock()
	for name, cancel := range w.running {
		cancel()
		delete(w.running, name)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// run runs one workload on one host and records what it printed: each
// JSON line at the time forgelab received it.
func (w *runWorkloads) run(ctx context.Context, host string, wl provision.Workload, out string) {
	rec := w.r.rec
	fail := func(err error) {
		rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "workload.end", Args: map[string]any{"workload": wl.Name, "host": host}, Error: err.Error()})
	}
	os.RemoveAll(out) // the output of an earlier run
	conn, err := w.r.m.software().Connect(ctx, w.r.st, host)
	if err != nil {
		fail(err)
		return
	}
	defer conn.Close()
	rec.Event(runs.Event{Source: runs.SourceForgelab, Action: "workload.start", Args: map[string]any{"workload": wl.Name, "host": host}})
	res, err := conn.RunWorkload(ctx, wl, out)
	if err != nil && ctx.Err() == nil {
		fail(err)
	}
	times := make([]time.Time, 0, len(res.Metrics))
	for _, mt := range res.Metrics {
		times = append(times, mt.Time)
	}
	ended := res.Ended
	if ended.IsZero() {
		ended = time.Now()
	}
	eachLine(res.Stdout, func(line []byte) {
		at := ended
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '{' && json.Valid(t) && len(times) > 0 {
			at, times = times[0], times[1:]
		}
		rec.WorkloadLine(at, host, wl.Name, runs.Stdout, line)
	})
	eachLine(res.Stderr, func(line []byte) { rec.WorkloadLine(ended, host, wl.Name, runs.Stderr, line) })
	rec.Event(runs.Event{Time: ended, Source: runs.SourceForgelab, Action: "workload.end",
		Args: map[string]any{"workload": wl.Name, "host": host, "exit_code": res.ExitCode, "metrics": len(res.Metrics)}})
}

func eachLine(path string, f func([]byte)) {
	if path == "" {
		return
	}
	file, err := os.Open(path)
	if err != nil {
		return
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		f(sc.Bytes())
	}
}

// liveStatus is what the status line shows: the latest of everything.
// A link's distance comes from the hosts' current positions and its
// quality from what the shaper reports (fabric), not from the last change
// the run applied: a link taken down, or changed from another terminal,
// shows as it is, and a link out of range shows its growing distance
// although its quality no longer changes.
type liveStatus struct {
	mu       sync.Mutex
	duration time.Duration
	t        time.Duration
	pos      []runs.Position
	order    []string
	ends     map[string][]string
	applied  map[string]string // the last applied change's quality, until the shaper is read
	errs     map[string]string // the last change's error, until one succeeds
	fabric   map[string]netfabric.LinkState
	last     []string
}

func newLiveStatus(p *runPlan) *liveStatus {
	s := &liveStatus{duration: p.tl.Duration, ends: map[string][]string{}, applied: map[string]string{},
		errs: map[string]string{}, fabric: map[string]netfabric.LinkState{}}
	for _, l := range p.links {
		s.order = append(s.order, l.Name)
		s.ends[l.Name] = l.Endpoints
	}
	return s
}

func (s *liveStatus) positions(t time.Duration, ps []runs.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t, s.pos = t, ps
}

// link notes a change the run applied (or failed to).
func (s *liveStatus) link(c linkq.Change, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs[c.Link] = err.Error()
		return
	}
	delete(s.errs, c.Link)
	s.applied[c.Link] = qualityText(c.Quality)
	delete(s.fabric, c.Link) // older than this change
}

// links takes the shaper's view of every link.
func (s *liveStatus) links(st netfabric.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range st.Links {
		s.fabric[l.Name] = l
	}
}

func qualityText(q netfabric.Impairment) string {
	if q.Down {
		return "down"
	}
	text := fmt.Sprintf("loss %.1f%% delay %s", q.Loss, q.Delay)
	if q.RateBits > 0 {
		text += fmt.Sprintf(" rate %.1fMbit", float64(q.RateBits)/1e6)
	}
	return text
}

// linkText is a link's quality as the shaper has it: "down" when the
// link is down, one quality when both ways agree, else one per sender.
func linkText(l netfabric.LinkState) string {
	if !l.Up {
		return "down"
	}
	if len(l.Directions) == 0 {
		return "-"
	}
	same := true
	for _, d := range l.Directions[1:] {
		same = same && d.Quality == l.Directions[0].Quality
	}
	if same {
		return qualityText(l.Directions[0].Quality)
	}
	var parts []string
	for _, d := range l.Directions {
		parts = append(parts, "from "+d.From+": "+qualityText(d.Quality))
	}
	return strings.Join(parts, "; ")
}

// distance is the distance between a link's two hosts now, or -1.
func (s *liveStatus) distance(link string) float64 {
	ends := s.ends[link]
	if len(ends) != 2 {
		return -1
	}
	var at [2]*runs.Position
	for i := range s.pos {
		for k, e := range ends {
			if s.pos[i].Host == e {
				at[k] = &s.pos[i]
			}
		}
	}
	if at[0] == nil || at[1] == nil {
		return -1
	}
	dx, dy, dz := at[0].X-at[1].X, at[0].Y-at[1].Y, at[0].Z-at[1].Z
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

func (s *liveStatus) event(t time.Duration, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = append(s.last, fmt.Sprintf("%6.1fs %s", t.Seconds(), what))
	if len(s.last) > 3 {
		s.last = s.last[len(s.last)-3:]
	}
}

func (s *liveStatus) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "t=%5.1fs/%s ", s.t.Seconds(), s.duration)
	for _, p := range s.pos {
		fmt.Fprintf(&b, " %s(%.0f,%.0f,%.0f)", p.Host, p.X, p.Y, p.Z)
	}
	b.WriteByte('\n')
	for _, l := range s.order {
		text := "-"
		if fl, ok := s.fabric[l]; ok {
			text = linkText(fl)
		} else if a, ok := s.applied[l]; ok {
			text = a
		}
		if e, ok := s.errs[l]; ok {
			text += " (last change failed: " + e + ")"
		}
		if d := s.distance(l); d >= 0 {
			text = fmt.Sprintf("%.0fm %s", d, text)
		}
		fmt.Fprintf(&b, "  %s: %s\n", l, text)
	}
	for _, e := range s.last {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// printStatus writes the status once a second.
func (r *runner) printStatus(ctx context.Context, w io.Writer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if st, err := r.show(ctx); err == nil {
			r.status.links(st)
		}
		fmt.Fprint(w, r.status.String())
	}
}

// defaultSampleEvery is how often processes are sampled when the run does
// not say: under TCG /proc itself is slow to generate (BENCHMARKS.md).
func defaultSampleEvery(accel string) time.Duration {
	if accel == "tcg" {
		return 5 * time.Second
	}
	return time.Second
}
