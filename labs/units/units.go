package units

// Units shared by lab files and the CLI (`forgelab link set --delay 20ms
// --loss 10%`): sizes in bytes, rates in bits per second (tc's spelling),
// delays and percentages.
//
// Every parse error starts with the quoted input, so callers can put the
// name of what they parse in front: `memory "512MB?" is not a size (...)`.

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
	TiB int64 = 1 << 40
)

// sizeUnits are the units ParseSize accepts, lower-cased. K, M, G and T are
// powers of 1024 as QEMU and qemu-img read them; KB, MB, GB and TB are
// powers of 1000 as libvirt reads them.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": KiB, "kib": KiB, "kb": 1e3,
	"m": MiB, "mib": MiB, "mb": 1e6,
	"g": GiB, "gib": GiB, "gb": 1e9,
	"t": TiB, "tib": TiB, "tb": 1e12,
}

// ParseSize reads a size in bytes: a number (fractions allowed, "1.5GiB")
// and a unit, case-insensitive: B or none (bytes); KiB, MiB, GiB, TiB, or
// K, M, G, T which mean the same (powers of 1024, as QEMU reads them); KB,
// MB, GB, TB (powers of 1000). The result must be a whole number of bytes.
func ParseSize(s string) (int64, error) {
	r, unit, err := splitNumber(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a size (write it like "512MiB" or "1GiB")`, s)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (use B, KiB, MiB, GiB, TiB; K, M, G, T mean the same; KB, MB, GB, TB are powers of 1000)", s, unit)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return toInt64(s, r)
}

// rateUnits are tc's rate units (see tc(8), lower-cased): "bit" units are
// bits per second, "bps" units are BYTES per second; k, m, g, t are powers
// of 1000 and ki, mi, gi, ti powers of 1024.
var rateUnits = map[string]int64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
	"kibit": 1 << 10, "mibit": 1 << 20, "gibit": 1 << 30, "tibit": 1 << 40,
	"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
	"kibps": 8 << 10, "mibps": 8 << 20, "gibps": 8 << 30, "tibps": 8 << 40,
}

// ParseRate reads a rate in bits per second, spelt as tc spells it,
// case-insensitive: bit, kbit, mbit, gbit, tbit (bits/s, powers of 1000),
// kibit, mibit, gibit, tibit (powers of 1024), and bps, kbps, mbps, gbps,
// tbps, kibps, ... which are BYTES per second ("100mbps" is 800 Mbit/s).
// Unlike tc, a number without a unit is refused (tc reads it as bits/s,
// which is rarely what was meant), except "0". Fractions are rounded to
// the nearest bit/s. 0 means "no limit" to callers that allow it.
func ParseRate(s string) (int64, error) {
	r, unit, err := splitNumber(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a rate (write it like "100mbit" or "1gbit")`, s)
	}
	if unit == "" {
		if r.Sign() == 0 {
			return 0, nil
		}
		n := strings.TrimSpace(s)
		return 0, fmt.Errorf(`%q has no unit (write "%smbit" for megabits/s or "%smbps" for megabytes/s, as tc reads them)`, s, n, n)
	}
	mult, ok := rateUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (use bit, kbit, mbit, gbit, tbit for bits/s, or bps, kbps, mbps, gbps, tbps for bytes/s, as tc does)", s, unit)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	return toInt64(s, round(r))
}

// FormatRate writes bits per second with the largest tc unit that keeps it
// exact: 100000000 -> "100mbit", 1500000 -> "1500kbit". ParseRate reads it
// back to the same number.
func FormatRate(bits int64) string {
	units := []struct {
		name string
		mult int64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}}
	for _, u := range units {
		if bits != 0 && bits%u.mult == 0 {
			return strconv.FormatInt(bits/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(bits, 10) + "bit"
}

// delayUnits are the units ParseDelay accepts, lower-cased: Go's and tc's
// spellings. Minutes are left out on purpose: "1m" reads as milli to some.
var delayUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "nsec": time.Nanosecond, "nsecs": time.Nanosecond,
	"us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"usec": time.Microsecond, "usecs": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second,
}

// ParseDelay reads a delay: a number (fractions allowed) and one of ns, us
// (or µs, usec), ms (msec), s (sec). A number without a unit is refused
// (tc reads it as microseconds), except "0". Negative delays are refused.
func ParseDelay(s string) (time.Duration, error) {
	r, unit, err := splitNumber(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a delay (write it like "20ms", "1.5ms" or "100us")`, s)
	}
	if unit == "" {
		if r.Sign() == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf(`%q has no unit (write "%sms" for milliseconds)`, s, strings.TrimSpace(s))
	}
	mult, ok := delayUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (use ns, us, ms or s)", s, unit)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	n, err := toInt64(s, round(r))
	return time.Duration(n), err
}

// ParsePercent reads a percentage between 0 and 100: "0.5%", "10%", or a
// bare number which means the same ("0.5" is 0.5 %, not 50 %).
func ParsePercent(s string) (float64, error) {
	r, unit, err := splitNumber(s)
	if err != nil || (unit != "" && unit != "%") {
		return 0, fmt.Errorf(`%q is not a percentage (write it like "0.5%%" or "10%%")`, s)
	}
	f, _ := r.Float64()
	if err := CheckPercent(f); err != nil {
		return 0, fmt.Errorf("%q %w", s, err)
	}
	return f, nil
}

// CheckPercent says what is wrong with a percentage, or nil.
func CheckPercent(p float64) error {
	switch {
	case math.IsNaN(p) || p < 0:
		return fmt.Errorf("is negative")
	case p > 100:
		return fmt.Errorf("is more than 100%%")
	}
	return nil
}

// FormatPercent writes a percentage the way ParsePercent reads it: "0.1%".
func FormatPercent(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64) + "%"
}

// splitNumber splits "1.5 GiB" into the exact number 1.5 and the unit
// "GiB". The number is digits with at most one '.', optionally signed; no
// exponents, hex, Inf or NaN.
func splitNumber(s string) (*big.Rat, string, error) {
	t := strings.TrimSpace(s)
	end := 0
	for end < len(t) && (t[end] >= '0' && t[end] <= '9' || t[end] == '.' || end == 0 && (t[end] == '-' || t[end] == '+')) {
		end++
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	if strings.Count(num, ".") > 1 || !strings.ContainsAny(num, "0123456789") {
		return nil, "", fmt.Errorf("no number")
	}
	if strings.ContainsFunc(unit, func(r rune) bool { return !unicode.IsLetter(r) && r != '%' }) {
		return nil, "", fmt.Errorf("bad unit")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, "", fmt.Errorf("bad number")
	}
	return r, unit, nil
}

// round rounds r to the nearest integer, halves away from zero.
func round(r *big.Rat) *big.Rat {
	half := big.NewRat(1, 2)
	if r.Sign() < 0 {
		half.Neg(half)
	}
	h := new(big.Rat).Add(r, half)
	return new(big.Rat).SetInt(new(big.Int).Quo(h.Num(), h.Denom())) // Quo truncates
}

// toInt64 turns a whole, non-negative r into an int64.
func toInt64(s string, r *big.Rat) (int64, error) {
	if r.Sign() < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return r.Num().Int64(), nil
}

// ParseBurstLoss reads a Gilbert-Elliott bursty loss model the way tc's
// "loss gemodel" takes it: "P R [1-H [1-K]]", percentages separated by
// spaces or commas ("1% 30%", "1,30,100,0"). P is the chance to move from
// the good to the bad state, R back; 1-H is the loss in the bad state,
// 1-K in the good one. Left out, they default as in tc: R = 100-P,
// 1-H = 100, 1-K = 0. It returns P, R, 1-H, 1-K.
func ParseBurstLoss(s string) ([4]float64, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(f) < 1 || len(f) > 4 {
		return [4]float64{}, fmt.Errorf(`%q is not a burst loss model: write "P R [1-H [1-K]]" in percent, e.g. "1%% 30%%" (enter the bad state with 1%%, leave it with 30%%)`, s)
	}
	var out [4]float64
	for i, v := range f {
		p, err := ParsePercent(v)
		if err != nil {
			return [4]float64{}, fmt.Errorf("burst loss %s %w", [4]string{"P", "R", "1-H", "1-K"}[i], err)
		}
		out[i] = p
	}
	if len(f) < 2 {
		out[1] = 100 - out[0]
	}
	if len(f) < 3 {
		out[2] = 100
	}
	if out[0] == 0 {
		return [4]float64{}, fmt.Errorf("burst loss %q: P (the chance to enter the bad state) must be more than 0", s)
	}
	return out, nil
}

// Distributions are the jitter distributions every shaper knows.
var Distributions = []string{"uniform", "normal", "pareto", "paretonormal"}
