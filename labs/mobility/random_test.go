package mobility

import (
	"math"
	"testing"
	"time"
)

// path samples m every step over span, asking in the order given.
func path(m Model, span, step time.Duration) []Vec {
	var out []Vec
	for t := time.Duration(0); t <= span; t += step {
		out = append(out, m.Position(t))
	}
	return out
}

func TestRandomModels(t *testing.T) {
	box := Box{{0, 0, 0}, {200, 100, 0}}
	start := Vec{100, 50, 0}
	tests := []struct {
		name     string
		c        Config
		maxSpeed float64 // m/s, with slack for the 3-sigma tail of gauss-markov
	}{
		{"random-waypoint", Config{Model: RandomWaypoint, Bounds: &box, Speed: []float64{5, 20}, Pause: dp(time.Second)}, 20},
		{"gauss-markov", Config{Model: GaussMarkov, Bounds: &box, MeanSpeed: fp(10), SpeedSigma: fp(2), DirectionSigma: fp(30), Alpha: fp(0.8)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			build := func(seed int64, host string) Model {
				m, err := New(tt.c, Env{Seed: seed, Host: host, Position: start})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			const span, step = 120 * time.Second, 100 * time.Millisecond
			a := path(build(1, "a"), span, step)
			if a[0] != start {
				t.Errorf("starts at %v, want the host's position %v", a[0], start)
			}
			moved := 0.0
			for i, p := range a {
				if !box.Contains(p) {
					t.Fatalf("t=%v: %v is outside the bounds %v", time.Duration(i)*step, p, box)
				}
				if i > 0 {
					d := Dist(a[i-1], p)
					moved += d
					if tt.maxSpeed > 0 && d > tt.maxSpeed*step.Seconds()+1e-9 {
						t.Fatalf("t=%v: moved %.3f m in %v, faster than %v m/s", time.Duration(i)*step, d, step, tt.maxSpeed)
					}
				}
			}
			if moved < 100 {
				t.Errorf("moved only %.1f m in %v", moved, span)
			}
			// Same seed and host: same path, even when asked backwards.
			m := build(1, "a")
			for i := len(a) - 1; i >= 0; i -= 7 {
				if got := m.Position(time.Duration(i) * step); got != a[i] {
					t.Fatalf("replay at %v: %v, first run %v", time.Duration(i)*step, got, a[i])
				}
			}
			for _, other := range []struct {
				seed int64
				host string
			}{{2, "a"}, {1, "b"}} {
				b := path(build(other.seed, other.host), span, step)
				if b[len(b)/2] == a[len(a)/2] {
					t.Errorf("seed %d host %s follows the same path as seed 1 host a", other.seed, other.host)
				}
			}
		})
	}
}

// With alpha 1 and no noise, gauss-markov is a straight line at the mean
// speed, reflected at the walls: a check of the update and the bounce.
func TestGaussMarkovStraightAndBounce(t *testing.T) {
	c := Config{Model: GaussMarkov, Bounds: &Box{{0, 0, 0}, {100, 100, 0}}, Alpha: fp(1), MeanSpeed: fp(10), Direction: fp(0), SpeedSigma: fp(0), DirectionSigma: fp(0)}
	m, err := New(c, Env{Host: "a", Position: Vec{50, 50, 0}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		t    time.Duration
		want Vec
	}{
		{0, Vec{50, 50, 0}},
		{2 * time.Second, Vec{70, 50, 0}},
		{2050 * time.Millisecond, Vec{70.5, 50, 0}}, // between two steps
		{5 * time.Second, Vec{100, 50, 0}},
		{7 * time.Second, Vec{80, 50, 0}}, // bounced off x = 100
		{16 * time.Second, Vec{10, 50, 0}},
		{18 * time.Second, Vec{30, 50, 0}}, // bounced off x = 0 at 15s
	} {
		got := m.Position(tc.t)
		if math.Abs(got[0]-tc.want[0]) > 1e-6 || math.Abs(got[1]-tc.want[1]) > 1e-6 || got[2] != tc.want[2] {
			t.Errorf("Position(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestSeedsDiffer(t *testing.T) {
	if newRand(1, "a").Uint64() == newRand(1, "b").Uint64() || newRand(1, "a").Uint64() == newRand(2, "a").Uint64() {
		t.Fatal("lab seed and host name must both change the stream")
	}
	if newRand(7, "x").Uint64() != newRand(7, "x").Uint64() {
		t.Fatal("the same seed and host must give the same stream")
	}
}

// Random models draw lazily; concurrent callers must see one path.
func TestConcurrentPositions(t *testing.T) {
	box := Box{{0, 0, 0}, {100, 100, 10}}
	for _, c := range []Config{
		{Model: RandomWaypoint, Bounds: &box, Speed: []float64{1, 5}},
		{Model: GaussMarkov, Bounds: &box, PitchSigma: fp(5)},
	} {
		ref, _ := New(c, Env{Seed: 3, Host: "a", Position: Vec{50, 50, 5}})
		m, _ := New(c, Env{Seed: 3, Host: "a", Position: Vec{50, 50, 5}})
		done := make(chan struct{})
		for g := range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := 200; i >= 0; i-- {
					m.Position(time.Duration(i*(g+1)) * 100 * time.Millisecond)
				}
			}()
		}
		for range 4 {
			<-done
		}
		for i := range 800 {
			at := time.Duration(i) * 100 * time.Millisecond
			if a, b := m.Position(at), ref.Position(at); a != b {
				t.Fatalf("%s at %v: %v, alone %v", c.Model, at, a, b)
			}
		}
	}
}
