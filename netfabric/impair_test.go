package netfabric

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    Impairment
		want string // substring of the error; "" = valid
	}{
		{"zero", Impairment{}, ""},
		{"typical", Impairment{RateBits: 10e6, Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Distribution: DistNormal, Loss: 0.5}, ""},
		{"negative delay", Impairment{Delay: -time.Millisecond}, "delay -1ms is negative"},
		{"negative jitter", Impairment{Jitter: -time.Millisecond}, "jitter -1ms is negative"},
		{"loss above 100", Impairment{Loss: 101}, "loss 101% is outside 0%..100%"},
		{"loss negative", Impairment{Loss: -1}, "loss -1% is outside"},
		{"loss NaN", Impairment{Loss: math.NaN()}, "loss NaN% is outside"},
		{"duplicate", Impairment{Duplicate: 200}, "duplicate 200%"},
		{"corrupt", Impairment{Corrupt: -0.1}, "corrupt -0.1%"},
		{"negative rate", Impairment{RateBits: -5}, "rate -5 bit/s is negative"},
		{"tiny rate", Impairment{RateBits: 100}, "below the minimum of 8kbit"},
		{"unknown distribution", Impairment{Jitter: time.Millisecond, Distribution: "gauss"}, `unknown jitter distribution "gauss"`},
		{"reorder without delay", Impairment{Reorder: 5}, "reorder 5% needs a delay"},
		{"reorder with delay", Impairment{Reorder: 5, Delay: time.Millisecond}, ""},
		{"loss and gemodel", Impairment{Loss: 1, GE: GilbertElliott{P: 1, R: 10, OneMinusH: 100}}, "both given"},
		{"gemodel out of range", Impairment{GE: GilbertElliott{P: 1, R: 120, OneMinusH: 100}}, "gemodel r 120%"},
		{"negative limit", Impairment{Limit: -1}, "limit -1 packets is negative"},
		{"delay too long", Impairment{Delay: 2 * time.Hour}, "at most 1h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.q.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Impairment{Delay: -1, Loss: 200}.Validate()
	if err == nil || !strings.Contains(err.Error(), "delay") || !strings.Contains(err.Error(), "loss") {
		t.Fatalf("Validate() = %v, want both the delay and the loss named", err)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		q    Impairment
		want string
	}{
		{Impairment{}, "none"},
		{Impairment{RateBits: 10e6, Delay: 20 * time.Millisecond}, "rate 10mbit delay 20ms"},
		{Impairment{RateBits: 1500e6}, "rate 1.5gbit"},
		{Impairment{RateBits: 64e3}, "rate 64kbit"},
		{Impairment{RateBits: 12345}, "rate 12345bit"},
		{Impairment{Delay: 1500 * time.Microsecond, Jitter: 250 * time.Microsecond, Distribution: DistNormal}, "delay 1.5ms jitter 250us normal"},
		{Impairment{Delay: 2 * time.Second}, "delay 2s"},
		{Impairment{Loss: 0.5, Duplicate: 1, Corrupt: 0.1, Reorder: 25, Delay: 10 * time.Millisecond, Limit: 5000}, "delay 10ms loss 0.5% duplicate 1% reorder 25% corrupt 0.1% limit 5000"},
		{Impairment{GE: GilbertElliott{P: 1, R: 20, OneMinusH: 70, OneMinusK: 0.1}}, "loss gemodel 1% 20% 70% 0.1%"},
		{Impairment{Down: true}, "down"},
	} {
		if got := tc.q.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestNewGilbertElliottDefaults(t *testing.T) {
	g := NewGilbertElliott(5, math.NaN(), math.NaN(), math.NaN())
	want := GilbertElliott{P: 5, R: 95, OneMinusH: 100, OneMinusK: 0}
	if g != want {
		t.Fatalf("NewGilbertElliott(5) = %+v, want %+v (tc's defaults)", g, want)
	}
	// Stationary loss: bad share p/(p+r) = 5 %, always lost there.
	if m := g.MeanLoss(); math.Abs(m-5) > 1e-9 {
		t.Fatalf("MeanLoss() = %v, want 5", m)
	}
}

func TestQueueLimit(t *testing.T) {
	for _, tc := range []struct {
		q    Impairment
		want int
	}{
		{Impairment{}, 1000},
		{Impairment{Limit: 42}, 42},
		// 1 Gbit/s * 100 ms = 12.5 MB = 8334 full packets, doubled.
		{Impairment{RateBits: 1e9, Delay: 100 * time.Millisecond}, 16667},
		// No rate: the assumed 10 Gbit/s.
		{Impairment{Delay: 100 * time.Millisecond}, 166667},
	} {
		if got := tc.q.QueueLimit(10e9); got != tc.want {
			t.Errorf("%v: QueueLimit = %d, want %d", tc.q, got, tc.want)
		}
	}
}

func TestLinksChecks(t *testing.T) {
	ls := Links{
		{Name: "ab", Endpoints: []Endpoint{{Host: "a"}, {Host: "b"}}},
		{Name: "seg", Endpoints: []Endpoint{{Host: "a"}, {Host: "c"}, {Host: "d"}}},
	}
	if err := ls.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ls.CheckSet("nope", "", Impairment{}); !errors.Is(err, ErrUnknownLink) {
		t.Errorf("unknown link: err = %v", err)
	}
	if _, _, err := ls.CheckSet("ab", "c", Impairment{}); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("host not on link: err = %v", err)
	}
	if _, _, err := ls.CheckSet("ab", "a", Impairment{Loss: 300}); err == nil || !strings.Contains(err.Error(), "link ab: loss 300%") {
		t.Errorf("bad quality: err = %v", err)
	}
	if _, froms, err := ls.CheckSet("seg", "", Impairment{}); err != nil || len(froms) != 3 {
		t.Errorf("all directions of seg: %v, %v", froms, err)
	}
	if err := ls.CheckGroups([][]string{{"a"}, {"b", "zz"}}); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("unknown host in group: err = %v", err)
	}
	if err := ls.CheckGroups([][]string{{"a", "b"}, {"b"}}); err == nil {
		t.Error("host in two groups accepted")
	}
	g := GroupOf([][]string{{"a"}, {"b", "c"}})
	if !Separated(g, "a", "b") || Separated(g, "b", "c") || Separated(g, "a", "d") {
		t.Error("Separated: wrong answer")
	}
	bad := Links{{Name: "x", Endpoints: []Endpoint{{Host: "a"}}}}
	if err := bad.Validate(); err == nil {
		t.Error("link with one endpoint accepted")
	}
	dup := Links{{Name: "x", Endpoints: []Endpoint{{Host: "a"}, {Host: "a"}}}}
	if err := dup.Validate(); err == nil {
		t.Error("host twice on a link accepted")
	}
}
