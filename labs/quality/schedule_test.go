package quality

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/netfabric"
)

func linear(t *testing.T, from, to mobility.Vec, d time.Duration) mobility.Model {
	t.Helper()
	dur := mobility.Duration(d)
	m, err := mobility.New(mobility.Config{Model: mobility.Linear, To: &to, Duration: &dur}, mobility.Env{Host: "x", Position: from})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func static(t *testing.T, p mobility.Vec) mobility.Model {
	t.Helper()
	m, err := mobility.New(mobility.Config{Model: mobility.Static}, mobility.Env{Position: p})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustModel(t *testing.T, c Config) Model {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The handover: a and b drift apart along x at 10 m/s, c stays between.
func TestTimelineHandover(t *testing.T) {
	hosts := map[string]mobility.Model{
		"a": linear(t, mobility.Vec{-100, 0, 0}, mobility.Vec{-300, 0, 0}, 20*time.Second),
		"b": linear(t, mobility.Vec{100, 0, 0}, mobility.Vec{300, 0, 0}, 20*time.Second),
		"c": static(t, mobility.Vec{0, 0, 0}),
	}
	radio := mustModel(t, Config{Model: RangeModel, Range: mp(400)})
	links := []Link{{"ab", []string{"a", "b"}, radio}, {"ac", []string{"a", "c"}, radio}, {"bc", []string{"b", "c"}, radio}}
	got, err := Timeline(hosts, links, Options{Duration: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// ab: 200 m apart at 0, 20 m more per second: past 400 m after 10 s;
	// the first sample beyond is 10.1s. ac and bc never change.
	var lines []string
	for _, c := range got {
		lines = append(lines, fmt.Sprintf("%v %s %s-%s down=%v", c.At, c.Link, c.A, c.B, c.Quality.Down))
	}
	want := []string{"0s ab a-b down=false", "0s ac a-c down=false", "0s bc b-c down=false", "10.1s ab a-b down=true"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("timeline:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestTimelineThreshold(t *testing.T) {
	// a moves away from b at 1 m/s; ramp loss rises 1 point per metre from
	// 0 at 0 m: 0.1 point per 100 ms sample. With a 0.25 point threshold a
	// change is due every third sample (0.3 > 0.25).
	hosts := map[string]mobility.Model{
		"a": linear(t, mobility.Vec{0, 0, 0}, mobility.Vec{10, 0, 0}, 10*time.Second),
		"b": static(t, mobility.Vec{0, 0, 0}),
	}
	m := mustModel(t, Config{Model: Ramp, LossRange: mp(0), MaxRange: mp(100)})
	th := DefaultThreshold
	th.Loss = 0.25
	got, err := Timeline(hosts, []Link{{"ab", []string{"a", "b"}, m}}, Options{Duration: 2 * time.Second, Threshold: &th})
	if err != nil {
		t.Fatal(err)
	}
	var at []string
	for _, c := range got {
		at = append(at, c.At.String())
	}
	if s := strings.Join(at, " "); s != "0s 300ms 600ms 900ms 1.2s 1.5s 1.8s" {
		t.Fatalf("changes at %s", s)
	}
}

func TestTimelineSegmentPairs(t *testing.T) {
	hosts := map[string]mobility.Model{"a": static(t, mobility.Vec{}), "b": static(t, mobility.Vec{10, 0, 0}), "c": static(t, mobility.Vec{500, 0, 0})}
	m := mustModel(t, Config{Model: RangeModel, Range: mp(100)})
	got, err := Timeline(hosts, []Link{{"seg0", []string{"a", "b", "c"}, m}}, Options{Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].A+got[0].B != "ab" || got[1].A+got[1].B != "ac" || got[2].A+got[2].B != "bc" ||
		got[0].Quality.Down || !got[1].Quality.Down || !got[2].Quality.Down {
		t.Fatalf("segment pairs: %+v", got)
	}
}

func TestTimelineErrors(t *testing.T) {
	m := mustModel(t, Config{Model: RangeModel})
	hosts := map[string]mobility.Model{"a": static(t, mobility.Vec{})}
	tests := []struct {
		links []Link
		opt   Options
		want  string
	}{
		{[]Link{{"ab", []string{"a", "b"}, m}}, Options{Duration: time.Second}, `link ab: host "b" has no mobility model`},
		{nil, Options{}, "duration 0s must be more than 0"},
		{nil, Options{Duration: time.Second, Interval: time.Microsecond}, "interval 1µs is below 1ms"},
		{nil, Options{Duration: 48 * time.Hour}, "more than 864000 samples"},
	}
	for _, tt := range tests {
		if _, err := Timeline(hosts, tt.links, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}

func TestSignificant(t *testing.T) {
	base := netfabric.Impairment{RateBits: 10e6, Delay: 10 * time.Millisecond, Loss: 1}
	with := func(f func(*netfabric.Impairment)) netfabric.Impairment { q := base; f(&q); return q }
	tests := []struct {
		name string
		b    netfabric.Impairment
		want bool
	}{
		{"same", base, false},
		{"rate 0.5 %", with(func(q *netfabric.Impairment) { q.RateBits = 10.05e6 }), false},
		{"rate 2 %", with(func(q *netfabric.Impairment) { q.RateBits = 9.8e6 }), true},
		{"rate unlimited", with(func(q *netfabric.Impairment) { q.RateBits = 0 }), true},
		{"delay 50us", with(func(q *netfabric.Impairment) { q.Delay += 50 * time.Microsecond }), false},
		{"delay 200us", with(func(q *netfabric.Impairment) { q.Delay -= 200 * time.Microsecond }), true},
		{"loss 0.05", with(func(q *netfabric.Impairment) { q.Loss += 0.05 }), false},
		{"loss 0.2", with(func(q *netfabric.Impairment) { q.Loss += 0.2 }), true},
		{"down", with(func(q *netfabric.Impairment) { q.Down = true }), true},
		{"duplicate", with(func(q *netfabric.Impairment) { q.Duplicate = 0.01 }), true},
	}
	for _, tt := range tests {
		if got := Significant(base, tt.b, DefaultThreshold); got != tt.want {
			t.Errorf("%s: Significant = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Significant(netfabric.Impairment{Down: true}, netfabric.Impairment{Down: true, Loss: 5}, DefaultThreshold) {
		t.Error("a change while down is not worth applying")
	}
}

// The brief's budget: 50 links x 10 Hz x 60 s well under a second.
func TestTimelineFast(t *testing.T) {
	hosts, links := benchLab(t)
	start := time.Now()
	got, err := Timeline(hosts, links, Options{Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("50 links, 10 Hz, 60 s: %v, %d changes", took, len(got))
	if took > time.Second {
		t.Errorf("took %v, want well under a second", took)
	}
}

func BenchmarkTimeline50Links60s(b *testing.B) {
	hosts, links := benchLab(b)
	for b.Loop() {
		if _, err := Timeline(hosts, links, Options{Duration: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLab is 20 hosts on random waypoints and 50 mininet-wifi links.
func benchLab(tb testing.TB) (map[string]mobility.Model, []Link) {
	tb.Helper()
	box := mobility.Box{{0, 0, 0}, {300, 300, 0}}
	hosts := map[string]mobility.Model{}
	for i := range 20 {
		h := fmt.Sprintf("h%d", i)
		m, err := mobility.New(mobility.Config{Model: mobility.RandomWaypoint, Bounds: &box, Speed: []float64{1, 10}},
			mobility.Env{Seed: 1, Host: h, Position: mobility.Vec{150, 150, 0}})
		if err != nil {
			tb.Fatal(err)
		}
		hosts[h] = m
	}
	wifi, err := New(Config{Model: MininetWiFi, Mode: "n"})
	if err != nil {
		tb.Fatal(err)
	}
	var links []Link
	for i := range 50 {
		a, b := i%20, (i*7+3)%20
		if a == b {
			b = (b + 1) % 20
		}
		links = append(links, Link{Name: fmt.Sprintf("l%d", i), Endpoints: []string{fmt.Sprintf("h%d", a), fmt.Sprintf("h%d", b)}, Model: wifi})
	}
	return hosts, links
}

// The timeline's last change for a pair is, within the threshold, what
// Sample says at the end.
func TestSampleAgreesWithTimeline(t *testing.T) {
	hosts, links := benchLab(t)
	tl, err := Timeline(hosts, links, Options{Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now, err := Sample(hosts, links, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]netfabric.Impairment{}
	for _, c := range tl {
		last[c.Link] = c.Quality
	}
	for _, c := range now {
		if Significant(last[c.Link], c.Quality, DefaultThreshold) {
			t.Errorf("%s: timeline ends at %v, sample says %v", c.Link, last[c.Link], c.Quality)
		}
	}
}
