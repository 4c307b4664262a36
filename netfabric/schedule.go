package netfabric

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// TimedChange is one step of a timed schedule: At after the schedule's
// start, give what From sends on Link ("" = every direction) the quality
// Quality, and/or take the whole link up or down. A change sets at least
// one of the two; with both, the quality is set first.
type TimedChange struct {
	At      time.Duration `json:"at_ns"`
	Link    string        `json:"link"`
	From    string        `json:"from,omitempty"`
	Quality *Impairment   `json:"quality,omitempty"` // nil: the quality stays
	Up      *bool         `json:"up,omitempty"`      // nil: up/down stays; applies to the whole link
}

// Scheduler is an optional Shaper capability: the shaper takes a whole
// timed schedule at once and applies each change itself at its due time,
// start + At, rather than one control call per change. The userspace
// engine has it; for other shapers a Player (see AsScheduler) does the
// same from the caller's process, with PlaySchedule's loop.
//
// Changes due at the same time are applied in the order given. A change
// applied late (the shaper was busy, or start is in the past) is applied
// as soon as possible and its lateness recorded; none is skipped or
// applied early.
//
// A Scheduler that turns out unable to take schedules (a fabric daemon
// started by an older forgelab) returns ErrUnsupported from Schedule; a
// runner then falls back to a Player.
//
// Direct calls (Set, SetUp, Partition, ...) made while a schedule runs
// still work: a manual change holds until the schedule's next change of
// the same direction (Set) or link (SetUp), which overwrites it.
type Scheduler interface {
	// Schedule validates every change (known links and hosts, valid
	// qualities) and refuses the whole schedule, changing nothing, if one
	// is wrong. Otherwise it replaces any pending schedule, whose
	// remaining changes then never apply, and returns at once.
	Schedule(ctx context.Context, start time.Time, changes []TimedChange) error
	// CancelSchedule drops the changes not yet applied. Links keep the
	// quality they have; putting them back is the caller's business.
	CancelSchedule(ctx context.Context) error
	// ScheduleStatus reports progress and lateness; Records holds the
	// changes applied from the since'th on (0: all), so a caller can
	// collect them as they happen.
	ScheduleStatus(ctx context.Context, since int) (ScheduleStatus, error)
}

// States of a schedule.
const (
	ScheduleNone      = "none"      // no schedule was given
	ScheduleRunning   = "running"   // changes are pending
	ScheduleDone      = "done"      // every change is applied
	ScheduleCancelled = "cancelled" // cancelled, or the shaper stopped, before the end
)

// ScheduleStatus is the progress of the current (or last) schedule.
type ScheduleStatus struct {
	State   string    `json:"state"`
	Start   time.Time `json:"start,omitzero"`
	Changes int       `json:"changes"` // in the schedule
	Applied int       `json:"applied"` // applied so far
	// Lateness covers every change applied so far; it is given when
	// since is 0 and left zero otherwise, so that collecting records as
	// they come costs only the new ones (the collector has them all to
	// summarise).
	Lateness Lateness `json:"lateness"`
	// Records are the applied changes from the since'th on, in the order
	// applied.
	Records []AppliedChange `json:"records,omitempty"`
	// Error says why a schedule played from the caller's process (Player)
	// stopped early: the shaper refused a change.
	Error string `json:"error,omitempty"`
}

// AppliedChange is one change as applied: when it was due and how late it
// took effect, by the applier's clock (the engine's own, for the userspace
// engine).
type AppliedChange struct {
	Index int           `json:"i"`       // position in the slice given to Schedule
	At    time.Duration `json:"at_ns"`   // due, from the start
	Late  time.Duration `json:"late_ns"` // applied minus due; never negative
}

// Lateness summarises how late changes took effect.
type Lateness struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func (l Lateness) String() string {
	if l.N == 0 {
		return "no changes applied"
	}
	return fmt.Sprintf("%d changes: p50 %v, p99 %v, max %v", l.N, l.P50, l.P99, l.Max)
}

// LatenessOf summarises the lateness of records (nearest-rank quantiles).
func LatenessOf(records []AppliedChange) Lateness {
	if len(records) == 0 {
		return Lateness{}
	}
	late := make([]time.Duration, len(records))
	for i, r := range records {
		late[i] = r.Late
	}
	slices.Sort(late)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(late)))) - 1
		return late[min(max(i, 0), len(late)-1)]
	}
	return Lateness{N: len(late), P50: rank(0.50), P99: rank(0.99), Max: late[len(late)-1]}
}

// CloneChanges copies a schedule deeply, so a Scheduler keeps what it was
// given whatever the caller later does with its slice and pointers.
func CloneChanges(changes []TimedChange) []TimedChange {
	out := slices.Clone(changes)
	for i := range out {
		if q := out[i].Quality; q != nil {
			c := *q
			out[i].Quality = &c
		}
		if u := out[i].Up; u != nil {
			c := *u
			out[i].Up = &c
		}
	}
	return out
}

// MaxScheduleChanges bounds one schedule: an hour of 50 links changing at
// 10 Hz fits; a typo in a duration does not fill the shaper's memory.
const MaxScheduleChanges = 2 << 20

// CheckSchedule validates a schedule against the link table and returns
// its changes' indexes in application order (by At, ties in the order
// given). It reports every problem at once, each with its change's index.
func (ls Links) CheckSchedule(changes []TimedChange) ([]int, error) {
	if len(changes) > MaxScheduleChanges {
		return nil, fmt.Errorf("schedule of %d changes is over the limit of %d (sample less often, raise the quality threshold or split the run)", len(changes), MaxScheduleChanges)
	}
	var errs []error
	for i, c := range changes {
		if err := ls.checkChange(c); err != nil {
			errs = append(errs, fmt.Errorf("schedule change %d (at %v, link %s): %w", i, c.At, c.Link, err))
			if len(errs) == 20 {
				errs = append(errs, errors.New("... and maybe more: fix these first"))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	order := make([]int, len(changes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return int(max(-1, min(1, changes[a].At-changes[b].At)))
	})
	return order, nil
}

func (ls Links) checkChange(c TimedChange) error {
	if c.At < 0 {
		return fmt.Errorf("time %v is before the start (times count from the start of the run)", c.At)
	}
	if c.Quality == nil && c.Up == nil {
		return errors.New("changes nothing (give a quality, up/down, or both)")
	}
	if c.Up != nil && c.From != "" {
		return fmt.Errorf("up/down applies to the whole link, not to what %s sends (leave from empty, or set a quality with down)", c.From)
	}
	l, err := ls.Find(c.Link)
	if err != nil {
		return err
	}
	if _, err := l.Froms(c.From); err != nil {
		return err
	}
	if c.Quality != nil {
		if err := c.Quality.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Expresser is an optional Shaper capability: report whether Set would
// accept q, changing nothing. PlaySchedule asks it about every quality of
// a schedule before it applies the first, so a shaper that cannot express
// one (the kernel shaper without sch_netem) refuses the schedule whole.
type Expresser interface {
	CanExpress(q Impairment) error
}

// Preparer is an optional Shaper capability: get ready for a checked
// schedule before its start, changing no link's quality, so that the
// first change of each direction costs what the later ones do (the
// kernel shaper learns each direction's layout and puts in the qdiscs
// the schedule will then change in place). PlaySchedule and Player call
// it before waiting for the first change; time it takes past the start
// shows as lateness.
type Preparer interface {
	Prepare(ctx context.Context, changes []TimedChange) error
}

// Flusher is an optional Shaper capability: write out what the shaper
// deferred while changes came fast (the kernel shaper saves its state
// file at most ten times a second). PlaySchedule and Player call it when
// a schedule ends, however it ends.
type Flusher interface {
	Flush(ctx context.Context) error
}

// flush calls s's Flush, if it has one.
func flush(ctx context.Context, s Shaper) error {
	if f, ok := s.(Flusher); ok {
		if err := f.Flush(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("schedule: save the links' state: %w", err)
		}
	}
	return nil
}

// prepare calls s's Prepare, if it has one.
func prepare(ctx context.Context, s Shaper, changes []TimedChange) error {
	if p, ok := s.(Preparer); ok {
		if err := p.Prepare(ctx, changes); err != nil {
			return fmt.Errorf("schedule: prepare the links: %w", err)
		}
	}
	return nil
}

// Clock is the time PlaySchedule plays on: the system clock (nil), or a
// fake one in tests. labs/scenario's clocks fit it.
type Clock interface {
	Now() time.Time
	// After delivers the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// PlaySchedule is the Scheduler for a shaper without one (the kernel and
// guest shapers), in the caller's goroutine: it applies changes through
// s's Set and SetUp, each at its due time start + At by clock (nil: the
// system clock), waiting on one timer at a time. It validates the whole
// schedule against s's links (and what s can express, if it is an
// Expresser) first and changes nothing if one change is wrong. It
// returns when every change is applied, when ctx ends (state cancelled;
// not an error) or when the shaper refuses a change (the error, with the
// changes applied before it).
//
// A change counts as applied when Set (or SetUp) returns, so lateness
// includes the call's own time: a shaper behind a socket shows its
// round trip there.
func PlaySchedule(ctx context.Context, s Shaper, start time.Time, changes []TimedChange, clock Clock) (ScheduleStatus, error) {
	st := ScheduleStatus{State: ScheduleRunning, Start: start, Changes: len(changes)}
	order, err := checkFor(ctx, s, changes)
	if err != nil {
		return st, err
	}
	if err := prepare(ctx, s, changes); err != nil {
		st.State = ScheduleCancelled
		return st, err
	}
	state, err := play(ctx, s, start, changes, order, clock, func(r AppliedChange) { st.Records = append(st.Records, r) })
	if ferr := flush(ctx, s); ferr != nil && err == nil {
		err = ferr
	}
	st.State, st.Applied, st.Lateness = state, len(st.Records), LatenessOf(st.Records)
	return st, err
}

// checkFor validates a schedule against what s has and can do, and
// returns the order to apply it in.
func checkFor(ctx context.Context, s Shaper, changes []TimedChange) ([]int, error) {
	state, err := s.Show(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedule: read the links: %w", err)
	}
	order, err := linksOf(state).CheckSchedule(changes)
	if err != nil {
		return nil, err
	}
	if ex, ok := s.(Expresser); ok {
		checked := map[Impairment]bool{}
		for i, c := range changes {
			if c.Quality == nil || checked[*c.Quality] {
				continue
			}
			if err := ex.CanExpress(*c.Quality); err != nil {
				return nil, fmt.Errorf("schedule change %d (at %v, link %s): %w", i, c.At, c.Link, err)
			}
			checked[*c.Quality] = true
		}
	}
	return order, nil
}

// play applies a checked schedule in order, calling applied after each
// change, and returns the schedule's final state.
func play(ctx context.Context, s Shaper, start time.Time, changes []TimedChange, order []int, clock Clock, applied func(AppliedChange)) (string, error) {
	if clock == nil {
		clock = systemClock{}
	}
	for _, i := range order {
		c := changes[i]
		due := start.Add(c.At)
		for now := clock.Now(); now.Before(due); now = clock.Now() {
			select {
			case <-ctx.Done():
				return ScheduleCancelled, nil
			case <-clock.After(due.Sub(now)):
			}
		}
		if ctx.Err() != nil {
			return ScheduleCancelled, nil
		}
		if err := apply(ctx, s, c); err != nil {
			return ScheduleCancelled, fmt.Errorf("schedule change %d (at %v, link %s): %w", i, c.At, c.Link, err)
		}
		applied(AppliedChange{Index: i, At: c.At, Late: clock.Now().Sub(due)})
	}
	return ScheduleDone, nil
}

// AsScheduler returns s's own Scheduler (the userspace engine's), or a
// Player that plays schedules on s from this process: one way for a
// runner to hand over a timeline whatever the shaper.
func AsScheduler(s Shaper, clock Clock) Scheduler {
	if sch, ok := s.(Scheduler); ok {
		return sch
	}
	return NewPlayer(s, clock)
}

// Player is a Scheduler for any Shaper: Schedule checks the schedule and
// plays it with PlaySchedule's loop in a goroutine of its own; the status
// grows as changes are applied. It is safe for concurrent use.
type Player struct {
	s     Shaper
	clock Clock

	mu     sync.Mutex
	st     ScheduleStatus
	cancel context.CancelFunc // of the running schedule; nil when none
	done   chan struct{}      // closed when the running schedule's goroutine ends
}

var _ Scheduler = (*Player)(nil)

// NewPlayer returns a Player of schedules on s, timed by clock (nil: the
// system clock).
func NewPlayer(s Shaper, clock Clock) *Player {
	return &Player{s: s, clock: clock, st: ScheduleStatus{State: ScheduleNone}}
}

// Schedule implements Scheduler. It returns once the previous schedule's
// goroutine has stopped, so none of its changes applies afterwards.
func (p *Player) Schedule(ctx context.Context, start time.Time, changes []TimedChange) error {
	order, err := checkFor(ctx, p.s, changes)
	if err != nil {
		return err
	}
	changes = CloneChanges(changes)
	p.stop()
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	p.mu.Lock()
	p.st = ScheduleStatus{State: ScheduleRunning, Start: start, Changes: len(changes)}
	p.cancel, p.done = cancel, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		if err := prepare(run, p.s, changes); err != nil {
			p.mu.Lock()
			p.st.State, p.st.Error = ScheduleCancelled, err.Error()
			p.mu.Unlock()
			return
		}
		state, err := play(run, p.s, start, changes, order, p.clock, func(r AppliedChange) {
			p.mu.Lock()
			p.st.Records = append(p.st.Records, r)
			p.mu.Unlock()
		})
		if ferr := flush(run, p.s); ferr != nil && err == nil {
			err = ferr
		}
		p.mu.Lock()
		p.st.State = state
		if err != nil {
			p.st.Error = err.Error()
		}
		p.mu.Unlock()
	}()
	return nil
}

// stop cancels the running schedule, if any, and waits for its goroutine.
func (p *Player) stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// CancelSchedule implements Scheduler.
func (p *Player) CancelSchedule(context.Context) error {
	p.stop()
	return nil
}

// ScheduleStatus implements Scheduler.
func (p *Player) ScheduleStatus(_ context.Context, since int) (ScheduleStatus, error) {
	if since < 0 {
		return ScheduleStatus{}, fmt.Errorf("schedule status: since %d is negative (0 asks for every record)", since)
	}
	p.mu.Lock()
	st := p.st
	st.Applied = len(p.st.Records)
	st.Records = slices.Clone(p.st.Records[min(since, st.Applied):])
	p.mu.Unlock()
	if since == 0 {
		st.Lateness = LatenessOf(st.Records)
	}
	return st, nil
}

func apply(ctx context.Context, s Shaper, c TimedChange) error {
	if c.Quality != nil {
		if err := s.Set(ctx, c.Link, c.From, *c.Quality); err != nil {
			return err
		}
	}
	if c.Up != nil {
		return s.SetUp(ctx, c.Link, *c.Up)
	}
	return nil
}

// linksOf rebuilds the link table (names and hosts) a shaper reports.
func linksOf(st State) Links {
	ls := make(Links, len(st.Links))
	for i, l := range st.Links {
		ls[i].Name = l.Name
		for _, d := range l.Directions {
			ls[i].Endpoints = append(ls[i].Endpoints, Endpoint{Host: d.From})
		}
	}
	return ls
}
