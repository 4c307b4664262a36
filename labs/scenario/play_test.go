package scenario

import (
	"context"
	"errors"
	"testing"
	"time"
)

// recorder is an Executor that notes when each action ran on the fake
// clock; slow actions move the clock on by their cost.
type recorder struct {
	clock    *FakeClock
	start    time.Time
	cost     map[Kind]time.Duration
	fail     map[Kind]bool
	ran      []string
	reported int
}

func (r *recorder) Do(ctx context.Context, a Action) error {
	r.ran = append(r.ran, r.clock.Now().Sub(r.start).String()+" "+string(a.Kind))
	r.clock.Advance(r.cost[a.Kind])
	if r.fail[a.Kind] {
		return errors.New("failed")
	}
	return nil
}

func (r *recorder) Report(Result) { r.reported++ }

// drive moves the fake clock to each pending wake-up until play returns.
func drive(clk *FakeClock, done chan struct{}) {
	for clk.WaitForWaiters(1, done) {
		clk.AdvanceToNext()
	}
}

func timeline(d time.Duration, acts ...Action) *Timeline {
	return &Timeline{Duration: d, Actions: acts}
}

func TestPlayOnTime(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clk := NewFakeClock(start)
	rec := &recorder{clock: clk, start: start, cost: map[Kind]time.Duration{Exec: 1500 * time.Millisecond}, fail: map[Kind]bool{HostPause: true}}
	tl := timeline(10*time.Second,
		Action{At: 0, Kind: Marker},
		Action{At: time.Second, Kind: Exec},
		Action{At: 2 * time.Second, Kind: LinkDown}, // due while exec still runs: late by 0.5s
		Action{At: 2 * time.Second, Kind: HostPause},
		Action{At: 5 * time.Second, Kind: LinkUp},
	)
	done := make(chan struct{})
	go func() { drive(clk, done) }()
	results, err := Play(context.Background(), clk, tl, rec)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		ran, late time.Duration
		failed    bool
	}{{0, 0, false}, {time.Second, 0, false}, {2500 * time.Millisecond, 500 * time.Millisecond, false}, {2500 * time.Millisecond, 500 * time.Millisecond, true}, {5 * time.Second, 0, false}}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.Ran != w.ran || r.Late() != w.late || (r.Err != nil) != w.failed {
			t.Errorf("action %d (%s): ran %v late %v err %v; want %v %v failed=%v", i, r.Action.Kind, r.Ran, r.Late(), r.Err, w.ran, w.late, w.failed)
		}
	}
	if results[1].Took != 1500*time.Millisecond {
		t.Errorf("exec took %v, want 1.5s", results[1].Took)
	}
	if got := clk.Now().Sub(start); got != 10*time.Second {
		t.Errorf("Play returned at %v, want the scenario's end at 10s", got)
	}
	if rec.reported != 5 {
		t.Errorf("reported %d results, want 5", rec.reported)
	}
}

func TestPlayStopsOnCancel(t *testing.T) {
	start := time.Unix(0, 0)
	clk := NewFakeClock(start)
	rec := &recorder{clock: clk, start: start}
	tl := timeline(time.Minute, Action{At: time.Second, Kind: LinkDown}, Action{At: 30 * time.Second, Kind: LinkUp})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		clk.WaitForWaiters(1, done)
		clk.AdvanceToNext() // 1s: link.down runs
		clk.WaitForWaiters(1, done)
		cancel() // while waiting for 30s
	}()
	results, err := Play(ctx, clk, tl, rec)
	close(done)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if len(results) != 1 || len(rec.ran) != 1 || rec.ran[0] != "1s link.down" {
		t.Fatalf("ran %v (results %d), want only the 1s link.down", rec.ran, len(results))
	}
}

func TestPlayRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	tl := timeline(30*time.Millisecond, Action{At: 10 * time.Millisecond, Kind: Marker})
	results, err := Play(context.Background(), RealClock{}, tl, ExecutorFunc(func(context.Context, Action) error { return nil }))
	if err != nil || len(results) != 1 || results[0].Ran < 10*time.Millisecond {
		t.Fatalf("results %+v, err %v", results, err)
	}
	t.Logf("late by %v on the real clock", results[0].Late())
}
