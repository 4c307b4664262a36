package mobility

import (
	"math"
	"strings"
	"testing"
	"time"
)

func vp(x, y, z float64) *Vec      { return &Vec{x, y, z} }
func dp(d time.Duration) *Duration { v := Duration(d); return &v }
func fp(f float64) *float64        { return &f }
func ip(i int) *int                { return &i }

const s = time.Second

func near(a, b Vec) bool { return Dist(a, b) < 1e-9 }

func TestPositions(t *testing.T) {
	type at struct {
		t    time.Duration
		want Vec
	}
	tests := []struct {
		name string
		c    Config
		pos  Vec // the host's declared position
		at   []at
	}{
		{"static", Config{Model: Static}, Vec{1, 2, 3}, []at{{0, Vec{1, 2, 3}}, {time.Hour, Vec{1, 2, 3}}}},
		{"linear from position", Config{Model: Linear, To: vp(-400, 0, 0), Start: dp(10 * s), Duration: dp(40 * s)}, Vec{0, 0, 0}, []at{
			{0, Vec{0, 0, 0}}, {10 * s, Vec{0, 0, 0}}, {20 * s, Vec{-100, 0, 0}}, {30 * s, Vec{-200, 0, 0}},
			{50 * s, Vec{-400, 0, 0}}, {time.Hour, Vec{-400, 0, 0}}}},
		{"linear from, 3-D", Config{Model: Linear, From: vp(10, 10, 10), To: vp(20, 30, 50), Duration: dp(10 * s)}, Vec{}, []at{
			{0, Vec{10, 10, 10}}, {2500 * time.Millisecond, Vec{12.5, 15, 20}}, {10 * s, Vec{20, 30, 50}}}},
		{"waypoints", Config{Model: Waypoints, Waypoints: []Waypoint{
			{Duration(5 * s), Vec{0, 0, 0}}, {Duration(15 * s), Vec{100, 0, 0}}, {Duration(20 * s), Vec{100, 50, 0}}}}, Vec{9, 9, 9}, []at{
			{0, Vec{0, 0, 0}}, {5 * s, Vec{0, 0, 0}}, {10 * s, Vec{50, 0, 0}}, {15 * s, Vec{100, 0, 0}},
			{16 * s, Vec{100, 10, 0}}, {20 * s, Vec{100, 50, 0}}, {time.Minute, Vec{100, 50, 0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.c, Env{Position: tt.pos, Host: "a"})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.at {
				if got := m.Position(a.t); !near(got, a.want) {
					t.Errorf("Position(%v) = %v, want %v", a.t, got, a.want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	box := &Box{{0, 0, 0}, {100, 100, 0}}
	tests := []struct {
		name string
		c    Config
		want string // substring of the error; "" = valid
	}{
		{"no model", Config{}, "model: is missing (add model ="},
		{"unknown model", Config{Model: "teleport"}, `model: "teleport" is not known (use one of static, linear`},
		{"linear without to", Config{Model: Linear, Duration: dp(s)}, "to: is missing (add to = [100, 0, 0]"},
		{"linear without duration", Config{Model: Linear, To: vp(1, 0, 0)}, `duration: is missing (add duration = "60s"`},
		{"linear zero duration", Config{Model: Linear, To: vp(1, 0, 0), Duration: dp(0)}, "duration: must be more than 0"},
		{"non-finite to", Config{Model: Linear, To: vp(math.Inf(1), 0, 0), Duration: dp(s)}, "to: [+Inf, 0, 0] is not a finite position"},
		{"NaN from", Config{Model: Linear, From: vp(math.NaN(), 0, 0), To: vp(1, 0, 0), Duration: dp(s)}, "from: [NaN, 0, 0] is not a finite position"},
		{"key of another model", Config{Model: Static, Speed: []float64{1, 2}}, `speed: is not used by model "static" (remove it`},
		{"waypoints empty", Config{Model: Waypoints}, "waypoints: is missing"},
		{"waypoints out of order", Config{Model: Waypoints, Waypoints: []Waypoint{{Duration(2 * s), Vec{}}, {Duration(s), Vec{}}}}, "waypoints[1].at: 1s is not after the previous waypoint's 2s"},
		{"rwp without bounds", Config{Model: RandomWaypoint}, "bounds: is missing (add bounds = [[0, 0, 0], [500, 500, 0]]"},
		{"rwp min above max", Config{Model: RandomWaypoint, Bounds: box, Speed: []float64{2, 1}}, "speed: min 2 is above max 1 (write speed = [1, 2])"},
		{"rwp zero speed", Config{Model: RandomWaypoint, Bounds: box, Speed: []float64{0, 1}}, "speed: min 0 must be more than 0 m/s"},
		{"rwp NaN speed", Config{Model: RandomWaypoint, Bounds: box, Speed: []float64{1, math.NaN()}}, "speed: min 1 must be more than 0 m/s and max finite"},
		{"rwp inverted bounds", Config{Model: RandomWaypoint, Bounds: &Box{{10, 0, 0}, {0, 10, 0}}}, "bounds: min x 10 is above max 0"},
		{"gm alpha", Config{Model: GaussMarkov, Bounds: box, Alpha: fp(1.5)}, "alpha: 1.5 is outside 0..1"},
		{"gm step", Config{Model: GaussMarkov, Bounds: box, Step: dp(time.Microsecond)}, "step: 1µs is below 1ms"},
		{"ns2 no node", Config{Model: NS2, Trace: "x"}, "node: is missing (add node = 0"},
		{"ns2 no trace", Config{Model: NS2, Node: ip(1)}, "trace: is missing"},
		{"valid gm", Config{Model: GaussMarkov, Bounds: box, Alpha: fp(0.9)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStartOutsideBounds(t *testing.T) {
	c := Config{Model: RandomWaypoint, Bounds: &Box{{0, 0, 0}, {100, 100, 0}}}
	_, err := New(c, Env{Host: "a", Position: Vec{-5, 0, 0}})
	if err == nil || !strings.Contains(err.Error(), "outside the bounds") {
		t.Fatalf("error %v, want the start outside the bounds refused", err)
	}
}
