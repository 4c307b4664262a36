package quality

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/forgelab/forgelab/labs/units"
)

// The value types of a quality config read themselves from TOML, so a bad
// value is reported with its key and line by the TOML decoder.

// Rate is bits per second, written as tc writes it: "54mbit".
type Rate int64

// Delay is a one-way delay or a jitter, written "5ms", "250us".
type Delay time.Duration

// Percent is 0..100, written "1%" or as a bare number meaning the same.
type Percent float64

// Metres is a distance, written as a number of metres or as "300m", "1.5km".
type Metres float64

// UnmarshalTOML reads a rate string like "54mbit".
func (r *Rate) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want a rate in quotes like \"54mbit\", not %v", v)
	}
	n, err := units.ParseRate(s)
	*r = Rate(n)
	return err
}

// UnmarshalTOML reads a delay string like "5ms".
func (d *Delay) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want a delay in quotes like \"5ms\", not %v", v)
	}
	n, err := units.ParseDelay(s)
	*d = Delay(n)
	return err
}

// UnmarshalTOML reads "1%" or a bare number of percent.
func (p *Percent) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		f, err := units.ParsePercent(v)
		*p = Percent(f)
		return err
	case int64:
		*p = Percent(v)
	case float64:
		*p = Percent(v)
	default:
		return fmt.Errorf("want a percentage like \"1%%\" or 1, not %v", v)
	}
	if err := units.CheckPercent(float64(*p)); err != nil {
		return fmt.Errorf("%v %w", v, err)
	}
	return nil
}

// UnmarshalTOML reads a number of metres, or "300m" or "1.5km".
func (m *Metres) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*m = Metres(v)
	case float64:
		*m = Metres(v)
	case string:
		f, err := ParseMetres(v)
		*m = Metres(f)
		return err
	default:
		return fmt.Errorf("want a distance like 300 or \"300m\", not %v", v)
	}
	if !(*m >= 0) || math.IsInf(float64(*m), 0) {
		return fmt.Errorf("distance %v must be a finite number of metres, at least 0", v)
	}
	return nil
}

// ParseMetres reads "300m", "1.5km" or "300" (metres).
func ParseMetres(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "km"):
		t, mult = strings.TrimSuffix(t, "km"), 1000
	case strings.HasSuffix(t, "m"):
		t = strings.TrimSuffix(t, "m")
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a distance (write it like \"300m\" or \"1.5km\")", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return f * mult, nil
}
