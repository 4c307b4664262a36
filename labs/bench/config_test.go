package bench

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgelab/forgelab/labs/spec"
	"github.com/forgelab/forgelab/telemetry/stats"
)

func parseFile(t *testing.T, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(path, data, sp)
}

func TestParse(t *testing.T) {
	c, err := parseFile(t, "testdata/lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Runs != 6 || c.Warmup != 0 || c.Timeout != 30*time.Second || c.Noise != 0.04 || c.Tolerance != 0.08 {
		t.Errorf("settings %+v", c)
	}
	if c.Reference != "iperf" {
		t.Errorf("reference %q, want iperf (the mode of kind reference)", c.Reference)
	}
	if len(c.Restart) != 1 || c.Restart[0] != "srv" {
		t.Errorf("restart %v", c.Restart)
	}
	n, ok := c.Mode("native")
	if !ok || n.Kind != KindNative || n.Line != 39 || len(n.Metrics) != 2 {
		t.Fatalf("native %+v", n)
	}
	if n.Metrics[0] != (Metric{"goodput_mbps", stats.HigherIsBetter}) || n.Metrics[1] != (Metric{"rtt_ms", stats.LowerIsBetter}) {
		t.Errorf("metrics %+v", n.Metrics)
	}
	if len(c.Points) != 1 {
		t.Fatalf("points %+v", c.Points)
	}
	p := c.Points[0]
	if p.Describe() != "ab: rate 10mbit, delay 20ms, loss 1%" || p.Line != 50 {
		t.Errorf("point %q line %d", p.Describe(), p.Line)
	}
}

// The example of the docs parses, with all three modes.
func TestParseExample(t *testing.T) {
	c, err := parseFile(t, "../../examples/transport-bench.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.ModeNames(), " "); got != "native external reference" || c.Reference != "reference" || len(c.Points) != 3 {
		t.Errorf("modes %q reference %q points %d", got, c.Reference, len(c.Points))
	}
}

// Every problem is reported with its line and the fix.
func TestParseBad(t *testing.T) {
	base := `[lab]
name = "bt"
[[host]]
name = "a"
[[host]]
name = "b"
[[link]]
name = "ab"
endpoints = ["a", "b"]
[[workload]]
name = "w"
host = "a"
command = "true"
start = "bench"
`
	for _, c := range []struct{ name, bench, want string }{
		{"no section", "", "x.toml: no [bench] section: add one"},
		{"no modes", "[bench]\nruns = 3\n", "x.toml:15: [bench]: no modes"},
		{"unknown key", "[bench]\nrun = 3\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", `x.toml:16: [bench]: unknown key "run"`},
		{"unknown workload", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"nope\"]\nmetrics = { x = \"higher\" }\n", `x.toml:18: mode native: workload "nope" is not a [[workload]] of the lab file (workloads: w)`},
		{"bad direction", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"up\" }\n", `x.toml:19: mode native: metric x: "up" is not a direction (use "higher" or "lower"`},
		{"no metrics", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\n", "x.toml:16: mode native: metrics is missing"},
		{"kind needed", "[bench]\n[[bench.mode]]\nname = \"fast\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", "x.toml:16: mode fast: kind is missing"},
		{"bad kind", "[bench]\n[[bench.mode]]\nname = \"fast\"\nkind = \"internal\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", `x.toml:18: mode fast: kind "internal" is not known`},
		{"twice", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", `x.toml:21: mode native: a mode "native" is defined twice`},
		{"bad reference", "[bench]\nreference = \"tcp\"\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", `x.toml:16: [bench]: reference names mode "tcp", which [bench] does not have (modes: native)`},
		{"bad restart", "[bench]\nrestart = [\"srv\"]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", `x.toml:16: [bench]: restart names service "srv", which the lab file does not have (services: none)`},
		{"bad runs", "[bench]\nruns = 0\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n", "x.toml:16: [bench]: runs must be at least 1"},
		{"point link", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n[[bench.point]]\nname = \"p\"\nlink = \"bc\"\nloss = \"1%\"\n", `x.toml:22: point p: link "bc" is not a [[link]] of the lab file (links: ab)`},
		{"point empty", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n[[bench.point]]\nname = \"p\"\nlink = \"ab\"\n", "x.toml:20: point p: the point sets nothing"},
		{"point loss", "[bench]\n[[bench.mode]]\nname = \"native\"\nworkloads = [\"w\"]\nmetrics = { x = \"higher\" }\n[[bench.point]]\nname = \"p\"\nlink = \"ab\"\nloss = \"lots\"\n", `x.toml:23: point p: loss "lots" is not a percentage`},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(base + c.bench)
			sp, err := spec.Parse("x.toml", data)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse("x.toml", data, sp)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant %q", err, c.want)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	got := Order([]string{"A", "B", "C"}, []string{"p", "q"}, 2, 1)
	var s []string
	for _, x := range got {
		w := ""
		if x.Warmup {
			w = "w"
		}
		s = append(s, w+x.Mode+x.Point+string(rune('0'+x.Round)))
	}
	want := "wAp1 wBp1 wCp1 wAq1 wBq1 wCq1 Ap1 Bp1 Cp1 Aq1 Bq1 Cq1 Ap2 Bp2 Cp2 Aq2 Bq2 Cq2"
	if strings.Join(s, " ") != want {
		t.Errorf("order\n%s\nwant\n%s", strings.Join(s, " "), want)
	}
	if n := len(Order([]string{"A"}, nil, 5, 0)); n != 5 {
		t.Errorf("no points: %d runs, want 5", n)
	}
}
