package netfabric

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func twoLinks() Links {
	return Links{
		{Name: "ab", Endpoints: []Endpoint{{Host: "a"}, {Host: "b"}}},
		{Name: "bc", Endpoints: []Endpoint{{Host: "b"}, {Host: "c"}}},
	}
}

func q(delay time.Duration) *Impairment { return &Impairment{Delay: delay} }
func up(b bool) *bool                   { return &b }

func TestCheckSchedule(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		changes []TimedChange
		order   []int
		kind    error
		msg     string
	}{
		{"empty", nil, []int{}, nil, ""},
		{"sorted by time, ties in the order given",
			[]TimedChange{{At: 20 * ms, Link: "ab", Quality: q(1)}, {At: 10 * ms, Link: "bc", Quality: q(2)}, {At: 20 * ms, Link: "bc", Up: up(false)}, {At: 0, Link: "ab", From: "a", Quality: q(3)}},
			[]int{3, 1, 0, 2}, nil, ""},
		{"unknown link", []TimedChange{{Link: "ab", Quality: q(0)}, {At: ms, Link: "zz", Quality: q(0)}}, nil, ErrUnknownLink, `schedule change 1 (at 1ms, link zz): unknown link "zz"`},
		{"unknown host", []TimedChange{{Link: "ab", From: "c", Quality: q(0)}}, nil, ErrUnknownHost, `unknown host "c" on link ab`},
		{"invalid quality", []TimedChange{{Link: "ab", Quality: &Impairment{Loss: 101}}}, nil, nil, "loss 101% is outside"},
		{"before the start", []TimedChange{{At: -ms, Link: "ab", Quality: q(0)}}, nil, nil, "before the start"},
		{"changes nothing", []TimedChange{{Link: "ab"}}, nil, nil, "changes nothing"},
		{"up/down of one direction", []TimedChange{{Link: "ab", From: "a", Up: up(false)}}, nil, nil, "whole link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order, err := twoLinks().CheckSchedule(tc.changes)
			if tc.msg == "" {
				if err != nil || !slices.Equal(order, tc.order) {
					t.Fatalf("order %v, err %v; want %v", order, err, tc.order)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
				t.Fatalf("err = %v, want %q (kind %v)", err, tc.msg, tc.kind)
			}
		})
	}
}

func TestCheckScheduleReportsEveryProblem(t *testing.T) {
	_, err := twoLinks().CheckSchedule([]TimedChange{{Link: "x", Quality: q(0)}, {Link: "ab"}, {Link: "ab", Quality: q(0)}})
	if err == nil || !strings.Contains(err.Error(), "change 0") || !strings.Contains(err.Error(), "change 1") || strings.Contains(err.Error(), "change 2") {
		t.Fatalf("err = %v, want changes 0 and 1 named, not 2", err)
	}
}

func TestLatenessOf(t *testing.T) {
	var rs []AppliedChange
	for i := 1; i <= 200; i++ { // 1..200 µs
		rs = append(rs, AppliedChange{Index: i, Late: time.Duration(201-i) * time.Microsecond})
	}
	got := LatenessOf(rs)
	want := Lateness{N: 200, P50: 100 * time.Microsecond, P99: 198 * time.Microsecond, Max: 200 * time.Microsecond}
	if got != want {
		t.Fatalf("LatenessOf = %+v, want %+v", got, want)
	}
	if (LatenessOf(nil) != Lateness{}) {
		t.Fatal("LatenessOf(nil) is not zero")
	}
	if one := LatenessOf([]AppliedChange{{Late: 7}}); one.P50 != 7 || one.P99 != 7 || one.Max != 7 {
		t.Fatalf("one record: %+v", one)
	}
}

// fakeClock moves only inside After, and wakes its caller early when the
// wait is long (as a coarse timer could), so PlaySchedule must check the
// time again rather than trust the wake-up.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > time.Millisecond {
		d /= 2 // early
	} else {
		d += 30 * time.Microsecond // late
	}
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// fakeShaper records the calls PlaySchedule makes, with the clock's time.
type fakeShaper struct {
	mu    sync.Mutex // Player calls from its own goroutine
	links Links
	clock *fakeClock
	calls []string
	at    []time.Time
	fail  int         // the fail'th Set (1-based) returns an error; 0 never
	onSet func(n int) // called after each Set with the number of calls so far
}

func (s *fakeShaper) Name() string                   { return "fake" }
func (s *fakeShaper) Setup(context.Context) error    { return nil }
func (s *fakeShaper) Teardown(context.Context) error { return nil }
func (s *fakeShaper) Heal(context.Context) error     { return nil }
func (s *fakeShaper) Partition(context.Context, [][]string) error {
	return nil
}

func (s *fakeShaper) Set(_ context.Context, link, from string, q Impairment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("set %s %s %v", link, from, q))
	s.at = append(s.at, s.clock.Now())
	if s.fail == len(s.calls) {
		return errors.New("netlink: device busy")
	}
	if s.onSet != nil {
		s.onSet(len(s.calls))
	}
	return nil
}

func (s *fakeShaper) SetUp(_ context.Context, link string, up bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("up %s %v", link, up))
	s.at = append(s.at, s.clock.Now())
	return nil
}

func (s *fakeShaper) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *fakeShaper) Show(context.Context) (State, error) {
	st := State{Shaper: "fake"}
	for _, l := range s.links {
		ls := LinkState{Name: l.Name, Up: true}
		for _, e := range l.Endpoints {
			ls.Directions = append(ls.Directions, Direction{From: e.Host})
		}
		st.Links = append(st.Links, ls)
	}
	return st, nil
}

// pickyShaper cannot express delays of 3 ms or more, as a kernel without
// sch_netem cannot express any delay.
type pickyShaper struct{ *fakeShaper }

func (pickyShaper) CanExpress(q Impairment) error {
	if q.Delay >= 3*time.Millisecond {
		return fmt.Errorf("%w: delay %v", ErrUnsupported, q.Delay)
	}
	return nil
}

// preparingShaper records Prepare among the calls, and can refuse it.
type preparingShaper struct {
	*fakeShaper
	err error
}

func (p preparingShaper) Prepare(_ context.Context, changes []TimedChange) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fmt.Sprintf("prepare %d", len(changes)))
	p.at = append(p.at, p.clock.Now())
	return p.err
}

func (p preparingShaper) Flush(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "flush")
	p.at = append(p.at, p.clock.Now())
	return nil
}

// A shaper that prepares is asked once, with the whole schedule, before
// the first change, and to flush after the last; one that fails to
// prepare gets no change.
func TestPlaySchedulePrepares(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	changes := []TimedChange{{At: 0, Link: "ab", Quality: q(time.Millisecond)}, {At: time.Second, Link: "bc", Quality: q(0)}}
	clock := &fakeClock{now: start.Add(-time.Second)}
	s := preparingShaper{fakeShaper: &fakeShaper{links: twoLinks(), clock: clock}}
	if _, err := PlaySchedule(context.Background(), s, start, changes, clock); err != nil {
		t.Fatal(err)
	}
	want := []string{"prepare 2", "set ab  delay 1ms", "set bc  none", "flush"}
	if !slices.Equal(s.calls, want) {
		t.Fatalf("calls %v, want %v", s.calls, want)
	}
	if !s.at[0].Before(start) {
		t.Errorf("prepared at %v, after the start", s.at[0].Sub(start))
	}

	failing := preparingShaper{fakeShaper: &fakeShaper{links: twoLinks(), clock: clock}, err: errors.New("netlink: busy")}
	st, err := PlaySchedule(context.Background(), failing, start, changes, clock)
	if err == nil || st.State != ScheduleCancelled || !slices.Equal(failing.calls, []string{"prepare 2"}) {
		t.Fatalf("failed prepare: %v, state %s, calls %v", err, st.State, failing.calls)
	}

	p := NewPlayer(preparingShaper{fakeShaper: &fakeShaper{links: twoLinks(), clock: systemTime()}, err: errors.New("netlink: busy")}, nil)
	if err := p.Schedule(context.Background(), time.Now(), changes); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps, _ := p.ScheduleStatus(context.Background(), 0)
		if ps.State == ScheduleCancelled {
			if !strings.Contains(ps.Error, "busy") || ps.Applied != 0 {
				t.Errorf("player after a failed prepare: %+v", ps)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("player still %s after a failed prepare", ps.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPlaySchedule(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	changes := []TimedChange{
		{At: 300 * ms, Link: "bc", Quality: q(3 * ms)},
		{At: 0, Link: "ab", Quality: q(ms)},
		{At: 100 * ms, Link: "ab", From: "a", Quality: q(2 * ms), Up: nil},
		{At: 100 * ms, Link: "ab", Up: up(false)},
		{At: 2 * time.Second, Link: "ab", Quality: q(0), Up: up(true)},
	}
	wantCalls := []string{
		"set ab  delay 1ms",
		"set ab a delay 2ms",
		"up ab false",
		"set bc  delay 3ms",
		"set ab  none",
		"up ab true",
	}
	wantDue := []time.Duration{0, 100 * ms, 100 * ms, 300 * ms, 2 * time.Second, 2 * time.Second}

	t.Run("every change in order, never early", func(t *testing.T) {
		clock := &fakeClock{now: start.Add(-time.Second)}
		s := &fakeShaper{links: twoLinks(), clock: clock}
		st, err := PlaySchedule(context.Background(), s, start, changes, clock)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.calls, wantCalls) {
			t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(s.calls, "\n"), strings.Join(wantCalls, "\n"))
		}
		for i, at := range s.at {
			if at.Before(start.Add(wantDue[i])) {
				t.Errorf("call %d (%s) at %v, before its due time %v", i, s.calls[i], at.Sub(start), wantDue[i])
			}
		}
		if st.State != ScheduleDone || st.Changes != 5 || st.Applied != 5 || len(st.Records) != 5 || st.Lateness.N != 5 {
			t.Fatalf("status %+v", st)
		}
		for k, r := range st.Records {
			if r.Index != []int{1, 2, 3, 0, 4}[k] || r.Late < 0 || r.At != changes[r.Index].At {
				t.Errorf("record %d: %+v", k, r)
			}
		}
	})

	t.Run("a bad schedule changes nothing", func(t *testing.T) {
		clock := &fakeClock{now: start}
		s := &fakeShaper{links: twoLinks(), clock: clock}
		bad := append(slices.Clone(changes), TimedChange{At: time.Second, Link: "ab", From: "z", Quality: q(0)})
		if _, err := PlaySchedule(context.Background(), s, start, bad, clock); !errors.Is(err, ErrUnknownHost) {
			t.Fatalf("err = %v, want unknown host", err)
		}
		if len(s.calls) != 0 {
			t.Fatalf("a refused schedule made calls: %v", s.calls)
		}
	})

	t.Run("a quality the shaper cannot express refuses the whole schedule", func(t *testing.T) {
		clock := &fakeClock{now: start}
		s := pickyShaper{&fakeShaper{links: twoLinks(), clock: clock}}
		_, err := PlaySchedule(context.Background(), s, start, changes, clock)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "schedule change 0 (at 300ms, link bc)") {
			t.Fatalf("err = %v, want change 0 unsupported", err)
		}
		if len(s.calls) != 0 {
			t.Fatalf("a refused schedule made calls: %v", s.calls)
		}
	})

	t.Run("cancelled: pending changes never apply", func(t *testing.T) {
		clock := &fakeClock{now: start}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &fakeShaper{links: twoLinks(), clock: clock, onSet: func(n int) {
			if n == 2 {
				cancel()
			}
		}}
		st, err := PlaySchedule(ctx, s, start, changes, clock)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.calls, wantCalls[:2]) || st.State != ScheduleCancelled || st.Applied != 2 {
			t.Fatalf("calls %v, status %+v; want the first 2 calls and state cancelled", s.calls, st)
		}
	})

	t.Run("the shaper refuses a change", func(t *testing.T) {
		clock := &fakeClock{now: start}
		s := &fakeShaper{links: twoLinks(), clock: clock, fail: 4}
		st, err := PlaySchedule(context.Background(), s, start, changes, clock)
		if err == nil || !strings.Contains(err.Error(), "schedule change 0 (at 300ms, link bc): netlink: device busy") {
			t.Fatalf("err = %v", err)
		}
		if len(s.calls) != 4 || st.Applied != 3 {
			t.Fatalf("calls %v, status %+v; want it to stop at the refused change", s.calls, st)
		}
	})
}

// systemTime is a fakeClock reading the system clock, for the fake
// shaper's call times when the Player plays on the real clock.
func systemTime() *fakeClock { return &fakeClock{now: time.Now()} }

func TestPlayer(t *testing.T) {
	ctx := context.Background()
	ms := time.Millisecond
	waitState := func(t *testing.T, p *Player, want string) ScheduleStatus {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(ms) {
			if st, _ := p.ScheduleStatus(ctx, 0); st.State == want {
				return st
			}
		}
		st, _ := p.ScheduleStatus(ctx, 0)
		t.Fatalf("state %s after 5s, want %s", st.State, want)
		return st
	}
	waitApplied := func(t *testing.T, p *Player, n int) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(ms) {
			if st, _ := p.ScheduleStatus(ctx, 0); st.Applied >= n {
				return
			}
		}
		t.Fatalf("%d changes not applied within 5s", n)
	}
	// The Player runs on the system clock here, with short waits: the
	// tests check what is applied and in which order, never how late.
	changes := []TimedChange{
		{At: 20 * ms, Link: "bc", Quality: q(3 * ms)},
		{At: 0, Link: "ab", Quality: q(ms)},
		{At: 10 * ms, Link: "ab", Up: up(false)},
	}
	long := []TimedChange{{At: 0, Link: "ab", Quality: q(ms)}, {At: time.Hour, Link: "ab", Up: up(false)}}

	t.Run("plays every change in order", func(t *testing.T) {
		s := &fakeShaper{links: twoLinks(), clock: systemTime()}
		p := NewPlayer(s, nil)
		if st, _ := p.ScheduleStatus(ctx, 0); st.State != ScheduleNone {
			t.Fatalf("state before any schedule: %s", st.State)
		}
		if err := p.Schedule(ctx, time.Now(), changes); err != nil {
			t.Fatal(err)
		}
		st := waitState(t, p, ScheduleDone)
		want := []string{"set ab  delay 1ms", "up ab false", "set bc  delay 3ms"}
		if !slices.Equal(s.Calls(), want) || st.Applied != 3 || st.Changes != 3 || st.Lateness.N != 3 {
			t.Fatalf("calls %v, status %+v", s.Calls(), st)
		}
		if tail, _ := p.ScheduleStatus(ctx, 2); len(tail.Records) != 1 || tail.Records[0].Index != 0 || tail.Applied != 3 || tail.Lateness.N != 0 {
			t.Fatalf("status since 2: %+v; want the last record, 3 applied, no summary", tail)
		}
		if past, _ := p.ScheduleStatus(ctx, 9); len(past.Records) != 0 || past.Applied != 3 {
			t.Fatalf("status since 9: %+v", past)
		}
	})

	t.Run("a bad schedule is refused and the pending one goes on", func(t *testing.T) {
		s := &fakeShaper{links: twoLinks(), clock: systemTime()}
		p := NewPlayer(s, nil)
		if err := p.Schedule(ctx, time.Now(), long); err != nil {
			t.Fatal(err)
		}
		waitApplied(t, p, 1)
		if err := p.Schedule(ctx, time.Now(), []TimedChange{{Link: "zz", Quality: q(0)}}); !errors.Is(err, ErrUnknownLink) {
			t.Fatalf("err = %v, want unknown link", err)
		}
		if st, _ := p.ScheduleStatus(ctx, 0); st.State != ScheduleRunning || st.Changes != 2 {
			t.Fatalf("after a refused schedule: %+v; want the pending one running", st)
		}
		_ = p.CancelSchedule(ctx)
	})

	t.Run("a new schedule replaces the pending one", func(t *testing.T) {
		s := &fakeShaper{links: twoLinks(), clock: systemTime()}
		p := NewPlayer(s, nil)
		if err := p.Schedule(ctx, time.Now(), long); err != nil {
			t.Fatal(err)
		}
		waitApplied(t, p, 1)
		if err := p.Schedule(ctx, time.Now(), []TimedChange{{Link: "bc", Quality: q(2 * ms)}}); err != nil {
			t.Fatal(err)
		}
		st := waitState(t, p, ScheduleDone)
		// The first schedule's goroutine ended before Schedule returned:
		// its hour-away "down" can never come.
		if calls := s.Calls(); !slices.Equal(calls, []string{"set ab  delay 1ms", "set bc  delay 2ms"}) || st.Changes != 1 {
			t.Fatalf("calls %v, status %+v", calls, st)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		s := &fakeShaper{links: twoLinks(), clock: systemTime()}
		p := NewPlayer(s, nil)
		if err := p.Schedule(ctx, time.Now(), long); err != nil {
			t.Fatal(err)
		}
		waitApplied(t, p, 1)
		if err := p.CancelSchedule(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _ := p.ScheduleStatus(ctx, 0); st.State != ScheduleCancelled || st.Applied != 1 || len(s.Calls()) != 1 {
			t.Fatalf("after cancel: %+v, calls %v", st, s.Calls())
		}
	})

	t.Run("the shaper refuses a change", func(t *testing.T) {
		s := &fakeShaper{links: twoLinks(), clock: systemTime(), fail: 3} // the third call, "set bc"
		p := NewPlayer(s, nil)
		if err := p.Schedule(ctx, time.Now(), changes); err != nil {
			t.Fatal(err)
		}
		st := waitState(t, p, ScheduleCancelled)
		if st.Applied != 2 || !strings.Contains(st.Error, "device busy") {
			t.Fatalf("status %+v; want 2 applied and the shaper's error", st)
		}
	})

	t.Run("AsScheduler prefers the shaper's own", func(t *testing.T) {
		own := ownScheduler{&fakeShaper{links: twoLinks()}}
		if _, ok := AsScheduler(own, nil).(ownScheduler); !ok {
			t.Fatal("AsScheduler wrapped a shaper that schedules itself")
		}
		if _, ok := AsScheduler(&fakeShaper{}, nil).(*Player); !ok {
			t.Fatal("AsScheduler of a plain shaper is not a Player")
		}
	})
}

type ownScheduler struct{ *fakeShaper }

func (ownScheduler) Schedule(context.Context, time.Time, []TimedChange) error { return nil }
func (ownScheduler) CancelSchedule(context.Context) error                     { return nil }
func (ownScheduler) ScheduleStatus(context.Context, int) (ScheduleStatus, error) {
	return ScheduleStatus{}, nil
}

func TestCloneChanges(t *testing.T) {
	in := []TimedChange{{Link: "ab", Quality: q(time.Millisecond), Up: up(true)}, {Link: "bc"}}
	out := CloneChanges(in)
	in[0].Quality.Delay, *in[0].Up, in[1].Link = 0, false, "zz"
	if out[0].Quality.Delay != time.Millisecond || !*out[0].Up || out[1].Link != "bc" || out[1].Quality != nil {
		t.Fatalf("the copy follows the original: %+v", out)
	}
}
