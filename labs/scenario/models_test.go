package scenario

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/labs/mobility"
)

const labFile = `[lab]
name = "handover"
seed = 42

[[host]]
name = "a"
position = [-100, 0, 0]
mobility = { model = "linear", to = [-400, 0, 0], start = "10s", duration = "60s" }

[[host]]
name = "b"
position = [100, 0, 0]

[host.mobility]
model = "waypoints"
waypoints = [{ at = "0s", position = [100, 0] }, { at = "30s", position = [400, 0] }]

[[host]]
name = "c"

[quality.radio]
model = "ramp"
loss_range = 300
max_range = "0.4km"

[quality.wifi]
model = "mininet-wifi"
mode = "n"
`

func TestParseModels(t *testing.T) {
	lm, err := ParseModels("lab.toml", []byte(labFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(lm.Mobility) != 2 || len(lm.Quality) != 2 {
		t.Fatalf("mobility %v, quality %v", lm.Mobility, lm.Quality)
	}
	pos := map[string]mobility.Vec{"a": {-100, 0, 0}, "b": {100, 0, 0}}
	mob, qual, err := lm.Build(42, func(h string) mobility.Vec { return pos[h] }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if p := mob["a"].Position(40 * time.Second); p != (mobility.Vec{-250, 0, 0}) {
		t.Errorf("a at 40s: %v", p)
	}
	if p := mob["b"].Position(15 * time.Second); p != (mobility.Vec{250, 0, 0}) {
		t.Errorf("b at 15s: %v", p)
	}
	if q := qual["radio"].At(350); q.Loss != 50 {
		t.Errorf("radio at 350 m: %v", q)
	}
}

func TestParseModelsErrors(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown mobility key", `start = "10s"`, `begin = "10s"`, `lab.toml:8: host "a": unknown key "mobility.begin" (valid keys: model, from, to`},
		{"case matters", `to = [-400, 0, 0]`, `To = [-400, 0, 0]`, `lab.toml:8: host "a": unknown key "mobility.To"`},
		{"bad value", `duration = "60s"`, `duration = 60`, `lab.toml:8: host "a": mobility.duration: want a duration in quotes like "10s", not 60`},
		{"missing parameter", `model = "waypoints"`, `model = "linear"`, `lab.toml:14: host "b": mobility.to: is missing`},
		{"waypoints order", `at = "30s"`, `at = "0s"`, `lab.toml:16: host "b": mobility.waypoints[1].at: 0s is not after the previous waypoint's 0s`},
		{"non-finite position", `to = [-400, 0, 0]`, `to = [inf, 0, 0]`, `lab.toml:8: host "a": mobility.to: [+Inf, 0, 0] is not a finite position`},
		{"unknown quality model", `model = "ramp"`, `model = "radial"`, `lab.toml:22: quality "radio": model: "radial" is not known`},
		{"bad distance", `max_range = "0.4km"`, `max_range = "far"`, `lab.toml:24: quality "radio": max_range: "far" is not a distance`},
		{"quality rule", `loss_range = 300`, `loss_range = 500`, `lab.toml:24: quality "radio": max_range: 400 must be beyond loss_range 500`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(labFile, tt.old, tt.new, 1)
			if src == labFile {
				t.Fatalf("%q is not in the lab file", tt.old)
			}
			_, err := ParseModels("lab.toml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	src := labFile + `
[[host]]
name = "d"
mobility = { model = "ns2", trace = "moves.ns", node = 1 }

[[host]]
name = "e"
mobility = { model = "random-waypoint", bounds = [[0, 0, 0], [10, 10, 0]] }
`
	lm, err := ParseModels("lab.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	read := func(string) ([]byte, error) { return []byte("$node_(1) set X_ 0\n$node_(1) set Y_ zero\n"), nil }
	_, _, err = lm.Build(1, func(string) mobility.Vec { return mobility.Vec{50, 0, 0} }, read)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		`moves.ns:2: host "d": Y_ "zero" is not a number`,
		`lab.toml:36: host "e": mobility.bounds: the host's position [50, 0, 0] is outside the bounds [[0, 0, 0], [10, 10, 0]] (set position inside them`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
		}
	}
}
