package mobility

import (
	"strings"
	"testing"
	"time"
)

const trace = `# BonnMotion-style ns-2 trace
$node_(0) set X_ 0.0
$node_(0) set Y_ 0.0
$node_(0) set Z_ 5.0
$node_(6) set X_ 780.0
$node_(6) set Y_ 120.0
$god_ set-dist 0 6 1
$ns_ at 1.00 "$node_(6) setdest 500.0 120.0 25.0"
$ns_ at 0.0 "$node_(0) setdest 30.0 40.0 10.0"
$ns_ at 2.5 "$node_(0) setdest 0.0 40.0 6.0"
$ns_ at 20.0 "$node_(0) setdest 0.0 0.0 0.0"
$ns_ at 3.0 "$god_ set-dist 0 6 2"
`

func TestNS2(t *testing.T) {
	tr, err := ParseNS2("moves.ns", []byte(trace))
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Nodes(); len(got) != 2 || got[0] != 0 || got[1] != 6 {
		t.Fatalf("Nodes() = %v, want [0 6]", got)
	}
	tests := []struct {
		node int
		t    time.Duration
		want Vec
	}{
		// node 6: 280 m west at 25 m/s from t=1s: arrives at 12.2s.
		{6, 0, Vec{780, 120, 0}},
		{6, time.Second, Vec{780, 120, 0}},
		{6, 3 * time.Second, Vec{730, 120, 0}},
		{6, 12200 * time.Millisecond, Vec{500, 120, 0}},
		{6, time.Minute, Vec{500, 120, 0}},
		// node 0: towards (30, 40) at 10 m/s (50 m, 5 s), cut at 2.5s at
		// (15, 20); then to (0, 40): 25 m at 6 m/s, arrives at 2.5+25/6 s.
		{0, time.Second, Vec{6, 8, 5}},
		{0, 2500 * time.Millisecond, Vec{15, 20, 5}},
		{0, 2500*time.Millisecond + 25*time.Second/12, Vec{7.5, 30, 5}},
		{0, 10 * time.Second, Vec{0, 40, 5}},
		{0, 30 * time.Second, Vec{0, 40, 5}}, // speed 0: stays
	}
	for _, tt := range tests {
		m, err := tr.Model(tt.node)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Position(tt.t); Dist(got, tt.want) > 1e-6 {
			t.Errorf("node %d at %v: %v, want %v", tt.node, tt.t, got, tt.want)
		}
	}
	if _, err := tr.Model(3); err == nil || !strings.Contains(err.Error(), "has no $node_(3) (it has nodes [0 6])") {
		t.Errorf("unknown node: %v", err)
	}
}

func TestNS2Errors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"garbage", "$node_(0) set X_ 1\nhello world\n", "moves.ns:2: not an ns-2 mobility line"},
		{"bad number", "$node_(0) set X_ 1e\n", `moves.ns:1: X_ "1e" is not a number`},
		{"bad axis", "$node_(0) set W_ 1\n", "moves.ns:1: set W_: want X_, Y_ or Z_"},
		{"negative speed", `$ns_ at 1 "$node_(0) setdest 1 2 -3"`, "moves.ns:1: speed -3 is negative"},
		{"negative time", `$ns_ at -1 "$node_(0) setdest 1 2 3"`, "moves.ns:1: time -1 is negative"},
		{"bad node", `$ns_ at 1 "$nod(0) setdest 1 2 3"`, `moves.ns:1: "$nod(0)" is not a node`},
		{"infinite", "$node_(0) set X_ Inf", `moves.ns:1: X_ "Inf" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNS2("moves.ns", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	tr, err := ParseNS2("moves.ns", []byte("\n$node_(2) set Y_ 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Model(2); err == nil || !strings.Contains(err.Error(), "moves.ns:2: $node_(2) has no start position") {
		t.Errorf("missing X_: %v", err)
	}
}

func TestNS2ThroughConfig(t *testing.T) {
	c := Config{Model: NS2, Trace: "moves.ns", Node: ip(6)}
	read := func(name string) ([]byte, error) { return []byte(trace), nil }
	m, err := New(c, Env{Host: "a", ReadFile: read})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Position(3 * time.Second); Dist(got, Vec{730, 120, 0}) > 1e-6 {
		t.Errorf("Position(3s) = %v", got)
	}
}
