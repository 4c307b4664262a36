package units

import (
	"strings"
	"testing"
	"time"
)

func TestUnitsParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string // substring of the error; "" = no error
	}{
		{"512MiB", 512 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"2G", 2 << 30, ""},
		{"100M", 100 << 20, ""},
		{"4k", 4096, ""},
		{"1TiB", 1 << 40, ""},
		{"1.5GiB", 3 << 29, ""},
		{"1GB", 1e9, ""},
		{"20MB", 20e6, ""},
		{"1048576", 1 << 20, ""},
		{"10B", 10, ""},
		{" 512 MiB ", 512 << 20, ""},
		{"512mib", 512 << 20, ""},
		{"0", 0, ""},
		{"512MB?", 0, `"512MB?" is not a size (write it like "512MiB" or "1GiB")`},
		{"", 0, "is not a size"},
		{"MiB", 0, "is not a size"},
		{"1.2.3M", 0, "is not a size"},
		{"1e9", 0, "is not a size"},
		{"512XB", 0, `"512XB" has an unknown unit "XB" (use B, KiB`},
		{"-1GiB", 0, `"-1GiB" is negative`},
		{"0.5B", 0, "not a whole number of bytes"},
		{"99999999999TiB", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		checkUnit(t, "ParseSize", tt.in, got, tt.want, err, tt.err)
	}
}

func TestUnitsParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"10mbit", 10e6, ""},
		{"1gbit", 1e9, ""},
		{"500kbit", 500e3, ""},
		{"64bit", 64, ""},
		{"1.5mbit", 1.5e6, ""},
		{"100Mbit", 100e6, ""},
		{"1kibit", 1024, ""},
		{"1mibit", 1 << 20, ""},
		{"100mbps", 800e6, ""}, // tc: bps is BYTES per second
		{"1kbps", 8000, ""},
		{"10bps", 80, ""},
		{"2tbit", 2e12, ""},
		{"0", 0, ""},
		{"0.0004kbit", 0, ""}, // rounds to 0 bit/s
		{"100", 0, `"100" has no unit (write "100mbit" for megabits/s or "100mbps" for megabytes/s`},
		{"100mb", 0, `unknown unit "mb"`},
		{"fast", 0, `"fast" is not a rate (write it like "100mbit" or "1gbit")`},
		{"-5mbit", 0, "is negative"},
		{"99999999tbit", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		checkUnit(t, "ParseRate", tt.in, got, tt.want, err, tt.err)
	}
}

func TestUnitsFormatRate(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0bit"},
		{64, "64bit"},
		{1500, "1500bit"},
		{500e3, "500kbit"},
		{1.5e6, "1500kbit"},
		{10e6, "10mbit"},
		{1e9, "1gbit"},
		{2e12, "2tbit"},
		{1 << 20, "1048576bit"},
	}
	for _, tt := range tests {
		if got := FormatRate(tt.in); got != tt.want {
			t.Errorf("FormatRate(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParseRate(FormatRate(tt.in)); err != nil || back != tt.in {
			t.Errorf("ParseRate(FormatRate(%d)) = %d, %v", tt.in, back, err)
		}
	}
}

func TestUnitsParseDelay(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"20ms", 20 * time.Millisecond, ""},
		{"1.5ms", 1500 * time.Microsecond, ""},
		{"100us", 100 * time.Microsecond, ""},
		{"100µs", 100 * time.Microsecond, ""},
		{"100usec", 100 * time.Microsecond, ""},
		{"1s", time.Second, ""},
		{"2sec", 2 * time.Second, ""},
		{"20msec", 20 * time.Millisecond, ""},
		{"250ns", 250, ""},
		{"0.5ns", 1, ""}, // rounded to whole nanoseconds
		{"0", 0, ""},
		{"20", 0, `"20" has no unit (write "20ms" for milliseconds)`},
		{"1m", 0, `"1m" has an unknown unit "m" (use ns, us, ms or s)`},
		{"-5ms", 0, `"-5ms" is negative`},
		{"soon", 0, `"soon" is not a delay`},
		{"1h", 0, "unknown unit"},
	}
	for _, tt := range tests {
		got, err := ParseDelay(tt.in)
		checkUnit(t, "ParseDelay", tt.in, got, tt.want, err, tt.err)
	}
}

func TestUnitsParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		err  string
	}{
		{"0.5%", 0.5, ""},
		{"10%", 10, ""},
		{"100%", 100, ""},
		{"0%", 0, ""},
		{"0.5", 0.5, ""},
		{"25", 25, ""},
		{" 1 % ", 1, ""},
		{"101%", 0, `"101%" is more than 100%`},
		{"-1%", 0, `"-1%" is negative`},
		{"1%%", 0, "is not a percentage"},
		{"NaN", 0, "is not a percentage"},
		{"half", 0, `"half" is not a percentage (write it like "0.5%" or "10%")`},
		{"5pc", 0, "is not a percentage"},
	}
	for _, tt := range tests {
		got, err := ParsePercent(tt.in)
		checkUnit(t, "ParsePercent", tt.in, got, tt.want, err, tt.err)
	}
}

func TestUnitsFormatPercent(t *testing.T) {
	for _, p := range []float64{0, 0.1, 0.5, 1, 12.25, 100} {
		s := FormatPercent(p)
		back, err := ParsePercent(s)
		if err != nil || back != p {
			t.Errorf("ParsePercent(FormatPercent(%v) = %q) = %v, %v", p, s, back, err)
		}
	}
	if got := FormatPercent(0.1); got != "0.1%" {
		t.Errorf("FormatPercent(0.1) = %q", got)
	}
}

func checkUnit[T comparable](t *testing.T, fn, in string, got, want T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%s(%q): %v", fn, in, err)
	case wantErr == "" && got != want:
		t.Errorf("%s(%q) = %v, want %v", fn, in, got, want)
	case wantErr != "" && err == nil:
		t.Errorf("%s(%q) = %v, want error %q", fn, in, got, wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("%s(%q) error %q, want it to contain %q", fn, in, err, wantErr)
	}
}
