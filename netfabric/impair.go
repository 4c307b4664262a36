package netfabric

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Distributions a jitter can follow. "" is netem's default: uniform over
// [delay-jitter, delay+jitter].
const (
	DistUniform      = "uniform"
	DistNormal       = "normal"
	DistPareto       = "pareto"
	DistParetoNormal = "paretonormal"
)

// Impairment is the quality of one direction of a link. The zero value is
// a perfect link: no rate limit, no delay, nothing lost.
//
// Percentages are 0..100. Reorder follows netem: that share of packets
// skips the delay and so overtakes the delayed ones; it needs a delay.
// Jitter alone never reorders (unlike a bare netem), so reordering is
// always an explicit choice.
type Impairment struct {
	RateBits     int64          `json:"rate_bits,omitempty"`    // bits per second; 0 = unlimited
	Delay        time.Duration  `json:"delay_ns,omitempty"`     // one-way, added to every packet
	Jitter       time.Duration  `json:"jitter_ns,omitempty"`    // spread of the delay
	Distribution string         `json:"distribution,omitempty"` // of the jitter: "", uniform, normal, pareto, paretonormal
	Loss         float64        `json:"loss,omitempty"`         // percent, independent per packet (random loss)
	GE           GilbertElliott `json:"gemodel,omitzero"`       // bursty loss instead of Loss
	Duplicate    float64        `json:"duplicate,omitempty"`    // percent
	Reorder      float64        `json:"reorder,omitempty"`      // percent; needs Delay > 0
	Corrupt      float64        `json:"corrupt,omitempty"`      // percent; one random bit flipped
	Limit        int            `json:"limit,omitempty"`        // packets queued at most; 0 = sized from the bandwidth-delay product
	Down         bool           `json:"down,omitempty"`         // nothing passes in this direction
}

// GilbertElliott is netem's "loss gemodel p r 1-h 1-k": a two-state
// Markov chain. In the good state a packet is lost with probability 1-k,
// in the bad state with 1-h; p moves good->bad, r bad->good. All in
// percent. The zero value means "not used" (random loss applies).
type GilbertElliott struct {
	P         float64 `json:"p"`
	R         float64 `json:"r"`
	OneMinusH float64 `json:"1-h"`
	OneMinusK float64 `json:"1-k"`
}

// IsZero reports whether the model is unused.
func (g GilbertElliott) IsZero() bool { return g == GilbertElliott{} }

// NewGilbertElliott fills in netem's defaults the way `tc` does for the
// parameters a user left out: r = 100-p, 1-h = 100 (always lose in the
// bad state), 1-k = 0. Pass NaN for an omitted parameter.
func NewGilbertElliott(p, r, oneMinusH, oneMinusK float64) GilbertElliott {
	g := GilbertElliott{P: p, R: r, OneMinusH: oneMinusH, OneMinusK: oneMinusK}
	if math.IsNaN(g.R) {
		g.R = 100 - p
	}
	if math.IsNaN(g.OneMinusH) {
		g.OneMinusH = 100
	}
	if math.IsNaN(g.OneMinusK) {
		g.OneMinusK = 0
	}
	return g
}

// MeanLoss is the long-run share of packets the model loses, in percent.
func (g GilbertElliott) MeanLoss() float64 {
	if g.P+g.R == 0 {
		return g.OneMinusK // never leaves the good state
	}
	bad := g.P / (g.P + g.R)
	return bad*g.OneMinusH + (1-bad)*g.OneMinusK
}

// IsZero reports whether q leaves traffic untouched.
func (q Impairment) IsZero() bool { return q == Impairment{} }

// PerPacket reports whether q decides something per packet (loss,
// duplicate, corrupt, reorder). Shapers that move GSO super-frames must
// cut them into wire-sized packets first, or one decision would hit 40
// packets at once.
func (q Impairment) PerPacket() bool {
	return q.Loss > 0 || !q.GE.IsZero() || q.Duplicate > 0 || q.Corrupt > 0 || q.Reorder > 0
}

// Validate checks q and says what is wrong in the units a user writes.
func (q Impairment) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if q.RateBits < 0 {
		bad("rate %d bit/s is negative", q.RateBits)
	} else if q.RateBits > 0 && q.RateBits < 8000 {
		bad("rate %s is below the minimum of 8kbit", FormatRate(q.RateBits))
	}
	if q.Delay < 0 {
		bad("delay %v is negative", q.Delay)
	}
	if q.Jitter < 0 {
		bad("jitter %v is negative", q.Jitter)
	}
	const maxDelay = time.Hour // netem keeps 32-bit seconds; an hour is plenty
	if q.Delay > maxDelay || q.Jitter > maxDelay {
		bad("delay and jitter must be at most %v", maxDelay)
	}
	switch q.Distribution {
	case "", DistUniform, DistNormal, DistPareto, DistParetoNormal:
	default:
		bad("unknown jitter distribution %q (want uniform, normal, pareto or paretonormal)", q.Distribution)
	}
	pct := func(name string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 100 {
			bad("%s %s is outside 0%%..100%%", name, fmtNum(v)+"%")
		}
	}
	pct("loss", q.Loss)
	pct("duplicate", q.Duplicate)
	pct("reorder", q.Reorder)
	pct("corrupt", q.Corrupt)
	pct("gemodel p", q.GE.P)
	pct("gemodel r", q.GE.R)
	pct("gemodel 1-h", q.GE.OneMinusH)
	pct("gemodel 1-k", q.GE.OneMinusK)
	if q.Loss > 0 && !q.GE.IsZero() {
		bad("loss %s and a Gilbert-Elliott model both given: use one", fmtNum(q.Loss)+"%")
	}
	if q.Reorder > 0 && q.Delay == 0 {
		bad("reorder %s needs a delay: reordered packets are the ones that skip it", fmtNum(q.Reorder)+"%")
	}
	if q.Limit < 0 {
		bad("limit %d packets is negative", q.Limit)
	}
	return errors.Join(errs...)
}

// QueueLimit is the packet limit to use: Limit when set, else twice the
// bandwidth-delay product in full-size packets, at least 1000. A link
// without a rate is assumed to run at assumedRate bit/s. netem's own
// default of 1000 packets throttles long fat links (comcast #28).
func (q Impairment) QueueLimit(assumedRate int64) int {
	if q.Limit > 0 {
		return q.Limit
	}
	rate := q.RateBits
	if rate == 0 {
		rate = assumedRate
	}
	span := q.Delay + 4*q.Jitter // most of the jitter distribution's mass
	pkts := float64(rate) * span.Seconds() / (8 * 1500)
	return max(1000, int(math.Ceil(2*pkts)))
}

// String renders q the way a user writes it, e.g.
// "rate 10mbit delay 20ms jitter 2ms normal loss 1%"; "none" for the zero value.
func (q Impairment) String() string {
	var b []string
	add := func(s ...string) { b = append(b, s...) }
	if q.Down {
		add("down")
	}
	if q.RateBits > 0 {
		add("rate", FormatRate(q.RateBits))
	}
	if q.Delay > 0 || q.Jitter > 0 {
		add("delay", FormatDuration(q.Delay))
	}
	if q.Jitter > 0 {
		add("jitter", FormatDuration(q.Jitter))
		if q.Distribution != "" {
			add(q.Distribution)
		}
	}
	if q.Loss > 0 {
		add("loss", fmtNum(q.Loss)+"%")
	}
	if !q.GE.IsZero() {
		g := q.GE
		add("loss gemodel", fmtNum(g.P)+"%", fmtNum(g.R)+"%", fmtNum(g.OneMinusH)+"%", fmtNum(g.OneMinusK)+"%")
	}
	if q.Duplicate > 0 {
		add("duplicate", fmtNum(q.Duplicate)+"%")
	}
	if q.Reorder > 0 {
		add("reorder", fmtNum(q.Reorder)+"%")
	}
	if q.Corrupt > 0 {
		add("corrupt", fmtNum(q.Corrupt)+"%")
	}
	if q.Limit > 0 {
		add("limit", strconv.Itoa(q.Limit))
	}
	if len(b) == 0 {
		return "none"
	}
	return strings.Join(b, " ")
}

// FormatRate renders bits per second in tc's units: "10mbit", "1.5gbit", "64kbit".
func FormatRate(bits int64) string {
	switch {
	case bits >= 1e9 && bits%1e7 == 0:
		return fmtNum(float64(bits)/1e9) + "gbit"
	case bits >= 1e6 && bits%1e4 == 0:
		return fmtNum(float64(bits)/1e6) + "mbit"
	case bits >= 1e3 && bits%10 == 0:
		return fmtNum(float64(bits)/1e3) + "kbit"
	}
	return strconv.FormatInt(bits, 10) + "bit"
}

// FormatDuration renders a duration the way people write link delays:
// "20ms", "1.5ms", "250us", "2s".
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0ms"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d >= time.Millisecond && d%time.Microsecond == 0:
		return fmtNum(float64(d)/float64(time.Millisecond)) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
