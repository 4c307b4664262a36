package userspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
	"github.com/forgelab/forgelab/netfabric/nstest"
)

// These tests give the engine timed schedules over its socket and check
// what it did: every change applied, in order, never before its due time;
// replaced or cancelled changes never applied; bad schedules refused whole.
// They assert behaviour, not speed: lateness figures belong to bench/schedule.

func delay(d time.Duration) *netfabric.Impairment { return &netfabric.Impairment{Delay: d} }
func boolp(b bool) *bool                          { return &b }

// waitSchedule polls until the schedule is no longer running.
func waitSchedule(t *testing.T, c *Client, within time.Duration) netfabric.ScheduleStatus {
	t.Helper()
	end := time.Now().Add(within)
	for {
		st, err := c.ScheduleStatus(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != netfabric.ScheduleRunning {
			return st
		}
		if time.Now().After(end) {
			t.Fatalf("schedule still running after %v: %d of %d applied", within, st.Applied, st.Changes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// qualities returns link ab's quality per direction (a, b) and whether it is up.
func qualities(t *testing.T, c *Client) (netfabric.Impairment, netfabric.Impairment, bool) {
	t.Helper()
	st, err := c.Show(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l := st.Links[0]
	return l.Directions[0].Quality, l.Directions[1].Quality, l.Up
}

func TestSchedule(t *testing.T) {
	_, c := lab(t, "sc", netfabric.Impairment{}, "10.72.0.1", "10.72.0.2")
	ctx := context.Background()
	ms := time.Millisecond
	reset := func(t *testing.T) {
		t.Helper()
		if err := c.CancelSchedule(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, "ab", "", netfabric.Impairment{}); err != nil {
			t.Fatal(err)
		}
		if err := c.SetUp(ctx, "ab", true); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("every change applied in order, never early", func(t *testing.T) {
		reset(t)
		// 60 changes over 300 ms, given out of order, with ties, per
		// direction and for the whole link, with downs and ups.
		var changes []netfabric.TimedChange
		for k := 59; k >= 0; k-- {
			ch := netfabric.TimedChange{At: time.Duration(k/2) * 10 * ms, Link: "ab", Quality: delay(time.Duration(k) * ms)}
			switch k % 4 {
			case 1:
				ch.From = "a"
			case 2:
				ch.From = "b"
			case 3:
				ch.Up = boolp(k%8 == 3)
			}
			changes = append(changes, ch)
		}
		order, err := netfabric.Links{{Name: "ab", Endpoints: []netfabric.Endpoint{{Host: "a"}, {Host: "b"}}}}.CheckSchedule(changes)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now().Add(100 * ms)
		if err := c.Schedule(ctx, start, changes); err != nil {
			t.Fatal(err)
		}
		st := waitSchedule(t, c, 5*time.Second)
		if st.State != netfabric.ScheduleDone || st.Changes != 60 || st.Applied != 60 || len(st.Records) != 60 || st.Lateness.N != 60 {
			t.Fatalf("status: state %s, %d changes, %d applied, %d records, lateness %v", st.State, st.Changes, st.Applied, len(st.Records), st.Lateness)
		}
		for k, r := range st.Records {
			if r.Index != order[k] || r.At != changes[r.Index].At {
				t.Fatalf("record %d: change %d at %v, want change %d (due order)", k, r.Index, r.At, order[k])
			}
			if r.Late < 0 {
				t.Fatalf("change %d applied %v before its due time", r.Index, -r.Late)
			}
		}
		if !st.Start.Equal(start) {
			t.Errorf("status start %v, want %v", st.Start, start)
		}
		// The end state is what the changes give applied in due order.
		want := map[string]time.Duration{}
		wantUp := true
		for _, i := range order {
			ch := changes[i]
			for _, h := range []string{"a", "b"} {
				if ch.From == "" || ch.From == h {
					want[h] = ch.Quality.Delay
				}
			}
			if ch.Up != nil {
				wantUp = *ch.Up
			}
		}
		qa, qb, up := qualities(t, c)
		if qa.Delay != want["a"] || qb.Delay != want["b"] || up != wantUp {
			t.Fatalf("after the schedule: a %v, b %v, up %v; want a %v, b %v, up %v", qa, qb, up, want["a"], want["b"], wantUp)
		}
		// since: only the records after the first 50.
		tail, err := c.ScheduleStatus(ctx, 50)
		if err != nil || len(tail.Records) != 10 || tail.Records[0] != st.Records[50] || tail.Applied != 60 || tail.Lateness.N != 0 {
			t.Fatalf("status since 50: %d records, applied %d, lateness %v, %v; want the last 10, 60 applied, no summary", len(tail.Records), tail.Applied, tail.Lateness, err)
		}
	})

	t.Run("a new schedule replaces the pending one", func(t *testing.T) {
		reset(t)
		start := time.Now()
		first := []netfabric.TimedChange{
			{At: 0, Link: "ab", Quality: delay(7 * ms)},
			{At: time.Second, Link: "ab", Quality: delay(50 * ms)},
			{At: time.Second, Link: "ab", Up: boolp(false)},
		}
		if err := c.Schedule(ctx, start, first); err != nil {
			t.Fatal(err)
		}
		second := []netfabric.TimedChange{{At: 0, Link: "ab", From: "a", Quality: delay(3 * ms)}}
		if err := c.Schedule(ctx, time.Now(), second); err != nil {
			t.Fatal(err)
		}
		st := waitSchedule(t, c, 5*time.Second)
		if st.Changes != 1 || st.Applied != 1 || st.Records[0].Index != 0 {
			t.Fatalf("status of the second schedule: %+v", st)
		}
		time.Sleep(time.Until(start.Add(time.Second + 300*ms)))
		qa, qb, up := qualities(t, c)
		if qa.Delay != 3*ms || qb.Delay != 7*ms || !up {
			t.Fatalf("a %v, b %v, up %v; want a 3 ms (second schedule), b 7 ms (first, applied before the replacement), up", qa, qb, up)
		}
	})

	t.Run("cancel drops pending changes", func(t *testing.T) {
		reset(t)
		start := time.Now()
		changes := []netfabric.TimedChange{{At: 0, Link: "ab", Quality: delay(5 * ms)}, {At: 400 * ms, Link: "ab", Quality: delay(60 * ms)}}
		if err := c.Schedule(ctx, start, changes); err != nil {
			t.Fatal(err)
		}
		for st, _ := c.ScheduleStatus(ctx, 0); st.Applied == 0; st, _ = c.ScheduleStatus(ctx, 0) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := c.CancelSchedule(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(600 * ms)))
		st, err := c.ScheduleStatus(ctx, 0)
		if err != nil || st.State != netfabric.ScheduleCancelled || st.Applied != 1 {
			t.Fatalf("status after cancel: %+v, %v; want cancelled with 1 applied", st, err)
		}
		if qa, _, _ := qualities(t, c); qa.Delay != 5*ms {
			t.Fatalf("a's quality %v after cancel, want the 5 ms applied before it", qa)
		}
	})

	t.Run("a bad schedule changes nothing", func(t *testing.T) {
		reset(t)
		start := time.Now()
		pending := []netfabric.TimedChange{{At: 300 * ms, Link: "ab", Quality: delay(9 * ms)}}
		if err := c.Schedule(ctx, start, pending); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			change netfabric.TimedChange
			kind   error
			msg    string
		}{
			{"unknown link", netfabric.TimedChange{Link: "zz", Quality: delay(ms)}, netfabric.ErrUnknownLink, `unknown link "zz"`},
			{"unknown host", netfabric.TimedChange{Link: "ab", From: "q", Quality: delay(ms)}, netfabric.ErrUnknownHost, `unknown host "q"`},
			{"invalid quality", netfabric.TimedChange{Link: "ab", Quality: &netfabric.Impairment{Loss: 150}}, nil, "loss 150% is outside"},
			{"negative time", netfabric.TimedChange{At: -ms, Link: "ab", Quality: delay(ms)}, nil, "before the start"},
		} {
			// The bad change comes last, after good ones due at once.
			bad := []netfabric.TimedChange{{Link: "ab", Quality: delay(40 * ms)}, {Link: "ab", Up: boolp(false)}, tc.change}
			err := c.Schedule(ctx, time.Now(), bad)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
				t.Errorf("%s: err = %v, want %q (kind %v)", tc.name, err, tc.msg, tc.kind)
			}
		}
		if qa, qb, up := qualities(t, c); !qa.IsZero() || !qb.IsZero() || !up {
			t.Fatalf("a refused schedule changed the link: a %v, b %v, up %v", qa, qb, up)
		}
		// The pending schedule was not replaced.
		st := waitSchedule(t, c, 5*time.Second)
		if st.State != netfabric.ScheduleDone || st.Changes != 1 {
			t.Fatalf("pending schedule after refused ones: %+v", st)
		}
		if qa, _, _ := qualities(t, c); qa.Delay != 9*ms {
			t.Fatalf("a %v: the pending schedule did not apply", qa)
		}
	})

	t.Run("a manual change holds until the next scheduled one", func(t *testing.T) {
		reset(t)
		start := time.Now()
		changes := []netfabric.TimedChange{
			{At: 0, Link: "ab", From: "a", Quality: delay(10 * ms)},
			{At: 500 * ms, Link: "ab", From: "b", Quality: delay(11 * ms)}, // another direction
			{At: 800 * ms, Link: "ab", From: "a", Quality: delay(30 * ms)},
		}
		if err := c.Schedule(ctx, start, changes); err != nil {
			t.Fatal(err)
		}
		for st, _ := c.ScheduleStatus(ctx, 0); st.Applied == 0; st, _ = c.ScheduleStatus(ctx, 0) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := c.Set(ctx, "ab", "a", netfabric.Impairment{Delay: 20 * ms}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(650 * ms)))
		if st, _ := c.ScheduleStatus(ctx, 0); st.Applied == 2 {
			if qa, qb, _ := qualities(t, c); qa.Delay != 20*ms || qb.Delay != 11*ms {
				t.Fatalf("between the scheduled changes: a %v (want the manual 20 ms), b %v (want 11 ms)", qa, qb)
			}
		} // else the machine is too slow to look in between: the end state still counts
		waitSchedule(t, c, 5*time.Second)
		if qa, _, _ := qualities(t, c); qa.Delay != 30*ms {
			t.Fatalf("after the schedule's next change of a: a %v, want 30 ms", qa)
		}
	})

	t.Run("an unknown operation is unsupported", func(t *testing.T) {
		if _, err := c.call(ctx, request{Op: "frobnicate"}); !errors.Is(err, netfabric.ErrUnsupported) {
			t.Fatalf("err = %v, want unsupported", err)
		}
	})

	t.Run("big schedules travel in parts", func(t *testing.T) {
		reset(t)
		const n = 3*scheduleChunk + 100
		changes := make([]netfabric.TimedChange, n)
		for i := range changes {
			changes[i] = netfabric.TimedChange{At: time.Duration(i) * 50 * time.Microsecond, Link: "ab", From: []string{"a", "b"}[i%2], Quality: delay(time.Duration(i%100) * time.Microsecond)}
		}
		if err := c.Schedule(ctx, time.Now(), changes); err != nil {
			t.Fatal(err)
		}
		st := waitSchedule(t, c, 10*time.Second)
		if st.State != netfabric.ScheduleDone || st.Changes != n || st.Applied != n {
			t.Fatalf("status: %s, %d of %d applied (%d sent)", st.State, st.Applied, st.Changes, n)
		}
		for k, r := range st.Records {
			if r.Index != k || r.Late < 0 {
				t.Fatalf("record %d: %+v", k, r)
			}
		}
	})
}

// TestScheduleTraffic: pings from a to b cross from fast to slow when a
// scheduled delay on what a sends takes effect, not before.
func TestScheduleTraffic(t *testing.T) {
	env, c := lab(t, "st", netfabric.Impairment{}, "10.73.0.1", "10.73.0.2")
	ctx := context.Background()
	start := time.Now().Add(300 * time.Millisecond)
	const at = 400 * time.Millisecond
	if err := c.Schedule(ctx, start, []netfabric.TimedChange{{At: at, Link: "ab", From: "a", Quality: delay(50 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	rs, err := env.Ping(ctx, 0, env.Hosts[1].Addr, 100, 10*time.Millisecond)
	if err != nil || len(rs) < 90 {
		t.Fatalf("ping: %d of 100 replies, %v", len(rs), err)
	}
	st, err := c.ScheduleStatus(ctx, 0)
	if err != nil || st.Applied != 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	due := start.Add(at)
	applied := due.Add(st.Records[0].Late)
	// ping's timestamps and ours differ by scheduling noise: allow 5 ms.
	const slack = 5 * time.Millisecond
	var firstSlow time.Time
	for _, r := range rs {
		slow := r.RTT > 45*time.Millisecond
		switch {
		case r.Sent.Before(due.Add(-slack)) && slow:
			t.Errorf("ping %d sent %v before the due time already slow (%v)", r.Seq, due.Sub(r.Sent), r.RTT)
		case r.Sent.After(applied.Add(slack)) && !slow:
			t.Errorf("ping %d sent %v after the change took effect still fast (%v)", r.Seq, r.Sent.Sub(applied), r.RTT)
		}
		if slow && firstSlow.IsZero() {
			firstSlow = r.Sent
		}
	}
	if firstSlow.IsZero() {
		t.Fatal("the scheduled change never showed in the traffic")
	}
	t.Logf("change due %v after start, applied %v late; first slow ping sent %v after the due time", at, st.Records[0].Late, firstSlow.Sub(due))
}

// TestScheduleStop: stopping the engine cancels its schedule.
func TestScheduleStop(t *testing.T) {
	nstest.Require(t)
	env, err := nstest.New("ss", "10.74.0.1", "10.74.0.2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	e, err := New(Config{Seed: 1, Links: netfabric.Links{{Name: "xy", Endpoints: []netfabric.Endpoint{
		{Host: "x", Tap: env.Hosts[0].Dev}, {Host: "y", Tap: env.Hosts[1].Dev}}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	ctx := context.Background()
	if err := e.Schedule(ctx, time.Now(), []netfabric.TimedChange{{At: time.Hour, Link: "xy", Up: boolp(false)}}); err != nil {
		t.Fatal(err)
	}
	e.Stop()
	st, err := e.ScheduleStatus(ctx, 0)
	if err != nil || st.State != netfabric.ScheduleCancelled || st.Applied != 0 {
		t.Fatalf("status after Stop: %+v, %v", st, err)
	}
	if err := e.Schedule(ctx, time.Now(), nil); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("Schedule on a stopped engine: %v", err)
	}
}

// TestScheduleParts checks the assembly of a schedule sent in parts,
// without an engine.
func TestScheduleParts(t *testing.T) {
	start := time.Now()
	other := start.Add(time.Second)
	ch := func(n int) []netfabric.TimedChange { return make([]netfabric.TimedChange, n) }
	type step struct {
		part, parts int
		start       *time.Time
		done        bool
		total       int
		err         string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"whole", []step{{0, 0, &start, true, 2, ""}}},
		{"three parts", []step{{0, 3, &start, false, 0, ""}, {1, 3, &start, false, 0, ""}, {2, 3, &start, true, 6, ""}}},
		{"restart at part 0", []step{{0, 3, &start, false, 0, ""}, {0, 2, &start, false, 0, ""}, {1, 2, &start, true, 4, ""}}},
		{"a part missing", []step{{0, 3, &start, false, 0, ""}, {2, 3, &start, false, 0, "out of order"}}},
		{"no earlier parts", []step{{1, 2, &start, false, 0, "out of order"}}},
		{"start differs", []step{{0, 2, &start, false, 0, ""}, {1, 2, &other, false, 0, "out of order"}}},
		{"no start", []step{{0, 0, nil, false, 0, "no start"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sp scheduleParts
			for i, s := range tc.steps {
				got, changes, done, err := sp.add(request{Op: "schedule", Start: s.start, Part: s.part, Parts: s.parts, Changes: ch(2)})
				if s.err != "" {
					if err == nil || !strings.Contains(err.Error(), s.err) {
						t.Fatalf("step %d: err %v, want %q", i, err, s.err)
					}
					return
				}
				if err != nil || done != s.done || (done && (len(changes) != s.total || !got.Equal(start))) {
					t.Fatalf("step %d: done %v, %d changes, start %v, err %v; want done %v, %d changes", i, done, len(changes), got, err, s.done, s.total)
				}
			}
		})
	}
}

func ExampleClient_Schedule() {
	c := NewClient("/var/lib/forgelab/labs/handover/fabric.sock")
	ctx := context.Background()
	start := time.Now().Add(100 * time.Millisecond) // time for the schedule to travel
	err := c.Schedule(ctx, start, []netfabric.TimedChange{
		{At: 0, Link: "ab", Quality: &netfabric.Impairment{Delay: 5 * time.Millisecond}},
		{At: 30 * time.Second, Link: "ab", Quality: &netfabric.Impairment{Delay: 20 * time.Millisecond, Loss: 5}},
		{At: 60 * time.Second, Link: "ab", Up: new(bool)}, // down
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := c.ScheduleStatus(ctx, 0)
	fmt.Println(st.State, st.Lateness)
}

// TestScheduleOldDaemon: a daemon from before timed schedules answers
// "unknown operation" without a kind; the client reports ErrUnsupported,
// so a runner knows to play the schedule itself.
func TestScheduleOldDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "old.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadBytes('\n'); err != nil {
						return
					}
					fmt.Fprintln(c, `{"error":"unknown operation \"schedule\""}`)
				}
			}()
		}
	}()
	c := NewClient(sock)
	defer c.Close()
	err = c.Schedule(context.Background(), time.Now(), []netfabric.TimedChange{{Link: "ab", Quality: delay(0)}})
	if !errors.Is(err, netfabric.ErrUnsupported) || !strings.Contains(err.Error(), "predates timed schedules") {
		t.Fatalf("err = %v, want unsupported", err)
	}
}
