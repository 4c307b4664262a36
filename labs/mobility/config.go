package mobility

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/tomlfile"
)

// Model names, as written in a lab file.
const (
	Static         = "static"
	Linear         = "linear"
	Waypoints      = "waypoints"
	RandomWaypoint = "random-waypoint"
	GaussMarkov    = "gauss-markov"
	NS2            = "ns2"
)

// Models lists the model names in the order the docs present them.
var Models = []string{Static, Linear, Waypoints, RandomWaypoint, GaussMarkov, NS2}

// Model gives a host's position at a time from the start of the run. It is
// a pure function of t: asking twice, or out of order, gives the same
// answer. Implementations are safe for concurrent use. The random models
// draw their path lazily up to the latest t asked and keep it (gauss-markov:
// 64 bytes a step, about 55 MB for a day at 100 ms), so ask only for times
// inside the run.
type Model interface {
	Position(t time.Duration) Vec
}

// Config is a host's mobility table in a lab file, e.g.
//
//	mobility = { model = "linear", to = [-400, 0, 0], start = "10s", duration = "60s" }
//
// Optional keys are pointers so that Validate can tell "left out" from
// "zero" and say which keys a model does not use.
type Config struct {
	Model string `toml:"model"`

	// linear: from (default: the host's position) to to, leaving at start
	// (default 0) and arriving duration later.
	From     *Vec      `toml:"from"`
	To       *Vec      `toml:"to"`
	Start    *Duration `toml:"start"`
	Duration *Duration `toml:"duration"`

	// waypoints: where the host is at given times; straight lines between.
	Waypoints []Waypoint `toml:"waypoints"`

	// random-waypoint and gauss-markov: the box the host stays in.
	Bounds *Box `toml:"bounds"`
	// random-waypoint: speed range [min, max] in m/s (default ns-3's
	// [0.3, 0.7]) and the pause at each waypoint (default ns-3's 2s).
	Speed []float64 `toml:"speed"`
	Pause *Duration `toml:"pause"`

	// gauss-markov (ns-3's model): memory alpha in [0, 1] (default 0.85),
	// mean speed in m/s (default 1), mean direction and pitch in degrees
	// (0 = +x, 90 = +y; pitch 90 = +z; default 0), the standard deviation
	// of each random term (speed 0.5 m/s, direction 15 degrees, pitch 0),
	// and the update step (default 100ms).
	Alpha          *float64  `toml:"alpha"`
	MeanSpeed      *float64  `toml:"mean_speed"`
	Direction      *float64  `toml:"direction"`
	Pitch          *float64  `toml:"pitch"`
	SpeedSigma     *float64  `toml:"speed_sigma"`
	DirectionSigma *float64  `toml:"direction_sigma"`
	PitchSigma     *float64  `toml:"pitch_sigma"`
	Step           *Duration `toml:"step"`

	// ns2: an ns-2 setdest trace (BonnMotion, CORE, SUMO export it) and the
	// node of the trace this host follows.
	Trace string `toml:"trace"`
	Node  *int   `toml:"node"`
}

// Waypoint is where a host is at a time.
type Waypoint struct {
	At       Duration `toml:"at"`
	Position Vec      `toml:"position"`
}

// keysOf lists the keys each model reads, for "not used by" errors.
var keysOf = map[string][]string{
	Static:         {},
	Linear:         {"from", "to", "start", "duration"},
	Waypoints:      {"waypoints"},
	RandomWaypoint: {"bounds", "speed", "pause"},
	GaussMarkov:    {"bounds", "alpha", "mean_speed", "direction", "pitch", "speed_sigma", "direction_sigma", "pitch_sigma", "step"},
	NS2:            {"trace", "node"},
}

// Keys lists the keys model reads besides "model"; nil for an unknown model.
func Keys(model string) []string { return keysOf[model] }

// FieldError is one problem with one key of a config, e.g. ("speed", "waypoints[2].at").
type FieldError = tomlfile.FieldError

// setKeys lists the keys c sets.
func (c *Config) setKeys() []string {
	var keys []string
	add := func(set bool, key string) {
		if set {
			keys = append(keys, key)
		}
	}
	add(c.From != nil, "from")
	add(c.To != nil, "to")
	add(c.Start != nil, "start")
	add(c.Duration != nil, "duration")
	add(c.Waypoints != nil, "waypoints")
	add(c.Bounds != nil, "bounds")
	add(c.Speed != nil, "speed")
	add(c.Pause != nil, "pause")
	add(c.Alpha != nil, "alpha")
	add(c.MeanSpeed != nil, "mean_speed")
	add(c.Direction != nil, "direction")
	add(c.Pitch != nil, "pitch")
	add(c.SpeedSigma != nil, "speed_sigma")
	add(c.DirectionSigma != nil, "direction_sigma")
	add(c.PitchSigma != nil, "pitch_sigma")
	add(c.Step != nil, "step")
	add(c.Trace != "", "trace")
	add(c.Node != nil, "node")
	return keys
}

// Validate checks c on its own (New also checks it against the host).
// Every problem is a *FieldError; they come back joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	keys, known := keysOf[c.Model]
	if !known {
		if c.Model == "" {
			bad("model", "is missing (add model = %q, one of %s)", Linear, strings.Join(Models, ", "))
		} else {
			bad("model", "%q is not known (use one of %s)", c.Model, strings.Join(Models, ", "))
		}
		return errors.Join(errs...)
	}
	for _, k := range c.setKeys() {
		if !slices.Contains(keys, k) {
			bad(k, "is not used by model %q (remove it; %s reads %s)", c.Model, c.Model, keyList(keys))
		}
	}
	vec := func(field string, v *Vec) {
		if v != nil && !v.finite() {
			bad(field, "%v is not a finite position (write numbers like [0, 0, 0])", *v)
		}
	}
	num := func(field string, v *float64, lo, hi float64, example string) {
		if v != nil && (math.IsNaN(*v) || *v < lo || *v > hi) {
			bad(field, "%v is outside %v..%v (write it like %s)", *v, lo, hi, example)
		}
	}
	vec("from", c.From)
	vec("to", c.To)
	switch c.Model {
	case Linear:
		if c.To == nil {
			bad("to", "is missing (add to = [100, 0, 0], where the host arrives)")
		}
		if c.Duration == nil {
			bad("duration", "is missing (add duration = \"60s\", how long the move takes)")
		} else if *c.Duration <= 0 {
			bad("duration", "must be more than 0 (a jump is a waypoints model with two times)")
		}
	case Waypoints:
		c.validateWaypoints(bad)
	case RandomWaypoint, GaussMarkov:
		if c.Bounds == nil {
			bad("bounds", "is missing (add bounds = [[0, 0, 0], [500, 500, 0]], the lowest and the highest corner)")
		} else if !c.Bounds[0].finite() || !c.Bounds[1].finite() {
			bad("bounds", "%v is not finite (write numbers)", *c.Bounds)
		} else if i := c.Bounds.inverted(); i >= 0 {
			bad("bounds", "min %s %v is above max %v (write the lowest corner first)", "xyz"[i:i+1], c.Bounds[0][i], c.Bounds[1][i])
		}
	}
	if c.Speed != nil {
		if len(c.Speed) != 2 {
			bad("speed", "want [min, max] in m/s, like [0.3, 0.7]")
		} else if lo, hi := c.Speed[0], c.Speed[1]; !(lo > 0) || math.IsInf(hi, 0) || math.IsNaN(hi) {
			bad("speed", "min %v must be more than 0 m/s and max finite (a host that stands still is model \"static\")", lo)
		} else if lo > hi {
			bad("speed", "min %v is above max %v (write speed = [%v, %v])", lo, hi, hi, lo)
		}
	}
	num("alpha", c.Alpha, 0, 1, "alpha = 0.85")
	num("mean_speed", c.MeanSpeed, 0, 1e6, "mean_speed = 1.5 (m/s)")
	num("direction", c.Direction, -360, 360, "direction = 90 (degrees; 0 = +x)")
	num("pitch", c.Pitch, -90, 90, "pitch = 0 (degrees; 90 = straight up)")
	num("speed_sigma", c.SpeedSigma, 0, 1e6, "speed_sigma = 0.5 (m/s)")
	num("direction_sigma", c.DirectionSigma, 0, 360, "direction_sigma = 15 (degrees)")
	num("pitch_sigma", c.PitchSigma, 0, 90, "pitch_sigma = 0 (degrees)")
	if c.Step != nil && *c.Step < Duration(time.Millisecond) {
		bad("step", "%v is below 1ms (write step = \"100ms\")", *c.Step)
	}
	if c.Model == NS2 {
		if c.Trace == "" {
			bad("trace", "is missing (add trace = \"moves.ns_movements\", an ns-2 setdest file)")
		}
		if c.Node == nil {
			bad("node", "is missing (add node = 0, the $node_(N) this host follows)")
		} else if *c.Node < 0 {
			bad("node", "%d is negative (ns-2 nodes count from 0)", *c.Node)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateWaypoints(bad func(field, format string, a ...any)) {
	if len(c.Waypoints) == 0 {
		bad("waypoints", `is missing (add waypoints = [{ at = "0s", position = [0, 0, 0] }, { at = "30s", position = [100, 0, 0] }])`)
		return
	}
	for i, w := range c.Waypoints {
		field := fmt.Sprintf("waypoints[%d]", i)
		if !w.Position.finite() {
			bad(field+".position", "%v is not a finite position (write numbers)", w.Position)
		}
		if i > 0 && w.At <= c.Waypoints[i-1].At {
			bad(field+".at", "%v is not after the previous waypoint's %v (list waypoints in time order, each time once)", w.At, c.Waypoints[i-1].At)
		}
	}
}

// inverted returns the first axis where min > max, or -1.
func (b Box) inverted() int {
	for i := range 3 {
		if b[0][i] > b[1][i] {
			return i
		}
	}
	return -1
}

// UnmarshalTOML reads [[x0, y0, z0], [x1, y1, z1]].
func (b *Box) UnmarshalTOML(data any) error {
	list, ok := data.([]any)
	if !ok || len(list) != 2 {
		return fmt.Errorf("want bounds like [[0, 0, 0], [500, 500, 0]] (lowest corner, highest corner), not %v", data)
	}
	for i := range 2 {
		if err := b[i].UnmarshalTOML(list[i]); err != nil {
			return fmt.Errorf("bounds corner %d: %w", i+1, err)
		}
	}
	return nil
}

// Env is what a model needs from the lab besides its config.
type Env struct {
	Seed     int64 // the lab seed; random models mix in Host
	Host     string
	Position Vec // the host's declared position: where it starts
	// ReadFile reads an ns-2 trace named in the config; the caller resolves
	// it against the lab file's directory. nil: os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// New validates c and builds the model for one host.
func New(c Config, env Env) (Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !env.Position.finite() {
		return nil, &FieldError{Field: "position", Msg: fmt.Sprintf("%v is not a finite position (write numbers)", env.Position)}
	}
	dur := func(d *Duration, def time.Duration) time.Duration {
		if d == nil {
			return def
		}
		return time.Duration(*d)
	}
	switch c.Model {
	case Static:
		return static(env.Position), nil
	case Linear:
		from := env.Position
		if c.From != nil {
			from = *c.From
		}
		start := dur(c.Start, 0)
		return &legs{legs: []leg{{depart: start, arrive: start + dur(c.Duration, 0), from: from, to: *c.To}}, start: from}, nil
	case Waypoints:
		return newWaypoints(c.Waypoints), nil
	case RandomWaypoint:
		return newRandomWaypoint(c, env, dur(c.Pause, 2*time.Second))
	case GaussMarkov:
		return newGaussMarkov(c, env, dur(c.Step, 100*time.Millisecond))
	case NS2:
		read := env.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		data, err := read(c.Trace)
		if err != nil {
			return nil, &FieldError{Field: "trace", Msg: fmt.Sprintf("cannot read the trace: %v (check the path; it is relative to the lab file)", err)}
		}
		tr, err := ParseNS2(c.Trace, data)
		if err != nil {
			return nil, err
		}
		m, err := tr.Model(*c.Node)
		if err != nil {
			return nil, &FieldError{Field: "node", Msg: err.Error()}
		}
		return m, nil
	}
	return nil, fmt.Errorf("model %q has no constructor (a bug in forgelab)", c.Model)
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "no other keys"
	}
	return strings.Join(keys, ", ")
}
