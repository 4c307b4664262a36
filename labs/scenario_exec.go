package labs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/labs/scenario"
)

// ScenarioExecutor carries out a scenario's actions on a running lab
// through the control path, as source "scenario": an action from a
// scenario is validated, serialised and logged like one from the CLI.
type ScenarioExecutor struct {
	M   *Manager
	Lab string
	// ExecDir holds the output of exec actions, one directory each;
	// "": exec/ in the lab's directory.
	ExecDir string
}

var _ scenario.Executor = ScenarioExecutor{}

// Do runs one action.
func (e ScenarioExecutor) Do(ctx context.Context, a scenario.Action) error {
	m, lab := e.M, e.Lab
	switch a.Kind {
	case scenario.LinkSet:
		p := a.Patch
		_, err := m.SetLink(ctx, SourceScenario, lab, a.Link, a.Sender, QualityChange{
			RateBits: p.Rate, Delay: p.Delay, Jitter: p.Jitter, Distribution: p.Distribution,
			Loss: p.Loss, LossBurst: p.LossBurst, Duplicate: p.Duplicate, Reorder: p.Reorder, Corrupt: p.Corrupt, Limit: p.Limit,
		})
		return err
	case scenario.LinkReset:
		return m.ResetLink(ctx, SourceScenario, lab, a.Link, a.Sender)
	case scenario.LinkDown, scenario.LinkUp:
		return m.LinkUpDown(ctx, SourceScenario, lab, a.Link, a.Kind == scenario.LinkUp)
	case scenario.Partition:
		return m.Partition(ctx, SourceScenario, lab, a.Groups)
	case scenario.Heal:
		return m.Heal(ctx, SourceScenario, lab)
	case scenario.HostStop, scenario.HostStart, scenario.HostKill, scenario.HostPause, scenario.HostResume, scenario.HostReboot:
		return m.HostAction(ctx, SourceScenario, lab, a.Host, hypervisor.HostAction(strings.TrimPrefix(string(a.Kind), "host.")))
	case scenario.NICDown, scenario.NICUp:
		return m.SetNIC(ctx, SourceScenario, lab, a.Host, a.Link, a.Kind == scenario.NICUp)
	case scenario.Exec:
		dir := e.ExecDir
		if dir == "" {
			st, err := m.Store.Load(lab)
			if err != nil {
				return err
			}
			dir = filepath.Join(m.Store.LayoutOf(st).Dir, "exec")
		}
		res, err := m.Exec(ctx, SourceScenario, lab, a.Host, a.Command, filepath.Join(dir, execName(a)))
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("%s:%d: exec on host %s exited with status %d (its output: %s)", a.File, a.Line, a.Host, res.ExitCode, filepath.Dir(res.Stdout))
		}
		return err
	case scenario.Marker:
		return nil // a mark in the record; the lab does not change
	case scenario.WorkStart, scenario.WorkStop:
		// Workloads that start with a run are the run's (forgelab run);
		// the others run in the background from create.
		return fmt.Errorf("%s:%d: %s %s: only during forgelab run, for a workload with start = \"run\": %w", a.File, a.Line, a.Kind, a.Workload, errors.ErrUnsupported)
	}
	return fmt.Errorf("%s: not in the control path yet: %w", a.Kind, errors.ErrUnsupported)
}

// execName names an exec action's output: exec-<line of its event>, and
// its time when an event repeats (every, windows).
func execName(a scenario.Action) string {
	return fmt.Sprintf("exec-%d-%dms", a.Line, a.At.Milliseconds())
}
