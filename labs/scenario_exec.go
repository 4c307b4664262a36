package labs

import (
	"context"
	"errors"
	"fmt"
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
	}
	return fmt.Errorf("%s: not in the control path yet: %w", a.Kind, errors.ErrUnsupported)
}
