package quality

import (
	"math"
	"strings"
	"testing"
	"time"
)

func mp(m float64) *Metres      { v := Metres(m); return &v }
func rp(r int64) *Rate          { v := Rate(r); return &v }
func dp(d time.Duration) *Delay { v := Delay(d); return &v }
func pp(p float64) *Percent     { v := Percent(p); return &v }
func fp(f float64) *float64     { return &f }

const ms = time.Millisecond

// want is a reference quality; the numbers in the tables below were
// computed with python3 from the published equations (FIELD.md), not with
// this package.
type want struct {
	d    float64
	rate int64
	dly  time.Duration
	loss float64
	down bool
}

func TestModelsAgainstReference(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want []want
	}{
		// CORE basic range: 54mbit 5ms inside 275, down beyond.
		{"range defaults", Config{Model: RangeModel}, []want{
			{0, 54e6, 5 * ms, 0, false}, {275, 54e6, 5 * ms, 0, false}, {275.01, 0, 0, 0, true}}},
		{"range set", Config{Model: RangeModel, Range: mp(100), Rate: rp(10e6), Delay: dp(2 * ms), Loss: pp(1)}, []want{
			{50, 10e6, 2 * ms, 1, false}, {100.5, 0, 0, 0, true}}},
		// CORE wireless node: loss from 300 to 400, down beyond.
		{"ramp defaults", Config{Model: Ramp}, []want{
			{0, 54e6, 5 * ms, 0, false}, {300, 54e6, 5 * ms, 0, false}, {325, 54e6, 5 * ms, 25, false},
			{350, 54e6, 5 * ms, 50, false}, {399, 54e6, 5 * ms, 99, false}, {400, 54e6, 5 * ms, 100, false}, {401, 0, 0, 0, true}}},
		{"ramp factor and floor", Config{Model: Ramp, LossRange: mp(100), MaxRange: mp(200), LossFactor: fp(2), Loss: pp(5)}, []want{
			{50, 54e6, 5 * ms, 5, false}, {101, 54e6, 5 * ms, 5, false}, {110, 54e6, 5 * ms, 20, false}, {150, 54e6, 5 * ms, 100, false}}},
		// Mininet-WiFi tc mode.
		{"mininet-wifi g", Config{Model: MininetWiFi}, []want{
			{0, 11000000, 0, 0, false}, {10, 9958157, 500 * time.Microsecond, 0.02, false}, {50, 6688427, 2500 * time.Microsecond, 0.1, false},
			{100, 4066823, 5 * ms, 0.2, false}, {200, 1503550, 10 * ms, 0.4, false}, {314, 483594, 15700 * time.Microsecond, 0.628, false},
			{314.5, 0, 0, 0, true}}},
		{"mininet-wifi n", Config{Model: MininetWiFi, Mode: "n"}, []want{{100, 221826727, 5 * ms, 0.2, false}}},
		{"mininet-wifi ac", Config{Model: MininetWiFi, Mode: "ac", Range: mp(1000)}, []want{{300, 50534487, 15 * ms, 0.6, false}}},
		{"mininet-wifi floor", Config{Model: MininetWiFi, Range: mp(1000)}, []want{{600, 100000, 30 * ms, 1.2, false}}},
		// Log-distance with the defaults: SNR = 67.3223 - 30 log10(d).
		{"log-distance defaults", Config{Model: LogDistance}, []want{
			{0.5, 54e6, 0, 0, false}, {10, 54e6, 0, 0, false}, {20, 54e6, 0, 0, false},
			{30, 42782484, 0, 0.18695860259936659, false}, {50, 20706400, 0, 0.911700032520141, false},
			{80, 8459201, 0, 6.721065626022133, false}, {88, 0, 0, 0, true}, {100, 0, 0, 0, true}}},
		{"log-distance range cut", Config{Model: LogDistance, Range: mp(15), Delay: dp(ms)}, []want{
			{10, 54e6, ms, 0, false}, {16, 0, 0, 0, true}}},
		{"table", Config{Model: Table, Points: []Point{
			{Distance: 0, Rate: rp(100e6), Delay: dp(ms)},
			{Distance: 100, Rate: rp(10e6), Delay: dp(11 * ms), Loss: pp(10)},
			{Distance: 200, Rate: rp(1e6), Delay: dp(11 * ms), Loss: pp(20)},
			{Distance: 250, Down: true}}}, []want{
			{0, 100e6, ms, 0, false}, {50, 55e6, 6 * ms, 5, false}, {100, 10e6, 11 * ms, 10, false},
			{150, 5500000, 11 * ms, 15, false}, {240, 1e6, 11 * ms, 20, false}, {250, 0, 0, 0, true}, {1e6, 0, 0, 0, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				q := m.At(w.d)
				if q.Down != w.down {
					t.Errorf("d=%v: down %v, want %v", w.d, q.Down, w.down)
					continue
				}
				if w.down {
					continue
				}
				if q.RateBits != w.rate || q.Delay != w.dly || math.Abs(q.Loss-w.loss) > 1e-9 {
					t.Errorf("d=%v: rate %d delay %v loss %v, want %d %v %v", w.d, q.RateBits, q.Delay, q.Loss, w.rate, w.dly, w.loss)
				}
				if err := q.Validate(); err != nil {
					t.Errorf("d=%v: the shaper would refuse %v: %v", w.d, q, err)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no model", Config{}, "model: is missing"},
		{"unknown model", Config{Model: "radio"}, `model: "radio" is not known (use one of range, ramp, mininet-wifi, log-distance, table)`},
		{"foreign key", Config{Model: RangeModel, MaxRange: mp(3)}, `max_range: is not used by model "range" (remove it; range reads rate, delay, jitter, loss, range)`},
		{"ramp order", Config{Model: Ramp, LossRange: mp(300), MaxRange: mp(200)}, "max_range: 200 must be beyond loss_range 300"},
		{"ramp factor", Config{Model: Ramp, LossFactor: fp(0)}, "loss_factor: 0 must be more than 0"},
		{"bad base", Config{Model: RangeModel, Rate: rp(100)}, "below the minimum of 8kbit"},
		{"mode", Config{Model: MininetWiFi, Mode: "b"}, `mode: "b" is not known`},
		{"exponent", Config{Model: LogDistance, Exponent: fp(-1)}, "exponent: -1 must be more than 0"},
		{"nan power", Config{Model: LogDistance, TxPower: fp(math.NaN())}, "tx_power: NaN is not a number"},
		{"snr order", Config{Model: LogDistance, SNR: []SNRPoint{{SNR: 10}, {SNR: 5}}}, "snr[1].snr: 5 is not above the previous point's 10"},
		{"no points", Config{Model: Table}, "points: is missing"},
		{"points order", Config{Model: Table, Points: []Point{{Distance: 10}, {Distance: 5}}}, "points[1].distance: 5 is not beyond the previous point's 10"},
		{"rate at some points", Config{Model: Table, Points: []Point{{Distance: 0, Rate: rp(1e6)}, {Distance: 5}}}, "points: rate is given at 1 of 2 points"},
		{"down with quality", Config{Model: Table, Points: []Point{{Distance: 0}, {Distance: 5, Down: true, Loss: pp(3)}}}, "points[1].down: a down point has no quality"},
		{"NaN range", Config{Model: RangeModel, Range: mp(math.NaN())}, "range: NaN must be a finite distance"},
		{"valid", Config{Model: Ramp, MaxRange: mp(500)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
