package labs

// forgelab bench (issue 12): repeated, interleaved runs of the modes of a
// lab file's [bench] section on one lab, each a recorded run (run.go with
// RunOptions.Bench), judged against a stored baseline or the reference
// mode. What a [bench] section says, the order, the metrics of a run, the
// baselines and the verdict are package labs/bench; this file plays it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/bench"
	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/telemetry/runs"
)

// ActionBenchReset is the event of putting a lab back to its declared
// state before a bench run.
const ActionBenchReset = "bench.reset"

// BenchOptions say what to bench. Runs 0, and Warmup, Noise and
// Tolerance below 0, take the [bench] section's values (Warmup 0 is no
// warm-up; Noise 0 calls every significant change real).
type BenchOptions struct {
	File   string
	Runs   int      // measured runs per mode and point; 0: the file's
	Warmup int      // warm-up rounds; -1: the file's
	Modes  []string // nil: every mode
	Points []string // nil: every point
	// Baseline names a stored baseline to judge the runs against.
	Baseline string
	// AgainstReference judges every mode against the reference mode.
	AgainstReference bool
	// Noise and Tolerance override the file's (relative; < 0: the file's).
	Noise, Tolerance float64
	// Down destroys the lab at the end; otherwise it stays up (made if it
	// was not).
	Down   bool
	Create CreateOptions
	// Quiet checks, before and halfway through each measured run, that
	// the machine and the lab are quiet (Manager.CheckQuiet, as `run
	// --quiet`), and stops the bench at a noisy run unless AllowNoise:
	// then the run is recorded marked noisy and the report says which.
	Quiet, AllowNoise bool
	// Progress gets a line per run; nil: none.
	Progress io.Writer
}

// PreparedBench is a bench whose input has been checked: ready to run.
type PreparedBench struct {
	o    BenchOptions
	file string // absolute
	data []byte
	sp   *Spec
	cfg  *bench.Config
	plan *benchPlanned
	base *bench.Baseline
}

// PrepareBench checks everything a bench needs before any VM boots: the
// lab file and its [bench] section, the options against it, the
// baseline, and that the runs asked for can decide at all. Every problem
// comes back wrapping bench.ErrUsage.
func PrepareBench(stateDir string, o BenchOptions) (*PreparedBench, error) {
	data, err := os.ReadFile(o.File)
	if err != nil {
		return nil, bench.Usagef("read lab file: %v", err)
	}
	file := o.File
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	sp, err := spec.Load(o.File)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", bench.ErrUsage, err)
	}
	sp.File = file
	cfg, err := bench.Parse(o.File, data, sp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", bench.ErrUsage, err)
	}
	plan, err := benchPlan(cfg, o)
	if err != nil {
		return nil, err
	}
	var base *bench.Baseline
	if o.Baseline != "" {
		if base, err = bench.NewStore(stateDir).Get(o.Baseline); err != nil {
			if errors.Is(err, bench.ErrNoBaseline) {
				return nil, fmt.Errorf("%w: %w", bench.ErrUsage, err)
			}
			return nil, err
		}
	}
	if err := bench.RunsNeeded(plan.runs, base, plan.gate.Reference != ""); err != nil {
		return nil, err
	}
	return &PreparedBench{o: o, file: file, data: data, sp: sp, cfg: cfg, plan: plan, base: base}, nil
}

// SetCreate sets how the lab is made when it is not up.
func (pb *PreparedBench) SetCreate(c CreateOptions) { pb.o.Create = c }

// Bench runs a prepared bench and judges it: the report's ExitCode says
// whether a metric regressed.
func (m *Manager) Bench(ctx context.Context, pb *PreparedBench) (*bench.Report, error) {
	o, file, data, sp, cfg, plan, base := pb.o, pb.file, pb.data, pb.sp, pb.cfg, pb.plan, pb.base
	baselines := bench.NewStore(m.Store.Dir)
	lab := sp.Lab.Name
	st, err := m.Store.Load(lab)
	switch {
	case errors.Is(err, store.ErrNoLab):
		m.progress("lab %s is not up: creating it from %s", lab, o.File)
		if st, err = m.Create(ctx, sp, o.Create); err != nil {
			return nil, fmt.Errorf("create %s: %w", lab, err)
		}
	case err != nil:
		return nil, err
	case st.Phase != store.PhaseReady:
		return nil, fmt.Errorf("lab %s is %s, not ready: destroy it (forgelab destroy %s) and bench again", lab, st.Phase, lab)
	}
	if o.Down {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
			defer cancel()
			if err := m.Destroy(cctx, lab); err != nil {
				m.progress("destroy %s after the bench: %v", lab, err)
			}
		}()
	}

	id := time.Now().UTC().Format("20060102T150405Z")
	rep := &bench.Report{Bench: id, Lab: lab, Runs: plan.runs}
	workloads := map[string]WorkloadSpec{}
	for _, w := range sp.Workloads {
		workloads[w.Name] = w
	}
	order := bench.Order(plan.modes, plan.points, plan.runs, plan.warmup)
	var noisy []string // runs recorded next to noise (AllowNoise)
	for i, slot := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mode, _ := cfg.Mode(slot.Mode)
		if err := m.benchReset(ctx, lab, cfg, slot.Point); err != nil {
			return nil, fmt.Errorf("put lab %s back to its declared state before run %d: %w", lab, i+1, err)
		}
		br := &BenchRun{Info: runs.BenchInfo{ID: id, Mode: slot.Mode, Point: slot.Point, Round: slot.Round, Warmup: slot.Warmup}, LabData: data}
		for _, w := range mode.Workloads {
			br.Workloads = append(br.Workloads, workloads[w])
		}
		start := time.Now()
		rr, err := m.Run(ctx, lab, RunOptions{Variant: slot.Mode, For: cfg.Timeout, Bench: br,
			Quiet: o.Quiet && !slot.Warmup, AllowNoise: o.AllowNoise})
		if err != nil {
			return nil, fmt.Errorf("run %d (%s): %w", i+1, slot.Mode, err)
		}
		r, err := runs.Open(rr.Dir)
		if err != nil {
			return nil, err
		}
		if n := r.Meta.Fingerprint.Notes; n["quiet"] == "no" || n["quiet.during"] == "no" {
			noisy = append(noisy, fmt.Sprintf("run %s was noisy (%s)", r.Name(), strings.Trim(n["quiet.seen"]+"; "+n["quiet.during.seen"], "; ")))
		}
		vals, err := bench.RunValues(r, cfg)
		if err != nil {
			return nil, err
		}
		what := "run"
		if slot.Warmup {
			what = "warm-up"
		}
		var shown []string
		for _, v := range vals {
			if !slot.Warmup {
				rep.Samples.Add(v.Key, v.Better, v.Value, r.Name())
			}
			shown = append(shown, fmt.Sprintf("%s=%.4g", v.Key.Metric, v.Value))
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%3d/%d %s %s%s round %d: %s in %.1fs (%s)\n", i+1, len(order), what, slot.Mode, at(slot.Point), slot.Round,
				strings.Join(shown, " "), time.Since(start).Seconds(), r.Name())
		}
	}
	last := &bench.Baseline{Name: "last", Created: time.Now().UTC(), Lab: lab, File: file, Bench: id, Samples: rep.Samples}
	if err := baselines.SaveLast(last); err != nil {
		return nil, err
	}
	if err := bench.Judge(rep, base, plan.gate); err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, noisy...)
	return rep, nil
}

func at(point string) string {
	if point == "" {
		return ""
	}
	return " at " + point
}

type benchPlanned struct {
	modes, points []string
	runs, warmup  int
	gate          bench.Gate
}

// benchPlan checks the options against the [bench] section.
func benchPlan(cfg *bench.Config, o BenchOptions) (*benchPlanned, error) {
	p := &benchPlanned{runs: cfg.Runs, warmup: cfg.Warmup,
		gate: bench.Gate{Noise: cfg.Noise, Tolerance: cfg.Tolerance}}
	if o.Runs > 0 {
		p.runs = o.Runs
	} else if o.Runs < 0 {
		return nil, bench.Usagef("--runs %d: give at least 1", o.Runs)
	}
	if o.Warmup >= 0 {
		p.warmup = o.Warmup
	}
	if o.Noise >= 0 {
		p.gate.Noise = o.Noise
	}
	if o.Tolerance >= 0 {
		p.gate.Tolerance = o.Tolerance
	}
	p.modes = cfg.ModeNames()
	if o.Modes != nil {
		for _, name := range o.Modes {
			if _, ok := cfg.Mode(name); !ok {
				return nil, bench.Usagef("mode %q is not in the [bench] section of %s (modes: %s)", name, cfg.File, strings.Join(cfg.ModeNames(), ", "))
			}
		}
		p.modes = o.Modes
	}
	var all []string
	for _, pt := range cfg.Points {
		all = append(all, pt.Name)
	}
	p.points = all
	if o.Points != nil {
		for _, name := range o.Points {
			if !slices.Contains(all, name) {
				return nil, bench.Usagef("point %q is not in the [bench] section of %s (points: %s)", name, cfg.File, orNoneList(all))
			}
		}
		p.points = o.Points
	}
	if o.AgainstReference {
		if cfg.Reference == "" {
			return nil, bench.Usagef("--against-reference: %s has no reference mode (add a [[bench.mode]] with kind = \"reference\", or reference = \"MODE\" in [bench])", cfg.File)
		}
		if !slices.Contains(p.modes, cfg.Reference) {
			p.modes = append(p.modes, cfg.Reference) // judged against it, so it runs
		}
		p.gate.Reference = cfg.Reference
	}
	return p, nil
}

func orNoneList(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// benchReset puts the lab back to what its lab file declares (every link's
// quality, up, no partition, the fabric's random choices from the seed;
// the [bench] restart services restarted and ready), then sets the
// point's link quality, all through the control path.
func (m *Manager) benchReset(ctx context.Context, lab string, cfg *bench.Config, point string) error {
	err := m.change(ctx, SourceForgelab, lab, ActionBenchReset, map[string]any{"point": point}, func(st *State, sh netfabric.Shaper) error {
		if err := resetLinks(ctx, st, sh); err != nil {
			return err
		}
		if r, ok := sh.(netfabric.Reseeder); ok {
			return r.Reseed(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(cfg.Restart) > 0 {
		if err := m.restartServices(ctx, lab, cfg.Restart); err != nil {
			return err
		}
	}
	for _, pt := range cfg.Points {
		if pt.Name != point {
			continue
		}
		c := QualityChange{RateBits: pt.RateBits, Delay: pt.Delay, Jitter: pt.Jitter, Loss: pt.Loss}
		if _, err := m.SetLink(ctx, SourceForgelab, lab, pt.Link, "", c); err != nil {
			return fmt.Errorf("point %s: %w", pt.Name, err)
		}
	}
	return nil
}

// restartServices restarts the named services on their hosts and waits
// until each is ready again.
func (m *Manager) restartServices(ctx context.Context, lab string, names []string) error {
	return m.locked(ctx, SourceForgelab, lab, "service.restart", map[string]any{"services": names}, func(st *State) error {
		sp, err := recordedSpec(st)
		if err != nil {
			return err
		}
		rec := m.Store.Recorder(st)
		for _, h := range st.Plan.Hosts {
			var todo []ServiceSpec
			for _, s := range sp.Services {
				if slices.Contains(names, s.Name) && spec.OnHost(s.Hosts, h.Name) {
					todo = append(todo, s)
				}
			}
			if len(todo) == 0 {
				continue
			}
			conn, err := m.software().Connect(ctx, st, h.Name)
			if err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
			sm, err := conn.Services(ctx, m.serviceOptions(rec, h.Name))
			if err == nil {
				for _, s := range todo {
					if err = m.upService(ctx, rec, sm, s, h.Name); err != nil {
						break
					}
				}
			}
			conn.Close()
			if err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
		return nil
	})
}
