//go:build netem

// Built with -tags netem and run inside a guest, like netem_guest_test.go.

package kernel

import (
	"context"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/forgelab/forgelab/netfabric"
)

// TestNetemPlaySchedule: pings from a to b cross from fast to slow when a
// scheduled netem delay on what a sends takes effect, not before.
func TestNetemPlaySchedule(t *testing.T) {
	requireNetem(t)
	k := newLab(t, "ks", netfabric.Impairment{}, "10.93.0.1", "10.93.0.2")
	ctx := context.Background()
	start := time.Now().Add(300 * time.Millisecond)
	const at = 400 * time.Millisecond
	type played struct {
		st  netfabric.ScheduleStatus
		err error
	}
	done := make(chan played, 1)
	go func() {
		// On the way, a's qdiscs change shape: htb with pfifo, then netem
		// with the rate (a rebuild), netem without it and netem with
		// another delay (both in place).
		st, err := netfabric.PlaySchedule(ctx, k.s, start, []netfabric.TimedChange{
			{At: 0, Link: "ab", From: "a", Quality: &netfabric.Impairment{RateBits: 50e6}},
			{At: 100 * time.Millisecond, Link: "ab", From: "a", Quality: &netfabric.Impairment{RateBits: 50e6, Delay: time.Millisecond}},
			{At: 200 * time.Millisecond, Link: "ab", From: "a", Quality: &netfabric.Impairment{Delay: 2 * time.Millisecond}},
			{At: at, Link: "ab", From: "a", Quality: &netfabric.Impairment{Delay: 50 * time.Millisecond}},
		}, nil)
		done <- played{st, err}
	}()
	rs, err := k.env.Ping(ctx, 0, k.env.Hosts[1].Addr, 100, 10*time.Millisecond)
	if err != nil || len(rs) < 90 {
		t.Fatalf("ping: %d of 100 replies, %v", len(rs), err)
	}
	p := <-done
	if p.err != nil || p.st.Applied != 4 {
		t.Fatalf("PlaySchedule: %+v, %v", p.st, p.err)
	}
	for n, r := range p.st.Records {
		if r.Index != n || r.Late < 0 {
			t.Fatalf("record %d: %+v", n, r)
		}
	}
	last := p.st.Records[3]
	due := start.Add(at)
	applied := due.Add(last.Late)
	const slack = 5 * time.Millisecond // ping's clock readings against ours
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
	t.Logf("change due %v after start, applied %v late; first slow ping sent %v after the due time", at, last.Late, firstSlow.Sub(due))
	var kinds []string
	for _, q := range k.ifbQdiscs(t, 0) {
		kinds = append(kinds, q.Type()+" "+netlink.HandleStr(q.Attrs().Handle))
	}
	if len(kinds) != 1 || kinds[0] != "netem 1:0" {
		t.Fatalf("qdiscs on a's ifb after the schedule: %v; want netem 1:0 alone", kinds)
	}
}
