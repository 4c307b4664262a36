package scenario

import (
	"context"
	"time"
)

// Executor carries out actions; the lab implements it over its control
// path, so an action from a scenario is validated, serialised and logged
// like one from the CLI.
type Executor interface {
	Do(ctx context.Context, a Action) error
}

// Reporter is an optional capability of an Executor: hear about each
// action when it has run, for the live status and the run record.
type Reporter interface {
	Report(r Result)
}

// Result is what happened to one action.
type Result struct {
	Action Action
	Ran    time.Duration // when it started, from the start of the run
	Took   time.Duration
	Err    error
}

// Late is how far behind its due time the action started.
func (r Result) Late() time.Duration { return r.Ran - r.Action.At }

// Play runs tl on clock, starting now: each action at its due time, one at
// a time, in order. An action that fails is reported and the run goes on
// (a scenario is an experiment: a failed exec is data); an action that
// starts late is run at once. Play returns at the end of the scenario
// (tl.Duration) with every result, or early with ctx's error when ctx is
// cancelled; actions not yet due are then not run.
func Play(ctx context.Context, clock Clock, tl *Timeline, ex Executor) ([]Result, error) {
	return PlayFrom(ctx, clock, clock.Now(), tl, ex)
}

// PlayFrom is Play with the run's start given, so that the mobility loop
// and the scenario share one time origin.
func PlayFrom(ctx context.Context, clock Clock, start time.Time, tl *Timeline, ex Executor) ([]Result, error) {
	rep, _ := ex.(Reporter)
	results := make([]Result, 0, len(tl.Actions))
	for _, a := range tl.Actions {
		if err := sleepUntil(ctx, clock, start.Add(a.At)); err != nil {
			return results, err
		}
		began := clock.Now()
		err := ex.Do(ctx, a)
		r := Result{Action: a, Ran: began.Sub(start), Took: clock.Now().Sub(began), Err: err}
		results = append(results, r)
		if rep != nil {
			rep.Report(r)
		}
	}
	return results, sleepUntil(ctx, clock, start.Add(tl.Duration))
}

// sleepUntil waits for the clock to reach t, or for ctx.
func sleepUntil(ctx context.Context, clock Clock, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := t.Sub(clock.Now())
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// ExecutorFunc lets a function be an Executor.
type ExecutorFunc func(ctx context.Context, a Action) error

// Do calls f.
func (f ExecutorFunc) Do(ctx context.Context, a Action) error { return f(ctx, a) }
