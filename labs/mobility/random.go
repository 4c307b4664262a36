package mobility

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// newRand seeds a host's random stream from the lab seed and the host name,
// so hosts of one lab take different paths and the same seed replays the
// same ones.
func newRand(labSeed int64, host string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte("forgelab/mobility\x00"))
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(labSeed)))
	h.Write([]byte(host))
	s1 := h.Sum64()
	h.Write([]byte{0})
	return rand.New(rand.NewPCG(s1, h.Sum64()))
}

// checkStart refuses a start position outside the bounds: the models keep a
// host inside, so it could never get there and a silent jump would hide a
// typo.
func checkStart(b Box, p Vec) error {
	if b.Contains(p) {
		return nil
	}
	return &FieldError{Field: "bounds", Msg: fmt.Sprintf("the host's position %v is outside the bounds %v (set position inside them, or widen bounds)", p, b)}
}

// randomWaypoint is the random waypoint model: move in a straight line at a
// random speed to a random point of the box, pause, repeat. Legs are drawn
// lazily, in order, from one seeded stream, so the path does not depend on
// which times were asked first.
type randomWaypoint struct {
	bounds           Box
	speedLo, speedHi float64
	pause            time.Duration
	start            Vec

	mu    sync.Mutex
	rng   *rand.Rand
	legs  []leg
	until time.Duration // the legs drawn so far decide every t < until
}

func newRandomWaypoint(c Config, env Env, pause time.Duration) (*randomWaypoint, error) {
	b := *c.Bounds
	if err := checkStart(b, env.Position); err != nil {
		return nil, err
	}
	if b[0] == b[1] {
		return nil, &FieldError{Field: "bounds", Msg: "is a single point, so there is nowhere to go (use model \"static\")"}
	}
	lo, hi := 0.3, 0.7 // ns-3's RandomWaypointMobilityModel default
	if c.Speed != nil {
		lo, hi = c.Speed[0], c.Speed[1]
	}
	return &randomWaypoint{bounds: b, speedLo: lo, speedHi: hi, pause: pause, start: env.Position, rng: newRand(env.Seed, env.Host)}, nil
}

func (m *randomWaypoint) Position(t time.Duration) Vec {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.until <= t {
		m.draw()
	}
	return position(m.start, m.legs, t)
}

// draw appends the next move and the pause after it.
func (m *randomWaypoint) draw() {
	from := m.start
	if n := len(m.legs); n > 0 {
		from = m.legs[n-1].to
	}
	var to Vec
	for i := range 3 {
		to[i] = m.bounds[0][i] + m.rng.Float64()*(m.bounds[1][i]-m.bounds[0][i])
	}
	speed := m.speedLo + m.rng.Float64()*(m.speedHi-m.speedLo)
	travel := max(time.Duration(Dist(from, to)/speed*float64(time.Second)), 1) // at least 1ns, so time moves on
	depart := m.until
	m.legs = append(m.legs, leg{depart: depart, arrive: depart + travel, from: from, to: to})
	m.until = depart + travel + m.pause
}

// gaussMarkov is ns-3's GaussMarkovMobilityModel, updated every step:
//
//	new = alpha*old + (1-alpha)*mean + sqrt(1-alpha^2)*sigma*N(0,1)
//
// on speed, direction and pitch. A move that would leave the box is
// reflected at the wall, and the mean direction (or pitch) turns with it,
// as in ns-3. Between steps the host moves in a straight line. States are
// drawn lazily, in order, from one seeded stream.
type gaussMarkov struct {
	bounds                   Box
	step                     time.Duration
	alpha, meanSpeed         float64
	sigSpeed, sigDir, sigPit float64 // radians for the angles
	flat                     bool    // the box has no height: pitch stays 0

	mu     sync.Mutex
	rng    *rand.Rand
	states []gmState // states[i] is the state at i*step
}

type gmState struct {
	pos                Vec
	speed, dir, pitch  float64
	meanDir, meanPitch float64 // turn when the host bounces
}

func newGaussMarkov(c Config, env Env, step time.Duration) (*gaussMarkov, error) {
	b := *c.Bounds
	if err := checkStart(b, env.Position); err != nil {
		return nil, err
	}
	or := func(p *float64, def float64) float64 {
		if p == nil {
			return def
		}
		return *p
	}
	rad := math.Pi / 180
	m := &gaussMarkov{
		bounds:    b,
		step:      step,
		alpha:     or(c.Alpha, 0.85),
		meanSpeed: or(c.MeanSpeed, 1),
		sigSpeed:  or(c.SpeedSigma, 0.5),
		sigDir:    or(c.DirectionSigma, 15) * rad,
		sigPit:    or(c.PitchSigma, 0) * rad,
		flat:      b[0][2] == b[1][2],
		rng:       newRand(env.Seed, env.Host),
	}
	s := gmState{pos: env.Position, speed: m.meanSpeed, dir: or(c.Direction, 0) * rad, pitch: or(c.Pitch, 0) * rad}
	if m.flat {
		s.pitch = 0
	}
	s.meanDir, s.meanPitch = s.dir, s.pitch
	m.states = []gmState{s}
	return m, nil
}

func (m *gaussMarkov) Position(t time.Duration) Vec {
	t = max(t, 0)
	i := int(t / m.step)
	m.mu.Lock()
	for len(m.states) <= i+1 {
		m.states = append(m.states, m.next(m.states[len(m.states)-1]))
	}
	a, b := m.states[i].pos, m.states[i+1].pos
	m.mu.Unlock()
	return lerp(a, b, float64(t-time.Duration(i)*m.step)/float64(m.step))
}

// next moves s for one step, then draws the new speed and direction.
func (m *gaussMarkov) next(s gmState) gmState {
	dt := m.step.Seconds()
	v := Vec{
		s.speed * math.Cos(s.dir) * math.Cos(s.pitch),
		s.speed * math.Sin(s.dir) * math.Cos(s.pitch),
		s.speed * math.Sin(s.pitch),
	}
	n := s
	for i := range 3 {
		p := s.pos[i] + v[i]*dt
		lo, hi := m.bounds[0][i], m.bounds[1][i]
		if p >= lo && p <= hi {
			n.pos[i] = p
			continue
		}
		if p < lo {
			p = 2*lo - p
		} else {
			p = 2*hi - p
		}
		n.pos[i] = p
		switch i { // turn the velocity component around, and the mean with it
		case 0:
			n.dir, n.meanDir = math.Pi-n.dir, math.Pi-n.meanDir
		case 1:
			n.dir, n.meanDir = -n.dir, -n.meanDir
		case 2:
			n.pitch, n.meanPitch = -n.pitch, -n.meanPitch
		}
	}
	n.pos = m.bounds.clamp(n.pos) // a step longer than the box is wide
	a := m.alpha
	b := math.Sqrt(1 - a*a)
	n.speed = max(0, a*n.speed+(1-a)*m.meanSpeed+b*m.sigSpeed*m.rng.NormFloat64())
	n.dir = a*n.dir + (1-a)*n.meanDir + b*m.sigDir*m.rng.NormFloat64()
	n.pitch = a*n.pitch + (1-a)*n.meanPitch + b*m.sigPit*m.rng.NormFloat64()
	n.pitch = min(max(n.pitch, -math.Pi/2), math.Pi/2)
	if m.flat {
		n.pitch = 0
	}
	return n
}
