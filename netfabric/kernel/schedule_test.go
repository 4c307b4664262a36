package kernel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// netfabric.PlaySchedule drives the kernel shaper: the runner-side loop is
// how a netem lab follows a quality timeline.

// TestPlayScheduleRate needs only htb (and root): rate changes and
// downs/ups applied in order, never early, ending in the last state.
func TestPlayScheduleRate(t *testing.T) {
	k := newLab(t, "kq", netfabric.Impairment{}, "10.92.0.1", "10.92.0.2")
	ctx := context.Background()
	ms := time.Millisecond
	up := func(b bool) *bool { return &b }
	changes := []netfabric.TimedChange{
		{At: 200 * ms, Link: "ab", Up: up(true), Quality: &netfabric.Impairment{RateBits: 20e6}},
		{At: 0, Link: "ab", From: "a", Quality: &netfabric.Impairment{RateBits: 10e6}},
		{At: 100 * ms, Link: "ab", Up: up(false)},
	}
	start := time.Now().Add(50 * ms)
	st, err := netfabric.PlaySchedule(ctx, k.s, start, changes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != netfabric.ScheduleDone || st.Applied != 3 {
		t.Fatalf("status %+v", st)
	}
	for n, r := range st.Records {
		if r.Index != []int{1, 2, 0}[n] || r.Late < 0 {
			t.Fatalf("record %d: %+v; want changes 1, 2, 0, none early", n, r)
		}
	}
	now, err := k.s.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l := now.Links[0]
	if !l.Up || l.Directions[0].Quality.RateBits != 20e6 || l.Directions[1].Quality.RateBits != 20e6 {
		t.Fatalf("after the schedule: %+v; want up, 20mbit both ways", l)
	}
	if !k.reach(t, 0, 1) {
		t.Fatal("link up again at 20mbit, but ping is lost")
	}
	if HasNetem() != nil {
		// A delay this kernel cannot shape refuses the whole schedule
		// before the first change.
		bad := []netfabric.TimedChange{
			{At: 0, Link: "ab", Quality: &netfabric.Impairment{RateBits: 1e6}},
			{At: ms, Link: "ab", Quality: &netfabric.Impairment{Delay: 20 * ms}},
		}
		_, err := netfabric.PlaySchedule(ctx, k.s, time.Now(), bad, nil)
		if !errors.Is(err, netfabric.ErrUnsupported) {
			t.Fatalf("delay without netem: %v", err)
		}
		t.Logf("without netem: %v", err)
		if after, _ := k.s.Show(ctx); after.Links[0].Directions[0].Quality.RateBits != 20e6 {
			t.Fatalf("a refused schedule changed a's quality to %v", after.Links[0].Directions[0].Quality)
		}
	}
}
