package mobility

import (
	"sort"
	"time"
)

// static never moves.
type static Vec

func (s static) Position(time.Duration) Vec { return Vec(s) }

// leg is a straight move at constant speed: at from until depart, at to
// from arrive on.
type leg struct {
	depart, arrive time.Duration
	from, to       Vec
}

func (l leg) at(t time.Duration) Vec {
	switch {
	case t <= l.depart:
		return l.from
	case t >= l.arrive:
		return l.to
	}
	return lerp(l.from, l.to, float64(t-l.depart)/float64(l.arrive-l.depart))
}

// legs is a path made of moves in time order; between two moves the host
// waits where the first one ended. Before the first move it is at start.
type legs struct {
	start Vec
	legs  []leg
}

func (p *legs) Position(t time.Duration) Vec { return position(p.start, p.legs, t) }

// position evaluates a path of legs sorted by departure.
func position(start Vec, ls []leg, t time.Duration) Vec {
	// The last leg that has departed by t decides.
	i := sort.Search(len(ls), func(i int) bool { return ls[i].depart > t }) - 1
	if i < 0 {
		return start
	}
	return ls[i].at(t)
}

// newWaypoints joins validated waypoints with straight legs; the host is
// at the first waypoint before its time and stays at the last.
func newWaypoints(ws []Waypoint) *legs {
	p := &legs{start: ws[0].Position}
	for i := 1; i < len(ws); i++ {
		a, b := ws[i-1], ws[i]
		p.legs = append(p.legs, leg{depart: time.Duration(a.At), arrive: time.Duration(b.At), from: a.Position, to: b.Position})
	}
	return p
}
