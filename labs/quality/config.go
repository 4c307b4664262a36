// Package quality maps the distance between two hosts to the quality of
// the link between them, as netfabric's Impairment (Down set when the link
// is out of reach), and turns moving hosts into a timeline of quality
// changes.
package quality

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/tomlfile"
	"github.com/forgelab/forgelab/netfabric"
)

// Model names, as written in a lab file.
const (
	RangeModel  = "range"
	Ramp        = "ramp"
	MininetWiFi = "mininet-wifi"
	LogDistance = "log-distance"
	Table       = "table"
)

// Models lists the model names.
var Models = []string{RangeModel, Ramp, MininetWiFi, LogDistance, Table}

// Model gives a link's quality at a distance in metres. It is pure and
// safe for concurrent use.
type Model interface {
	At(distance float64) netfabric.Impairment
}

// Config is one [quality.NAME] table of a lab file, e.g.
//
//	[quality.radio]
//	model = "ramp"
//	loss_range = 300
//	max_range = 400
//
// Optional keys are pointers so that Validate can tell "left out" from
// "zero" and say which keys a model does not use.
type Config struct {
	Model string `toml:"model"`

	// The quality inside the range (range, ramp) or on top of the distance
	// (log-distance: delay, jitter). Defaults as CORE's: 54mbit, 5ms, no
	// jitter, no loss.
	Rate   *Rate    `toml:"rate"`
	Delay  *Delay   `toml:"delay"`
	Jitter *Delay   `toml:"jitter"`
	Loss   *Percent `toml:"loss"`

	// range: beyond it the link is down (default CORE's 275).
	// mininet-wifi: the same (default 314, Mininet-WiFi's range with its
	// default propagation). log-distance: an optional hard cut.
	Range *Metres `toml:"range"`

	// ramp: loss rises linearly from loss_range (default 300) to 100 % x
	// loss_factor (default 1) at max_range (default 400); down beyond.
	LossRange  *Metres  `toml:"loss_range"`
	MaxRange   *Metres  `toml:"max_range"`
	LossFactor *float64 `toml:"loss_factor"`

	// mininet-wifi: the 802.11 mode whose custom rate applies: g (11
	// Mbit/s, default), n (600), ac (1000); rate overrides it.
	Mode string `toml:"mode"`

	// log-distance: path loss PL(d) = reference_loss + 10 x exponent x
	// log10(d / 1 m); received power = tx_power + tx_gain + rx_gain -
	// system_loss - PL(d); SNR = received power - noise_floor. Defaults:
	// exponent 3 and reference loss 46.6777 dB (ns-3), tx power 14 dBm,
	// gains 5 dBi, system loss 1 dB, noise floor -91 dBm (Mininet-WiFi).
	Exponent      *float64   `toml:"exponent"`
	ReferenceLoss *float64   `toml:"reference_loss"`
	TxPower       *float64   `toml:"tx_power"`
	TxGain        *float64   `toml:"tx_gain"`
	RxGain        *float64   `toml:"rx_gain"`
	SystemLoss    *float64   `toml:"system_loss"`
	NoiseFloor    *float64   `toml:"noise_floor"`
	SNR           []SNRPoint `toml:"snr"` // default DefaultSNR

	// table: the quality at given distances, interpolated linearly.
	Points []Point `toml:"points"`
}

// SNRPoint is the rate and loss at a signal-to-noise ratio in dB. Between
// points both are interpolated; below the lowest SNR the link is down;
// above the highest its values hold.
type SNRPoint struct {
	SNR  float64 `toml:"snr"`
	Rate Rate    `toml:"rate"`
	Loss Percent `toml:"loss"`
}

// DefaultSNR roughly follows 802.11g: 54 Mbit/s from 26 dB down to
// 6 Mbit/s at 9 dB, where receivers give up.
var DefaultSNR = []SNRPoint{
	{SNR: 9, Rate: 6e6, Loss: 10},
	{SNR: 12, Rate: 12e6, Loss: 2},
	{SNR: 18, Rate: 24e6, Loss: 0.5},
	{SNR: 26, Rate: 54e6, Loss: 0},
}

// Point is the quality at a distance. Down makes the link down from this
// distance on. A field left out is 0 (no limit, no delay, no loss), and a
// rate must be given at every point or at none, so that interpolating never
// mixes "unlimited" with a number.
type Point struct {
	Distance Metres   `toml:"distance"`
	Rate     *Rate    `toml:"rate"`
	Delay    *Delay   `toml:"delay"`
	Jitter   *Delay   `toml:"jitter"`
	Loss     *Percent `toml:"loss"`
	Down     bool     `toml:"down"`
}

var keysOf = map[string][]string{
	RangeModel:  {"rate", "delay", "jitter", "loss", "range"},
	Ramp:        {"rate", "delay", "jitter", "loss", "loss_range", "max_range", "loss_factor"},
	MininetWiFi: {"mode", "rate", "range"},
	LogDistance: {"delay", "jitter", "range", "exponent", "reference_loss", "tx_power", "tx_gain", "rx_gain", "system_loss", "noise_floor", "snr"},
	Table:       {"points"},
}

// Keys lists the keys model reads besides "model"; nil for an unknown model.
func Keys(model string) []string { return keysOf[model] }

// FieldError is one problem with one key of a config, e.g. ("max_range", "points[2].distance").
type FieldError = tomlfile.FieldError

func (c *Config) setKeys() []string {
	var keys []string
	add := func(set bool, key string) {
		if set {
			keys = append(keys, key)
		}
	}
	add(c.Rate != nil, "rate")
	add(c.Delay != nil, "delay")
	add(c.Jitter != nil, "jitter")
	add(c.Loss != nil, "loss")
	add(c.Range != nil, "range")
	add(c.LossRange != nil, "loss_range")
	add(c.MaxRange != nil, "max_range")
	add(c.LossFactor != nil, "loss_factor")
	add(c.Mode != "", "mode")
	add(c.Exponent != nil, "exponent")
	add(c.ReferenceLoss != nil, "reference_loss")
	add(c.TxPower != nil, "tx_power")
	add(c.TxGain != nil, "tx_gain")
	add(c.RxGain != nil, "rx_gain")
	add(c.SystemLoss != nil, "system_loss")
	add(c.NoiseFloor != nil, "noise_floor")
	add(c.SNR != nil, "snr")
	add(c.Points != nil, "points")
	return keys
}

// Validate checks c. Every problem is a *FieldError; they come back joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	keys, known := keysOf[c.Model]
	if !known {
		if c.Model == "" {
			bad("model", "is missing (add model = %q, one of %s)", Ramp, strings.Join(Models, ", "))
		} else {
			bad("model", "%q is not known (use one of %s)", c.Model, strings.Join(Models, ", "))
		}
		return errors.Join(errs...)
	}
	for _, k := range c.setKeys() {
		if !slices.Contains(keys, k) {
			bad(k, "is not used by model %q (remove it; %s reads %s)", c.Model, c.Model, strings.Join(keys, ", "))
		}
	}
	if err := c.base(0).Validate(); err != nil {
		bad("rate", "%v", err) // the base quality's own checks, in netfabric's words
	}
	finite := func(field string, v *float64, example string) {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			bad(field, "%v is not a number (write it like %s)", *v, example)
		}
	}
	for _, m := range []struct {
		field string
		v     *Metres
	}{{"range", c.Range}, {"loss_range", c.LossRange}, {"max_range", c.MaxRange}} {
		if m.v != nil && (!(*m.v >= 0) || math.IsInf(float64(*m.v), 0)) {
			bad(m.field, "%v must be a finite distance, at least 0 (write it like 300 or \"300m\")", float64(*m.v))
		}
	}
	switch c.Model {
	case Ramp:
		lr, mr := metres(c.LossRange, 300), metres(c.MaxRange, 400)
		if mr <= lr {
			bad("max_range", "%v must be beyond loss_range %v (loss rises between the two)", mr, lr)
		}
		if c.LossFactor != nil && !(*c.LossFactor > 0) {
			bad("loss_factor", "%v must be more than 0 (1 reaches 100%% loss at max_range)", *c.LossFactor)
		}
	case MininetWiFi:
		if _, ok := mininetRates[c.Mode]; !ok && c.Mode != "" {
			bad("mode", "%q is not known (use \"g\", \"n\" or \"ac\", or set rate)", c.Mode)
		}
	case LogDistance:
		finite("exponent", c.Exponent, "exponent = 3")
		if c.Exponent != nil && *c.Exponent <= 0 {
			bad("exponent", "%v must be more than 0 (2 is free space, 3 indoors)", *c.Exponent)
		}
		finite("reference_loss", c.ReferenceLoss, "reference_loss = 46.6777 (dB at 1 m)")
		finite("tx_power", c.TxPower, "tx_power = 14 (dBm)")
		finite("tx_gain", c.TxGain, "tx_gain = 5 (dBi)")
		finite("rx_gain", c.RxGain, "rx_gain = 5 (dBi)")
		finite("system_loss", c.SystemLoss, "system_loss = 1 (dB)")
		finite("noise_floor", c.NoiseFloor, "noise_floor = -91 (dBm)")
		if c.SNR != nil && len(c.SNR) == 0 {
			bad("snr", "is empty (leave it out for the defaults, or list points like { snr = 10, rate = \"12mbit\", loss = \"2%%\" })")
		}
		for i, p := range c.SNR {
			if math.IsNaN(p.SNR) || math.IsInf(p.SNR, 0) {
				bad(fmt.Sprintf("snr[%d].snr", i), "%v is not a number", p.SNR)
			} else if i > 0 && p.SNR <= c.SNR[i-1].SNR {
				bad(fmt.Sprintf("snr[%d].snr", i), "%v is not above the previous point's %v (list points from the lowest SNR up)", p.SNR, c.SNR[i-1].SNR)
			}
			if p.Rate < 0 || (p.Rate > 0 && p.Rate < 8000) {
				bad(fmt.Sprintf("snr[%d].rate", i), "%d bit/s is below 8kbit", p.Rate)
			}
		}
	case Table:
		c.validatePoints(bad)
	}
	return errors.Join(errs...)
}

func (c *Config) validatePoints(bad func(field, format string, a ...any)) {
	if len(c.Points) == 0 {
		bad("points", `is missing (add points = [{ distance = 0, rate = "100mbit" }, { distance = 200, rate = "1mbit", loss = "20%%" }, { distance = 250, down = true }])`)
		return
	}
	withRate := 0
	up := 0
	for i, p := range c.Points {
		field := fmt.Sprintf("points[%d]", i)
		if i > 0 && p.Distance <= c.Points[i-1].Distance {
			bad(field+".distance", "%v is not beyond the previous point's %v (list points from the nearest out, each distance once)", p.Distance, c.Points[i-1].Distance)
		}
		if p.Down {
			if p.Rate != nil || p.Delay != nil || p.Jitter != nil || p.Loss != nil {
				bad(field+".down", "a down point has no quality (remove rate, delay, jitter and loss from it)")
			}
			continue
		}
		up++
		if p.Rate != nil {
			withRate++
		}
		if err := p.quality().Validate(); err != nil {
			bad(field, "%v", err)
		}
	}
	if withRate != 0 && withRate != up {
		bad("points", "rate is given at %d of %d points (give it at every point, or at none for no limit)", withRate, up)
	}
}

func metres(m *Metres, def float64) float64 {
	if m == nil {
		return def
	}
	return float64(*m)
}

// base is the configured quality with CORE's defaults for what is left out,
// with the given loss unless the config sets one.
func (c *Config) base(loss float64) netfabric.Impairment {
	q := netfabric.Impairment{RateBits: 54e6, Delay: 5 * time.Millisecond, Loss: loss}
	if c.Rate != nil {
		q.RateBits = int64(*c.Rate)
	}
	if c.Delay != nil {
		q.Delay = time.Duration(*c.Delay)
	}
	if c.Jitter != nil {
		q.Jitter = time.Duration(*c.Jitter)
	}
	if c.Loss != nil {
		q.Loss = float64(*c.Loss)
	}
	return q
}

func (p Point) quality() netfabric.Impairment {
	var q netfabric.Impairment
	if p.Rate != nil {
		q.RateBits = int64(*p.Rate)
	}
	if p.Delay != nil {
		q.Delay = time.Duration(*p.Delay)
	}
	if p.Jitter != nil {
		q.Jitter = time.Duration(*p.Jitter)
	}
	if p.Loss != nil {
		q.Loss = float64(*p.Loss)
	}
	return q
}
