package quality

import (
	"math"
	"sort"
	"time"

	"github.com/forgelab/forgelab/netfabric"
)

// down is the quality of a link out of reach.
var down = netfabric.Impairment{Down: true}

// New validates c and builds its model.
func New(c Config) (Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	or := func(p *float64, def float64) float64 {
		if p == nil {
			return def
		}
		return *p
	}
	switch c.Model {
	case RangeModel:
		return rangeModel{reach: metres(c.Range, 275), q: c.base(0)}, nil
	case Ramp:
		return ramp{lossRange: metres(c.LossRange, 300), maxRange: metres(c.MaxRange, 400), factor: or(c.LossFactor, 1), q: c.base(0)}, nil
	case MininetWiFi:
		custom := float64(mininetRates[c.Mode])
		if c.Rate != nil {
			custom = float64(*c.Rate) / 1e6
		}
		return mininet{custom: custom, reach: metres(c.Range, 314)}, nil
	case LogDistance:
		m := logDistance{
			exponent: or(c.Exponent, 3),
			refLoss:  or(c.ReferenceLoss, 46.6777),
			budget:   or(c.TxPower, 14) + or(c.TxGain, 5) + or(c.RxGain, 5) - or(c.SystemLoss, 1),
			noise:    or(c.NoiseFloor, -91),
			reach:    metres(c.Range, math.Inf(1)),
			snr:      c.SNR,
		}
		if m.snr == nil {
			m.snr = DefaultSNR
		}
		if c.Delay != nil {
			m.q.Delay = time.Duration(*c.Delay)
		}
		if c.Jitter != nil {
			m.q.Jitter = time.Duration(*c.Jitter)
		}
		return m, nil
	case Table:
		return table(c.Points), nil
	}
	panic("quality: model " + c.Model + " validated but not built")
}

// rangeModel is CORE's basic range model: one quality inside the range,
// nothing beyond it.
type rangeModel struct {
	reach float64
	q     netfabric.Impairment
}

func (m rangeModel) At(d float64) netfabric.Impairment {
	if d > m.reach {
		return down
	}
	return m.q
}

// ramp is CORE's wireless node: loss = (d - loss_range) / (max_range -
// loss_range) x 100 x factor, clamped to 0..100, never below the
// configured loss; down beyond max_range.
type ramp struct {
	lossRange, maxRange, factor float64
	q                           netfabric.Impairment
}

func (m ramp) At(d float64) netfabric.Impairment {
	if d > m.maxRange {
		return down
	}
	q := m.q
	loss := (d - m.lossRange) / (m.maxRange - m.lossRange) * 100 * m.factor
	q.Loss = max(q.Loss, min(max(loss, 0), 100))
	return q
}

// mininetRates are Mininet-WiFi's custom rates in Mbit/s per 802.11 mode.
var mininetRates = map[string]float64{"": 11, "g": 11, "n": 600, "ac": 1000}

// mininet is Mininet-WiFi's tc mode: rate = custom x 1.01^-d Mbit/s (at
// least 0.1), loss = 2d/1000 %, latency = d/20 ms, while d <= range.
type mininet struct {
	custom, reach float64
}

func (m mininet) At(d float64) netfabric.Impairment {
	if d > m.reach {
		return down
	}
	rate := max(m.custom*math.Pow(1.01, -d), 0.1)
	return netfabric.Impairment{
		RateBits: int64(math.Round(rate * 1e6)),
		Delay:    time.Duration(math.Round(d / 20 * float64(time.Millisecond))),
		Loss:     min(2*d/1000, 100),
	}
}

// logDistance turns distance into received power and SNR, then SNR into
// rate and loss through a table.
type logDistance struct {
	exponent, refLoss float64
	budget            float64 // tx power + gains - system loss, dBm
	noise, reach      float64
	snr               []SNRPoint
	q                 netfabric.Impairment // delay and jitter
}

// SNR is the signal-to-noise ratio in dB at distance d; inside the
// reference distance (1 m) the loss is the reference loss, as in ns-3.
func (m logDistance) SNR(d float64) float64 {
	loss := m.refLoss
	if d > 1 {
		loss += 10 * m.exponent * math.Log10(d)
	}
	return m.budget - loss - m.noise
}

func (m logDistance) At(d float64) netfabric.Impairment {
	snr := m.SNR(d)
	pts := m.snr
	if d > m.reach || snr < pts[0].SNR {
		return down
	}
	q := m.q
	i := sort.Search(len(pts), func(i int) bool { return pts[i].SNR > snr }) // first point above
	if i == len(pts) {
		q.RateBits, q.Loss = int64(pts[i-1].Rate), float64(pts[i-1].Loss)
		return q
	}
	a, b := pts[i-1], pts[i]
	f := (snr - a.SNR) / (b.SNR - a.SNR)
	q.RateBits = int64(math.Round(float64(a.Rate) + f*float64(b.Rate-a.Rate)))
	q.Loss = float64(a.Loss) + f*float64(b.Loss-a.Loss)
	return q
}

// table interpolates the user's points; see Point.
type table []Point

func (t table) At(d float64) netfabric.Impairment {
	i := max(sort.Search(len(t), func(i int) bool { return float64(t[i].Distance) > d })-1, 0)
	p := t[i]
	if p.Down {
		return down
	}
	if i+1 == len(t) || t[i+1].Down || d <= float64(p.Distance) {
		return p.quality()
	}
	a, b := p.quality(), t[i+1].quality()
	f := (d - float64(p.Distance)) / float64(t[i+1].Distance-p.Distance)
	return netfabric.Impairment{
		RateBits: int64(math.Round(float64(a.RateBits) + f*float64(b.RateBits-a.RateBits))),
		Delay:    a.Delay + time.Duration(math.Round(f*float64(b.Delay-a.Delay))),
		Jitter:   a.Jitter + time.Duration(math.Round(f*float64(b.Jitter-a.Jitter))),
		Loss:     a.Loss + f*(b.Loss-a.Loss),
	}
}
