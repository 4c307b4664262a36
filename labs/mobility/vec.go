// Package mobility computes where a lab's hosts are, in metres, at any
// moment of a run. Every model is a pure function of the scenario time, its
// configuration and its seed: positions are computed from the clock, never
// accumulated, so a run replays identically and a position can be asked
// for any time, in any order.
package mobility

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Vec is a position (x, y, z) in metres.
type Vec [3]float64

// Dist is the Euclidean distance between a and b in metres.
func Dist(a, b Vec) float64 {
	dx, dy, dz := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

// lerp is the point a fraction f of the way from a to b.
func lerp(a, b Vec, f float64) Vec {
	return Vec{a[0] + (b[0]-a[0])*f, a[1] + (b[1]-a[1])*f, a[2] + (b[2]-a[2])*f}
}

// finite reports whether every coordinate is a real number.
func (v Vec) finite() bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func (v Vec) String() string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	return "[" + f(v[0]) + ", " + f(v[1]) + ", " + f(v[2]) + "]"
}

// UnmarshalTOML reads [x, y] or [x, y, z]; z defaults to 0.
func (v *Vec) UnmarshalTOML(data any) error {
	list, ok := data.([]any)
	if !ok || len(list) < 2 || len(list) > 3 {
		return fmt.Errorf("want a position like [x, y] or [x, y, z] in metres, not %v", data)
	}
	*v = Vec{}
	for i, x := range list {
		switch x := x.(type) {
		case int64:
			v[i] = float64(x)
		case float64:
			v[i] = x
		default:
			return fmt.Errorf("want a position like [x, y] or [x, y, z] in metres, not %v", data)
		}
	}
	return nil
}

// Box is an axis-aligned box: the corners with the smallest and the
// largest coordinates. A flat box (min z = max z) keeps a host in a plane.
type Box [2]Vec

// Contains reports whether p is inside b, edges included.
func (b Box) Contains(p Vec) bool {
	for i := range 3 {
		if p[i] < b[0][i] || p[i] > b[1][i] {
			return false
		}
	}
	return true
}

func (b Box) String() string { return "[" + b[0].String() + ", " + b[1].String() + "]" }

// clamp moves p to the nearest point of b.
func (b Box) clamp(p Vec) Vec {
	for i := range 3 {
		p[i] = min(max(p[i], b[0][i]), b[1][i])
	}
	return p
}

// Duration is a time offset from the start of the run, written like Go
// durations in a lab file: "90s", "1m30s", "250ms".
type Duration time.Duration

// UnmarshalTOML reads a duration string; bare numbers are refused because
// their unit would be a guess.
func (d *Duration) UnmarshalTOML(data any) error {
	s, ok := data.(string)
	if !ok {
		return fmt.Errorf("want a duration in quotes like \"10s\", not %v", data)
	}
	v, err := ParseDuration(s)
	*d = Duration(v)
	return err
}

// ParseDuration reads a non-negative duration like "10s", "1m30s", "250ms".
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write it like \"10s\", \"1m30s\" or \"250ms\")", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative (times count from the start of the run)", s)
	}
	return v, nil
}

func (d Duration) String() string { return time.Duration(d).String() }
